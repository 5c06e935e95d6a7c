"""Session growth and the 400 KB item limit: stored bytes per session, and the turn each design fails at.

- The single-item peers (message history, pickled memory) are replayed by `simulate` (the exact item a
  real turn writes, built without moto) until the documented rules put the item over 409,600 bytes; the
  item of two turns earlier is written, and real turns run on from there until moto (enforcing the
  documented rules, `itemsize.documented_limit`) refuses one: that turn is reported, next to the turn at
  which stock moto's own accounting (405,000 bytes) would have refused. `check` compares simulated and
  real items after a few real turns in the same run.
- LangGraph never hits the limit (payloads over 350 KB go to S3); its stored bytes grow with the square
  of the turn count (every checkpoint holds the whole conversation), so turns beyond the measured ones
  are extrapolated with the quadratic through the last three measured points, and marked as such.
- Ours runs real turns throughout.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from bench.contenders import MessageHistory, PickledMemory, Simulated
from bench.itemsize import MAX_ITEM_BYTES, MOTO_MAX_ITEM_BYTES, REFUSALS
from bench.meter import METER
from bench.script import user_message

MARGIN = 2  # real turns run up to the predicted failure


@dataclass
class Failure:
    checked_to: int  # turns examined (simulated or real)
    documented: int | None = None  # the turn whose write moto refused under the documented rules
    predicted: int | None = None  # the turn the simulation predicted for that
    stock: int | None = None  # the turn stock moto's accounting (405,000 bytes) would have refused
    silent: bool = False  # the refused turn still returned a reply
    refused_sizes: tuple[int, int] | None = None  # (documented, stock moto) bytes of the refused item
    stored: dict[int, int] = field(default_factory=dict)  # turn -> item bytes (documented rules)


def scan(peer: MessageHistory | PickledMemory, chars: int, cap: int, record_at: set[int]) -> Failure:
    """The turn at which `peer`'s session item is refused (see the module docstring)."""
    from openbrain.core.ids import new_id

    session = new_id()
    recent: deque[Simulated] = deque(maxlen=MARGIN)
    failure = Failure(checked_to=0)
    before: list[Simulated] = []
    for simulated in peer.simulate(session):
        failure.checked_to = simulated.turn
        if failure.stock is None and simulated.stock > MOTO_MAX_ITEM_BYTES:
            failure.stock = simulated.turn
        if failure.predicted is None and simulated.documented > MAX_ITEM_BYTES:
            failure.predicted = simulated.turn
            before = list(recent)
        if failure.predicted is not None and (failure.stock is not None or simulated.turn >= 2 * failure.predicted):
            break  # (simulating on only to find where stock moto would refuse)
        if simulated.turn in record_at and failure.predicted is None:
            failure.stored[simulated.turn] = simulated.documented
        recent.append(simulated)
        if simulated.turn >= cap:
            if failure.predicted is None:
                return failure
            break
    assert failure.predicted is not None
    recent = deque(before, maxlen=MARGIN)
    current: str | None = None
    first = 1
    if len(recent) == MARGIN:
        peer.write(recent[0].item())
        current, first = session, recent[0].turn + 1
    for turn in range(first, failure.predicted + MARGIN + 1):
        METER.reset()
        refused_before = REFUSALS.documented
        raised = False
        try:
            current = peer.turn(current, user_message(turn, chars))
        except Exception:
            if not (REFUSALS.documented > refused_before or METER.errors):
                raise  # not a refused write: a bug
            raised = True
        if raised or REFUSALS.documented > refused_before:
            failure.documented = turn
            failure.silent = not raised
            failure.refused_sizes = REFUSALS.sizes[-1] if REFUSALS.sizes else None
            break
    failure.checked_to = max(failure.checked_to, turn)
    return failure


def check(peer: MessageHistory | PickledMemory, chars: int, turns: int) -> tuple[int, int]:
    """(real item bytes, simulated item bytes) after `turns` turns of a fresh session."""
    session: str | None = None
    for turn in range(1, turns + 1):
        session = peer.turn(session, user_message(turn, chars))
    assert session is not None
    real = peer.stored(session).largest_item
    simulated = next(s for s in peer.simulate(session) if s.turn == turns)
    return real, simulated.documented


def quadratic(points: dict[int, int], at: int) -> float:
    """The quadratic through the last three (turn, bytes) points, at `at` (Lagrange form)."""
    (x0, y0), (x1, y1), (x2, y2) = sorted(points.items())[-3:]
    return (y0 * (at - x1) * (at - x2) / ((x0 - x1) * (x0 - x2))
            + y1 * (at - x0) * (at - x2) / ((x1 - x0) * (x1 - x2))
            + y2 * (at - x0) * (at - x1) / ((x2 - x0) * (x2 - x1)))
