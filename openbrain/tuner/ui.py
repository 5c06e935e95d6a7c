"""The gradio page of `ob-tuner`: a profile editor, a side-by-side playground and an inspector.

`Handlers` has one method per listener of the page: it converts between the page's values and one
`Workbench` call (what a button does is defined in `openbrain.tuner.workbench`) and returns a view whose
`outputs()` are the components' new values. `build` lays the page out and wires each listener through
`listener`, which turns any error into a ⚠ line on the page, never a traceback.

The playground streams: `Handlers.send` is a generator whose first view shows the person's message in both
panes (and empties the message box) before either side answers, then each reply growing as the model writes
it, with the tool calls it runs, and last the reply as stored with the notes under it (`turn_messages`). The
message box sends on Enter; Shift+Enter starts a new line (a `dps` command's prompt goes on the lines after its first).

The inspector shows a session's waiting scheduled messages and cancels one by id; the session it acts on is the
one shown (a State that only Show and a cancel set), whatever the session id box says meanwhile. Transcript
messages a schedule made start with `SCHEDULED`.

The editor remembers the profile it loaded (client, name, version) in a State that only a load or a save
sets; Save, Delete, Import and the playground act on that profile, and refuse when the pickers show
another one (a failed load, or a switch still loading), so one profile's values never land on another.
Chat panes show text, not markdown: a transcript holds what visitors and models wrote.
"""

from __future__ import annotations

import functools
import html
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from zoneinfo import available_timezones

import gradio as gr

from openbrain.core.errors import InvalidInputError, OpenBrainError
from openbrain.domain.profile import DEFAULT_CLIENT_ID, DEFAULT_PROFILE, AgentProfile, MemoryPolicy
from openbrain.services.sessions import ScheduledMessage
from openbrain.tuner.workbench import (
    FORM_FIELDS,
    Pair,
    Profile,
    SessionDetail,
    Turn,
    Workbench,
    config_from_values,
    parse_context,
    tool_catalogue,
)

log = logging.getLogger(__name__)

SESSION_COLUMNS = ["session_id", "profile", "turns", "created_at", "updated_at", "lead_id", "events", "ended",
                   "scheduled"]
SCHEDULE_COLUMNS = ["schedule_id", "recipient", "when", "next (UTC)", "prompt", "created_by", "deliveries"]
SCHEDULED = "⏰ scheduled: "  # before the text of a transcript message a schedule made
DLQ_COLUMNS = ["target", "message_id", "event_type", "client_id", "receive_count", "redrive_count", "sent_at", "error"]
Chat = list[dict[str, Any]]
RESTARTED = "— new sessions: the profile, its edits or the tool context changed —"
ANSWERING = "answering"


_MARKDOWN = re.compile(r"([\\`*_\[\]#|~])")


def plain(text: str) -> str:
    """`text` as literal text inside markdown (names and messages may hold `*`, `<`, `[..](..)`)."""
    return _MARKDOWN.sub(r"\\\1", html.escape(str(text), quote=False))


def ok(text: str) -> str:
    return f"✓ {plain(text)}"


def problem(text: str) -> str:
    return f"⚠ {plain(text)}"


def _type_of(spec: dict[str, Any]) -> str:
    """A JSON schema's type in a few characters: `string`, `string[]`, `string | null` -> `string`."""
    if "anyOf" in spec:
        kinds = [_type_of(option) for option in spec["anyOf"] if option.get("type") != "null"]
        return " | ".join(kinds) or "any"
    if spec.get("type") == "array":
        return _type_of(spec.get("items", {})) + "[]"
    return str(spec.get("type", "any"))


def between(schema: type[AgentProfile] | type[MemoryPolicy], name: str) -> str:
    """A number field's bounds for the hint under its box, low and high joined by an en dash. The boxes carry no
    bounds of their own: gradio would refuse an out-of-range value with its own toast before the listener
    runs, and the profile schema's message ("temperature must be between 0 and 2, got 3") would never show."""
    low, high = schema.bounds(name)
    return f"{low}–{high}"


def tools_markdown() -> str:
    """Each tool with its description and argument schema, for the checklist's side."""
    parts = []
    for tool in tool_catalogue():
        properties = tool["arguments"].get("properties", {})
        required = set(tool["arguments"].get("required", []))
        args = ", ".join(
            f"`{name}{'' if name in required else '?'}: {_type_of(spec)}`" for name, spec in properties.items()
        ) or "no arguments"
        parts.append(f"**{tool['name']}** ({args}) — {tool['description']}")
    return "\n\n".join(parts)


def turn_messages(message: str, turn: Turn) -> Chat:
    """The chat bubbles of one playground turn: the user's message, the reply, and a line under the
    reply naming the tool calls and events of the turn. While the turn streams (not `done`): the user's
    message, each tool call started so far as a titled note (a spinner while it runs), and the reply so far."""
    bubbles: Chat = [{"role": "user", "content": message}] if message else []
    if turn.error:
        return [*bubbles, {"role": "assistant", "content": problem(turn.error)}]
    if not turn.done:
        for run in turn.tools:
            outcome = "running…" if run.ok is None else "done" if run.ok else "failed (the tool answered with an error)"
            bubbles.append({"role": "assistant", "content": outcome, "metadata": {
                "title": f"calls {run.name}", "status": "pending" if run.ok is None else "done"}})
        return [*bubbles, {"role": "assistant", "content": turn.reply}] if turn.reply else bubbles
    bubbles.append({"role": "assistant", "content": turn.reply or "(no reply)"})
    notes = []
    if turn.tool_calls:
        notes.append("tools: " + ", ".join(turn.tool_calls))
    if turn.events:
        notes.append("events: " + ", ".join(f"{e['type']} ({e['event_id']})" for e in turn.events))
    if turn.stopped:
        notes.append(f"stopped: {turn.stopped}")
    if turn.ended:
        notes.append("conversation ended")
    if notes:
        bubbles.append({"role": "assistant", "content": " · ".join(notes)})
    return bubbles


def answering(edited: Turn, saved: Turn) -> str:
    """The playground's line while a turn streams: which side is answering; empty once both have."""
    if not edited.done:
        return f"… the edited profile is {ANSWERING}"
    return "" if saved.done else f"… the saved profile is {ANSWERING}"


def transcript_messages(detail: SessionDetail) -> Chat:
    """A stored session as chat bubbles: tool calls and tool results as titled notes; a message a schedule made
    (a prompt to the chatbot, or a message to the person) starts with `SCHEDULED`."""
    bubbles: Chat = []
    called: dict[str | None, str] = {}  # tool call id -> the tool it called
    for message in detail.transcript:
        text = SCHEDULED + message.content if message.scheduled else message.content
        if message.role == "user":
            bubbles.append({"role": "user", "content": text})
        elif message.role == "tool":
            bubbles.append({"role": "assistant", "content": message.content,
                            "metadata": {"title": f"result of {called.get(message.tool_call_id)}"}})
        else:
            if message.content:
                bubbles.append({"role": "assistant", "content": text})
            for call in message.tool_calls:
                called[call.id] = call.name
                bubbles.append({"role": "assistant", "content": json.dumps(call.args, ensure_ascii=False),
                                "metadata": {"title": f"calls {call.name}"}})
    return bubbles


def schedule_row(schedule: ScheduledMessage) -> list[Any]:
    """A waiting scheduled message as a row of the inspector's table, by `SCHEDULE_COLUMNS`."""
    return [schedule.schedule_id, schedule.recipient, schedule.description,
            schedule.next_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), schedule.prompt, schedule.created_by,
            schedule.deliveries]


def loaded_line(loaded: Profile) -> str:
    where = f"version {loaded.version}" if loaded.stored else "not stored yet (built-in defaults)"
    return f"**{plain(loaded.client_id)} / {plain(loaded.name)}** — {where} · model {plain(loaded.model_label)}"


@dataclass(frozen=True)
class EditorView:
    """What an editor action shows: a message and, when it (re)loaded a profile, that profile."""

    message: str
    loaded: Profile | None = None
    profiles: list[str] | None = None

    def outputs(self) -> list[Any]:
        """For [*form, loaded state, status line, message line, profile picker]."""
        if self.loaded is None:
            return [*(gr.update() for _ in FORM_FIELDS), gr.update(), gr.update(), self.message, gr.update()]
        return [*(self.loaded.values[name] for name in FORM_FIELDS), self.loaded, loaded_line(self.loaded),
                self.message, gr.update(choices=self.profiles, value=self.loaded.name)]


@dataclass(frozen=True)
class NoteView:
    """Just a message line."""

    message: str

    def outputs(self) -> list[Any]:
        return [self.message]


@dataclass(frozen=True)
class DocumentView:
    """A message line and the YAML document box (None: unchanged)."""

    message: str
    document: str | None = None

    def outputs(self) -> list[Any]:
        return [self.message, gr.update() if self.document is None else self.document]


@dataclass(frozen=True)
class PlaygroundView:
    """Both chat panes (None: unchanged), the session pair, and a message line; `sent` empties the message
    box (only the first view of a send does: the person may type the next message while the reply streams)."""

    message: str
    edited: Chat | None = None
    saved: Chat | None = None
    pair: Pair | None = None
    sent: bool = False

    def outputs(self) -> list[Any]:
        """For [edited pane, saved pane, pair state, message box, message line]."""
        keep = gr.update()
        return [keep if self.edited is None else self.edited, keep if self.saved is None else self.saved,
                keep if self.pair is None else self.pair, "" if self.sent else keep, self.message]


@dataclass(frozen=True)
class TableView:
    """A table's rows (None: unchanged) and a message line."""

    message: str
    rows: list[list[Any]] | None = None

    def outputs(self) -> list[Any]:
        return [gr.update() if self.rows is None else self.rows, self.message]


@dataclass(frozen=True)
class SessionView:
    """One session of client `client_id` in the inspector (None: unchanged) and a message line. A session shown
    empties the scheduled message id box and becomes the one a cancel acts on."""

    message: str
    detail: SessionDetail | None = None
    client_id: str = ""

    def outputs(self) -> list[Any]:
        """For [transcript, config snapshot, lead, events, tool context, scheduled messages, scheduled message id,
        shown session state, message line]."""
        if self.detail is None:
            return [*(gr.update() for _ in range(8)), self.message]
        d = self.detail
        return [transcript_messages(d), d.config_snapshot, d.lead, d.events, d.context,
                [schedule_row(s) for s in d.schedules], "", (self.client_id, d.summary["session_id"]), self.message]


View = EditorView | NoteView | DocumentView | PlaygroundView | TableView | SessionView


def listener(handler: Callable[..., View | Iterator[View]], failed: Callable[[str], View]) -> Callable[..., Any]:
    """`handler` as a gradio listener: its view's outputs, or `failed(message)`'s when it raises. A library
    error shows its message; anything else is logged with its traceback and named on the page. As gradio
    wants it, a view of one output is that value, not a list of one (gradio would show "Error"). A
    generator handler makes a generator listener: each view's outputs as it comes, and `failed`'s last
    if it raises on the way (what it showed so far stays)."""

    def value(view: View) -> Any:
        outputs = view.outputs()
        return outputs[0] if len(outputs) == 1 else outputs

    def caught(exc: Exception) -> Any:  # called in the `except` block: the traceback is still at hand
        if isinstance(exc, OpenBrainError):
            return value(failed(problem(exc.message)))
        log.exception("ob-tuner: %s failed", getattr(handler, "__name__", "a listener"))
        return value(failed(problem(f"unexpected {type(exc).__name__}; see ob-tuner's output")))

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def stream(*args: Any) -> Iterator[Any]:
            try:
                for view in handler(*args):
                    yield value(view)
            except Exception as exc:
                yield caught(exc)

        return stream

    @functools.wraps(handler)
    def run(*args: Any) -> Any:
        try:
            return value(handler(*args))  # type: ignore[arg-type]  # not a generator: one view
        except Exception as exc:
            return caught(exc)

    return run


class Handlers:
    """Every listener of the page, as plain methods on a workbench (the tests call these)."""

    def __init__(self, workbench: Workbench) -> None:
        self.workbench = workbench

    @staticmethod
    def values(*form: Any) -> dict[str, Any]:
        return dict(zip(FORM_FIELDS, form, strict=True))

    @staticmethod
    def _holding(loaded: Profile | None, client_id: str | None = None, name: str | None = None) -> Profile:
        """The loaded profile, if the pickers (when given) still show it."""
        if loaded is None:
            raise InvalidInputError("no profile is loaded: pick a client and a profile, then Reload")
        if client_id is not None and (loaded.client_id, loaded.name) != (client_id, name or DEFAULT_PROFILE):
            raise InvalidInputError(
                f"the editor holds {loaded.client_id} / {loaded.name}, not {client_id} / {name}: Reload to edit "
                "the one picked (your edits to the loaded one are still in the form)"
            )
        return loaded

    # --- editor ----------------------------------------------------------------------------------------

    def load(self, client_id: str, name: str | None) -> EditorView:
        loaded = self.workbench.load(client_id, name or DEFAULT_PROFILE)
        return EditorView("", loaded, self.workbench.profiles(client_id))

    def pick_client(self, client_id: str) -> EditorView:
        return self.load(client_id, DEFAULT_PROFILE)

    def validate(self, loaded: Profile | None, *form: Any) -> NoteView:
        holding = self._holding(loaded)
        config = config_from_values(holding.client_id, holding.name, self.values(*form))
        return NoteView(ok(f"valid · model {self.workbench.model_label(config)}"))

    def save(self, loaded: Profile | None, client_id: str, name: str, *form: Any) -> EditorView:
        holding = self._holding(loaded, client_id, name)
        saved = self.workbench.save(holding.client_id, holding.name, self.values(*form), holding.version)
        return EditorView(ok(f"saved as version {saved.version}"), saved, self.workbench.profiles(saved.client_id))

    def save_as(self, loaded: Profile | None, new_name: str, *form: Any) -> EditorView:
        holding = self._holding(loaded)
        saved = self.workbench.save_as(holding.client_id, new_name, self.values(*form))
        return EditorView(ok(f"saved new profile {saved.name!r}"), saved, self.workbench.profiles(saved.client_id))

    def delete(self, loaded: Profile | None, client_id: str, name: str) -> EditorView:
        holding = self._holding(loaded, client_id, name)
        self.workbench.delete(holding.client_id, holding.name, holding.version)
        view = self.load(holding.client_id, DEFAULT_PROFILE)
        return EditorView(ok(f"deleted {holding.name!r}"), view.loaded, view.profiles)

    def export(self, loaded: Profile | None, *form: Any) -> DocumentView:
        holding = self._holding(loaded)
        text = self.workbench.export_yaml(holding.client_id, holding.name, self.values(*form))
        return DocumentView(ok("exported the editor's profile (export saves nothing)"), text)

    def import_(self, loaded: Profile | None, text: str) -> EditorView:
        holding = self._holding(loaded)
        report = self.workbench.import_yaml(holding.client_id, text)
        view = self.load(holding.client_id, holding.name)
        return EditorView(ok(f"imported: created {report.created or 'none'}, updated {report.updated or 'none'}, "
                             f"unchanged {report.unchanged or 'none'}"), view.loaded, view.profiles)

    # --- playground ------------------------------------------------------------------------------------

    def send(self, loaded: Profile | None, context_text: str, pair: Pair, edited_history: Chat | None,
             saved_history: Chat | None, text: str, *form: Any) -> Iterator[PlaygroundView]:
        """The message in both panes at once, then both replies as they stream (`Workbench.compare`)."""
        holding = self._holding(loaded)
        if not (text or "").strip():
            yield PlaygroundView(problem("type a message first"))
            return
        turns = self.workbench.compare(holding.client_id, holding.name, self.values(*form),
                                       parse_context(context_text), holding.version, pair, text)
        before_edited, before_saved = list(edited_history or []), list(saved_history or [])
        for index, (edited, saved, now) in enumerate(turns):
            if not index and now.restarted and before_edited:
                divider = {"role": "assistant", "content": RESTARTED}
                before_edited, before_saved = [*before_edited, divider], [*before_saved, divider]
            yield PlaygroundView(answering(edited, saved), [*before_edited, *turn_messages(text, edited)],
                                 [*before_saved, *turn_messages(text, saved)], now, sent=not index)

    def reset(self, loaded: Profile | None, context_text: str, *form: Any) -> PlaygroundView:
        holding = self._holding(loaded)
        edited, saved, pair = self.workbench.reset(holding.client_id, holding.name, self.values(*form),
                                                   parse_context(context_text), holding.version)
        return PlaygroundView(ok("new sessions started"), turn_messages("", edited), turn_messages("", saved), pair)

    # --- inspector -------------------------------------------------------------------------------------

    def sessions(self, client_id: str) -> TableView:
        rows = self.workbench.recent_sessions(client_id)
        return TableView(ok(f"{len(rows)} recent session(s)"), [[row[c] for c in SESSION_COLUMNS] for row in rows])

    @staticmethod
    def pick_id(table: Any, event: gr.SelectData) -> str:
        """The id (first cell) of the clicked row of the sessions or the scheduled messages table."""
        row = event.index[0] if isinstance(event.index, list | tuple) else event.index
        try:
            return str(table[row][0])
        except (IndexError, KeyError, TypeError):
            return ""

    def show(self, client_id: str, session_id: str) -> SessionView:
        detail = self.workbench.session(client_id, session_id)
        summary = detail.summary
        trimmed = summary["trimmed_messages"]
        scheduled = len(detail.schedules)
        return SessionView(ok(f"session {summary['session_id']}: {summary['turns']} turn(s), profile "
                              f"{summary['profile']}, model {detail.model_label}"
                              + (f", {trimmed} older message(s) trimmed" if trimmed else "")
                              + (f", {scheduled} scheduled message(s) waiting" if scheduled else "")),
                           detail, client_id)

    def cancel_schedule(self, shown: tuple[str, str] | None, schedule_id: str) -> SessionView:
        """Cancel a scheduled message of the session shown, then show that session again."""
        if not shown:
            raise InvalidInputError("show a session first")
        client_id, session_id = shown
        cancelled = self.workbench.cancel_schedule(client_id, session_id, schedule_id)
        detail = self.workbench.session(client_id, session_id)
        return SessionView(ok(f"cancelled scheduled message {cancelled.schedule_id} to {cancelled.recipient} "
                              f"({cancelled.description}); {len(detail.schedules)} waiting in session "
                              f"{session_id}"), detail, client_id)

    def dead_letters(self) -> TableView:
        letters = self.workbench.dead_letters()
        return TableView(ok(f"{len(letters)} dead-lettered message(s)"),
                         [[d[c] for c in DLQ_COLUMNS] for d in letters])

    def redrive(self) -> TableView:
        results = self.workbench.redrive()
        moved = ", ".join(f"{r.target}: moved {r.moved}, processed {r.processed}, failed {r.failed}" for r in results)
        return TableView(ok(moved), self.dead_letters().rows)


def build(workbench: Workbench, client_id: str | None = None, title: str = "OpenBrain tuner") -> gr.Blocks:
    """The tuner's page on `workbench`, open on `client_id` or else the default client `public` (where `ob`'s
    sessions are)."""
    first_client = client_id or DEFAULT_CLIENT_ID
    on = Handlers(workbench)
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"# {title}\nBackend: **{workbench.backend.kind}** · edit a profile, try it beside the saved "
                    "one, look at what sessions did.")
        loaded = gr.State(None)  # the Profile the editor holds: set by a load or a save only
        with gr.Row():
            client = gr.Dropdown(workbench.clients(client_id), value=first_client, label="Client",
                                 allow_custom_value=True, elem_id="client", scale=2)
            profile = gr.Dropdown(workbench.profiles(first_client), value=DEFAULT_PROFILE, label="Profile",
                                  allow_custom_value=True, elem_id="profile", scale=2)
            reload = gr.Button("Reload", scale=1)
        status = gr.Markdown(elem_id="status")

        with gr.Tabs():
            with gr.Tab("Profile", id="profile-tab"):
                with gr.Row():
                    with gr.Column(scale=3):
                        with gr.Row():
                            model = gr.Textbox(label="Model", elem_id="model",
                                               info="offline, or <provider>:<model> (e.g. openai:gpt-4o-mini)")
                            temperature = gr.Number(label="Temperature", step=0.05, elem_id="temperature",
                                                    info=between(AgentProfile, "temperature"))
                        with gr.Row():
                            iterations = gr.Number(
                                label="Max iterations", precision=0, elem_id="max-iterations",
                                info=f"{between(AgentProfile, 'max_iterations')}: model calls per turn before it stops")
                            seconds = gr.Number(
                                label="Max execution time (s)", elem_id="max-execution-time",
                                info=f"{between(AgentProfile, 'max_execution_time')}: API Gateway gives up at 29 s")
                        with gr.Accordion("Model connection (optional)", open=False):
                            base_url = gr.Textbox(label="Base URL", elem_id="base-url",
                                                  info="the model server instead of the provider's (docs/models.md)")
                            credentials = gr.Textbox(label="Credentials reference", elem_id="credentials",
                                                     info="env:OB_MODEL_KEY_<NAME>, ssm:/openbrain/clients/<client>/"
                                                          "<name> or secretsmanager:...; never the key itself")
                            timezone = gr.Dropdown(label="Time zone", elem_id="timezone",
                                                   choices=sorted(available_timezones()), value="UTC",
                                                   info="scheduled messages' times, unless the session's "
                                                        "context names one (docs/scheduling.md)")
                        system_message = gr.Textbox(label="System message", lines=6, elem_id="system-message")
                        icebreaker = gr.Textbox(label="Icebreaker", lines=2, elem_id="icebreaker")
                        with gr.Accordion("Memory policy", open=False):
                            memory = [
                                gr.Number(label=name.replace("_", " ").capitalize(), precision=0,
                                          info=between(MemoryPolicy, name), elem_id=f"memory-{name}")
                                for name in MemoryPolicy.model_fields
                            ]
                    with gr.Column(scale=2):
                        tools = gr.CheckboxGroup([t["name"] for t in tool_catalogue()], label="Tools", elem_id="tools")
                        gr.Markdown(tools_markdown())
                        with gr.Accordion("Argument schemas (JSON Schema, what the model sees)", open=False):
                            gr.JSON({t["name"]: t["arguments"] for t in tool_catalogue()}, show_label=False)
                validation = gr.Markdown(elem_id="validation")
                with gr.Row():
                    save = gr.Button("Save", variant="primary", elem_id="save")
                    new_name = gr.Textbox(show_label=False, placeholder="new profile name", scale=2)
                    save_as = gr.Button("Save as")
                    delete = gr.Button("Delete", variant="stop")
                with gr.Accordion("YAML export / import", open=False):
                    document = gr.Code(language="yaml", label="Profile document (ob-admin config import format)")
                    with gr.Row():
                        export = gr.Button("Export the editor's profile")
                        import_ = gr.Button("Import (saves; all or nothing)")

            with gr.Tab("Playground", id="playground-tab"):
                gr.Markdown("The same message goes to the **edited** profile (unsaved, as in the editor) and the "
                            "**saved** one. Turns are real: they make sessions, and a captured lead is a real lead.")
                context = gr.Code(language="json", label="Tool context (JSON object; seen by tools, never the model)",
                                  value="{}", lines=2)
                sessions = gr.State(Pair())
                with gr.Row():
                    edited_chat = gr.Chatbot(label="Edited (unsaved)", elem_id="edited-chat", height=420,
                                             render_markdown=False)
                    saved_chat = gr.Chatbot(label="Saved profile", elem_id="saved-chat", height=420,
                                            render_markdown=False)
                with gr.Row():
                    message = gr.Textbox(show_label=False, scale=4, elem_id="message",
                                         placeholder="Say something to both… (Enter sends, Shift+Enter starts a "
                                                     "new line; dps help: scheduled messages)")
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    reset = gr.Button("Reset", elem_id="reset")
                play_status = gr.Markdown(elem_id="play-status")

            with gr.Tab("Inspector", id="inspector-tab"):
                with gr.Row():
                    refresh = gr.Button("Refresh sessions")
                    session_id = gr.Textbox(label="Session id (click a row)", scale=3)
                    show = gr.Button("Show")
                inspect_status = gr.Markdown(elem_id="inspect-status")
                session_table = gr.Dataframe(headers=SESSION_COLUMNS, interactive=False, label="Recent sessions "
                                             "(newest first)", type="array", elem_id="sessions")
                shown = gr.State(None)  # (client id, session id) of the session shown: Show and a cancel set it
                schedule_table = gr.Dataframe(headers=SCHEDULE_COLUMNS, interactive=False, type="array", wrap=True,
                                              label="Scheduled messages waiting in the session shown (soonest first)",
                                              elem_id="schedules")
                with gr.Row():
                    schedule_id = gr.Textbox(label="Scheduled message id (click a row)", scale=3,
                                             elem_id="schedule-id")
                    cancel_schedule = gr.Button("Cancel scheduled message", variant="stop", elem_id="cancel-schedule")
                with gr.Row():
                    transcript = gr.Chatbot(label="Transcript", height=420, render_markdown=False)
                    with gr.Column():
                        snapshot = gr.JSON(label="Config snapshot the session uses")
                        lead = gr.JSON(label="Lead")
                        events = gr.JSON(label="Events it emitted")
                        session_context = gr.JSON(label="Tool context")
                gr.Markdown("### Dead-letter queue")
                with gr.Row():
                    dlq_refresh = gr.Button("List dead letters")
                    redrive = gr.Button("Redrive all")
                dlq_table = gr.Dataframe(headers=DLQ_COLUMNS, interactive=False, type="array")
                dlq_status = gr.Markdown()

        form: list[Any] = [system_message, icebreaker, model, temperature, tools, iterations, seconds, base_url,
                           credentials, timezone, *memory]
        if len(form) != len(FORM_FIELDS):
            raise RuntimeError("the editor's components and FORM_FIELDS differ")
        editor = [*form, loaded, status, validation, profile]
        playground = [edited_chat, saved_chat, sessions, message, play_status]
        inspector = [transcript, snapshot, lead, events, session_context, schedule_table, schedule_id, shown,
                     inspect_status]
        private: dict[str, Any] = {"api_visibility": "private"}  # the page's listeners are not an API

        def wire(event: Any, handler: Callable[..., View | Iterator[View]], failed: Callable[[str], View],
                 inputs: list[Any], outputs: list[Any], **options: Any) -> None:
            event(listener(handler, failed), inputs, outputs, **private, **options)

        for event in (reload.click, page.load):
            wire(event, on.load, EditorView, [client, profile], editor)
        wire(profile.input, on.load, EditorView, [client, profile], editor)
        wire(client.input, on.pick_client, EditorView, [client], editor)
        for component in form:  # typed on while a check runs: the last keystroke's check runs after it
            wire(component.input, on.validate, NoteView, [loaded, *form], [validation], trigger_mode="always_last")
        wire(save.click, on.save, EditorView, [loaded, client, profile, *form], editor)
        wire(save_as.click, on.save_as, EditorView, [loaded, new_name, *form], editor)
        wire(delete.click, on.delete, EditorView, [loaded, client, profile], editor)
        wire(export.click, on.export, DocumentView, [loaded, *form], [validation, document])
        wire(import_.click, on.import_, EditorView, [loaded, document], editor)

        chat_inputs = [loaded, context, sessions, edited_chat, saved_chat, message, *form]
        for event in (send.click, message.submit):
            wire(event, on.send, PlaygroundView, chat_inputs, playground)
        wire(reset.click, on.reset, PlaygroundView, [loaded, context, *form], playground)

        for event in (refresh.click, page.load, client.input):  # the picked client's sessions, from the start
            wire(event, on.sessions, TableView, [client], [session_table, inspect_status])
        session_table.select(on.pick_id, [session_table], [session_id], **private)
        wire(show.click, on.show, SessionView, [client, session_id], inspector)
        schedule_table.select(on.pick_id, [schedule_table], [schedule_id], **private)
        wire(cancel_schedule.click, on.cancel_schedule, SessionView, [shown, schedule_id], inspector)
        wire(dlq_refresh.click, on.dead_letters, TableView, [], [dlq_table, dlq_status])
        wire(redrive.click, on.redrive, TableView, [], [dlq_table, dlq_status])
    return page
