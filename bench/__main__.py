"""`python -m bench`: run the benchmarks, print the summary table, write bench/results.md.

    .venv/bin/python -m bench             # full run, about 8 minutes on 2 cores
    .venv/bin/python -m bench --quick     # shorter runs and smaller counts, for development
    .venv/bin/python -m bench --only ack,burst

Exit status 1 when a correctness check fails (a result not delivered, a duplicate PUT, a cache or
single-flight miss); timing targets are reported as PASS/FAIL but never change the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Harness, Row, Section
from bench.machine import (
    machine_info,
    pin_to,
    placement,
    process_cpu_seconds,
    system_busy_fraction,
)
from bench.report import markdown, text_table
from bench.scenarios import SCENARIOS, Options
from bench.workload import directory

DEFAULT_OUT = Path(__file__).with_name("results.md")


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class NoiseMeter:
    """CPU used by processes other than the benchmark's own, while a benchmark ran.

    Our own: this process, its children once reaped (servers, py-spy) and the fakes process.
    """

    def __init__(self, fakes_pid: int) -> None:
        self.fakes_pid = fakes_pid
        self.busy0, self.total0 = system_busy_fraction()
        self.own0 = self._own()
        self.t0 = time.monotonic()

    def _own(self) -> float:
        try:
            fakes = process_cpu_seconds(self.fakes_pid)
        except OSError:
            fakes = 0.0
        return _own_cpu() + fakes

    def foreign_cores(self) -> float:
        busy, total = system_busy_fraction()
        wall = time.monotonic() - self.t0
        if wall <= 0 or total == self.total0:
            return 0.0
        cpus = os.cpu_count() or 1
        busy_cores = (busy - self.busy0) / (total - self.total0) * cpus
        return max(0.0, busy_cores - (self._own() - self.own0) / wall)


async def run(args: argparse.Namespace, opts: Options, names: list[str]) -> int:
    info = machine_info()
    place = opts.placement
    started = datetime.now(UTC)
    h = Harness(place, opts.workdir, directory())
    sections: list[Section] = []
    noise: list[tuple[str, float, float]] = []
    fakes_pid = h.fakes.process.pid
    assert fakes_pid is not None
    whole = NoiseMeter(fakes_pid)
    try:
        for name in names:
            print(f"== {name} …", flush=True)
            meter = NoiseMeter(fakes_pid)
            t = time.monotonic()
            try:
                section = await SCENARIOS[name](h, opts)
            except Exception as exc:
                traceback.print_exc()
                section = Section(f"{name}: did not complete")
                section.rows.append(Row(name, "did not complete", f"{type(exc).__name__}: {exc}"))
                section.failures.append(f"{name} did not complete: {type(exc).__name__}: {exc}")
            noise.append((name, time.monotonic() - t, meter.foreign_cores()))
            if h.log_notes:
                section.details += ["", "**Server logs** (warnings and errors):", ""]
                section.details += [f"- {note}" for note in h.log_notes]
                h.log_notes.clear()
            sections.append(section)
            print(text_table(section.rows), flush=True)
    finally:
        h.close()
    elapsed = time.monotonic() - whole.t0
    foreign = whole.foreign_cores()
    rows = [r for s in sections for r in s.rows]
    print("\n" + text_table(rows))
    noisy = [n for n in noise if n[2] > 0.15]
    notes = [
        f"Placement: {place.describe()}. Each server under test is a separate "
        "`python -m bench.server` process (uvicorn, as `connect-user-bot serve` runs it); the fake "
        "Slack and fake Connect servers share a third process; the load generator is the fourth.",
        "",
        "| benchmark | wall time | CPU used by other processes (cores, average) |",
        "|---|---|---|",
        *(f"| {n} | {w:.0f} s | {c:.2f} |" for n, w, c in noise),
        "",
        (
            f"**Noisy run:** other processes used {foreign:.2f} cores on average "
            f"({', '.join(n[0] for n in noisy)} most affected); ratios to the bare-Bolt "
            "baseline measured in the same run hold better than absolute figures. Re-run on a "
            "quiet machine for final numbers."
            if noisy
            else f"Quiet run: other processes used {foreign:.2f} cores on average."
        ),
    ]
    header = [
        f"`{args.command_line}` — {'quick' if opts.quick else 'full'} run, "
        f"{started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min.",
        "",
        "How to read this: bench/README.md. Ratios compare the bot with a bare Bolt app measured "
        "on the same server stack in the same run.",
    ]
    machine = {
        "CPU": f"{info['cpus']} x {info['cpu_model']}",
        "Python": info["python"],
        "OS": info["platform"],
        "load average at start": info["loadavg_before"],
    }
    out = Path(args.out)
    text = markdown(sections=sections, header=header, machine=machine, notes=notes)
    await asyncio.to_thread(out.write_text, text)
    print(f"\nwrote {out}")
    failures = [f for s in sections for f in s.failures]
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs for development")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown report path")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument(
        "--prototypes",
        action="store_true",
        help="also run the patched-bot comparison runs (their fixes are in the bot now)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and databases")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    args.command_line = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    args.command_line = args.command_line.rstrip()

    # Pin before any thread or child exists: the server under test gets a core to itself.
    place = placement()
    pin_to(place.load)
    workdir = Path(tempfile.mkdtemp(prefix="connect-user-bot-bench-"))
    opts = Options(
        quick=args.quick,
        profile=not args.no_profile,
        prototypes=args.prototypes,
        postgres_url=args.postgres_url,
        workdir=workdir,
        placement=place,
    )
    status = 2
    try:
        import uvloop

        status = uvloop.run(run(args, opts, names))
        return status
    finally:
        if args.keep_workdir or status != 0:
            print(f"logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
