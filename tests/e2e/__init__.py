"""Over loopback: the real app under uvicorn driven with signed requests against the fake Slack
and fake Connect servers, bot processes, Redis, the browser."""
