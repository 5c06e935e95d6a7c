"""Delivering scheduled messages as the client's turns (conversation/schedules.py does the delivering;
docs/scheduling.md): a prompt to the chatbot runs a model turn nobody asked for at that moment, so it counts
against the client's daily and monthly quotas (`admit_quotas`: over them, that time is skipped and counted as
`rate_limited`) and adds to its usage in the turn's commit, as a widget turn does. A message to the user runs no
model and counts nothing. The Scheduler's delivery Lambda (targets/scheduled.py) and ob-serve's scheduler
(local/serve.py) call these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from openbrain.conversation import schedules
from openbrain.conversation.schedules import Delivery
from openbrain.core.errors import NotFoundError, RateLimitedError
from openbrain.services.limits import admit_quotas
from openbrain.services.usage import TurnLedger

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.aws.scheduler import ScheduleTarget
    from openbrain.storage.orm import ChatSession
    from openbrain.storage.stores import Count


def deliver(backend: Backend, target: ScheduleTarget, scheduled_time: datetime | None = None, *,
            now: datetime | None = None) -> Delivery:
    """`conversation.schedules.deliver`, a prompt to the chatbot counted as the client's turn (module docstring)."""
    ledgers: list[TurnLedger] = []

    def admit(session: ChatSession) -> Callable[[Mapping[str, int]], Sequence[Count]]:
        stores = backend.stores
        ledger = TurnLedger(session.client_id, stores.counters)
        ledgers.append(ledger)
        try:
            ledger.admission = admit_quotas(stores.clients.get(session.client_id), stores.counters, now)
        except NotFoundError:  # a client with no record (the CLIs' own `public`) has no quotas
            pass
        except RateLimitedError:
            ledger.refused()
            raise
        return ledger.committing

    try:
        delivery = schedules.deliver(backend, target, scheduled_time, now=now, admit=admit)
    except Exception:
        for ledger in ledgers:
            ledger.failed(error=True)
        raise
    for ledger in ledgers:  # refused ones were counted already
        if delivery.text is not None:
            ledger.committed()
    return delivery


def deliver_due(backend: Backend, now: datetime | None = None) -> list[Delivery]:
    """Every schedule due by `now` delivered (`deliver`), each on its own: ob-serve's scheduler's pass."""
    return schedules.deliver_due(backend, now, deliver_one=deliver)
