"""Processes and plumbing shared by the benchmarks: servers under test, fakes, CPU accounting."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.fakes_host import FakesClient
from bench.loadgen import Pool, build_request
from bench.machine import Placement, process_cpu_seconds, process_rss_mb
from bench.workload import (
    APPROVER_CHANNEL,
    APPROVERS,
    BOT_TOKEN,
    GUEST,
    REQUESTER,
    SIGNING_SECRET,
    Person,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the summary table."""

    benchmark: str
    metric: str
    bot: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # correctness failures (exit non-zero)


class Server:
    """A `bench.server` process: the bot or the bare Bolt app."""

    def __init__(self, name: str, config: dict[str, Any], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._stderr = log_path.with_suffix(".stderr").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.server", json.dumps(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.port = self._read_port(timeout=60)
        self.url = f"http://127.0.0.1:{self.port}"

    def _read_port(self, timeout: float) -> int:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self._tail()}")
        return int(line.split()[1])

    def _tail(self) -> str:
        try:
            return self.log_path.with_suffix(".stderr").read_text()[-3000:]
        except OSError:
            return "(no stderr)"

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_healthy(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self._tail()}")
                try:
                    if (await client.get(self.url + "/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy: {self._tail()}")

    async def control(self, what: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as client:
            return (await client.get(f"{self.url}/__bench__/{what}")).json()

    def rss_mb(self) -> float:
        return process_rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def pool(self) -> Pool:
        return Pool("127.0.0.1", self.port)

    def request(self, body: str) -> bytes:
        return build_request(f"127.0.0.1:{self.port}", body, SIGNING_SECRET)

    def log_summary(self) -> str | None:
        """Warnings and errors in the server's log, counted by message; None if there were none."""
        counts: Counter[tuple[str, str]] = Counter()
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            level = entry.get("level", "")
            if level in ("WARNING", "ERROR", "CRITICAL"):
                message = str(entry.get("message", ""))[:120]
                counts[(level, f"{entry.get('logger', '')}: {message}")] += 1
        stderr = self._tail().strip()
        if not counts and not stderr:
            return None
        parts = [f"{n} x {level} {msg}" for (level, msg), n in counts.most_common(5)]
        if len(counts) > 5:
            parts.append(f"and {len(counts) - 5} other kinds")
        if stderr:
            parts.append(f"stderr: {stderr[-300:]}")
        return f"server log of `{self.name}`: " + "; ".join(parts)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


class Harness:
    def __init__(self, placement: Placement, workdir: Path, people: list[Person]) -> None:
        self.placement = placement
        self.workdir = workdir
        self.people = people
        self.fakes = FakesClient(placement.load)
        self.servers: list[Server] = []
        self.log_notes: list[str] = []  # warnings/errors of stopped servers, for the report
        self._counter = 0
        self._seed_fakes()

    def _seed_fakes(self) -> None:
        f = self.fakes
        for user in (REQUESTER, *APPROVERS):
            f.slack("add_user", user, email=f"{user.lower()}@example.com", real_name=user.title())
        f.slack("add_user", GUEST, is_restricted=True)
        f.slack(
            "add_channel",
            APPROVER_CHANNEL,
            name="approvers",
            is_private=True,
            members=["U0BOT", *APPROVERS],
        )
        f.host("seed_directory", [(p.username, p.first, p.last) for p in self.people])

    def add_requesters(self, user_ids: list[str]) -> None:
        for user in user_ids:
            self.fakes.slack("add_user", user)

    def bot_settings(self, database_url: str | None = None, **overrides: Any) -> dict[str, Any]:
        self._counter += 1
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": self.fakes.slack_api_url,
            "slack_approver_channel": APPROVER_CHANNEL,
            "connect_server": self.fakes.connect_url,
            "connect_api_key": self.fakes.connect_api_key,
            "database_url": database_url or f"sqlite:///{self.workdir / f'bot{self._counter}.db'}",
            "log_level": "INFO",
            "shutdown_grace_seconds": 5,
        }
        values.update(overrides)
        return values

    async def start(
        self,
        name: str,
        mode: str,
        settings: dict[str, Any] | None = None,
        patches: tuple[str, ...] = (),
    ) -> Server:
        config = {
            "mode": mode,
            "cpus": sorted(self.placement.server) if self.placement.server else None,
            "settings": settings or self.bot_settings(),
            "log_path": str(self.workdir / f"{name}.log"),
            "instance_id": f"bench-{name}",
            "patches": list(patches),
        }
        server = Server(name, config, self.workdir / f"{name}.log")
        self.servers.append(server)
        await server.wait_healthy()
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)
        note = server.log_summary()
        if note:
            self.log_notes.append(note)

    def close(self) -> None:
        for server in list(self.servers):
            self.stop(server)
        self.fakes.close()

    # -- the fake Slack's record of results --------------------------------------------------
    def post_count(self) -> int:
        return self.fakes.host("post_count")

    async def wait_posts(self, count: int, within: float) -> int:
        """Wait until the fake Slack has received `count` response_url posts; returns the count."""
        deadline = time.monotonic() + within
        while True:
            seen = self.post_count()
            if seen >= count or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(0.02)


@asynccontextmanager
async def cpu_meter(pids: dict[str, int]):
    """CPU seconds used by each named process while the block runs (result filled in on exit)."""
    before = {name: _cpu(pid) for name, pid in pids.items()}
    start = time.monotonic()
    result: dict[str, float] = {}
    try:
        yield result
    finally:
        wall = time.monotonic() - start
        for name, pid in pids.items():
            result[name] = (_cpu(pid) - before[name]) / wall if wall > 0 else 0.0
        result["_wall"] = wall


def _cpu(pid: int) -> float:
    try:
        return process_cpu_seconds(pid)
    except OSError:
        return 0.0


def own_pid() -> int:
    return os.getpid()
