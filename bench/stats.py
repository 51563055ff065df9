"""Percentiles and small formatting helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of finite values; nan if there are none."""
    data = sorted(v for v in values if math.isfinite(v))
    if not data:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(data)))
    return data[min(rank, len(data)) - 1]


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    if seconds >= 10:
        return f"{seconds * 1000:,.0f} ms"
    return f"{seconds * 1000:.1f} ms"


def ratio(a: float, b: float) -> float:
    if not b or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b


def fmt_ratio(r: float) -> str:
    return "n/a" if math.isnan(r) else f"{r:.2f}x"


def verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[ok]
