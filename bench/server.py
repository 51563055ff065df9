"""The server under test, in its own process: the bot, or a bare Bolt app, under uvicorn.

    python -m bench.server '<json config>'

Both run on the same stack as `connect-user-bot serve` (uvicorn with the same options, Starlette,
Bolt's AsyncSlackRequestHandler, the bot's JSON logging to a file), so the bot's figures can be read
as ratios to the bare app's. The process pins itself to the CPU it is given, binds a loopback port,
prints ``PORT <n>`` and serves until SIGTERM.

Both apps are wrapped in the same tiny ASGI shim that answers ``/__bench__/*`` (process stats, gc,
tracemalloc) for the orchestrator; every other request goes straight through.

``patches`` prototypes changes recommended in bench/README.md without touching bot/: see
`apply_patches`.
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
from bot.connect.transport import AiohttpTransport


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
        from bot.app import build_runtime, create_asgi_app

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
    apply_import_time_patches(patches)
    if "process-before-response" in patches and runtime is not None:
        # Bolt then answers Slack as soon as the listener returns, instead of polling for ack()
        # every 10 ms; the bot's listeners already hand slow work to the supervisor.
        runtime.bolt._process_before_response = True
        runtime.bolt._async_listener_runner.process_before_response = True
    app = BenchShim(inner, runtime, patches & {"shared-sessions", "connect-aiohttp", "gc-freeze"})

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

    def __init__(self, app: Any, runtime: Any, patches: set[str]) -> None:
        self.app = app
        self.runtime = runtime
        self.patches = patches
        self._snapshot: tracemalloc.Snapshot | None = None
        self.gc_pauses = GcPauses()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and self.patches:
            freeze = "gc-freeze" in self.patches
            await apply_patches(self.patches - {"gc-freeze"}, self.runtime)
            if freeze:
                inner_send = send

                async def send(message: dict[str, Any]) -> None:
                    if message["type"] == "lifespan.startup.complete":
                        # What the proposed change does once the runtime has started.
                        gc.collect()
                        gc.freeze()
                    await inner_send(message)

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


KNOWN_PATCHES = frozenset(
    {
        "shared-sessions",
        "process-before-response",
        "sniffio",
        "blocks-json-len",
        "connect-aiohttp",
        "gc-freeze",
    }
)


async def apply_patches(patches: set[str], runtime: Any) -> None:
    """Monkeypatches that stand in for proposed code changes, so their effect can be measured.

    shared-sessions: one aiohttp ClientSession for every Slack Web API call and response_url POST
        (slack_sdk opens and closes a session, and a TCP connection, per call when given none).
    process-before-response (applied in `main`): Bolt's AsyncApp(process_before_response=True).
    sniffio, blocks-json-len: see `apply_import_time_patches`.
    gc-freeze (applied by `BenchShim` when startup completes): gc.collect(); gc.freeze(), so the
        ~130k objects that exist after start-up (SQLAlchemy, pydantic, Bolt, slack_sdk…) are no
        longer scanned by every full collection.
    connect-aiohttp: the Connect client's httpx.AsyncClient keeps its API, headers, timeouts and
        error mapping, but sends through `AiohttpTransport` (aiohttp's connection pool) instead of
        httpcore/anyio/h11, which cost most of a search's CPU time.
    """
    if "connect-aiohttp" in patches and runtime is not None:
        runtime.connect._http._transport = AiohttpTransport()  # the bot's own, now the default
        patches.discard("connect-aiohttp")
    if "shared-sessions" in patches:
        import aiohttp
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        import bot.slack.listeners.replies as replies
        import bot.slack.notifier as notifier

        session = aiohttp.ClientSession()
        if runtime is not None:
            runtime.slack_client.session = session
        original = notifier.post_to_response_url

        async def post_to_response_url(
            url: str, payload: dict[str, Any], *, session: Any = None
        ) -> bool:
            try:
                response = await AsyncWebhookClient(url, timeout=10, session=session).send_dict(
                    payload
                )
            except Exception:
                return False
            return response.status_code == 200

        post_to_response_url.__doc__ = original.__doc__
        notifier.post_to_response_url = post_to_response_url
        replies.post_to_response_url = post_to_response_url
        patches.discard("shared-sessions")  # once per process


def apply_import_time_patches(patches: set[str]) -> None:
    """sniffio: httpcore calls `current_async_library()` several times per request, and each call
        runs `import sniffio`; sniffio is not installed (anyio 4 no longer needs it), so every call
        is a failed import that searches sys.path. A stub module stands in for installing it.
    blocks-json-len: `blocks._blocks_json_len` re-serialises every block for each candidate row,
        quadratic in the rows shown; here each block's length is computed once (the JSON of a list
        is the JSON of its items joined by ", ", so the total is exact).
    """
    if "sniffio" in patches:
        import types

        stub = types.ModuleType("sniffio")
        stub.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
        sys.modules.setdefault("sniffio", stub)
    if "blocks-json-len" in patches:
        import bot.slack.blocks as blocks

        known: dict[int, tuple[object, int]] = {}

        def blocks_json_len(items: list[dict[str, Any]]) -> int:
            total = 2 + 2 * max(0, len(items) - 1)
            for item in items:
                hit = known.get(id(item))
                if hit is None or hit[0] is not item:  # the reference held keeps ids unique
                    if len(known) > 4096:
                        known.clear()
                    hit = (item, len(json.dumps(item)))
                    known[id(item)] = hit
                total += hit[1]
            return total

        blocks._blocks_json_len = blocks_json_len


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
