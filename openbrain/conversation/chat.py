"""The chat turn: load the session, rebuild the agent from its config and memory, run, save.

`chat(ChatMessage(...))` is the one entry point the CLIs, the API and the tuner call; `chat_events` is the
same request as the stream of what happens (what the streaming transports send, docs/api.md), and `chat`
is that stream collected. A turn is linear: load → run → commit → publish (`session_events`).

The events, in order (each a dict with a `type`):

- `turn.started`: `session_id`, `client_id`, `profile_name`, `turn` (0 for a reset: no turn runs);
- while the agent runs (`agents/runner.turn_events`): `token` (`text`, `step`), `tool.started` (`id`,
  `name`), `tool.finished` (`id`, `name`, `ok`), never what a tool returned to the model;
- after the commit and the publishing of the turn's events: `message` (`text`: the reply, as stored), then
  `turn.finished` with the rest of the `ChatResponse` (`model`, `events`, `tool_calls`, `stopped`, `ended`)
  and `usage` (`input_tokens`, `output_tokens`, `total_tokens` the model reported for the turn).

A request that fails raises its error when the stream is read (after `turn.started` for a failure in the
turn); the transports word it as an `error` event with the HTTP API's code (api/routes/errors.py).

- `reset=True`: start a new session from the stored profile (plus `agent_config_overrides`) and return
  its icebreaker; `message` is ignored.
- no `session_id`: start a new session; if `message` is given, also answer it (one call, as `ob` does).
- otherwise: continue the session (`NotFoundError` if it does not exist for this client or has expired;
  `ConflictError` if it has ended, or if another turn saved it first).

A new session uses the stored profile `agent_config` of `client_id`, or the `config` passed in (a
validated, possibly unsaved AgentConfig of that client: how `ob-tuner` tries an edit before saving it).

Overrides and context apply when a session starts; later turns use the session's snapshot, so editing
a profile never changes a conversation in flight.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from openbrain.aws.backend import Backend, get_backend
from openbrain.conversation.tools.context import ToolContext
from openbrain.core.clock import is_time_zone, utcnow
from openbrain.core.errors import InvalidInputError, SessionEndedError, UnauthorizedError
from openbrain.core.settings import Settings
from openbrain.domain.events import to_outbox
from openbrain.domain.identity import IDENTITY_REFUSED, EndUser
from openbrain.domain.profile import DEFAULT_CLIENT_ID, DEFAULT_PROFILE, PROFILE_ERROR, AgentProfile
from openbrain.domain.scheduling import DpsCommand, parse_dps
from openbrain.storage.orm.agent_config import AgentConfig
from openbrain.storage.orm.chat_session import ChatSession, session_not_found

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from openbrain.conversation.agents.runner import TurnEvent
    from openbrain.conversation.schedules import ScheduleBook
    from openbrain.domain.events import Event
    from openbrain.storage.stores import Count

    TurnCounts = Callable[[Mapping[str, int]], Sequence[Count]]  # a turn's usage -> counters its commit adds to

log = logging.getLogger(__name__)
MAX_CONTEXT_BYTES = 8_000
DPS_MODEL = "dps"  # the `model` of a dps command's answer: no model ran
# What `_not_blank` checks, for the OpenAPI document (pydantic's own constraints would word the error for us).
# "Not blank" as ONE regular expression that Python and a JSON Schema validator (ECMA-262 regexes) read alike:
# Python's \s also matches \x1c-\x1f and \x85, ECMA's also \ufeff, so `\S` alone let "\x1e" pass the document
# and fail here (the long fuzz run's finding).
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"
_NAME_SCHEMA: dict[str, Any] = {"minLength": 1, "maxLength": 128, "pattern": NOT_BLANK}


class ChatMessage(BaseModel):
    """One request to the chat turn. camelCase (the API's) and snake_case names are both accepted;
    keys that are not fields become tool context (seen by tools, never by the model)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, json_schema_extra={
        # what `chat` checks: a turn of an existing session (not a reset) needs a message that is not blank
        "if": {"required": ["session_id"], "properties": {"session_id": {"type": "string"}, "reset": {"const": False}}},
        "then": {"required": ["message"], "properties": {"message": {"pattern": NOT_BLANK}}},
    })

    client_id: str = Field(DEFAULT_CLIENT_ID, json_schema_extra=_NAME_SCHEMA,
                           validation_alias=AliasChoices("client_id", "clientId"))
    session_id: str | None = Field(None, min_length=1, validation_alias=AliasChoices("session_id", "sessionId"))
    message: str = ""
    reset: StrictBool = False
    agent_config: str = Field(DEFAULT_PROFILE, json_schema_extra=_NAME_SCHEMA,
                              validation_alias=AliasChoices("agent_config", "agentConfig"))
    agent_config_overrides: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("agent_config_overrides", "agentConfigOverrides")
    )
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("client_id", "agent_config")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not _blank_free(value) or len(value) > 128:
            raise ValueError("must be 1-128 characters, not only spaces")
        return value

    @field_validator("agent_config_overrides", mode="before")
    @classmethod
    def _field_names(cls, value: Any) -> Any:
        """Override keys in any spelling the profile schema accepts, as its field names."""
        return AgentProfile.normalise(value) if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _known_time_zone(self) -> ChatMessage:
        """The context's `timezone`, if given, is an IANA zone (docs/scheduling.md, Time zone): refused here,
        before the turn runs or stores anything, rather than read as UTC."""
        zone = self.tool_context().get("timezone")
        if zone is not None and not is_time_zone(zone):
            where = "context.timezone" if "timezone" in self.context else "timezone"
            raise PydanticCustomError(PROFILE_ERROR, "{message}", {
                "message": f"{where} must be an IANA time zone such as Europe/London, not {repr(zone)[:64]}"})
        return self

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ChatMessage:
        """Validate a request body; raises `InvalidInputError` naming the bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise InvalidInputError(first["msg"] if first["type"] == PROFILE_ERROR  # names the field already
                                    else f"{where}: {first['msg']}") from exc

    def tool_context(self) -> dict[str, Any]:
        """`context` plus any extra keys of the request."""
        return {**(self.model_extra or {}), **self.context}


class ChatResponse(BaseModel):
    message: str
    session_id: str
    client_id: str
    profile_name: str
    model: str
    events: list[dict[str, Any]] = Field(default_factory=list)
    tool_calls: list[str] = Field(default_factory=list)
    stopped: str | None = None
    ended: bool = False


def chat(
    request: ChatMessage,
    backend: Backend | None = None,
    *,
    config: AgentConfig | None = None,
    model: BaseChatModel | None = None,
    deadline: float = math.inf,
) -> ChatResponse:
    """Run one request (see the module docstring) and return the reply: `chat_events` without tokens,
    collected. `model`, `deadline`: see `session_events`."""
    return collect(chat_events(request, backend, config=config, model=model, deadline=deadline, tokens=False))


def chat_events(
    request: ChatMessage,
    backend: Backend | None = None,
    *,
    config: AgentConfig | None = None,
    model: BaseChatModel | None = None,
    deadline: float = math.inf,
    tokens: bool = True,
    counts: TurnCounts | None = None,
    user: EndUser | None = None,
) -> Iterator[TurnEvent]:
    """Run one request, yielding its events (module docstring). The session is read (`NotFoundError`,
    ...) when the first event is asked for. `counts`: see `session_events`. With `user` (an API caller's end user,
    domain/identity.py), a new session, or one without a user that they continue, is bound to them, and a session
    they may not use reads as missing; without, nothing is checked."""
    backend = backend or get_backend()
    answers = not request.reset and _blank_free(request.message)
    command = parse_dps(request.message) if answers else None  # a scheduling command: no turn runs
    if answers:
        _check_message(request.message, backend.settings)
    if request.reset or not request.session_id:
        if user is not None and not user.may_start(request.agent_config):
            raise UnauthorizedError(IDENTITY_REFUSED)
        # Answered at once, the new session is written once, by its first turn (one round trip fewer), or by the
        # commit of the message a dps command schedules (so a refused one stores nothing); `dps help` has none.
        help_only = command is not None and command.recipient is None
        session, config = start_session(request, backend, config, save=not answers or help_only,
                                        user_id=user.user_id if user is not None else None)
        if not answers:
            yield _started(session, 0)
            yield {"type": "message", "text": config.icebreaker}
            yield _finished(ChatResponse(
                message=config.icebreaker, session_id=session.session_id, client_id=session.client_id,
                profile_name=session.profile_name, model=config.model,
            ), {})
            return
    else:
        session = backend.stores.sessions.get(request.client_id, request.session_id)
        if user is not None and not user.may_use(session.end_user_id, session.profile_name):
            raise session_not_found(request.client_id, request.session_id)  # as a missing one: it reveals nothing
        if user is not None and user.user_id is not None and session.end_user_id is None:
            # a visitor who signs in mid-conversation takes it along: from this turn's commit on it is theirs
            # alone (else the next person signed in on that browser would read it)
            session.bind_user(user.user_id)
        config = None  # a session in flight runs on its snapshot
    if command is not None:
        yield from _command_events(session, command, backend)
        return
    yield from session_events(session, request.message, backend, model=model, deadline=deadline, config=config,
                              tokens=tokens, counts=counts)


def _command_events(session: ChatSession, command: DpsCommand, backend: Backend) -> Iterator[TurnEvent]:
    """A `dps` command (domain/scheduling.py) in `session`: the syntax for `dps` / `dps help`, else the message
    scheduled and what was scheduled (conversation/schedules.py). No model runs and the transcript is unchanged:
    the command and its answer are instructions to OpenBrain, not part of the conversation (docs/scheduling.md)."""
    from openbrain.conversation import schedules
    from openbrain.domain.scheduling import DPS_HELP

    if session.ended:
        raise SessionEndedError("this conversation has ended; start a new one with reset")
    if command.recipient is None:
        text, events = DPS_HELP, []
    else:
        added, published = schedules.schedule(session, backend, command.recipient, command.time_prompt,
                                              command.prompt, created_by="user")
        text, events = schedules.confirmation(added), [event.summary() for event in published]
    yield _started(session, int(session.turn_count))
    yield {"type": "message", "text": text}
    yield _finished(ChatResponse(
        message=text, session_id=session.session_id, client_id=session.client_id, profile_name=session.profile_name,
        model=DPS_MODEL, events=events,
    ), {})


def collect(events: Iterable[TurnEvent]) -> ChatResponse:
    """The reply a stream of events adds up to: its `message` and its `turn.finished`."""
    reply, finished = "", {}
    for event in events:
        if event["type"] == "message":
            reply = event["text"]
        elif event["type"] == "turn.finished":
            finished = event
    fields = {name: value for name, value in finished.items() if name in ChatResponse.model_fields}
    return ChatResponse(message=reply, **fields)


def _started(session: ChatSession, turn: int) -> TurnEvent:
    return {"type": "turn.started", "session_id": session.session_id, "client_id": session.client_id,
            "profile_name": session.profile_name, "turn": turn}


def _finished(response: ChatResponse, usage: dict[str, int]) -> TurnEvent:
    return {"type": "turn.finished", **response.model_dump(exclude={"message"}), "usage": usage}


def start_session(
    request: ChatMessage, backend: Backend, config: AgentConfig | None = None, *, save: bool = True,
    user_id: str | None = None,
) -> tuple[ChatSession, AgentConfig]:
    """A new session from the profile (or `config`), bound to the verified end user `user_id` if given; stored
    unless `save` is false (the caller's first turn then stores it: `continue_session` saves a never-saved
    session only if no such item exists)."""
    from langchain_core.messages import AIMessage

    from openbrain.storage import memory_codec

    if config is None:
        config = backend.stores.profiles.get_or_default(request.client_id, request.agent_config)
    elif config.client_id != request.client_id:
        raise InvalidInputError(f"the config belongs to client {config.client_id!r}, not {request.client_id!r}")
    else:
        config.validate()
    if request.agent_config_overrides:
        config = config.with_overrides(request.agent_config_overrides)
    context = request.tool_context()
    _check_context(context)
    session = ChatSession(
        request.client_id,
        profile_name=config.profile_name,
        config_snapshot=config.to_snapshot(),
        context=context,
        memory=memory_codec.dumps([AIMessage(config.icebreaker)] if config.icebreaker else []),
    )
    session.bind_user(user_id)
    session.refresh_ttl(timedelta(days=backend.settings.session_ttl_days))
    if save:
        backend.stores.sessions.save(session)
    return session, config


def _blank_free(text: str) -> bool:
    """Whether `text` has a character that is not blank (`NOT_BLANK`: the rule the API's document states)."""
    return re.search(NOT_BLANK, text) is not None


def _check_message(message: str, settings: Settings) -> None:
    if not _blank_free(message):
        raise InvalidInputError("message must not be empty")
    if len(message) > settings.max_message_chars:
        raise InvalidInputError(
            f"message is {len(message)} characters; the limit is {settings.max_message_chars} (OB_MAX_MESSAGE_CHARS)"
        )


def _check_context(context: dict[str, Any]) -> None:
    try:
        size = len(json.dumps(context))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("context must be JSON: strings, numbers, lists and objects") from exc
    if size > MAX_CONTEXT_BYTES:
        raise InvalidInputError(f"context is {size} bytes; the limit is {MAX_CONTEXT_BYTES}")


def continue_session(
    session: ChatSession, message: str, backend: Backend, *, model: BaseChatModel | None = None,
    deadline: float = math.inf, config: AgentConfig | None = None,
) -> ChatResponse:
    """`session_events` without tokens, collected."""
    return collect(session_events(session, message, backend, model=model, deadline=deadline, config=config,
                                  tokens=False))


def session_events(
    session: ChatSession, message: str, backend: Backend, *, model: BaseChatModel | None = None,
    deadline: float = math.inf, config: AgentConfig | None = None, tokens: bool = True,
    counts: TurnCounts | None = None, scheduled: bool = False, book: ScheduleBook | None = None,
    on_reply: Callable[[str], list[Event]] | None = None,
) -> Iterator[TurnEvent]:
    """Answer `message` in `session`, yielding the turn's events: load → run → commit → publish
    (docs/events.md), then `message` and `turn.finished`.

    The tools only record what should happen; the commit writes the session (optimistic locking:
    `ConflictError` if another turn saved it first) and the lead they produced in one transaction, with
    their events in the session's outbox, which is then published. A turn that fails or loses a race
    writes and emits nothing. `deadline` (a `time.monotonic()` value) bounds the turn below the
    profile's `max_execution_time` (the API passes what API Gateway and the Lambda leave).

    `model`, if given, answers instead of the chat model the config's spec names (the spec is still
    checked and logged): the seam through which `bench/` drives this real turn with a scripted model.
    `config`: the session's config when the caller has it at hand (a session it just started), instead of
    reading it back from the session's snapshot. `tokens`: stream the model's reply as `token` events.
    `counts`, if given, is asked for the counters the commit also writes, given the turn's `usage` (services/usage.py:
    the client's usage and its rate limits' settlement ride the turn's one write).

    The turn's tools change the session's scheduled messages through `book` (conversation/schedules.py; one is made
    if not given); its changes ride the commit, and an ended session cancels its schedules. `scheduled`: `message`
    is a scheduled prompt to the chatbot (stored named `schedule`); `on_reply` is given the reply before the commit
    and returns events the commit carries too (a scheduled delivery's `message.delivered.v1`)."""
    from langchain_core.messages import AIMessage, HumanMessage

    from openbrain.conversation import memory, outbox
    from openbrain.conversation.agents.models import build_chat_model, effective_model_spec
    from openbrain.conversation.agents.runner import turn_events
    from openbrain.conversation.schedules import SCHEDULE_NAME, ScheduleBook
    from openbrain.storage import memory_codec

    settings = backend.settings
    _check_message(message, settings)
    if session.ended:
        raise SessionEndedError("this conversation has ended; start a new one with reset")
    started = time.perf_counter()
    config = config or AgentConfig.from_snapshot(session.config_snapshot)
    spec = effective_model_spec(config, settings, notice=not session.turn_count)  # the fallback's notice: once
    history = memory_codec.load(session.memory)
    book = book or ScheduleBook.of(session, backend)
    context = ToolContext(
        client_id=session.client_id, session_id=session.session_id, leads=backend.stores.leads,
        values=dict(session.context or {}), lead_id=session.lead_id, turn=int(session.turn_count) + 1,
        deadline=deadline, schedules=book,
    )
    chat_model = model if model is not None else build_chat_model(spec, config, settings)
    yield _started(session, context.turn)
    committed = False
    try:  # the book's schedules were counted (and armed) as the tools made them: given back unless committed
        outcome = yield from turn_events(config, chat_model, memory.window(history, config.memory), message, context,
                                         tokens=tokens)
        # The tool calls of one model reply run side by side (langgraph's ToolNode), so their events are put back
        # in the order the model made the calls: the same turn always publishes the same sequence.
        calls = [call["id"] for reply in outcome.new_messages if isinstance(reply, AIMessage)
                 for call in reply.tool_calls]
        if context.ended:
            book.cancel_all()
        context.events.extend(book.apply())
        context.events.sort(key=lambda event: calls.index(event.tool_call_id) if event.tool_call_id in calls
                            else len(calls))
        if on_reply is not None:
            context.events.extend(on_reply(outcome.reply))
        event_summaries = [event.summary() for event in context.events]
        session.record_events(event_summaries)
        # Events an earlier turn committed but could not publish ride along (published with this turn's).
        session.outbox = [*(session.outbox or []), *to_outbox(context.events)] or None
        new_messages = outcome.new_messages
        if scheduled:  # the input came from a schedule, not from the person: a transcript tells them apart
            new_messages = [HumanMessage(message, name=SCHEDULE_NAME), *new_messages[1:]]
        memory.remember(session, history, new_messages, config.memory)
        session.turn_count = context.turn
        session.lead_id = context.lead_id
        if context.ended:
            session.ended_at = utcnow()
        session.refresh_ttl(timedelta(days=settings.session_ttl_days))
        backend.stores.sessions.commit(session, context.lead, context.lead_changes,
                                       counts(outcome.usage) if counts is not None else ())
        committed = True
    finally:
        book.settle(committed=committed)
    outbox.publish(session, backend)
    log.info(
        "chat turn",
        extra={
            "client_id": session.client_id,
            "session_id": session.session_id,
            "profile": session.profile_name,
            "model": str(spec),
            "tool_calls": context.tool_calls,
            "events": [e["type"] for e in event_summaries],
            "turn": session.turn_count,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "memory_bytes": len(session.memory),
            "stopped": outcome.stopped,
        },
    )
    yield {"type": "message", "text": outcome.reply}
    yield _finished(ChatResponse(
        message=outcome.reply, session_id=session.session_id, client_id=session.client_id,
        profile_name=session.profile_name, model=str(spec), events=event_summaries,
        tool_calls=context.tool_calls, stopped=outcome.stopped, ended=session.ended,
    ), outcome.usage)


__all__ = ["ChatMessage", "ChatResponse", "chat", "chat_events", "collect", "continue_session", "session_events",
           "start_session"]
