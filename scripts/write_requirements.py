"""Write requirements.txt, the file Posit Connect installs the bot's dependencies from, out of
pyproject.toml's [project].dependencies, so the list is kept in one place only.

    python scripts/write_requirements.py          # rewrite requirements.txt
    python scripts/write_requirements.py --check  # exit 1 if requirements.txt is out of date

tests/e2e/test_hosting.py runs the check, so a dependency added to pyproject.toml without running
this fails the suite instead of failing the next deployment.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
REQUIREMENTS = ROOT / "requirements.txt"

HEADER = """\
# Generated from pyproject.toml by scripts/write_requirements.py: edit pyproject.toml, then run
#   python scripts/write_requirements.py
# Posit Connect installs these when the bot is deployed (docs/deploying-on-connect.md).
"""


def render(pyproject_text: str) -> str:
    """requirements.txt for the runtime dependencies in a pyproject.toml's text."""
    project = tomllib.loads(pyproject_text)["project"]
    dependencies = project.get("dependencies", [])
    if not dependencies:
        raise ValueError("pyproject.toml lists no [project].dependencies")
    lines = [HEADER]
    lines.extend(f"{dependency.strip()}\n" for dependency in dependencies)
    return "".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only report whether requirements.txt is current"
    )
    args = parser.parse_args(argv)
    wanted = render(PYPROJECT.read_text(encoding="utf-8"))
    current = REQUIREMENTS.read_text(encoding="utf-8") if REQUIREMENTS.exists() else None
    if args.check:
        if current != wanted:
            print(
                "requirements.txt does not match pyproject.toml; run "
                "python scripts/write_requirements.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if current != wanted:
        REQUIREMENTS.write_text(wanted, encoding="utf-8")
        print(f"wrote {REQUIREMENTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
