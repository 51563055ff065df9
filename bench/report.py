"""The summary table (terminal and Markdown) and bench/results.md."""

from __future__ import annotations

from collections.abc import Sequence

from bench.harness import Row, Section

HEADERS = ("benchmark", "metric", "bot", "bare Bolt", "ratio", "target", "result")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.benchmark, row.metric, row.bot, row.baseline, row.ratio, row.target, row.verdict)


def text_table(rows: Sequence[Row]) -> str:
    data = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in data) for i in range(len(HEADERS))]
    out = []
    for n, line in enumerate(data):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def markdown(
    *,
    sections: Sequence[Section],
    header: Sequence[str],
    machine: dict[str, str],
    notes: Sequence[str],
) -> str:
    rows = [row for s in sections for row in s.rows]
    out = ["# Benchmark results", "", *header, "", "## Machine", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in machine.items()]
    out += ["", *notes, "", "## Summary", "", markdown_table(rows), ""]
    failures = [f for s in sections for f in s.failures]
    if failures:
        out += ["**Correctness failures:**", "", *(f"- {f}" for f in failures), ""]
    for section in sections:
        out += [f"## {section.title}", "", *section.details, ""]
    return "\n".join(out).rstrip() + "\n"
