"""Sampling profile of the server under test with py-spy, summarised as top items."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import pin_to

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def start_py_spy(
    pid: int, seconds: float, out: Path, cpus: set[int] | None, rate: int = 250
) -> subprocess.Popen[bytes]:
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--gil",  # only threads holding the GIL: Python work, not threads waiting for work
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=(lambda: pin_to(cpus)) if cpus else None,
    )


@dataclass
class Profile:
    samples: int = 0
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    by_package: Counter[str] = field(default_factory=Counter)
    bot_inclusive: Counter[str] = field(default_factory=Counter)

    def share(self, n: int) -> str:
        return f"{100 * n / self.samples:.1f}%" if self.samples else "n/a"


def _is_bot(path: str) -> bool:
    path = path.replace("\\", "/")
    return path.startswith("bot/") or "/bot/" in path


def _package(path: str, func: str) -> str:
    """py-spy names files relative to their sys.path entry: the first part is the package."""
    path = path.replace("\\", "/")
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = path.split("/", 1)[-1]
    if path.startswith("<frozen importlib"):
        return "importlib (imports at run time)"
    if _is_bot(path):
        parts = path.split("bot/", 1)[1].split("/")
        return "bot/" + "/".join(parts[:-1] or [parts[0].removesuffix(".py")])
    if path == "asyncio/runners.py" and func == "Runner.run":
        return "event loop (uvloop, C code)"
    return path.split("/", 1)[0].removesuffix(".py") or "?"


def _label(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    if not m:
        return frame, "?"
    file = m.group("file")
    short = file.split("site-packages/")[-1] if "site-packages/" in file else file
    if "/bot/" in short:
        short = "bot/" + short.split("/bot/", 1)[1]
    elif "/lib/python3" in short:
        short = short.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return f"{m.group('func')} ({short})", file


def parse(path: Path) -> Profile:
    prof = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        prof.samples += n
        labels = [_label(f) for f in frames]
        leaf, leaf_file = labels[-1]
        prof.self_time[leaf] += n
        prof.by_package[_package(leaf_file, leaf.split(" (")[0])] += n
        seen: set[str] = set()
        for label, file in labels:
            if label in seen:
                continue
            seen.add(label)
            prof.inclusive[label] += n
            if _is_bot(file):
                prof.bot_inclusive[label] += n
    return prof


# What a search round trip spends its CPU on, by the function whose inclusive time it is.
PHASES = (
    ("request in: uvicorn → Starlette → Bolt → ack()", "RequestResponseCycle.run_asgi"),
    ("HTTP parsing and socket I/O in uvicorn", "HttpToolsProtocol.data_received"),
    ("after ack: who may search (users.info, cached)", "SlackPeople.search_refusal"),
    ("after ack: Connect search (httpx, pydantic)", "ConnectClient.search_remote"),
    ("after ack: render the results (Block Kit)", "search_results_message"),
    ("after ack: POST to the response_url (slack_sdk, aiohttp)", "via_response_url"),
    ("logging (uvicorn access log, bot logs)", "Logger._log"),
)


def phases(prof: Profile) -> list[tuple[str, int]]:
    out = []
    for label, func in PHASES:
        n = sum(
            v
            for k, v in prof.inclusive.items()
            if (name := k.split(" (")[0]) == func or name.endswith("." + func)
        )
        out.append((label, n))
    return out


def summary(prof: Profile, top: int = 12) -> list[str]:
    if not prof.samples:
        return ["(no samples)"]
    lines = [
        f"{prof.samples} samples of the server process's thread holding the GIL (idle time and "
        "threads waiting for work excluded).",
        "",
        "| phase (inclusive; phases can nest) | share |",
        "|---|---|",
    ]
    lines += [f"| {label} | {prof.share(n)} |" for label, n in phases(prof)]
    lines += ["", "| where the CPU went (leaf frame's package) | share |", "|---|---|"]
    lines += [f"| {pkg} | {prof.share(n)} |" for pkg, n in prof.by_package.most_common(top)]
    lines += ["", "| hottest functions (self time) | share |", "|---|---|"]
    lines += [f"| `{fn}` | {prof.share(n)} |" for fn, n in prof.self_time.most_common(top)]
    lines += ["", "| bot code, inclusive time (callees included) | share |", "|---|---|"]
    lines += [f"| `{fn}` | {prof.share(n)} |" for fn, n in prof.bot_inclusive.most_common(top)]
    return lines
