"""Results 1 and 2, in one process on one moto: per-turn overhead, session growth and the item limit."""

from __future__ import annotations

import gc
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field

from bench import growth, tables, turns
from bench.contenders import LangGraphCheckpoints, MessageHistory, Ours, PickledMemory
from bench.itemsize import documented_limit
from bench.meter import metering
from bench.script import ScriptedChatModel, user_message


class Sizes:
    """`on_turn` callback: the session item's size after every turn, kept at some turns, and the largest;
    and the stored session itself at `snapshot_at` (to replay from)."""

    def __init__(self, contender: Ours, keep: tuple[int, ...], snapshot_at: int = 0) -> None:
        self.contender, self.keep, self.snapshot_at = contender, set(keep), snapshot_at
        self.at: dict[int, int] = {}
        self.largest = 0
        self.snapshot: object = None

    def __call__(self, turn: int, session: str) -> None:
        size = self.contender.stored(session).largest_item
        self.largest = max(self.largest, size)
        if turn in self.keep:
            self.at[turn] = size
        if turn == self.snapshot_at:
            self.snapshot = self.contender.snapshot(session)


@dataclass(frozen=True)
class Plan:
    samples: int  # timed turns per point
    points: tuple[int, ...]  # the turns timed
    growth: tuple[int, ...]  # stored bytes after these many turns
    ours_real_turns: int  # ours runs real turns this far; later growth points replay its memory code
    replay_check_from: int  # ... checked by replaying from this turn to ours_real_turns
    langgraph_default_turns: int  # length of LangGraph's default-durability thread
    ours_big_turns: int  # ours with 4 KB messages
    langgraph_big_turns: int  # LangGraph (exit) with 4 KB messages
    scan_cap: int  # single-item peers: give up looking for a failure after this many turns
    check_turns: int  # simulated vs real items after this many turns
    chars: int = 200
    big_chars: int = 4096


FULL = Plan(samples=20, points=(1, 50, 500), growth=(10, 100, 1_000, 10_000), ours_real_turns=1_000,
            replay_check_from=500, langgraph_default_turns=100, ours_big_turns=200, langgraph_big_turns=60,
            scan_cap=5_000, check_turns=10)
QUICK = Plan(samples=3, points=(1, 5, 20), growth=(10, 30, 60), ours_real_turns=30, replay_check_from=10,
             langgraph_default_turns=30, ours_big_turns=20, langgraph_big_turns=5, scan_cap=1_000, check_turns=4)


class Progress:
    """One line on stderr per step, with its duration (the tables go to stdout)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def __call__(self, what: str) -> None:
        now = time.perf_counter()
        print(f"[bench] {what}: {now - self.last:.0f} s", file=sys.stderr, flush=True)
        self.last = now


def quiet() -> None:
    """The peers' deprecation warnings and RunnableWithMessageHistory's logged (swallowed) write errors
    would flood the tables; what they say is reported in the tables instead."""
    from langchain_core._api.deprecation import LangChainDeprecationWarning

    warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("langchain_core.callbacks.manager").setLevel(logging.CRITICAL)


@dataclass
class OursGrowth:
    """Ours in the growth table: item sizes at the growth points, the largest, how far it ran, and the
    replay check (from turn, to turn, real bytes, replayed bytes)."""

    at: dict[int, int]
    largest: int
    real_turns: int
    replayed_to: int
    failed_at: int | None
    replay_check: tuple[int, int, int, int]
    big_largest: int = 0
    big_turns: int = 0
    big_failed_at: int | None = None


@dataclass
class Results:
    rows: list[turns.Row]
    ours: OursGrowth
    graph: turns.LangGraphRun
    failures: dict[str, growth.Failure] = field(default_factory=dict)
    big_failures: dict[str, growth.Failure] = field(default_factory=dict)
    checks: dict[str, tuple[int, int]] = field(default_factory=dict)
    big_offload: int | None = None
    big_refused: bool = False


def run(plan: Plan) -> list[str]:
    """Every in-process measurement, then the tables (printed, and returned)."""
    quiet()
    progress = Progress()
    with metering(), documented_limit():
        ours = Ours(ScriptedChatModel(reply_chars=plan.chars))
        try:
            results = _measure(plan, ours, progress)
        finally:
            ours.close()
    return [tables.per_turn(results.rows, plan), tables.calls(results.rows, plan), tables.growth(results, plan),
            tables.item_sizes(results, plan)]


def _ours(plan: Plan, ours: Ours, progress: Progress) -> tuple[turns.Row, OursGrowth]:
    """Real turns (timed at the points, every item sized), then the memory replayed to the last growth point."""
    k, chars, last = plan.samples, plan.chars, max(plan.growth)
    row = turns.Row(ours.name)
    turns.warm_up(ours, chars)
    turns.first_turns(ours, row, k, chars)
    sizes = Sizes(ours, plan.growth, snapshot_at=plan.replay_check_from)
    real_until = min(last, plan.ours_real_turns)
    session, reached = turns.real_session(ours, row, plan.points, k, chars, sizes, until=real_until)
    progress(f"ours, {reached:,} real turns")
    assert session is not None
    replayed, _ = ours.replay(sizes.snapshot, reached, {reached})
    result = OursGrowth(sizes.at, sizes.largest, reached, reached, row.failed_at,
                        (plan.replay_check_from, reached, ours.stored(session).largest_item, replayed[reached]))
    if last > reached:
        replayed, largest = ours.replay(ours.snapshot(session), last, set(plan.growth))
        result.at.update(replayed)
        result.largest = max(result.largest, largest)
        result.replayed_to = last
        progress(f"ours, memory replayed to turn {last:,}")
    return row, result


def _measure(plan: Plan, ours: Ours, progress: Progress) -> Results:
    k, chars = plan.samples, plan.chars
    model = ours.model
    big = ScriptedChatModel(reply_chars=plan.big_chars)
    ours_row, ours_growth = _ours(plan, ours, progress)

    pickled = PickledMemory(model)
    pickle_row = turns.Row(pickled.name)
    turns.warm_up(pickled, chars)
    turns.first_turns(pickled, pickle_row, k, chars)
    turns.real_session(pickled, pickle_row, plan.points, k, chars)
    checks = {pickled.name: growth.check(pickled, chars, plan.check_turns)}
    failures = {pickled.name: growth.scan(pickled, chars, plan.scan_cap, set(plan.growth))}
    pickled.close()
    progress("pickled memory")

    history = MessageHistory(model)
    history_row = turns.Row(history.name)
    turns.warm_up(history, chars)
    turns.first_turns(history, history_row, k, chars)
    checks[history.name] = growth.check(history, chars, plan.check_turns)
    failures[history.name] = growth.scan(history, chars, plan.scan_cap, set(plan.growth))
    history_row.failed_at = failures[history.name].documented
    turns.history_windows(history, history_row, plan.points, k, chars, history_row.failed_at)
    history.close()
    gc.collect()
    progress("message history")

    saver = LangGraphCheckpoints(model)
    turns.warm_up(saver, chars)
    record_at = {10, 50, 100, 250, max(plan.points) - 1, *plan.growth}
    graph = turns.langgraph(saver, plan.points, k, chars, plan.langgraph_default_turns, record_at)
    saver.close()
    gc.collect()
    progress("LangGraph")

    results = Results([ours_row, graph.default, graph.exit, history_row, pickle_row], ours_growth, graph,
                      failures, checks=checks)
    for peer in (PickledMemory(big), MessageHistory(big)):
        results.big_failures[peer.name] = growth.scan(peer, plan.big_chars, plan.scan_cap, set())
        peer.close()
    graph_big = LangGraphCheckpoints(big, durability="exit")
    thread: str | None = None
    for turn in range(1, plan.langgraph_big_turns + 1):
        thread, sample = turns.measured(graph_big, thread, user_message(turn, plan.big_chars))
        results.big_refused |= sample.refused
        if sample.s3 and results.big_offload is None:
            results.big_offload = turn
    graph_big.close()
    gc.collect()
    progress("peers, 4 KB messages")

    ours.model = big
    big_row = turns.Row(ours.name)
    big_sizes = Sizes(ours, ())
    _, ours_growth.big_turns = turns.real_session(ours, big_row, (1,), 1, plan.big_chars, big_sizes,
                                                  until=plan.ours_big_turns)
    ours_growth.big_largest, ours_growth.big_failed_at = big_sizes.largest, big_row.failed_at
    ours.model = model
    progress("ours, 4 KB messages")
    return results
