"""The rules of the code's shape that no linter checks: the environment is read in one place."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"
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
