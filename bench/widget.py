"""The chat widget's size: what a page downloads (`openbrain/web/widget.js`, docs/widget.md), against its budget."""

from __future__ import annotations

import gzip

from bench import report

BUDGET_GZIPPED = 15 * 1024  # issue 14: at most 15 KB gzipped


def sizes() -> str:
    from openbrain.web import widget

    body = widget().body
    gzipped = len(gzip.compress(body, compresslevel=9))
    return report.table(
        "Widget size (openbrain/web/widget.js)", ["file", "bytes", "gzip -9", "budget (gzipped)"],
        [["widget.js", f"{len(body):,}", f"{gzipped:,}", f"{BUDGET_GZIPPED:,} ({gzipped / BUDGET_GZIPPED:.0%} used)"]])
