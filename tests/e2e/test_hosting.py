"""Hosting on Posit Connect: the generated requirements.txt, and the `bot.asgi:app` entrypoint
rsconnect deploys."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn

from bot.asgi import LazyApp
from tests.support.bot_under_test import free_socket
from tests.support.entrypoints import lifespan_startup, set_bot_environment
from tests.support.fake_connect import FakeConnect
from tests.support.fake_slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "write_requirements.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("write_requirements", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- requirements.txt ----------------------------------------------------------------------------


def test_requirements_txt_matches_pyproject() -> None:
    script = load_script()
    wanted = script.render((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    current = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert current == wanted, (
        "requirements.txt is out of date: run `python scripts/write_requirements.py` and commit it"
    )


def test_requirements_are_the_runtime_dependencies_only() -> None:
    script = load_script()
    text = script.render(
        '[project]\nname = "x"\ndependencies = ["a>=1", " b[extra]<2 "]\n'
        '[project.optional-dependencies]\ndev = ["pytest"]\n'
    )
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == ["a>=1", "b[extra]<2"]
    with pytest.raises(ValueError, match=r"no \[project\]\.dependencies"):
        script.render('[project]\nname = "x"\n')


def test_check_mode_reports_drift(tmp_path: Path, monkeypatch) -> None:
    script = load_script()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["a>=1"]\n')
    monkeypatch.setattr(script, "PYPROJECT", pyproject)
    monkeypatch.setattr(script, "REQUIREMENTS", tmp_path / "requirements.txt")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    assert script.main(["--check"]) == 1
    assert script.main([]) == 0
    assert script.main(["--check"]) == 0
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["a>=1", "b"]\n')
    assert script.main(["--check"]) == 1


# -- bot.asgi:app --------------------------------------------------------------------------------


def test_importing_the_entrypoint_does_nothing() -> None:
    """rsconnect (and linters) import the module: no settings, no I/O, no environment needed."""
    code = "import bot.asgi, sys; print(type(bot.asgi.app).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LazyApp"
    assert result.stderr == ""


async def test_missing_configuration_fails_startup_with_the_reason(
    clean_environment, capsys
) -> None:
    answer = await lifespan_startup(LazyApp())
    assert answer["type"] == "lifespan.startup.failed"
    assert "SLACK_BOT_TOKEN is not set" in answer["message"]
    assert (
        "CONNECT_API_KEY (or BOT_CONNECT_API_KEY, which wins over it) is not set"
        in answer["message"]
    )
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err


async def test_http_mode_needs_the_signing_secret(
    clean_environment, monkeypatch, fake_slack: FakeSlack, fake_connect: FakeConnect
) -> None:
    set_bot_environment(monkeypatch, fake_slack, fake_connect, "sqlite:///bot.db")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    app = LazyApp()
    answer = await lifespan_startup(app)
    assert answer["type"] == "lifespan.startup.failed"
    assert "SLACK_SIGNING_SECRET" in answer["message"]
    # Requests are answered, not crashed on, while it is unconfigured.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert "not configured" in response.text


async def test_entrypoint_serves_under_connects_prefix_and_names_the_key_owner(
    clean_environment,
    monkeypatch,
    capsys,
    fake_slack: FakeSlack,
    fake_connect: FakeConnect,
    tmp_path: Path,
) -> None:
    set_bot_environment(monkeypatch, fake_slack, fake_connect, f"sqlite:///{tmp_path / 'h.db'}")
    sock = free_socket()
    server = uvicorn.Server(
        uvicorn.Config(LazyApp(), lifespan="on", log_config=None, root_path="/content/abc")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, capsys.readouterr().err
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            hello = await http.get(
                "/hello", headers={"RStudio-Connect-Credentials": '{"user": "auditor"}'}
            )
            assert hello.json() == {"message": "So nice to see you, auditor."}
            page = await http.get(
                "/requests", headers={"RStudio-Connect-Credentials": '{"user": "auditor"}'}
            )
            assert page.status_code == 200
        logged = ""
        for _ in range(200):
            logged += capsys.readouterr().err
            if "Connect API key in use" in logged:
                break
            await asyncio.sleep(0.02)
        assert "Connect API key in use belongs to connect-bot" in logged
        assert "visitor credentials are trusted" in logged
    finally:
        server.should_exit = True
        await task


async def test_any_failure_to_build_fails_startup_with_the_reason(
    clean_environment, monkeypatch, fake_slack: FakeSlack, fake_connect: FakeConnect
) -> None:
    set_bot_environment(monkeypatch, fake_slack, fake_connect, "sqlite:///bot.db")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no engine for you")

    monkeypatch.setattr("bot.app.create_asgi_app", broken)
    answer = await lifespan_startup(LazyApp())
    assert answer["type"] == "lifespan.startup.failed"
    assert answer["message"] == "the bot could not be built: RuntimeError: no engine for you"
