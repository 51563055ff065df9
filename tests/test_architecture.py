"""The rules of the code's shape that no linter checks: the environment is read in one place."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
SETTINGS = BOT / "settings.py"


def _environment_reads(path: Path) -> list[str]:
    """`os.environ` / `os.getenv` / `os.putenv` / `os.unsetenv` anywhere in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "getenv", "putenv", "unsetenv", "environb")
        ):
            found.append(f"{path.relative_to(BOT.parent)}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {alias.name for alias in node.names}
            if names & {"environ", "getenv", "putenv", "unsetenv", "environb"}:
                found.append(f"{path.relative_to(BOT.parent)}:{node.lineno} from os import …")
    return found


def test_only_the_settings_module_reads_or_edits_the_environment() -> None:
    offenders = [
        read
        for path in sorted(BOT.rglob("*.py"))
        if path != SETTINGS
        for read in _environment_reads(path)
    ]
    assert offenders == [], "read the environment through bot.settings:\n" + "\n".join(offenders)
    assert _environment_reads(SETTINGS), "the check itself finds os.environ in settings.py"


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
