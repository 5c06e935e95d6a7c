"""What `ob-tuner` does, without gradio: every button of the UI is one method here.

The workbench has no data path of its own: profiles are saved and deleted through
`openbrain.services.profiles` (optimistic locking included) as the API's are, the editor's fields are the
profile schema's (`openbrain.domain.profile.AgentProfile`, its memory policy flattened), YAML goes through
`openbrain.services.configs_io` as `ob-admin config` does, chat turns go through
`openbrain.conversation.chat.chat_events` as `ob`, the API and the streaming transports do (the playground
shows a turn as it streams: `Turn.after`; a `dps` command typed there schedules a message, as anywhere), a
session's scheduled messages are listed and cancelled through `openbrain.services.sessions` as
`GET/DELETE /sessions/{id}/schedules` do, and the dead-letter queue through `openbrain.targets.dlq` as
`ob-admin dlq` does. Errors are the library's `OpenBrainError`s; the UI shows
their message.

On the embedded backend one lock serialises calls: gradio runs event handlers on a thread pool, and the
backend is one in-process AWS. On AWS nothing is serialised (boto3 clients are thread-safe), so a slow
model call never holds up another operator's click. A streamed turn runs start to end on a thread of its own
(`compare`): gradio resumes a generator on whichever worker thread is free, and neither the lock nor the
agent's run (langchain keeps its run state in context variables) may change threads halfway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openbrain.conversation.agents.models import effective_model_label
from openbrain.conversation.chat import ChatMessage, chat_events
from openbrain.conversation.schedules import schedules_of
from openbrain.conversation.tools.registry import TOOLS
from openbrain.core.errors import ConflictError, InvalidInputError, NotFoundError, OpenBrainError
from openbrain.domain.profile import CONFIG_FIELDS, DEFAULT_CLIENT_ID, DEFAULT_PROFILE, AgentProfile, MemoryPolicy
from openbrain.services import profiles as profile_service
from openbrain.services.configs_io import ImportReport, dump_document, import_configs, load_document, profile_fields
from openbrain.services.sessions import Message, ScheduledMessage, cancel_schedule, transcript
from openbrain.storage.orm.agent_config import AgentConfig
from openbrain.storage.orm.client import validate_client_id

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.conversation.agents.runner import TurnEvent
    from openbrain.targets.dlq import RedriveResult

# The editor's fields, in form order: the profile's fields, with the memory policy flattened.
MEMORY_FIELDS = tuple(f"memory.{name}" for name in MemoryPolicy.model_fields)
FORM_FIELDS = tuple(name for name in CONFIG_FIELDS if name != "memory") + MEMORY_FIELDS
NUMBER_FIELDS = (*(name for name in CONFIG_FIELDS if AgentProfile.model_fields[name].annotation in (int, float)),
                 *MEMORY_FIELDS)
RECENT_SESSIONS = 50


@dataclass(frozen=True)
class Profile:
    """A profile as the editor shows it: `values` by `FORM_FIELDS`, the stored version (None when the
    profile is not stored yet, e.g. a client's built-in `default`), and the model its turns run
    (`Workbench.model_label`)."""

    client_id: str
    name: str
    values: dict[str, Any]
    version: int | None
    model_label: str

    @property
    def stored(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class ToolRun:
    """A tool call of a turn in progress: `ok` is None while it runs, then whether it answered without an error."""

    id: str
    name: str
    ok: bool | None = None


@dataclass(frozen=True)
class Turn:
    """One side's answer in the playground (or the error that took its place), finished or (`done` false) as
    far as it has streamed: `reply` is then the text of the model's latest step so far, `tools` the tool calls
    started so far. A finished turn's `reply` is the stored one."""

    reply: str = ""
    session_id: str | None = None
    tool_calls: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None
    ended: bool = False
    error: str | None = None
    done: bool = True
    tools: tuple[ToolRun, ...] = ()
    step: int = 0  # the model step `reply` is the text of, while streaming

    def after(self, event: TurnEvent) -> Turn:
        """This turn once `event` (of `chat_events`) has happened."""
        kind = event["type"]
        if kind == "turn.started":
            return dataclasses.replace(self, session_id=event["session_id"])
        if kind == "token":  # the reply is the last step's text: a new step starts it again
            same = event["step"] == self.step
            return dataclasses.replace(self, reply=(self.reply if same else "") + event["text"], step=event["step"])
        if kind == "tool.started":
            return dataclasses.replace(self, tools=(*self.tools, ToolRun(event["id"], event["name"])))
        if kind == "tool.finished":
            return dataclasses.replace(self, tools=tuple(
                ToolRun(run.id, run.name, bool(event["ok"])) if run.id == event["id"] else run for run in self.tools))
        if kind == "message":
            return dataclasses.replace(self, reply=event["text"])
        if kind == "turn.finished":
            return dataclasses.replace(self, session_id=event["session_id"], tool_calls=list(event["tool_calls"]),
                                       events=list(event["events"]), stopped=event["stopped"],
                                       ended=event["ended"], done=True)
        return self


@dataclass(frozen=True)
class Pair:
    """The playground's two sessions (edited, saved) and what they started from."""

    edited: str | None = None
    saved: str | None = None
    key: str = ""
    restarted: bool = False

    @staticmethod
    def key_of(client_id: str, name: str, values: dict[str, Any], context: dict[str, Any], version: int | None) -> str:
        return json.dumps([client_id, name, values, context, version], sort_keys=True, default=str)


@dataclass(frozen=True)
class SessionDetail:
    """Everything the inspector shows of one session."""

    summary: dict[str, Any]
    transcript: list[Message]  # as GET /sessions/{id} renders it (openbrain.services.sessions)
    config_snapshot: dict[str, Any]
    model_label: str  # the model the snapshot's next turn runs (`Workbench.model_label`)
    context: dict[str, Any]
    lead: dict[str, Any] | None
    events: list[dict[str, Any]]
    schedules: list[ScheduledMessage]  # waiting, soonest first (as GET /sessions/{id}/schedules lists them)


def form_values(profile: AgentProfile) -> dict[str, Any]:
    """A profile's fields by `FORM_FIELDS`, as plain values (as YAML exports them)."""
    fields = profile_fields(profile)
    memory = fields.pop("memory")
    return {**fields, **{name: memory[name.split(".", 1)[1]] for name in MEMORY_FIELDS}}


def profile_from_values(values: dict[str, Any]) -> AgentProfile:
    """The profile the editor's values describe; `InvalidInputError` names the first bad field."""
    unknown = sorted(set(values) - set(FORM_FIELDS))
    if unknown:
        raise InvalidInputError(f"unknown field(s) {', '.join(unknown)}")
    missing = [name for name in FORM_FIELDS if name not in values]
    if missing:
        raise InvalidInputError(f"missing field(s) {', '.join(missing)}")
    empty = [name for name in FORM_FIELDS if name in NUMBER_FIELDS and values[name] in (None, "")]
    if empty:
        raise InvalidInputError(f"{empty[0]} must be a number")
    fields: dict[str, Any] = {name: values[name] for name in FORM_FIELDS if name not in MEMORY_FIELDS}
    fields.update(system_message=values["system_message"] or "", icebreaker=values["icebreaker"] or "",
                  model=(values["model"] or "").strip(), tools=list(values["tools"] or []),
                  memory={name.split(".", 1)[1]: values[name] for name in MEMORY_FIELDS})
    return AgentProfile.parse(fields)


def config_from_values(client_id: str, profile_name: str, values: dict[str, Any]) -> AgentConfig:
    """A validated, unsaved AgentConfig from editor values; `InvalidInputError` names the first bad field."""
    return AgentConfig.from_profile(client_id, profile_name, profile_from_values(values)).validate()


def tool_catalogue() -> list[dict[str, Any]]:
    """Every tool a profile can select: name, description and argument schema."""
    return [{"name": spec.name, "description": spec.description, "arguments": spec.json_schema()}
            for spec in TOOLS.values()]


def parse_context(text: str | None) -> dict[str, Any]:
    """The playground's tool-context box: a JSON object, or nothing."""
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"tool context is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInputError("tool context must be a JSON object, e.g. {\"page\": \"pricing\"}")
    return value


class Workbench:
    """The operations of the tuner on one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if backend.kind == "memory" else contextlib.nullcontext()
        )

    # --- clients and profiles ------------------------------------------------------------------

    def clients(self, *extra: str | None) -> list[str]:
        """Client ids to pick from: every Client, the default client `ob` uses, and `extra` ones."""
        from openbrain.services.clients import list_clients

        with self._lock:
            ids = {client.client_id for client in list_clients(self.backend.stores)}
        return sorted(ids | {DEFAULT_CLIENT_ID} | {e for e in extra if e})

    def profiles(self, client_id: str) -> list[str]:
        """The client's stored profiles, and `default` (it always exists: built-in until saved)."""
        from openbrain.services.clients import profile_names

        validate_client_id(client_id)
        with self._lock:
            return sorted({*profile_names(self.backend.stores, client_id), DEFAULT_PROFILE})

    def load(self, client_id: str, name: str) -> Profile:
        validate_client_id(client_id)
        with self._lock:
            config = profile_service.get(self.backend.stores.profiles, client_id, name)
        stored = config.version
        return Profile(client_id, name, form_values(config.profile()), int(stored) if stored is not None else None,
                       self.model_label(config))

    def model_label(self, config: AgentConfig) -> str:
        """The model `config`'s turns run here, by the turn's own rule: `openai:gpt-4o-mini → offline (no
        OPENAI_API_KEY)` when the key is missing."""
        return effective_model_label(config, self.backend.settings)

    def save(self, client_id: str, name: str, values: dict[str, Any], version: int | None) -> Profile:
        """Save the editor's values over the profile loaded at `version` (None: it was not stored).

        `ConflictError` if the stored profile is not at `version` any more (someone saved or deleted it
        since it was loaded): nothing is written; reload and reapply."""
        validate_client_id(client_id)
        profile = profile_from_values(values)
        with self._lock:
            try:
                profile_service.put(self.backend.stores.profiles, client_id, name, profile, version)
            except ConflictError as exc:
                raise ConflictError(f"{exc.message}; reload it and reapply your edits") from exc
        return self.load(client_id, name)

    def save_as(self, client_id: str, new_name: str, values: dict[str, Any]) -> Profile:
        """Save the editor's values as a new profile; `ConflictError` if that name is taken."""
        new_name = (new_name or "").strip()
        validate_client_id(client_id)
        profile = profile_from_values(values)
        with self._lock:
            try:
                profile_service.put(self.backend.stores.profiles, client_id, new_name, profile, None)
            except ConflictError as exc:
                raise ConflictError(f"{exc.message}; pick another name") from exc
        return self.load(client_id, new_name)

    def delete(self, client_id: str, name: str, version: int | None) -> None:
        """Delete the stored profile loaded at `version`."""
        validate_client_id(client_id)
        if version is None:
            raise NotFoundError(f"profile {name!r} is not stored; there is nothing to delete")
        with self._lock:
            try:
                profile_service.delete(self.backend.stores.profiles, client_id, name, version)
            except ConflictError as exc:
                raise ConflictError(f"{exc.message}; reload it") from exc

    def export_yaml(self, client_id: str, name: str, values: dict[str, Any]) -> str:
        """The editor's profile as an `ob-admin config import` document (YAML)."""
        profile = config_from_values(client_id, name, values).profile()
        return dump_document({"client_id": client_id, "profiles": {name: profile_fields(profile)}}, "yaml")

    def import_yaml(self, client_id: str, text: str) -> ImportReport:
        """Create or update the document's profiles for `client_id`, all or nothing, as
        `ob-admin config import` does (a `version` in the document must still be the stored one). A
        document naming another client is refused."""
        validate_client_id(client_id)
        if not (text or "").strip():
            raise InvalidInputError("paste a YAML (or JSON) document with client_id and profiles first")
        document = load_document(text, "yaml", "the pasted document")
        named = document.get("client_id")
        if named not in (None, client_id):
            raise InvalidInputError(
                f"the document is for client {named!r}, not {client_id!r}: pick that client, or change its "
                "client_id to apply it here"
            )
        with self._lock:
            report = import_configs(self.backend.stores.profiles, document, client_id=client_id)
        return report

    # --- playground ----------------------------------------------------------------------------

    def reset(self, client_id: str, name: str, values: dict[str, Any], context: dict[str, Any],
              version: int | None) -> tuple[Turn, Turn, Pair]:
        """New sessions on both sides (edited values, saved profile); the turns carry their icebreakers."""
        edited = _last(self._turns(client_id, name, values, context, None, ""))
        saved = _last(self._turns(client_id, name, None, context, None, ""))
        key = Pair.key_of(client_id, name, values, context, version)
        return edited, saved, Pair(edited=edited.session_id, saved=saved.session_id, key=key, restarted=True)

    def compare(self, client_id: str, name: str, values: dict[str, Any], context: dict[str, Any], version: int | None,
                pair: Pair, message: str) -> Iterator[tuple[Turn, Turn, Pair]]:
        """The same message to the edited config and to the saved profile, each in its own session: both sides
        as they stream, first before either has answered (neither `done`), last both finished. The edited side
        runs first, then the saved one. What has streamed meanwhile is taken in one step, so a slow reader
        gets the latest state, never a backlog.

        A session keeps the config it started with, so when the editor's values, the profile, its stored
        `version` or the tool context differ from those `pair`'s sessions started with, both sides start
        new sessions (the returned pair says so with `restarted`). A side whose conversation ended starts
        a new session with the next message."""
        key = Pair.key_of(client_id, name, values, context, version)
        pair = Pair(edited=pair.edited, saved=pair.saved, key=key) if pair.key == key else Pair(key=key, restarted=True)
        sides = [(values, pair.edited), (None, pair.saved)]
        updates: queue.SimpleQueue[tuple[int, Turn] | BaseException | None] = queue.SimpleQueue()

        def run() -> None:  # the turns, start to end on this one thread (module docstring)
            try:
                for side, (side_values, session_id) in enumerate(sides):
                    for turn in self._turns(client_id, name, side_values, context, session_id, message):
                        updates.put((side, turn))
            except BaseException as exc:  # handed to the reader, which raises it
                updates.put(exc)
            else:
                updates.put(None)

        turns = [Turn(session_id=pair.edited, done=False), Turn(session_id=pair.saved, done=False)]

        def state() -> tuple[Turn, Turn, Pair]:
            return turns[0], turns[1], Pair(edited=_next(turns[0], pair.edited), saved=_next(turns[1], pair.saved),
                                            key=key, restarted=pair.restarted)

        threading.Thread(target=run, name="ob-tuner turn", daemon=True).start()
        yield state()
        while True:
            update, fresh = updates.get(), False
            while update is not None:  # every update already waiting, then the state they make
                if isinstance(update, BaseException):
                    raise update
                turns[update[0]], fresh = update[1], True
                try:
                    update = updates.get_nowait()
                except queue.Empty:
                    break
            if fresh:
                yield state()
            if update is None:
                return

    def _turns(self, client_id: str, name: str, values: dict[str, Any] | None, context: dict[str, Any],
               session_id: str | None, message: str) -> Iterator[Turn]:
        """One side's turn as it streams (`Turn.after` each event), or the error that ended it: the last is
        `done`. Holds the embedded backend's lock throughout: read on one thread."""
        turn = Turn(session_id=session_id, done=False)
        try:
            validate_client_id(client_id)
            config = config_from_values(client_id, name, values) if values is not None else None
            request = ChatMessage.parse({"client_id": client_id, "agent_config": name, "session_id": session_id,
                                         "message": message, "context": context})
            with self._lock:
                for event in chat_events(request, self.backend, config=config):
                    turn = turn.after(event)
                    yield turn
        except OpenBrainError as exc:
            yield Turn(session_id=session_id, error=exc.message)

    # --- inspector -----------------------------------------------------------------------------

    def recent_sessions(self, client_id: str, limit: int = RECENT_SESSIONS) -> list[dict[str, Any]]:
        """The client's latest `limit` unexpired sessions, newest first (session ids are ULIDs: the range key
        sorts by time)."""
        validate_client_id(client_id)
        with self._lock:
            found = self.backend.stores.sessions.of_client(client_id, newest_first=True, limit=limit, page_size=limit)
        return [_session_summary(s) for s in found]

    def session(self, client_id: str, session_id: str) -> SessionDetail:
        validate_client_id(client_id)
        if not (session_id or "").strip():
            raise InvalidInputError("pick a session first")
        stores = self.backend.stores
        with self._lock:
            stored = stores.sessions.get(client_id, session_id.strip())
            lead = None
            if stored.lead_id:
                try:
                    lead = stores.leads.get(client_id, stored.lead_id).to_public_dict()
                except NotFoundError:
                    lead = {"lead_id": stored.lead_id, "status": "not found (deleted?)"}
        return SessionDetail(
            summary=_session_summary(stored),
            transcript=transcript(stored),
            config_snapshot=dict(stored.config_snapshot or {}),
            model_label=self.model_label(AgentConfig.from_snapshot(stored.config_snapshot)),
            context=dict(stored.context or {}),
            lead=lead,
            events=list(stored.recent_events or []),
            schedules=[ScheduledMessage.of(schedule) for schedule in schedules_of(stored)],
        )

    def cancel_schedule(self, client_id: str, session_id: str, schedule_id: str) -> ScheduledMessage:
        """Cancel a scheduled message waiting in the session, as `DELETE /sessions/{id}/schedules/{schedule_id}`
        does (`NotFoundError`: no such session, or no such message waiting in it: delivered or cancelled since)."""
        validate_client_id(client_id)
        if not (session_id or "").strip():
            raise InvalidInputError("pick a session first")
        if not (schedule_id or "").strip():
            raise InvalidInputError("pick a scheduled message first (click its row)")
        with self._lock:
            return cancel_schedule(self.backend, client_id, session_id.strip(), schedule_id.strip())

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every target's dead-lettered messages (read without consuming them)."""
        from openbrain.aws.resources import TARGETS
        from openbrain.targets.dlq import list_dead_letters

        with self._lock:
            return [{"target": target.name, **letter.as_dict()}
                    for target in TARGETS for letter in list_dead_letters(self.backend, target.name)]

    def redrive(self) -> list[RedriveResult]:
        """Move every target's dead letters back to its queue. On the embedded backend nothing else polls
        the queues, so they are then run through the target's handler at once (as `ob-serve` would)."""
        from openbrain.aws.resources import TARGETS
        from openbrain.targets.dlq import redrive

        embedded = self.backend.kind == "memory"
        with self._lock:
            return [redrive(self.backend, t.name, t.load_handler() if embedded else None) for t in TARGETS]


def _last(turns: Iterator[Turn]) -> Turn:
    """A turn read to its end."""
    *_, turn = turns
    return turn


def _next(turn: Turn, session_id: str | None) -> str | None:
    """The session a side's next message goes to: none (a new one) once its conversation ended."""
    return None if turn.ended else turn.session_id or session_id


def _session_summary(session: Any) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "profile": session.profile_name,
        "turns": int(session.turn_count),
        "created_at": session.created_at.isoformat(timespec="seconds"),
        "updated_at": session.updated_at.isoformat(timespec="seconds"),
        "lead_id": session.lead_id,
        "events": len(session.recent_events or []),
        "ended": session.ended,
        "trimmed_messages": int(session.trimmed_messages),
        "scheduled": len(session.schedules or []),
    }
