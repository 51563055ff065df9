"""The six benchmarks. Each takes the harness and the options and returns a report section."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench import profile as spy
from bench.harness import Harness, Row, Section, Server, cpu_meter, own_pid
from bench.loadgen import Pool, Sample, closed_loop, open_loop, windowed
from bench.machine import Placement
from bench.stats import fmt_ratio, ms, percentile, ratio, verdict
from bench.workload import (
    APPROVERS,
    GUEST,
    REQUESTER,
    Zipf,
    approve_body,
    approve_role_body,
    help_body,
    many_prefixes,
    search_body,
    typical_prefixes,
)

INF = float("inf")


@dataclass
class Options:
    quick: bool
    profile: bool = True
    # Off by default: only process_before_response is left to compare (bench/README.md).
    prototypes: bool = False
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    workdir: Path = Path(".")
    placement: Placement = field(default_factory=lambda: Placement(None, None))

    # sizes: full run / --quick
    @property
    def ack_seconds(self) -> float:
        return 4 if self.quick else 7

    @property
    def ack_rounds(self) -> int:
        return 1 if self.quick else 2

    @property
    def burst_repeats(self) -> int:
        return 1 if self.quick else 3

    @property
    def capacity_seconds(self) -> float:
        return 4 if self.quick else 8

    @property
    def zipf_searches(self) -> int:
        return 400 if self.quick else 1000

    @property
    def approvals(self) -> int:
        return 50 if self.quick else 200

    @property
    def memory_requests(self) -> int:
        return 3000 if self.quick else 20_000


class Traffic:
    """Fresh signed requests: every search gets its own response_url and a rotating prefix."""

    def __init__(self, h: Harness, prefixes: list[str]) -> None:
        self.h = h
        self._prefixes = itertools.cycle(prefixes)
        self._n = itertools.count()

    def url(self) -> str:
        return self.h.fakes.new_response_url(f"{next(self._n)}-{secrets.token_hex(6)}")

    def next_prefix(self) -> str:
        return next(self._prefixes)

    def search(self, srv: Server, prefix: str | None = None, user: str = REQUESTER) -> bytes:
        return srv.request(search_body(prefix or self.next_prefix(), self.url(), user))

    def searches(self, srv: Server, n: int) -> list[bytes]:
        return [self.search(srv) for _ in range(n)]


def lat_summary(samples: list[Sample]) -> dict[str, float]:
    lat = [s.latency for s in samples if s.status == 200]
    return {
        "n": len(samples),
        "errors": sum(1 for s in samples if s.status != 200),
        "p50": percentile(lat, 50),
        "p90": percentile(lat, 90),
        "p99": percentile(lat, 99),
        "max": max(lat) if lat else math.nan,
    }


async def warm_pool(srv: Server, n: int, max_connections: int = 512) -> Pool:
    pool = Pool("127.0.0.1", srv.port, max_connections=max_connections)
    await pool.warm(n)
    return pool


# ---------------------------------------------------------------------------------------------
# 1. ack latency at fixed offered loads, bot vs bare Bolt


async def ack_latency(h: Harness, o: Options) -> Section:
    sec = Section("1. Ack latency of `/connect-user search`, open loop, bot vs bare Bolt")
    h.fakes.set("connect", "latency", 0.05)
    traffic = Traffic(h, [p for p, _ in typical_prefixes(h.people)])

    def ttl0() -> dict[str, object]:
        return h.bot_settings(search_cache_ttl=0)

    variants: list[tuple[str, Server]] = [
        ("bare Bolt", await h.start("ack-baseline", "baseline")),
        ("bot", await h.start("ack-bot", "bot", ttl0())),
    ]
    if o.prototypes:
        variants.append(
            (
                f"bot, {PROTOTYPES['process-before-response']} (prototype)",
                await h.start("ack-bot-pbr", "bot", ttl0(), patches=("process-before-response",)),
            )
        )
    try:
        pools = {name: await warm_pool(srv, 16) for name, srv in variants}
        for name, srv in variants:  # warm-up: first-request work, caches, connection pools
            before = h.post_count()
            await open_loop(pools[name], traffic.searches(srv, 150), 100)
            if srv.name != "ack-baseline":
                await h.wait_posts(before + 150, 30)
        samples: dict[tuple[str, int], list[Sample]] = defaultdict(list)
        cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
        undelivered: dict[str, int] = defaultdict(int)
        gc_max: dict[tuple[str, int], float] = defaultdict(float)
        gc2: dict[tuple[str, int], int] = defaultdict(int)
        for rnd in range(o.ack_rounds):
            for rate in (50, 200):
                order = variants if rnd % 2 == 0 else list(reversed(variants))
                for name, srv in order:
                    n = int(rate * o.ack_seconds)
                    reqs = traffic.searches(srv, n)  # signed before the clock starts
                    before = h.post_count()
                    await srv.control("gc-pauses")  # reset
                    async with cpu_meter({"server": srv.pid}) as used:
                        got = await open_loop(pools[name], reqs, rate)
                    pauses = await srv.control("gc-pauses")
                    samples[(name, rate)].extend(got)
                    cpu[(name, rate)].append(used["server"])
                    gc_max[(name, rate)] = max(
                        gc_max[(name, rate)], *(p["max_ms"] for p in pauses.values())
                    )
                    gc2[(name, rate)] += pauses["gen2"]["count"]
                    if srv.name != "ack-baseline":
                        seen = await h.wait_posts(before + n, 30)
                        undelivered[name] += max(0, before + n - seen)
                    await asyncio.sleep(0.3)
        sec.details += [
            "Connect answers after 50 ms; search cache off (`SEARCH_CACHE_TTL=0`), so every "
            "search does the full work after its ack. Prefixes match 2-40 people (mean ≈ 7). "
            f"{o.ack_rounds} round(s) of {o.ack_seconds:.0f} s per load and app, alternating "
            "the order; latency from each request's scheduled send time to its complete answer.",
            "",
            "| app | offered load | requests | errors | p50 | p90 | p99 | max | server CPU "
            "| full GCs | longest GC |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for rate in (50, 200):
            for name, _ in variants:
                s = lat_summary(samples[(name, rate)])
                used = sum(cpu[(name, rate)]) / max(1, len(cpu[(name, rate)]))
                sec.details.append(
                    f"| {name} | {rate}/s | {s['n']} | {s['errors']} | {ms(s['p50'])} | "
                    f"{ms(s['p90'])} | {ms(s['p99'])} | {ms(s['max'])} | {used:.0%} | "
                    f"{gc2[(name, rate)]} | {gc_max[(name, rate)]:.1f} ms |"
                )
        for name, missing in undelivered.items():
            if missing:
                sec.failures.append(f"{name}: {missing} search results never reached Slack")
        for rate in (50, 200):
            base = lat_summary(samples[("bare Bolt", rate)])
            for name, _ in variants[1:]:
                s = lat_summary(samples[(name, rate)])
                r = ratio(s["p99"], base["p99"])
                errors_ok = s["errors"] == 0
                metric = f"ack p99 at {rate}/s"
                if name != "bot":
                    metric += " — prototype: " + name.removeprefix("bot, ").removesuffix(
                        " (prototype)"
                    )
                sec.rows.append(
                    Row(
                        "1 ack latency",
                        metric,
                        ms(s["p99"]),
                        ms(base["p99"]),
                        fmt_ratio(r),
                        "≤ 1.5x" if name == "bot" else "",
                        verdict(r <= 1.5 and errors_ok) if name == "bot" else "",
                    )
                )
    finally:
        for _, srv in variants:
            h.stop(srv)
    return sec


# ---------------------------------------------------------------------------------------------
# 2. burst: 100 searches at once, command -> result delivered


async def burst(h: Harness, o: Options) -> Section:
    sec = Section("2. Burst: 100 searches at once, Connect answering after 50 ms")
    h.fakes.set("connect", "latency", 0.05)
    prefixes = [p for p, _ in typical_prefixes(h.people)]
    traffic = Traffic(h, prefixes)
    variants: list[tuple[str, tuple[str, ...]]] = [("bot", ())]
    results: dict[str, tuple[list[float], list[Sample], int]] = {}
    for name, patches in variants:
        srv = await h.start(
            "burst-bot",
            "bot",
            h.bot_settings(search_cache_ttl=0),
            patches=patches,
        )
        try:
            pool = await warm_pool(srv, 100)
            before = h.post_count()
            await open_loop(pool, traffic.searches(srv, 50), 100)  # warm-up
            await h.wait_posts(before + 50, 30)
            delivered: list[float] = []
            acks: list[Sample] = []
            missing = 0
            for _ in range(o.burst_repeats):
                reqs, urls = [], []
                for _ in range(100):
                    url = traffic.url()
                    urls.append(url)
                    reqs.append(srv.request(search_body(traffic.next_prefix(), url)))
                before = h.post_count()
                got = await open_loop(pool, reqs, INF)
                await h.wait_posts(before + 100, 30)
                first: dict[str, float] = {}
                for post in h.fakes.posts(before):
                    first.setdefault(post.url, post.time)
                for url, sample in zip(urls, got, strict=True):
                    if url in first:
                        delivered.append(first[url] - sample.scheduled)
                    else:
                        missing += 1
                acks.extend(got)
                await asyncio.sleep(0.5)
            results[name] = (delivered, acks, missing)
        finally:
            h.stop(srv)
    sec.details += [
        f"{o.burst_repeats} burst(s) of 100 signed searches sent at the same instant over 100 "
        "open connections, different prefixes, search cache off. Delivered = the fake Slack "
        "received the results at the response_url; measured from the scheduled send time.",
        "",
        "| app | searches | not delivered | ack p99 | delivered p50 | p99 | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (delivered, acks, missing) in results.items():
        a = lat_summary(acks)
        sec.details.append(
            f"| {name} | {len(acks)} | {missing} | {ms(a['p99'])} | "
            f"{ms(percentile(delivered, 50))} | {ms(percentile(delivered, 99))} | "
            f"{ms(max(delivered) if delivered else math.nan)} |"
        )
        p99 = percentile(delivered, 99)
        if name == "bot":
            sec.rows.append(
                Row(
                    "2 burst",
                    "command → result delivered, p50 / p99 / max",
                    f"{ms(percentile(delivered, 50))} / {ms(p99)} / {ms(max(delivered))}",
                    target="p99 ≤ 500 ms",
                    verdict=verdict(p99 <= 0.5 and missing == 0),
                )
            )
            if missing:
                sec.failures.append(f"burst: {missing} results never reached Slack")
        else:
            sec.rows.append(Row("2 burst", "p99 — " + name.removeprefix("bot, "), ms(p99)))
    return sec


# ---------------------------------------------------------------------------------------------
# 3. capacity: round trips per second at saturation, and what dominates


async def capacity(h: Harness, o: Options) -> Section:
    sec = Section("3. Capacity: search round trips per second at saturation, Connect at 0 ms")
    h.fakes.set("connect", "latency", 0.0)
    prefixes = [p for p, _ in typical_prefixes(h.people)]
    traffic = Traffic(h, prefixes)
    secs = o.capacity_seconds
    fakes_pid = h.fakes.process.pid

    # The baseline's ack rate, closed loop.
    base = await h.start("cap-baseline", "baseline")
    base_rates: dict[int, tuple[float, dict[str, float], float]] = {}
    try:
        pool = await warm_pool(base, 64)
        await closed_loop(pool, lambda: traffic.search(base), connections=20, seconds=1)
        for conns in (20, 64):
            async with cpu_meter({"server": base.pid, "load generator": own_pid()}) as used:
                got = await closed_loop(
                    pool, lambda: traffic.search(base), connections=conns, seconds=secs
                )
            ok = [s for s in got if s.status == 200]
            base_rates[conns] = (len(ok) / used["_wall"], lat_summary(got), used)
    finally:
        h.stop(base)
    base_rate = max(r for r, _, _ in base_rates.values())
    # Server CPU per ack at the busiest load: robust to other processes taking CPU time away.
    base_cpu = min(u["server"] / r for r, _, u in base_rates.values() if r)

    async def round_trips(srv: Server, seconds: float, window: int = 64) -> dict[str, float]:
        pool = await warm_pool(srv, window)
        start_index = h.post_count()
        warm, _ = await windowed(
            pool, lambda: traffic.search(srv), h.post_count, window=window, seconds=1.5
        )
        await h.wait_posts(start_index + warm, 30)  # start from an empty pipeline
        start_index = h.post_count()
        t_start = time.time()
        async with cpu_meter(
            {"server": srv.pid, "fakes": fakes_pid, "load generator": own_pid()}
        ) as used:
            sent, acks = await windowed(
                pool, lambda: traffic.search(srv), h.post_count, window=window, seconds=seconds
            )
        t_end = t_start + used["_wall"]
        posts = [p for p in h.fakes.posts(start_index) if t_start <= p.time <= t_end]
        await h.wait_posts(start_index + sent, 30)
        pool.close()
        rate = len(posts) / (t_end - t_start)
        return {
            "rate": rate,
            "cpu_per_op": used["server"] / rate if rate else math.nan,
            "ack_p99": lat_summary(acks)["p99"],
            **{f"cpu {k}": v for k, v in used.items() if not k.startswith("_")},
        }

    measured: dict[str, dict[str, float]] = {}
    profiles: list[tuple[str, list[str]]] = []
    variants: list[tuple[str, tuple[str, ...]]] = [("bot", ())]
    for name, patches in variants:
        srv = await h.start(
            "cap-bot",
            "bot",
            h.bot_settings(search_cache_ttl=0),
            patches=patches,
        )
        try:
            measured[name] = await round_trips(srv, secs)
            if o.profile and name == "bot":
                profiles.append((name, await _profile(h, o, srv, round_trips, keep=True)))
        finally:
            h.stop(srv)

    sec.details += [
        "Bare Bolt: closed loop, N connections sending back to back, acks per second. Bot: 64 "
        "searches kept in flight (a new one is sent as soon as the fake Slack has received a "
        "result), results received per second; search cache off, Connect answering at once.",
        "",
        "| app | load | rate | ack p99 | server CPU | server CPU per op | one core's worth "
        "| CPU: fakes | load generator |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for conns, (rate, s, used) in base_rates.items():
        per = used["server"] / rate if rate else math.nan
        sec.details.append(
            f"| bare Bolt | {conns} connections | {rate:,.0f} acks/s | {ms(s['p99'])} | "
            f"{used['server']:.0%} | {ms(per)} | {1 / per:,.0f}/s | - | "
            f"{used['load generator']:.0%} |"
        )
    for name, m in measured.items():
        sec.details.append(
            f"| {name} | 64 in flight | {m['rate']:,.0f} round trips/s | {ms(m['ack_p99'])} | "
            f"{m['cpu server']:.0%} | {ms(m['cpu_per_op'])} | {1 / m['cpu_per_op']:,.0f}/s | "
            f"{m['cpu fakes']:.0%} | {m['cpu load generator']:.0%} |"
        )
    sec.details += [
        "",
        "Server CPU near 100% means the server (one Python process, one core) is the bottleneck, "
        "not the fakes or the load generator. *Server CPU per op* is the server's CPU time per "
        "ack (bare Bolt) or per complete search round trip (bot); *one core's worth* is its "
        "inverse, the rate a whole core would sustain. Those two hold even when other processes "
        "take CPU time away during the run, so the CPU-normalised ratio is the one to compare "
        "across machines and runs.",
    ]
    bot = measured["bot"]
    bot_rate = bot["rate"]
    sec.rows += [
        Row(
            "3 capacity",
            "search round trips/s (bot) vs acks/s (bare Bolt), measured",
            f"{bot_rate:,.0f}/s",
            f"{base_rate:,.0f}/s",
            fmt_ratio(ratio(bot_rate, base_rate)),
            "report",
        ),
        Row(
            "3 capacity",
            "server CPU per round trip vs per ack (ratio = bare Bolt / bot)",
            ms(bot["cpu_per_op"]),
            ms(base_cpu),
            fmt_ratio(ratio(base_cpu, bot["cpu_per_op"])),
            "report",
        ),
    ]
    for name, m in measured.items():
        if name != "bot":
            sec.rows.append(
                Row(
                    "3 capacity",
                    "server CPU per round trip — prototype: " + name,
                    ms(m["cpu_per_op"]),
                    ms(base_cpu),
                    fmt_ratio(ratio(base_cpu, m["cpu_per_op"])),
                    f"{ratio(bot['cpu_per_op'], m['cpu_per_op']):.2f}x the bot's capacity",
                )
            )
    for name, lines in profiles:
        title = "the bot" if name == "bot" else f"the bot with {name}"
        sec.details += ["", f"**Profile of {title} at saturation (py-spy):**", "", *lines]
    return sec


PROTOTYPES = {"process-before-response": "process_before_response=True"}


async def _profile(
    h: Harness, o: Options, srv: Server, round_trips: Callable[..., object], *, keep: bool
) -> list[str]:
    """py-spy on the server while it runs at saturation; the top items as Markdown lines."""
    if spy.py_spy() is None:
        return ["py-spy is not installed (`.venv/bin/pip install py-spy`): no profile."]
    out = o.workdir / f"{srv.name}.pyspy.txt"
    seconds = 4 if o.quick else 8
    proc = spy.start_py_spy(srv.pid, seconds, out, h.placement.load)
    await asyncio.sleep(0.3)
    await round_trips(srv, seconds)  # type: ignore[misc]
    try:
        _, err = await asyncio.to_thread(proc.communicate, timeout=seconds + 30)
    except Exception:
        proc.kill()
        err = b""
    if not out.exists():
        return [f"py-spy produced no profile: {err.decode(errors='replace')[-500:]}"]
    if keep:  # raw py-spy stacks, for a closer look (bench/*.prof is git-ignored)
        Path(__file__).with_name(f"{srv.name}.prof").write_text(out.read_text())
    return spy.summary(spy.parse(out))


# ---------------------------------------------------------------------------------------------
# 4. cache and single-flight


async def cache(h: Harness, o: Options) -> Section:
    sec = Section("4. Search cache and single-flight (`SEARCH_CACHE_TTL=30`)")
    pool_prefixes = [p for p, _ in typical_prefixes(h.people, seed=99)]
    traffic = Traffic(h, pool_prefixes)

    def remote() -> int:
        return h.fakes.connect("count", "GET", "v1/users/remote")

    srv = await h.start("cache-bot", "bot", h.bot_settings(search_cache_ttl=30))
    try:
        pool = await warm_pool(srv, 50)
        h.fakes.set("connect", "latency", 0.05)
        # a. the same search twice within the TTL
        prefix = pool_prefixes[0]
        c0 = remote()
        before = h.post_count()
        await open_loop(pool, [traffic.search(srv, prefix)], 1)
        await h.wait_posts(before + 1, 10)
        c1 = remote()
        await open_loop(pool, [traffic.search(srv, prefix)], 1)
        await h.wait_posts(before + 2, 10)
        c2 = remote()
        first_calls, repeat_calls = c1 - c0, c2 - c1
        # b. 50 identical searches at once, Connect slow enough that they overlap
        h.fakes.set("connect", "latency", 0.2)
        prefix = pool_prefixes[1]
        before, c0 = h.post_count(), remote()
        await open_loop(pool, [traffic.search(srv, prefix) for _ in range(50)], INF)
        delivered = await h.wait_posts(before + 50, 20) - before
        concurrent_calls = remote() - c0
        # c. Zipf mix over 200 prefixes not searched yet
        h.fakes.set("connect", "latency", 0.05)
        zipf_pool = pool_prefixes[2:202]
        z = Zipf(len(zipf_pool), 1.0, seed=5)
        chosen = [zipf_pool[z.sample()] for _ in range(o.zipf_searches)]
        before, c0 = h.post_count(), remote()
        t0 = time.monotonic()
        await open_loop(pool, [traffic.search(srv, p) for p in chosen], 100)
        zipf_delivered = await h.wait_posts(before + len(chosen), 30) - before
        zipf_seconds = time.monotonic() - t0
        zipf_calls = remote() - c0
    finally:
        h.stop(srv)
    distinct = len(set(chosen))
    per_1000 = zipf_calls * 1000 / len(chosen)
    ok_a = first_calls == 1 and repeat_calls == 0
    ok_b = concurrent_calls == 1 and delivered == 50
    ok_c = zipf_calls == distinct and zipf_delivered == len(chosen)
    sec.rows += [
        Row(
            "4 cache",
            "Connect calls for a repeated search within the TTL",
            str(repeat_calls),
            target="0",
            verdict=verdict(ok_a),
        ),
        Row(
            "4 cache",
            "Connect calls for 50 concurrent identical searches",
            str(concurrent_calls),
            target="1",
            verdict=verdict(ok_b),
        ),
        Row(
            "4 cache",
            "Connect calls per 1,000 searches, Zipf(s=1) over 200 prefixes",
            f"{per_1000:.0f}",
            target=f"= distinct prefixes ({distinct * 1000 / len(chosen):.0f})",
            verdict=verdict(ok_c),
        ),
    ]
    sec.details += [
        f"a. First search of a prefix: {first_calls} Connect call(s); the same search again: "
        f"{repeat_calls}.",
        f"b. 50 identical searches sent at once, Connect answering after 200 ms: "
        f"{concurrent_calls} Connect call(s), {delivered}/50 results delivered.",
        f"c. {len(chosen)} searches at 100/s ({zipf_seconds:.1f} s, shorter than the TTL) drawn "
        f"from 200 prefixes with P(rank k) ∝ 1/k: {distinct} distinct prefixes, {zipf_calls} "
        f"Connect calls ({per_1000:.0f} per 1,000 searches); the floor is one call per "
        "distinct prefix per TTL, so equality means no duplicate call slipped through. "
        f"{zipf_delivered}/{len(chosen)} results delivered.",
    ]
    if not ok_a:
        sec.failures.append(f"cache: repeated search made {repeat_calls} Connect call(s)")
    if not ok_b:
        sec.failures.append(f"single-flight: 50 concurrent searches made {concurrent_calls} calls")
    if not ok_c:
        sec.failures.append(f"zipf: {zipf_calls} Connect calls for {distinct} distinct prefixes")
    return sec


# ---------------------------------------------------------------------------------------------
# 5. approvals


@asynccontextmanager
async def postgres_schema(admin_url: str) -> AsyncIterator[str]:
    """A throwaway schema, as tests/support/store_backends.py makes them; yields its URL."""
    from bot.store.database import create_engine
    from bot.store.urls import normalize_database_url

    admin_url = normalize_database_url(admin_url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, poolclass=NullPool, connect_args={"timeout": 5})
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(admin_url).update_query_dict({"search_path": schema})
        yield url.render_as_string(hide_password=False)
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def approvals(h: Harness, o: Options) -> Section:
    sec = Section(f"5. Approvals: {o.approvals} requests, 3 concurrent clicks each")
    h.fakes.set("connect", "latency", 0.0)
    runs: list[tuple[str, tuple[str, ...]]] = [("sqlite", ()), ("postgres", ())]
    for backend, patches in runs:
        try:
            if backend == "sqlite":
                url = f"sqlite:///{o.workdir / f'approvals-{len(patches)}.db'}"
                await _approvals_on(h, o, sec, backend, url, patches)
            else:
                async with postgres_schema(o.postgres_url) as url:
                    await _approvals_on(h, o, sec, backend, url, patches)
        except Exception as exc:  # e.g. PostgreSQL unreachable: report, go on
            sec.rows.append(
                Row("5 approvals", f"{backend}: not run", f"{type(exc).__name__}: {exc}"[:200])
            )
            sec.failures.append(f"approvals on {backend} could not run: {exc}")
    return sec


# Each approval creates the account, then sets the role Connect did not give (two steps); no
# look-up is needed when nothing fails.
ROLE = "publisher"
CONNECT_CALLS = {
    "create": ("PUT", "v1/users"),
    "role": ("PUT", "v1/users/[0-9a-f]*"),
    "look": ("GET", "v1/users/[0-9a-f]*"),
}


async def _approvals_on(
    h: Harness,
    o: Options,
    sec: Section,
    backend: str,
    url: str,
    patches: tuple[str, ...] = (),
) -> None:
    from bot.store.database import create_engine
    from bot.store.sql_store import SqlRequestStore
    from bot.store.tables import provisioning_requests as requests_table
    from bot.workflow.models import NewRequest, OutboxItem, OutboxKind, Person
    from bot.workflow.states import RequestState

    n = o.approvals
    people = [f"apv{backend[:2]}{uuid.uuid4().hex[:6]}{i:04d}" for i in range(n)]
    h.fakes.host("seed_directory", [(u, "Apv", f"Person{i}") for i, u in enumerate(people)])
    label = backend if not patches else f"{backend}, prototype: {', '.join(patches)}"
    srv = await h.start(
        f"approvals-{backend}{'-fixed' if patches else ''}",
        "bot",
        h.bot_settings(database_url=url),
        patches=patches,
    )
    engine = create_engine(url)
    store = SqlRequestStore(engine)

    async def count(where: sa.ColumnElement[bool]) -> int:
        async with engine.connect() as conn:
            q = sa.select(sa.func.count()).select_from(requests_table).where(where)
            return (await conn.execute(q)).scalar_one()

    async def wait_for(what: Callable[[], object], want: int, within: float) -> int:
        deadline = time.monotonic() + within
        while True:
            got = await what()  # type: ignore[misc]
            if got >= want or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.1)

    try:
        ids: list[str] = []
        for i, username in enumerate(people):
            ticket = h.fakes.connect("issue_ticket", username)
            request = await store.create(
                NewRequest(
                    request_id=secrets.token_hex(8),
                    requester_id=REQUESTER,
                    person=Person(username, f"Apv Person{i}", f"{username}@example.com", ticket),
                    justification="benchmark",
                    created_at=datetime.now(UTC),
                    # Connect's default role is viewer: each approval is two steps, the account
                    # and then its role.
                    role_asked=ROLE,
                ),
                outbox=[OutboxItem(OutboxKind.POST_CARD)],
            )
            ids.append(request.id)
        in_ids = requests_table.c.id.in_(ids)
        cards = await wait_for(
            lambda: count(sa.and_(in_ids, requests_table.c.card_ts.is_not(None))), n, 90
        )
        if cards < n:
            raise RuntimeError(f"only {cards}/{n} approval cards were posted")
        card_ts = {}
        for request_id in ids:
            request = await store.get(request_id)
            assert request is not None and request.card_ts
            card_ts[request_id] = request.card_ts
        ts_to_id = {ts: rid for rid, ts in card_ts.items()}
        calls0 = {name: h.fakes.connect("count", *call) for name, call in CONNECT_CALLS.items()}
        updates0 = len(h.fakes.host("slack_calls", "chat.update"))
        clicks: list[bytes] = []
        for request_id in ids:
            for approver in APPROVERS:
                # The confirmation's submission approves a request that sets a role.
                body = approve_role_body(request_id, approver, _url(h), ROLE)
                clicks.append(srv.request(body))
        pool = await warm_pool(srv, 64, max_connections=100)
        t0 = time.time()
        async with cpu_meter({"server": srv.pid}) as used:
            acks = await open_loop(pool, clicks, INF, give_up_after=60)
            approved = await wait_for(
                lambda: count(
                    sa.and_(in_ids, requests_table.c.state == RequestState.APPROVED.value)
                ),
                n,
                120,
            )
            await wait_for(lambda: _drained(store), 1, 60)
        await asyncio.sleep(0.5)  # any duplicate PUT would show up by now
        calls = {
            name: h.fakes.connect("count", *call) - calls0[name]
            for name, call in CONNECT_CALLS.items()
        }
        puts = calls["create"]
        updates = h.fakes.host("slack_calls", "chat.update", ("ts", "text"))[updates0:]
        shown: dict[str, float] = {}
        for t, ok, ts, text in updates:
            if ok and ts in ts_to_id and str(text or "").endswith(": approved"):
                shown.setdefault(ts_to_id[ts], t)
        start = {rid: t0 for rid in ids}
        for sample, rid in zip(
            acks, itertools.chain.from_iterable([r] * 3 for r in ids), strict=False
        ):
            start[rid] = min(start[rid], sample.scheduled)
        latencies = [shown[rid] - start[rid] for rid in ids if rid in shown]
        span = (max(shown.values()) - t0) if shown else math.nan
        rate = len(shown) / span if shown else 0.0
    finally:
        h.stop(srv)
        await engine.dispose()
    a = lat_summary(acks)
    expected = {"create": n, "role": n, "look": 0}
    exact = calls == expected and approved == n
    sec.rows += [
        Row(
            "5 approvals",
            f"{label}: approvals/s; click → card shows approved p99",
            f"{rate:,.1f}/s; {ms(percentile(latencies, 99))}",
            target="report",
        ),
        Row(
            "5 approvals",
            f"{label}: Connect calls for {n} requests for {ROLE} x 3 confirmations",
            f"{calls['create']} PUT /v1/users, {calls['role']} PUT /v1/users/{{guid}}, "
            f"{calls['look']} GET /v1/users/{{guid}}; {approved} approved",
            target=f"exactly {n}, {n}, 0",
            verdict=verdict(exact),
        ),
    ]
    sec.details += [
        f"**{label}**: {len(clicks)} signed approval confirmations for {ROLE} "
        f"({len(APPROVERS)} approvers per request) sent at the same instant over up to 100 "
        f"connections; ack p99 {ms(a['p99'])}, "
        f"{a['errors']} errors. All {n} cards showed *approved* after {ms(span)}: "
        f"{rate:,.1f} approvals/s. Click → chat.update showing *approved*: "
        f"p50 {ms(percentile(latencies, 50))}, p99 {ms(percentile(latencies, 99))}, "
        f"max {ms(max(latencies) if latencies else math.nan)} "
        f"({len(latencies)}/{n} cards seen). Connect: {puts} account PUTs, {calls['role']} role "
        f"PUTs, {calls['look']} account look-ups. From the clicks until every "
        f"owed message was delivered the server was {used['server']:.0%} busy: "
        f"{ms(used['server'] * used['_wall'] / n)} of CPU per approval.",
        "",
    ]
    if not exact:
        sec.failures.append(
            f"approvals on {label}: Connect calls {calls} (expected {expected}) and {approved} "
            f"approved of {n}"
        )
    if len(latencies) < n:
        sec.failures.append(f"approvals on {label}: only {len(latencies)}/{n} cards updated")


async def _drained(store: object) -> int:
    return 0 if await store.outbox_pending_count() else 1  # type: ignore[attr-defined]


def _url(h: Harness) -> str:
    return h.fakes.new_response_url(secrets.token_hex(12))


# ---------------------------------------------------------------------------------------------
# 6. memory


async def memory(h: Harness, o: Options) -> Section:
    n = o.memory_requests
    sec = Section(f"6. Memory: server RSS over {n:,} mixed requests")
    h.fakes.set("connect", "latency", 0.0)
    users = [f"UMEM{i:04d}" for i in range(300)]
    h.add_requesters(users)
    prefixes = many_prefixes(h.people)
    rng = random.Random(3)
    traffic = Traffic(h, prefixes)
    ttl = 30
    srv = await h.start("memory-bot", "bot", h.bot_settings(search_cache_ttl=ttl))
    mix: Iterator[str] = itertools.cycle(prefixes)
    kinds: dict[str, int] = defaultdict(int)

    def one() -> bytes:
        r = rng.random()
        url = traffic.url()
        if r < 0.80:
            kinds["search"] += 1
            return srv.request(search_body(next(mix), url, rng.choice(users)))
        if r < 0.88:
            kinds["help"] += 1
            return srv.request(help_body(url, rng.choice(users)))
        if r < 0.95:
            kinds["approve click, unknown request"] += 1
            body = approve_body(secrets.token_hex(8), rng.choice(APPROVERS), url)
            return srv.request(body)
        kinds["search by a guest (refused)"] += 1
        return srv.request(search_body(next(mix), url, GUEST))

    def limited(count: int) -> Callable[[], bytes | None]:
        left = iter(range(count))
        return lambda: one() if next(left, None) is not None else None

    points: list[tuple[str, float, dict[str, object]]] = []
    try:
        points.append(("after start", srv.rss_mb(), await srv.control("stats")))
        pool = await warm_pool(srv, 32)
        before = h.post_count()
        sent, _ = await windowed(pool, limited(500), h.post_count, window=32, seconds=60)
        await h.wait_posts(before + sent, 30)
        points.append(("after 500 warm-up requests", srv.rss_mb(), await srv.control("stats")))
        kinds.clear()
        before = h.post_count()
        t0 = time.monotonic()
        sent, acks = await windowed(
            pool, limited(n), h.post_count, window=32, seconds=120 if o.quick else 300
        )
        elapsed = time.monotonic() - t0
        delivered = await h.wait_posts(before + sent, 60) - before
        points.append((f"after {sent:,} more requests", srv.rss_mb(), await srv.control("stats")))
        if not o.quick:
            await asyncio.sleep(ttl + 3)
            stats = await srv.control("gc")
            points.append((f"{ttl + 3} s later (cache TTL passed), after gc", srv.rss_mb(), stats))
    finally:
        h.stop(srv)
    start_rss = points[0][1]
    after_rss = points[2][1]
    growth = after_rss - start_rss
    growth_warm = after_rss - points[1][1]
    sec.rows.append(
        Row(
            "6 memory",
            f"RSS growth over {sent:,} mixed requests (from start; from warm-up)",
            f"{growth:+.1f} MB; {growth_warm:+.1f} MB",
            target="≤ 20 MB",
            verdict=verdict(growth <= 20 and sent == n),
        )
    )
    mix_text = ", ".join(f"{v:,} {k}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    ack_stats = lat_summary(acks)
    sec.details += [
        f"{sent:,} requests ({mix_text}) in {elapsed:.0f} s with 32 in flight, "
        f"{ack_stats['errors']} ack errors, "
        f"{delivered:,} answers delivered to their response_url (an answer that is not was "
        "either never sent or sent as an ephemeral message/DM after the response_url failed: "
        f"see the server log below), ack p99 {ms(ack_stats['p99'])}. Searches "
        f"cycle through {len(prefixes):,} distinct prefixes (every 2-7 letter prefix of every "
        "name, and strings that match nobody) from 300 different users; search cache TTL "
        f"{ttl} s, Connect answering at once.",
        "",
        "| when | RSS | search cache entries | asyncio tasks | gc objects |",
        "|---|---|---|---|---|",
    ]
    for label, rss, stats in points:
        sec.details.append(
            f"| {label} | {rss:.1f} MB | {stats.get('cache_entries', 'n/a')} | "
            f"{stats.get('asyncio_tasks', 'n/a')} | {stats.get('gc_objects', 'n/a')} |"
        )
    return sec


SCENARIOS = {
    "ack": ack_latency,
    "burst": burst,
    "capacity": capacity,
    "cache": cache,
    "approvals": approvals,
    "memory": memory,
}
