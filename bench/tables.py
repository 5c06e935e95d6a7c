"""The in-process results as Markdown tables (printed as they are made)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import growth as growth_scan
from bench import report, turns
from bench.itemsize import MAX_ITEM_BYTES, MOTO_MAX_ITEM_BYTES, self_check

if TYPE_CHECKING:
    from bench.inprocess import Plan, Results


def _cell(row: turns.Row, point: int) -> str:
    samples = [s.client for s in row.samples.get(point, [])]
    if not samples:
        return f"fails at turn {row.failed_at}" if row.failed_at else "–"
    return f"{report.ms(report.median(samples))} / {report.ms(report.percentile(samples, 0.95))}"


def _median(row: turns.Row, point: int, what: str = "client") -> float:
    return report.median([getattr(s, what) for s in row.samples.get(point, [])])


def per_turn(rows: list[turns.Row], plan: Plan) -> str:
    ours = rows[0]
    header = ["contender", *(f"turn {p}: ms median / p95" for p in plan.points),
              "× ours (median) at " + " / ".join(str(p) for p in plan.points)]
    body = []
    for row in rows:
        ratios = " / ".join(report.ratio(_median(row, p), _median(ours, p)) for p in plan.points)
        body.append([row.name, *(_cell(row, p) for p in plan.points), ratios])
    return report.table(
        f"Per-turn overhead: client time, moto excluded ({plan.chars}-character messages, "
        f"{plan.samples} turns per point)", header, body,
        [("Client time = the turn's wall time minus the time spent inside moto's emulated AWS (bench/meter.py): "
         "what the caller pays on real DynamoDB, before network latency.")])


def calls(rows: list[turns.Row], plan: Plan) -> str:
    header = ["contender", "moto ms (median) at " + " / ".join(str(p) for p in plan.points),
              "total ms (median)", "DynamoDB calls per turn", "S3 calls per turn"]
    body = []
    for row in rows:
        moto = " / ".join(report.ms(_median(row, p, "moto")) for p in plan.points)
        total = " / ".join(report.ms(_median(row, p, "seconds")) for p in plan.points)
        calls = " / ".join(report.spread([s.dynamodb for s in row.samples.get(p, [])]) for p in plan.points)
        s3 = " / ".join(report.spread([s.s3 for s in row.samples.get(p, [])]) for p in plan.points)
        body.append([row.name, moto, total, calls, s3])
    return report.table(
        "Per-turn: time inside moto, total time, and AWS calls per turn (at each point, min-max over its turns)",
        header, body)


def _failure(failure: growth_scan.Failure) -> str:
    if failure.documented is None:
        return f"not within {failure.checked_to:,} turns"
    stock = f"stock moto: {failure.stock}" if failure.stock else f"stock moto: after {failure.checked_to}"
    silent = ", reply returned but not stored" if failure.silent else ""
    return f"{failure.documented} ({stock}){silent}"


def growth(results: Results, plan: Plan) -> str:
    ours, graph = results.ours, results.graph
    header = ["contender", *(f"after {n:,} turns" for n in plan.growth), "largest item",
              f"fails at turn ({plan.chars}-char)", f"fails at turn ({plan.big_chars // 1024} KB)"]
    real, replayed = ours.real_turns, ours.replayed_to
    checked = f"{real:,} real turns" + (f", memory replayed to {replayed:,}" if replayed > real else "")
    never = f"never ({checked})" if ours.failed_at is None else f"FAILED at {ours.failed_at}"
    never_big = (f"never (checked to turn {ours.big_turns:,}; largest item {report.size(ours.big_largest)})"
                 if ours.big_failed_at is None else f"FAILED at {ours.big_failed_at}")
    body: list[list[object]] = [[results.rows[0].name, *(report.size(ours.at.get(n)) for n in plan.growth),
                                 report.size(ours.largest), never, never_big]]
    graph_names = (graph.default.name, graph.exit.name)
    for name, stored in zip(graph_names, (graph.stored_default, graph.stored_exit), strict=True):
        cells = []
        for n in plan.growth:
            if n in stored:
                cells.append(report.size(stored[n]))
            elif len(stored) >= 3:
                cells.append("≈ " + report.size(growth_scan.quadratic(stored, n)) + " (extrapolated)")
            else:
                cells.append("–")
        offload = graph.first_offload.get("exit" if name.endswith("exit)") else "None")
        where = f"payloads to S3, first seen at turn {offload}" if offload else "no S3 write seen"
        status = "FAILED" if graph.refused else f"never ({where})"
        big_where = (f"payloads to S3 from turn {results.big_offload}" if results.big_offload
                     else "no S3 write seen")
        big = ("FAILED" if results.big_refused else
               f"never (checked to turn {plan.langgraph_big_turns}, exit durability; {big_where})")
        body.append([name, *cells, "≤ 350 KB (payloads over it go to S3)", status, big])
    for name, failure in results.failures.items():
        cells = [report.size(failure.stored[n]) if n in failure.stored else
                 (f"fails at {failure.documented}" if failure.documented and n >= failure.documented else "–")
                 for n in plan.growth]
        body.append([name, *cells, "400 KB (the limit)", _failure(failure), _failure(results.big_failures[name])])
    check = ours.replay_check
    return report.table(
        "Session growth and DynamoDB's 400 KB item limit", header, body,
        [("Stored = every item of the session by DynamoDB's documented size rules (bench/itemsize.py), plus S3 "
         "objects for LangGraph. 'fails at turn N': moto, enforcing the documented rules (409,600 bytes), "
         "refused turn N's write; 'stock moto' is where moto's own accounting (405,000 bytes) would have "
         "refused it."),
         (f"Ours beyond turn {real:,}: the chat turn's memory calls alone (memory_codec.load, "
          f"memory.remember) on the same turns' messages. Check: replayed from turn {check[0]:,} to "
          f"{check[1]:,}, the item is {check[3]:,} bytes; after the real turns, {check[2]:,} bytes."),
         "LangGraph's extrapolated figures: the quadratic through its last three measured points."])


def item_sizes(results: Results, plan: Plan) -> str:
    body: list[list[object]] = [[what, f"{documented:,}", f"{moto:,}", f"{moto - documented:+,}"]
                                for what, documented, moto in self_check()]
    for label, found in (("", results.failures), (f" ({plan.big_chars // 1024} KB)", results.big_failures)):
        for name, failure in found.items():
            if failure.refused_sizes:
                documented, moto = failure.refused_sizes
                body.append([f"{name}{label}: the item refused at turn {failure.documented}",
                             f"{documented:,}", f"{moto:,}", f"{moto - documented:+,}"])
    notes = [(f"Limits: DynamoDB {MAX_ITEM_BYTES:,} bytes (400 KB, names included); "
              f"stock moto {MOTO_MAX_ITEM_BYTES:,}. "
             "moto counts numbers by their decimal string and lists/maps without their 3 + 1-per-element bytes, "
             "so it under-counts message lists and refuses slightly smaller binary/string items than DynamoDB "
             "would.")]
    for name, (real, simulated) in results.checks.items():
        verdict = "equal" if real == simulated else f"DIFFER by {simulated - real:+,} bytes"
        notes.append(f"Fast-forward check, {name}: after {plan.check_turns} real turns the item is {real:,} bytes; "
                     f"simulated, {simulated:,} ({verdict}).")
    return report.table("moto's item-size accounting vs DynamoDB's documented rules (bytes)",
                        ["item", "documented rules", "moto 5.2", "moto - documented"], body, notes)
