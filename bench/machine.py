"""The machine the numbers come from, CPU placement, and per-process CPU and memory readings."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def available_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class Placement:
    """Which CPUs the server under test gets, and which the load generator and fakes get."""

    server: set[int] | None
    load: set[int] | None

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (a single CPU: server, fakes and load generator share it)"
        return (
            f"server under test pinned to CPU {_fmt(self.server)}; load generator and fakes "
            f"(separate processes) pinned to CPU {_fmt(self.load)}"
        )


def _fmt(cpus: set[int] | None) -> str:
    return ",".join(str(c) for c in sorted(cpus or ()))


def placement() -> Placement:
    cpus = available_cpus()
    if len(cpus) < 2 or not hasattr(os, "sched_setaffinity"):
        return Placement(None, None)
    # The server is one Python process: one core is all it can use. Everything else gets the rest.
    return Placement({cpus[-1]}, set(cpus[:-1]))


def pin_to(cpus: set[int] | None) -> None:
    """Pin the calling process (call before it starts threads: they inherit the mask)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def machine_info() -> dict[str, str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": cpu_model(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
        "loadavg_before": " ".join(f"{x:.2f}" for x in load),
    }


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def system_busy_fraction() -> tuple[float, float]:
    """(busy jiffies, total jiffies) over all CPUs; diff two readings for utilisation."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total
