"""The server under test, in its own process: the bot, or a bare Bolt app, under uvicorn.

    python -m bench.server '<json config>'

Both run on the same stack as `connect-user-bot serve` (uvicorn with the same options, Starlette,
Bolt's AsyncSlackRequestHandler, the bot's JSON logging to a file), so the bot's figures can be read
as ratios to the bare app's. The process pins itself to the CPU it is given, binds a loopback port,
prints ``PORT <n>`` and serves until SIGTERM.

Both apps are wrapped in the same tiny ASGI shim that answers ``/__bench__/*`` (process stats, gc,
tracemalloc) for the orchestrator; every other request goes straight through.

``patches`` prototypes a change without touching bot/: only ``process-before-response`` is left
(see `main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import socket
import sys
import time
import tracemalloc
from collections import Counter
from typing import Any

from bench.machine import pin_to, process_rss_mb


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])
    pin_to(set(config["cpus"]) if config.get("cpus") else None)

    import uvicorn

    from bot.logs import configure_logging
    from bot.settings import Settings, isolate_from_bolt_environment

    settings = Settings(_env_file=None, **config["settings"])
    isolate_from_bolt_environment(os.environ)
    log_file = open(config["log_path"], "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
    configure_logging(settings.log_level, "json", stream=log_file)

    runtime = None
    if config["mode"] == "bot":
        from bot.app import create_asgi_app
        from bot.runtime import build_runtime

        runtime = build_runtime(settings, instance_id=config.get("instance_id", "bench-1"))
        inner = create_asgi_app(settings, runtime=runtime)
    elif config["mode"] == "baseline":
        inner = baseline_app(settings)
    else:
        raise SystemExit(f"unknown mode {config['mode']!r}")

    patches = set(config.get("patches") or ())
    unknown = patches - KNOWN_PATCHES
    if unknown:
        raise SystemExit(f"unknown patches {sorted(unknown)}")
    if "process-before-response" in patches and runtime is not None:
        # Bolt then answers Slack as soon as the listener returns, instead of polling for ack()
        # every 10 ms; the bot's listeners already hand slow work to the supervisor.
        runtime.bolt._process_before_response = True
        runtime.bolt._async_listener_runner.process_before_response = True
    app = BenchShim(inner, runtime)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    # The options `connect-user-bot serve` gives uvicorn.run (host/port come from the socket).
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=settings.log_level.lower(),
            log_config=None,
            proxy_headers=True,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 1,
        )
    )
    server.run(sockets=[sock])


def baseline_app(settings: Any) -> Any:
    """Bare Bolt: an AsyncApp whose only listener acks, behind the same Starlette adapter."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    bolt = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        process_before_response=False,
        name="bare-bolt",
    )

    @bolt.command("/connect-user")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class GcPauses:
    """Times every garbage collection (gc.callbacks), per generation."""

    def __init__(self) -> None:
        self._started = 0.0
        self.reset()
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gen = info["generation"]
        took = time.perf_counter() - self._started
        self.count[gen] += 1
        self.total[gen] += took
        self.longest[gen] = max(self.longest[gen], took)

    def report(self) -> dict[str, Any]:
        return {
            f"gen{g}": {
                "count": self.count[g],
                "total_ms": round(self.total[g] * 1000, 2),
                "max_ms": round(self.longest[g] * 1000, 2),
            }
            for g in range(3)
        }


class BenchShim:
    """ASGI wrapper: ``/__bench__/…`` for the orchestrator, everything else to the app."""

    def __init__(self, app: Any, runtime: Any) -> None:
        self.app = app
        self.runtime = runtime
        self._snapshot: tracemalloc.Snapshot | None = None
        self.gc_pauses = GcPauses()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/__bench__/"):
            body = await self._control(scope["path"].removeprefix("/__bench__/"))
            data = json.dumps(body).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": data})
            return
        await self.app(scope, receive, send)

    async def _control(self, what: str) -> dict[str, Any]:
        if what == "stats":
            return self._stats()
        if what == "gc":
            return {"collected": gc.collect(), **self._stats()}
        if what == "gc-pauses":
            report = self.gc_pauses.report()
            self.gc_pauses.reset()
            return report
        if what == "tracemalloc/start":
            tracemalloc.start(10)
            self._snapshot = tracemalloc.take_snapshot()
            return {"started": True}
        if what == "tracemalloc/top":
            if self._snapshot is None:
                return {"error": "not started"}
            gc.collect()
            now = tracemalloc.take_snapshot()
            stats = now.compare_to(self._snapshot, "traceback")[:12]
            return {
                "top": [
                    {
                        "size_kb": round(s.size_diff / 1024, 1),
                        "count": s.count_diff,
                        "where": [f"{f.filename}:{f.lineno}" for f in s.traceback[-4:]],
                    }
                    for s in stats
                ]
            }
        if what == "types":
            gc.collect()
            counts = Counter(type(o).__qualname__ for o in gc.get_objects())
            return {"types": counts.most_common(25)}
        return {"error": f"unknown {what}"}

    def _stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "rss_mb": round(process_rss_mb(os.getpid()), 2),
            "asyncio_tasks": len(asyncio.all_tasks()),
            "gc_objects": len(gc.get_objects()),
        }
        runtime = self.runtime
        if runtime is not None:
            stats["supervisor_in_flight"] = runtime.supervisor.in_flight
            stats["cache_inflight"] = len(runtime.cache._inflight)
            backend = runtime.cache.backend
            store = getattr(backend, "_cache", None)
            if isinstance(store, dict):
                stats["cache_entries"] = len(store)
                stats["cache_timers"] = len(getattr(backend, "_handlers", {}) or {})
        return stats


# -- prototypes of recommended changes ---------------------------------------------------------


# The one prototype left: the fixes the others prototyped are in the bot now (bench/README.md).
KNOWN_PATCHES = frozenset({"process-before-response"})


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
