"""Statistics and Markdown tables (printed as they are made, so the output pastes into docs/benchmarks.md)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ms(seconds: float, digits: int = 1) -> str:
    return "–" if math.isnan(seconds) else f"{seconds * 1000:.{digits}f}"


def ratio(value: float, ours: float) -> str:
    if math.isnan(value) or math.isnan(ours) or ours <= 0:
        return "–"
    return f"{value / ours:.1f}×"


def size(n: float | None) -> str:
    """Bytes as B / KB / MB (1 KB = 1,024 bytes, as DynamoDB counts its 400 KB)."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "–"
    if n < 1024:
        return f"{n:.0f} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    if n < 1024 ** 3:
        return f"{n / 1024 / 1024:.1f} MB"
    return f"{n / 1024 ** 3:,.1f} GB"


def spread(values: Sequence[int]) -> str:
    """"3" when all are equal, else "min-max" (with an en dash)."""
    if not values:
        return "–"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str] = ()) -> str:
    """A titled Markdown table, printed and returned."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    for note in notes:  # each its own paragraph
        lines += ["", note]
    lines.append("")
    text = "\n".join(lines)
    print(text, flush=True)
    return text
