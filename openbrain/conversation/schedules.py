"""Scheduled messages: dynaprompt's `dps` in OpenBrain (docs/scheduling.md).

Either side of a conversation schedules a message: the person with a `dps` command (`dps RECIPIENT TIME PROMPT`,
then the prompt: domain/scheduling.py parses both), the model with the `schedule_message` tool, a client's server
through the API. A schedule belongs to its session: its state is the session item's `schedules` (so listing a
session's schedules is reading the session), and a `ScheduleBook` is how a turn or a command changes them.

Creating one: parse the time prompt in the session's time zone (its context's `timezone`, else UTC), check the
limits (`RateLimits.schedules_per_session`, `schedules_per_client`: a counter of the client's waiting schedules,
counted with a bound, and `schedule_min_interval_minutes`), arm it in the backend's scheduler (EventBridge Scheduler on
AWS; nothing for the embedded backend, whose ob-serve scheduler reads the sessions), then commit the session with a
`message.scheduled.v1` event in its outbox. A commit that fails disarms what it armed and gives its counts back; a
schedule that fires but is not on its session (its commit failed, it was cancelled) is disarmed and does nothing.

Delivering one (`deliver`, called by the Scheduler's delivery Lambda and by ob-serve's scheduler): recipient
`chatbot` runs a turn of the session with the prompt as its input (stored as a human message named `schedule`, so
a transcript can tell it from what the person typed); recipient `user` stores the prompt as the assistant's message
(named `schedule`). Either way the commit advances or removes the schedule and carries `message.delivered.v1`,
and the message is pushed to the session's open WebSocket connections. An occurrence is delivered once: a delivery
for a time the schedule has moved past (a Scheduler retry, a second ob-serve on the same store) does nothing. A
missed time (ob-serve was not running) is delivered once, late; a recurring schedule then moves to its next time
after now. An ended session cancels its schedules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from openbrain.core.clock import is_time_zone, utcnow
from openbrain.core.errors import NotFoundError, OpenBrainError, RateLimitedError, ScheduleLimitError, SessionEndedError
from openbrain.core.ids import new_id
from openbrain.domain.events import Event, MessageDelivered, MessageScheduled
from openbrain.storage.stores import Count

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.aws.scheduler import ScheduleTarget
    from openbrain.domain.limits import RateLimits
    from openbrain.domain.time_prompts import When
    from openbrain.storage.orm import ChatSession

    TurnCounts = Callable[[Mapping[str, int]], Sequence[Count]]  # a turn's usage -> the counters its commit adds to
    Admit = Callable[[ChatSession], TurnCounts]  # a scheduled turn of the session may run: its counts

log = logging.getLogger(__name__)
SCHEDULE_NAME = "schedule"  # the `name` of a stored message a schedule made (domain: services/sessions.transcript)
RECIPIENTS = ("user", "chatbot")
CREATORS = ("user", "model", "api")  # a dps command, the schedule_message tool, the API
COUNTER_KEEP = timedelta(days=400)
# How far a Scheduler's firing may be from the time the session holds and still deliver it (a later schedule time
# means this occurrence was delivered: a retry, or a second scheduler on the same store).
DRIFT = timedelta(minutes=1)  # the client's counter of waiting schedules outlives its last change this long


@dataclass(frozen=True)
class Schedule:
    """One waiting scheduled message, as the session stores it (JSON; docs/scheduling.md)."""

    id: str
    recipient: str
    prompt: str
    time_prompt: str
    expression: str
    timezone: str
    description: str
    recurring: bool
    next_at: datetime
    created_at: datetime
    created_by: str
    deliveries: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "next_at": self.next_at.isoformat(), "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        return cls(**{**data, "next_at": datetime.fromisoformat(data["next_at"]),
                      "created_at": datetime.fromisoformat(data["created_at"])})

    def when(self) -> When:
        from openbrain.domain.time_prompts import when_from_expression  # the parsers: only when a schedule is read

        return when_from_expression(self.expression, self.timezone, first=self.next_at, description=self.description)

    def target(self, session: ChatSession) -> ScheduleTarget:
        from openbrain.aws.scheduler import ScheduleTarget

        return ScheduleTarget(client_id=session.client_id, session_id=session.session_id, schedule_id=self.id)


def schedules_of(session: ChatSession) -> list[Schedule]:
    """The session's waiting schedules, soonest first."""
    return sorted((Schedule.from_json(entry) for entry in session.schedules or []), key=lambda s: s.next_at)


def _store(session: ChatSession, schedules: list[Schedule]) -> None:
    session.schedules = [schedule.to_json() for schedule in schedules] or None
    session.next_schedule_at = min((schedule.next_at for schedule in schedules), default=None)


def session_timezone(session: ChatSession) -> str:
    """The IANA zone a session's time prompts are read in: its context's `timezone` if it names one, else its
    profile's (`AgentProfile.timezone`, UTC by default). A request naming an unknown zone is refused
    (`ChatMessage`); a session stored before that check may still hold one, read as its profile's zone."""
    profile_zone = str((session.config_snapshot or {}).get("timezone") or "UTC")
    zone = (session.context or {}).get("timezone")
    if is_time_zone(zone):
        return str(zone)
    if zone is not None:
        log.info("session %s: context timezone %r is not an IANA zone; using %s", session.session_id, zone,
                 profile_zone)
    return profile_zone


def confirmation(schedule: Schedule) -> str:
    """What the person is told once a message is scheduled."""
    to = "you" if schedule.recipient == "user" else "the assistant"
    return (f"Scheduled a message to {to}: {schedule.description}. "
            f"Its id is {schedule.id}.")


def _client_counter(client_id: str) -> str:
    return f"{client_id}#schedules"


@dataclass
class ScheduleBook:
    """A session's schedules as one turn or command changes them, applied to the session before its commit
    (`apply`) and settled after it (`settle`). Reads the client's limits only when a schedule is added."""

    session: ChatSession
    backend: Backend
    schedules: list[Schedule] = field(default_factory=list)
    added: list[Schedule] = field(default_factory=list)
    cancelled: list[Schedule] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # schedule id -> the tool call that added it
    _limits: RateLimits | None = None

    @classmethod
    def of(cls, session: ChatSession, backend: Backend) -> ScheduleBook:
        return cls(session, backend, schedules_of(session))

    @property
    def timezone(self) -> str:
        return session_timezone(self.session)

    def limits(self) -> RateLimits:
        """The client's limits; the defaults for a client with no record (the CLIs' own, e.g. `public`)."""
        if self._limits is None:
            from openbrain.domain.limits import RateLimits

            try:
                self._limits = self.backend.stores.clients.get(self.session.client_id).rate_limits
            except NotFoundError:
                self._limits = RateLimits()
        return self._limits

    def add(self, recipient: str, time_prompt: str, prompt: str, *, created_by: str, tool_call_id: str = "",
            now: datetime | None = None) -> Schedule:
        """A new schedule (`ScheduleError`: the time prompt or the prompt not understood; `ScheduleLimitError`:
        over a limit). The client's counter of waiting schedules is counted now; `settle` gives it back if the
        session's commit fails."""
        from openbrain.domain.scheduling import ScheduleError
        from openbrain.domain.time_prompts import parse_time_prompt  # the parsers: only when one is added

        now = now or utcnow()
        if self.session.ended:
            raise SessionEndedError("this conversation has ended: it cannot schedule messages")
        if recipient not in RECIPIENTS:
            raise ScheduleError(f"{recipient!r} is not a recipient: use user (u) or chatbot (c)")
        if not prompt.strip():
            raise ScheduleError("the message to schedule is empty: write it after the time prompt")
        limits = self.limits()
        when = parse_time_prompt(time_prompt, now=now, timezone=self.timezone,
                                 min_interval=timedelta(minutes=limits.schedule_min_interval_minutes))
        if len(self.schedules) >= limits.schedules_per_session:
            raise ScheduleLimitError(f"this conversation has {len(self.schedules)} scheduled messages, the most it "
                                     "may have (schedules_per_session): cancel one first")
        expires = int((now + COUNTER_KEEP).timestamp())
        refused = limits.schedules_per_client <= 0 or self.backend.stores.counters.count(
            [Count(_client_counter(self.session.client_id), {"active": 1}, expires,
                   {"active": limits.schedules_per_client})])
        if refused:
            raise ScheduleLimitError(f"the client has {limits.schedules_per_client} scheduled messages waiting, the "
                                     "most it may have (schedules_per_client): cancel one first")
        schedule = Schedule(
            id=new_id(), recipient=recipient, prompt=prompt, time_prompt=time_prompt.strip(),
            expression=when.expression, timezone=when.timezone, description=when.description,
            recurring=when.recurring, next_at=when.first, created_at=now, created_by=created_by,
        )
        self.schedules.append(schedule)
        self.added.append(schedule)
        if tool_call_id:
            self.origins[schedule.id] = tool_call_id
        return schedule

    def cancel(self, schedule_id: str) -> Schedule:
        """Cancel the waiting schedule `schedule_id` (`NotFoundError` if the session has none such)."""
        found = next((s for s in self.schedules if s.id == schedule_id), None)
        if found is None:
            raise NotFoundError(f"no scheduled message {schedule_id!r} waits in this conversation")
        self.schedules.remove(found)
        if found in self.added:  # added and cancelled in one turn: it never existed
            self.added.remove(found)
            self._uncount([found])
        else:
            self.cancelled.append(found)
        return found

    def cancel_all(self) -> list[Schedule]:
        return [self.cancel(schedule.id) for schedule in list(self.schedules)]

    def apply(self) -> list[Event]:
        """Arm the added schedules and write the book into the session (before its commit); the
        `message.scheduled.v1` events of the added ones."""
        for schedule in self.added:
            self.backend.scheduler.arm(schedule.target(self.session), schedule.expression, schedule.timezone,
                                       recurring=schedule.recurring)
        _store(self.session, self.schedules)
        return [MessageScheduled(
            client_id=self.session.client_id, session_id=self.session.session_id,
            tool_call_id=self.origins.get(s.id, s.id), schedule_id=s.id, recipient=s.recipient,
            expression=s.expression, timezone=s.timezone, description=s.description, next_at=s.next_at,
            created_by=s.created_by,
        ) for s in self.added]

    def settle(self, *, committed: bool) -> None:
        """After the commit: disarm and uncount the cancelled schedules; or, if the commit failed, the added ones."""
        gone = self.cancelled if committed else self.added
        for schedule in gone:
            _disarm(self.backend, schedule.id)
        self._uncount(gone)
        self.added, self.cancelled, self.origins = [], [], {}

    def _uncount(self, schedules: list[Schedule]) -> None:
        if schedules:
            _uncount(self.backend, self.session.client_id, len(schedules))


def _disarm(backend: Backend, schedule_id: str) -> None:
    try:
        backend.scheduler.disarm(schedule_id)
    except OpenBrainError as exc:  # it fires, finds nothing on its session, and is disarmed then
        log.warning("could not disarm schedule %s: %s", schedule_id, exc)


def _uncount(backend: Backend, client_id: str, how_many: int) -> None:
    expires = int((utcnow() + COUNTER_KEEP).timestamp())
    try:
        backend.stores.counters.count([Count(_client_counter(client_id), {"active": -how_many}, expires)])
    except OpenBrainError as exc:
        log.warning("could not count %d schedule(s) of client %s as done: %s", how_many, client_id, exc)


def commit(session: ChatSession, book: ScheduleBook, backend: Backend, extra: list[Event] | None = None
           ) -> list[Event]:
    """Store `book`'s changes to `session` outside a turn (a command, the API), with their events (returned);
    then publish them."""
    from openbrain.conversation import outbox
    from openbrain.domain.events import to_outbox

    events = [*book.apply(), *(extra or [])]
    session.outbox = [*(session.outbox or []), *to_outbox(events)] or None
    session.record_events([event.summary() for event in events])
    session.refresh_ttl(timedelta(days=backend.settings.session_ttl_days))  # a schedule keeps its session alive
    try:
        backend.stores.sessions.commit(session)
    except BaseException:
        book.settle(committed=False)
        raise
    book.settle(committed=True)
    outbox.publish(session, backend)
    return events


def schedule(session: ChatSession, backend: Backend, recipient: str, time_prompt: str, prompt: str, *,
             created_by: str, now: datetime | None = None) -> tuple[Schedule, list[Event]]:
    """Schedule a message in `session` and store it (a dps command, the API): the schedule and its event."""
    book = ScheduleBook.of(session, backend)
    added = book.add(recipient, time_prompt, prompt, created_by=created_by, now=now)
    return added, commit(session, book, backend)


def cancel(session: ChatSession, backend: Backend, schedule_id: str) -> Schedule:
    """Cancel the waiting schedule `schedule_id` of `session` and store that (`NotFoundError`: none such)."""
    book = ScheduleBook.of(session, backend)
    found = book.cancel(schedule_id)
    commit(session, book, backend)
    return found


# --- delivery ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What `deliver` did: `text` delivered (None: nothing was due), the schedule's `next_at` (None: done)."""

    text: str | None
    next_at: datetime | None = None
    pushed: int = 0


def deliver(backend: Backend, target: ScheduleTarget, scheduled_time: datetime | None = None, *,
            now: datetime | None = None, admit: Admit | None = None) -> Delivery:
    """Deliver the message `target` names, due at `scheduled_time` (None: whenever it is due); see the module
    docstring. Raises what the store or the model raised (the Scheduler retries, ob-serve tries again).

    `admit`, if given, is asked before a prompt to the chatbot runs (services/schedules.py: the client's quotas)
    and returns the counters the turn's commit adds to; if it raises `RateLimitedError`, the turn does not run:
    this time is skipped (the schedule moves on as if delivered, and nothing is sent)."""
    now = now or utcnow()
    try:
        session = backend.stores.sessions.get(target.client_id, target.session_id)
    except NotFoundError:
        log.info("schedule %s: its session is gone", target.schedule_id)
        _disarm(backend, target.schedule_id)
        return Delivery(None)
    book = ScheduleBook.of(session, backend)
    found = next((s for s in book.schedules if s.id == target.schedule_id), None)
    if found is None:
        log.info("schedule %s: not on its session (cancelled, or its commit failed)", target.schedule_id)
        _disarm(backend, target.schedule_id)
        return Delivery(None)
    if session.ended:
        book.cancel_all()
        commit(session, book, backend)
        return Delivery(None)
    due = scheduled_time or found.next_at
    if found.next_at > max(due, now) + DRIFT:
        return Delivery(None, found.next_at)  # this occurrence was delivered already, or is not due yet
    following = found.when().next_after(max(now, found.next_at)) if found.recurring else None
    book.schedules.remove(found)
    if following is not None:
        book.schedules.append(replace(found, next_at=following, deliveries=found.deliveries + 1))
    else:
        book.cancelled.append(found)  # done: uncounted (and, on AWS, deleted after completion) once committed

    def delivered(text: str) -> list[Event]:
        return [MessageDelivered(client_id=session.client_id, session_id=session.session_id,
                                 tool_call_id=found.next_at.isoformat(), schedule_id=found.id,
                                 recipient=found.recipient, text=text, delivered_at=utcnow())]

    if found.recipient == "chatbot":
        try:
            counts = admit(session) if admit is not None else None
        except RateLimitedError as exc:
            log.warning("schedule %s of session %s: skipped this time (%s)", found.id, session.session_id, exc.message)
            commit(session, book, backend)
            return Delivery(None, following)
        text = _chatbot_turn(session, found, book, backend, delivered, counts)
    else:
        text = found.prompt
        _remember(session, found.prompt)
        commit(session, book, backend, delivered(text))
    pushed = _push(backend, session, found, text)
    return Delivery(text, following, pushed)


def _chatbot_turn(session: ChatSession, found: Schedule, book: ScheduleBook, backend: Backend,
                  delivered: Callable[[str], list[Event]], counts: TurnCounts | None) -> str:
    """A turn of `session` with the schedule's prompt as its input; the book's changes ride its commit."""
    from openbrain.conversation.chat import collect, session_events

    return collect(session_events(session, found.prompt, backend, tokens=False, scheduled=True, book=book,
                                  on_reply=delivered, counts=counts)).message


def _remember(session: ChatSession, text: str) -> None:
    """Store `text` as the assistant's message of the session, named `schedule` (not a turn: no model ran)."""
    from langchain_core.messages import AIMessage

    from openbrain.conversation import memory
    from openbrain.storage import memory_codec
    from openbrain.storage.orm.agent_config import AgentConfig

    config = AgentConfig.from_snapshot(session.config_snapshot)
    memory.remember(session, memory_codec.load(session.memory), [AIMessage(text, name=SCHEDULE_NAME)],
                    config.memory)


def _push(backend: Backend, session: ChatSession, found: Schedule, text: str) -> int:
    from openbrain.aws.connections import push

    frame = {"type": "message", "text": text, "role": "assistant", "session_id": session.session_id,
             "scheduled": True, "schedule_id": found.id}
    try:
        return push(backend, session.client_id, session.session_id, frame)
    except OpenBrainError as exc:  # stored and announced: the person sees it in the transcript
        log.warning("schedule %s delivered but not pushed: %s", found.id, exc)
        return 0


def due(backend: Backend, now: datetime | None = None) -> Iterator[tuple[ScheduleTarget, datetime]]:
    """Every waiting schedule due by `now` (a scan of the sessions: ob-serve's scheduler), with its due time."""
    now = now or utcnow()
    for session in backend.stores.sessions.with_schedules_due(now + timedelta(microseconds=1)):
        if session.expired:
            continue
        for found in schedules_of(session):
            if found.next_at <= now:
                yield found.target(session), found.next_at


def deliver_due(backend: Backend, now: datetime | None = None, *,
                deliver_one: Callable[..., Delivery] | None = None) -> list[Delivery]:
    """Deliver every schedule due by `now` (with `deliver_one`, default `deliver`), each on its own (one failing is
    logged, the others go on)."""
    now = now or utcnow()
    deliver_one = deliver_one or deliver
    done = []
    for target, at in list(due(backend, now)):
        try:
            done.append(deliver_one(backend, target, at, now=now))
        except Exception:
            log.exception("delivering schedule %s failed; tried again on the next pass", target.schedule_id)
    return done
