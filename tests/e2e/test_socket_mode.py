"""Socket Mode end to end: the real AsyncSocketModeHandler against the fake Slack's websocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import run_socket_mode
from bot.runtime import build_runtime
from tests.support.bot_under_test import (
    APPROVER_CHANNEL,
    BOT_TOKEN,
    REQUESTER,
    make_settings,
    response_text,
)


async def test_slash_command_over_socket_mode(fake_slack, fake_connect, database_url) -> None:
    settings = make_settings(
        fake_slack,
        fake_connect,
        database_url,
        slack_signing_secret=None,
        slack_app_token="xapp-test-app-token-0000",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_socket_mode(settings, stop, instance_id="socket-1"))
    try:
        for _ in range(500):
            if fake_slack.socket_connections:
                break
            assert not running.done(), running.exception()
            await asyncio.sleep(0.01)
        assert fake_slack.socket_connections == 1
        opened = fake_slack.calls_to("apps.connections.open")[-1]
        assert opened.token == "xapp-test-app-token-0000"

        response_url = fake_slack.new_response_url()
        await fake_slack.socket_send(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "token": "unused",
                    "team_id": "T0001",
                    "team_domain": "test",
                    "channel_id": "CGENERAL",
                    "channel_name": "general",
                    "user_id": REQUESTER,
                    "user_name": "requester",
                    "command": "/connect-user",
                    "text": "search julie",
                    "api_app_id": "A0APP",
                    "response_url": response_url,
                    "trigger_id": "1.2.3",
                },
            }
        )
        ack = await fake_slack.wait_for_socket_ack("env-1")
        assert ack["envelope_id"] == "env-1"
        answer = (await fake_slack.wait_for_response(response_url, timeout=10))[-1]
        assert "julie2" in response_text(answer)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 15)
    assert running.done() and running.exception() is None


# -- the `socket` command as a process: signals, a refused token, a quiet start -----------------

APP_TOKEN = "xapp-test-app-token-0000"


def socket_env(slack_api_url: str, connect_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack_api_url,
        "SLACK_APPROVER_CHANNEL": APPROVER_CHANNEL,
        "CONNECT_SERVER": connect_url,
        "CONNECT_API_KEY": "connect-key-for-socket-tests",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
        "LOG_FORMAT": "json",
        "SHUTDOWN_GRACE_SECONDS": "2",
    }


class BotProcess:
    """`python -m bot socket` in a subprocess, its stderr kept in a file to read while it runs."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.stderr_path = cwd / "stderr.log"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "socket"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if self.process.poll() is not None:
                raise AssertionError(f"exited ({self.process.returncode}) first:\n{self.stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout}s:\n{self.stderr}")
            time.sleep(0.05)

    def stop_with(self, sig: int, within: float) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"still running {within}s after signal {sig}:\n{self.stderr[-3000:]}"
            ) from None
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


@contextlib.contextmanager
def bot_process(env: dict[str, str], cwd: Path) -> Iterator[BotProcess]:
    running = BotProcess(env, cwd)
    try:
        yield running
    finally:
        running.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_socket_mode_stops_promptly_while_slack_cannot_be_reached(tmp_path: Path, sig: int) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}"
    env = socket_env(f"{unreachable}/api/", f"{unreachable}/", tmp_path)
    with bot_process(env, tmp_path) as running:
        running.wait_for_log("Slack cannot be reached")
        time.sleep(1.5)  # into the retry loop's pause
        code, took = running.stop_with(sig, within=8)
        assert code == 0, running.stderr
        assert took < 5, f"stopped after {took:.1f}s"
        assert "Traceback" not in running.stderr


class SilentServer:
    """Accepts TCP connections and never answers: a Slack that hangs."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self._sock.accept()[0])

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone may not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_socket_mode_stops_promptly_while_starting_against_a_slack_that_never_answers(
    tmp_path: Path, sig: int
) -> None:
    """Start-up reads the approver channel from Slack (15 s timeout per call): a signal then
    must not wait for it."""
    silent = SilentServer()
    try:
        env = socket_env(f"{silent.url}/api/", f"http://127.0.0.1:{closed_port()}/", tmp_path)
        with bot_process(env, tmp_path) as running:
            deadline = time.monotonic() + 30
            while not silent.accepted:
                assert running.process.poll() is None, running.stderr
                assert time.monotonic() < deadline, f"never called Slack:\n{running.stderr}"
                time.sleep(0.05)
            time.sleep(0.5)  # well inside the call that never gets an answer
            code, took = running.stop_with(sig, within=12)
            stderr = running.stderr
    finally:
        silent.close()
    assert code == 0, stderr
    assert took < 5, f"stopped after {took:.1f}s"
    assert "Traceback" not in stderr
    assert "connected to Slack" not in stderr


async def test_a_runtime_that_never_finished_starting_stops_without_delivering(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a start cut short by a signal, Runtime.stop() only closes what was opened: no last
    delivery pass (the database may not be migrated yet, and Slack may be what hangs)."""
    runtime = build_runtime(settings, socket_mode=True)
    passes: list[str] = []

    async def deliver_due() -> int:
        passes.append("delivery")
        return 0

    monkeypatch.setattr(runtime.notifier, "deliver_due", deliver_due)
    await runtime.stop()
    assert passes == []


def test_socket_mode_stops_promptly_while_slack_keeps_failing(
    tmp_path: Path, fake_slack, fake_connect
) -> None:
    fake_slack.fail("apps.connections.open", status=503, times=None)
    env = socket_env(fake_slack.api_url, fake_connect.url, tmp_path)
    with bot_process(env, tmp_path) as running:
        running.wait_for_log("Slack answered internal_error")
        code, took = running.stop_with(signal.SIGTERM, within=8)
        assert code == 0, running.stderr
        assert took < 5, f"stopped after {took:.1f}s"
        assert "Traceback" not in running.stderr


def test_a_refused_websocket_handshake_never_logs_the_connection_ticket(
    tmp_path: Path, fake_slack, fake_connect
) -> None:
    """slack_sdk logs a failed handshake with aiohttp's error, whose text holds the URL and so
    the ticket (a credential for a connection as the app), and retries it every 10 s."""
    fake_slack.socket_handshake_status = 403
    env = socket_env(fake_slack.api_url, fake_connect.url, tmp_path)
    with bot_process(env, tmp_path) as running:
        running.wait_for_log("Failed to connect")
        code, _ = running.stop_with(signal.SIGTERM, within=10)
        stderr = running.stderr
    assert code == 0, stderr
    tickets = fake_slack.issued_socket_tickets
    assert tickets, "the bot asked for a connection"
    assert not [ticket for ticket in tickets if ticket in stderr], stderr[-3000:]
    failed = [line for line in stderr.splitlines() if "Failed to connect" in line]
    assert "/socket?<redacted>" in failed[0] and "403" in failed[0], failed[0]


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("invalid_auth", "mistyped, or was revoked"),
        ("not_allowed_token_type", "not an app-level token"),
    ],
)
def test_a_refused_app_token_is_reported_in_words_and_ends_the_process(
    tmp_path: Path, fake_slack, fake_connect, error: str, words: str
) -> None:
    fake_slack.fail("apps.connections.open", error=error, times=None)
    env = socket_env(fake_slack.api_url, fake_connect.url, tmp_path)
    with bot_process(env, tmp_path) as running:
        try:
            code = running.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still retrying:\n{running.stderr[-3000:]}") from None
        stderr = running.stderr
    assert code == 2
    assert f"Slack refused SLACK_APP_TOKEN ({error})" in stderr and words in stderr
    assert "Traceback" not in stderr
    assert APP_TOKEN not in stderr
    assert fake_slack.count("apps.connections.open") == 1, "a refused token is not retried"


def test_socket_mode_starts_quietly_and_stops_on_sigterm(
    tmp_path: Path, fake_slack, fake_connect
) -> None:
    env = socket_env(fake_slack.api_url, fake_connect.url, tmp_path)
    with bot_process(env, tmp_path) as running:
        running.wait_for_log("connected to Slack in Socket Mode")
        code, _ = running.stop_with(signal.SIGTERM, within=10)
        stderr = running.stderr
    assert code == 0, stderr
    messages = [json.loads(line)["message"] for line in stderr.splitlines() if line.strip()]
    chatter = [m for m in messages if m.startswith(("setup plugin", "Context impl", "Will assume"))]
    assert not chatter, chatter
    assert any(m.startswith("Running upgrade") for m in messages), "migrations still say so"
    assert "Traceback" not in stderr and APP_TOKEN not in stderr
