"""Per-turn overhead: every contender's turn 1, 50 and 500, timed, with moto's share and AWS calls counted.

For each contender: three warm-up turns (imports, first-use caches) are thrown away; turn 1 is timed on
`samples` fresh sessions; turn N on turns N .. N+samples-1 of one long session. A turn is timed from the
caller's side (load, rebuild, run, save); `Sample.client` is that minus the time moto spent answering.

How each long session gets to turn N (what runs is always the contender's real turn once there):
- ours and the pickled-memory peer: real turns all the way;
- the message-history peer: its item is written as its first N-1 turns would have left it
  (`MessageHistory.simulate`, checked against real turns in the same run), because moto spends seconds
  per turn rendering its ever longer message list;
- LangGraph: one table; a thread with the default durability for the earlier points, and a thread with
  `durability="exit"` that runs to the last point, where the two durabilities alternate turn by turn on
  the same thread (same checkpoint to load; each writes what its durability writes).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.contenders import Contender, LangGraphCheckpoints, MessageHistory, Simulated
from bench.itemsize import REFUSALS
from bench.meter import METER
from bench.script import user_message

WARM_UP_TURNS = 3


@dataclass
class Sample:
    seconds: float
    moto: float
    dynamodb: int
    s3: int
    refused: bool

    @property
    def client(self) -> float:
        return self.seconds - self.moto


@dataclass
class Row:
    name: str
    samples: dict[int, list[Sample]] = field(default_factory=dict)
    failed_at: int | None = None


def measured(contender: Contender, session: str | None, message: str) -> tuple[str | None, Sample]:
    """One timed turn. A write AWS refused (whether the contender raised or swallowed the error) marks the
    sample `refused`; any other exception is a bug and propagates."""
    METER.reset()
    before = REFUSALS.documented
    started = time.perf_counter()
    try:
        session = contender.turn(session, message)
    except Exception:
        if not (REFUSALS.documented > before or METER.errors):
            raise
    elapsed = time.perf_counter() - started
    refused = REFUSALS.documented > before or bool(METER.errors)
    return session, Sample(elapsed, METER.moto_seconds, METER.count("dynamodb"), METER.count("s3"), refused)


def warm_up(contender: Contender, chars: int) -> None:
    session = None
    for turn in range(1, WARM_UP_TURNS + 1):
        session = contender.turn(session, user_message(turn, chars))


def first_turns(contender: Contender, row: Row, samples: int, chars: int) -> None:
    row.samples[1] = [measured(contender, None, user_message(1, chars))[1] for _ in range(samples)]


def real_session(contender: Contender, row: Row, points: tuple[int, ...], samples: int, chars: int,
                 on_turn: Callable[[int, str], None] | None = None, until: int = 0) -> tuple[str | None, int]:
    """Real turns from 1 to the last window (or `until`); stops at the first refused write."""
    last = max(max(points) + samples - 1, until)
    session: str | None = None
    for turn in range(1, last + 1):
        current, sample = measured(contender, session, user_message(turn, chars))
        if sample.refused:
            row.failed_at = turn
            return session, turn - 1
        session = current
        for point in points:
            if point <= turn < point + samples:
                row.samples.setdefault(point, []).append(sample)
        if on_turn is not None and session is not None:
            on_turn(turn, session)
    return session, last


def fast_forward(peer: MessageHistory, session: str, turns: int) -> Simulated:
    """Write the item `turns` real turns would have left (not timed)."""
    for simulated in peer.simulate(session):
        if simulated.turn == turns:
            peer.write(simulated.item())
            return simulated
    raise AssertionError("unreachable")


def history_windows(peer: MessageHistory, row: Row, points: tuple[int, ...], samples: int, chars: int,
                    fails_at: int | None) -> None:
    """Turns N .. N+samples-1 of a session fast-forwarded to turn N-1, for each later point."""
    from openbrain.core.ids import new_id

    for point in points[1:]:
        if fails_at is not None and point + samples - 1 >= fails_at:
            continue
        session = new_id()
        fast_forward(peer, session, point - 1)
        for turn in range(point, point + samples):
            _, sample = measured(peer, session, user_message(turn, chars))
            row.samples.setdefault(point, []).append(sample)


@dataclass
class LangGraphRun:
    default: Row
    exit: Row
    stored_default: dict[int, int] = field(default_factory=dict)  # turn -> bytes (DynamoDB + S3)
    stored_exit: dict[int, int] = field(default_factory=dict)
    first_offload: dict[str, int] = field(default_factory=dict)  # durability -> first turn with an S3 write
    refused: bool = False


def langgraph(saver: LangGraphCheckpoints, points: tuple[int, ...], samples: int, chars: int,
              default_thread_turns: int, record_at: set[int]) -> LangGraphRun:
    from openbrain.core.ids import new_id

    run = LangGraphRun(Row(saver.name), Row(saver.name + " (durability=exit)"))
    rows = {None: run.default, "exit": run.exit}
    stored = {None: run.stored_default, "exit": run.stored_exit}
    for durability in (None, "exit"):
        saver.durability = durability
        rows[durability].samples[1] = [measured(saver, None, user_message(1, chars))[1] for _ in range(samples)]
    last = max(points)
    # Each durability on its own thread: the default as far as its windows and `default_thread_turns` go,
    # exit up to the last point.
    exit_thread = ""
    for durability, turns in ((None, default_thread_turns), ("exit", last - 1)):
        saver.durability = durability
        thread = new_id()
        for turn in range(1, turns + 1):
            _, sample = measured(saver, thread, user_message(turn, chars))
            run.refused |= sample.refused
            if sample.s3 and str(durability) not in run.first_offload:
                run.first_offload[str(durability)] = turn
            for point in points[1:-1]:
                if point <= turn < point + samples:
                    rows[durability].samples.setdefault(point, []).append(sample)
            if turn in record_at:
                stored[durability][turn] = saver.stored(thread).total
        exit_thread = thread
    # The last point: the two durabilities alternately on the exit thread.
    for offset in range(2 * samples):
        durability = "exit" if offset % 2 == 0 else None
        saver.durability = durability
        _, sample = measured(saver, exit_thread, user_message(last + offset, chars))
        run.refused |= sample.refused
        if sample.s3 and str(durability) not in run.first_offload:
            run.first_offload[str(durability)] = last + offset
        rows[durability].samples.setdefault(last, []).append(sample)
    saver.durability = None
    gc.collect()
    return run
