"""The Alembic command line a developer runs by hand finds the database the bot would use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"


def test_the_alembic_command_line_takes_database_url_from_the_settings(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "CONNECT_", "DATABASE_"))
    }
    env["DATABASE_URL"] = f"sqlite:///{database}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(BOT / "store/migrations/alembic.ini"),
            "upgrade",
            "head",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert database.exists() and database.stat().st_size > 0
