"""The gradio page of `ob-tuner`: a profile editor, a side-by-side playground and an inspector.

Every handler here only converts between gradio values and one `Workbench` call; what a button does is
defined (and tested) in `openbrain.tuner.workbench`. Errors become a message on the page, never a
traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import gradio as gr

from openbrain.errors import OpenBrainError
from openbrain.orm.agent_config import DEFAULT_PROFILE, MAX_EXECUTION_TIME_RANGE, MAX_ITERATIONS_RANGE, MemoryPolicy
from openbrain.tuner.workbench import (
    FORM_FIELDS,
    Pair,
    Profile,
    SessionDetail,
    Turn,
    Workbench,
    parse_context,
    tool_catalogue,
)

SESSION_COLUMNS = ["session_id", "profile", "turns", "created_at", "updated_at", "lead_id", "events", "ended"]
DLQ_COLUMNS = ["target", "message_id", "event_type", "client_id", "receive_count", "redrive_count", "sent_at", "error"]
Chat = list[dict[str, Any]]
RESTARTED = "— new sessions: the profile, its edits or the tool context changed —"


def ok(text: str) -> str:
    return f"✓ {text}"


def problem(text: str) -> str:
    return f"⚠ {text}"


def _type_of(spec: dict[str, Any]) -> str:
    """A JSON schema's type in a few characters: `string`, `string[]`, `string | null` -> `string`."""
    if "anyOf" in spec:
        kinds = [_type_of(option) for option in spec["anyOf"] if option.get("type") != "null"]
        return " | ".join(kinds) or "any"
    if spec.get("type") == "array":
        return _type_of(spec.get("items", {})) + "[]"
    return str(spec.get("type", "any"))


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
    reply naming the tool calls and events of the turn."""
    bubbles: Chat = [{"role": "user", "content": message}] if message else []
    if turn.error:
        return [*bubbles, {"role": "assistant", "content": problem(turn.error)}]
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
        bubbles.append({"role": "assistant", "content": "*" + " · ".join(notes) + "*"})
    return bubbles


def transcript_messages(detail: SessionDetail) -> Chat:
    """A stored session as chat bubbles: tool calls and tool results as titled notes."""
    bubbles: Chat = []
    for row in detail.transcript:
        if row["role"] == "human":
            bubbles.append({"role": "user", "content": row["content"]})
        elif row["role"] == "tool":
            bubbles.append({"role": "assistant", "content": row["content"],
                            "metadata": {"title": f"result of {row.get('tool')}"}})
        else:
            if row["content"]:
                bubbles.append({"role": "assistant", "content": row["content"]})
            for call in row.get("tool_calls", []):
                bubbles.append({"role": "assistant", "content": json.dumps(call["args"], ensure_ascii=False),
                                "metadata": {"title": f"calls {call['name']}"}})
    return bubbles


def build(workbench: Workbench, client_id: str | None = None, title: str = "OpenBrain tuner") -> gr.Blocks:
    """The tuner's page on `workbench`; `client_id` is picked first."""
    first_client = client_id or workbench.clients()[0]
    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"# {title}\nBackend: **{workbench.backend.kind}** · edit a profile, try it beside the saved "
                    "one, look at what sessions did.")
        version = gr.State(None)  # the loaded profile's stored version (None: not stored)
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
                                               info="offline, or openai:<model> (e.g. openai:gpt-4o-mini)")
                            temperature = gr.Slider(0, 2, step=0.05, label="Temperature")
                        with gr.Row():
                            iterations = gr.Number(label="Max iterations", precision=0,
                                                   minimum=MAX_ITERATIONS_RANGE[0], maximum=MAX_ITERATIONS_RANGE[1],
                                                   info="model calls per turn before it stops")
                            seconds = gr.Number(label="Max execution time (s)", info="API Gateway gives up at 29 s",
                                                minimum=MAX_EXECUTION_TIME_RANGE[0],
                                                maximum=MAX_EXECUTION_TIME_RANGE[1])
                        system_message = gr.Textbox(label="System message", lines=6, elem_id="system-message")
                        icebreaker = gr.Textbox(label="Icebreaker", lines=2, elem_id="icebreaker")
                        with gr.Accordion("Memory policy", open=False):
                            memory = [
                                gr.Number(label=name.replace("_", " ").capitalize(), precision=0,
                                          minimum=low, maximum=high, info=f"{low}–{high}")
                                for name, (low, high) in MemoryPolicy.LIMITS.items()
                            ]
                    with gr.Column(scale=2):
                        tools = gr.CheckboxGroup([t["name"] for t in tool_catalogue()], label="Tools", elem_id="tools")
                        gr.Markdown(tools_markdown())
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
                    edited_chat = gr.Chatbot(label="Edited (unsaved)", elem_id="edited-chat", height=420)
                    saved_chat = gr.Chatbot(label="Saved profile", elem_id="saved-chat", height=420)
                with gr.Row():
                    message = gr.Textbox(show_label=False, placeholder="Say something to both…", scale=4,
                                         elem_id="message")
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
                                             "(newest first)", type="array")
                with gr.Row():
                    transcript = gr.Chatbot(label="Transcript", height=420)
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

        form: list[Any] = [system_message, icebreaker, model, temperature, tools, iterations, seconds, *memory]
        assert len(form) == len(FORM_FIELDS)

        def values_of(*form_values: Any) -> dict[str, Any]:
            return dict(zip(FORM_FIELDS, form_values, strict=True))

        def shown(loaded: Profile) -> list[Any]:
            return [loaded.values[name] for name in FORM_FIELDS]

        def loaded_state(loaded: Profile) -> str:
            where = f"version {loaded.version}" if loaded.stored else "not stored yet (built-in defaults)"
            return f"**{loaded.client_id} / {loaded.name}** — {where}"

        def guarded(fn: Callable[..., Any], failure: Callable[[str], Any]) -> Callable[..., Any]:
            def run(*args: Any) -> Any:
                try:
                    return fn(*args)
                except OpenBrainError as exc:
                    return failure(exc.message)
            return run

        keep_form = [gr.update() for _ in form]

        def on_load(client_id: str, name: str) -> list[Any]:
            loaded = workbench.load(client_id, name or DEFAULT_PROFILE)
            return [*shown(loaded), loaded.version, loaded_state(loaded), "",
                    gr.update(choices=workbench.profiles(client_id), value=loaded.name)]

        load_outputs = [*form, version, status, validation, profile]

        def load_failed(text: str) -> list[Any]:
            return [*keep_form, gr.update(), problem(text), "", gr.update()]

        def on_client(client_id: str) -> list[Any]:
            return on_load(client_id, DEFAULT_PROFILE)

        def on_validate(client_id: str, name: str, *form_values: Any) -> str:
            from openbrain.tuner.workbench import config_from_values

            config_from_values(client_id, name, values_of(*form_values))
            return ok("valid")

        def on_save(client_id: str, name: str, loaded_version: int | None, *form_values: Any) -> list[Any]:
            saved = workbench.save(client_id, name, values_of(*form_values), loaded_version)
            return [*shown(saved), saved.version, loaded_state(saved), ok(f"saved as version {saved.version}"),
                    gr.update(choices=workbench.profiles(client_id), value=saved.name)]

        def on_save_as(client_id: str, name: str, *form_values: Any) -> list[Any]:
            saved = workbench.save_as(client_id, name, values_of(*form_values))
            return [*shown(saved), saved.version, loaded_state(saved), ok(f"saved new profile {saved.name!r}"),
                    gr.update(choices=workbench.profiles(client_id), value=saved.name)]

        def on_delete(client_id: str, name: str, loaded_version: int | None) -> list[Any]:
            workbench.delete(client_id, name, loaded_version)
            result = on_load(client_id, DEFAULT_PROFILE)
            result[len(form) + 2] = ok(f"deleted {name!r}")
            return result

        def edit_failed(text: str) -> list[Any]:
            return [*keep_form, gr.update(), gr.update(), problem(text), gr.update()]

        def on_export(client_id: str, name: str, *form_values: Any) -> tuple[str, str]:
            return workbench.export_yaml(client_id, name, values_of(*form_values)), ok("exported the editor's profile")

        def on_import(client_id: str, name: str, text: str) -> list[Any]:
            report = workbench.import_yaml(client_id, text)
            result = on_load(client_id, name or DEFAULT_PROFILE)
            result[len(form) + 2] = ok(f"imported: created {report.created or 'none'}, updated "
                                       f"{report.updated or 'none'}, unchanged {report.unchanged or 'none'}")
            return result

        def on_send(client_id: str, name: str, loaded_version: int | None, context_text: str, pair: Pair,
                    edited_history: Chat, saved_history: Chat, text: str, *form_values: Any) -> list[Any]:
            if not (text or "").strip():
                return [gr.update(), gr.update(), pair, gr.update(), problem("type a message first")]
            try:
                tool_context = parse_context(context_text)
            except OpenBrainError as exc:
                return [gr.update(), gr.update(), pair, gr.update(), problem(exc.message)]
            edited, saved, pair = workbench.compare(client_id, name, values_of(*form_values), tool_context,
                                                    loaded_version, pair, text)
            if pair.restarted:
                divider: Chat = [{"role": "assistant", "content": RESTARTED}] if edited_history else []
                edited_history, saved_history = [*(edited_history or []), *divider], [*(saved_history or []), *divider]
            return [[*edited_history, *turn_messages(text, edited)], [*saved_history, *turn_messages(text, saved)],
                    pair, "", ""]

        def on_reset(client_id: str, name: str, loaded_version: int | None, context_text: str,
                     *form_values: Any) -> list[Any]:
            edited, saved, pair = workbench.reset(client_id, name, values_of(*form_values),
                                                  parse_context(context_text), loaded_version)
            return [turn_messages("", edited), turn_messages("", saved), pair, ok("new sessions started")]

        def on_sessions(client_id: str) -> tuple[list[list[Any]], str]:
            rows = workbench.recent_sessions(client_id)
            return [[row[c] for c in SESSION_COLUMNS] for row in rows], ok(f"{len(rows)} recent session(s)")

        def on_pick(table: Any, event: gr.SelectData) -> str:
            row = event.index[0] if isinstance(event.index, list | tuple) else event.index
            return str(table[row][0]) if table is not None and len(table) > row else ""

        def on_show(client_id: str, picked: str) -> list[Any]:
            detail = workbench.session(client_id, picked)
            summary = detail.summary
            return [transcript_messages(detail), detail.config_snapshot, detail.lead, detail.events, detail.context,
                    ok(f"session {summary['session_id']}: {summary['turns']} turn(s), profile {summary['profile']}"
                       + (f", {summary['trimmed_messages']} older message(s) trimmed" if summary["trimmed_messages"]
                          else ""))]

        def on_dlq() -> tuple[list[list[Any]], str]:
            letters = workbench.dead_letters()
            return [[d[c] for c in DLQ_COLUMNS] for d in letters], ok(f"{len(letters)} dead-lettered message(s)")

        def on_redrive() -> tuple[list[list[Any]], str]:
            results = workbench.redrive()
            moved = ", ".join(f"{r.target}: moved {r.moved}, processed {r.processed}, failed {r.failed}"
                              for r in results)
            letters = workbench.dead_letters()
            return [[d[c] for c in DLQ_COLUMNS] for d in letters], ok(moved)

        client.change(guarded(on_client, load_failed), [client], load_outputs)
        profile.input(guarded(on_load, load_failed), [client, profile], load_outputs)
        reload.click(guarded(on_load, load_failed), [client, profile], load_outputs)
        page.load(guarded(on_load, load_failed), [client, profile], load_outputs)
        for component in form:
            component.input(guarded(on_validate, problem), [client, profile, *form], validation)
        save.click(guarded(on_save, edit_failed), [client, profile, version, *form], load_outputs)
        save_as.click(guarded(on_save_as, edit_failed), [client, new_name, *form], load_outputs)
        delete.click(guarded(on_delete, edit_failed), [client, profile, version], load_outputs)
        export.click(guarded(on_export, lambda text: (gr.update(), problem(text))), [client, profile, *form],
                     [document, validation])
        import_.click(guarded(on_import, edit_failed), [client, profile, document], load_outputs)

        chat_inputs = [client, profile, version, context, sessions, edited_chat, saved_chat, message, *form]
        chat_outputs = [edited_chat, saved_chat, sessions, message, play_status]
        send.click(on_send, chat_inputs, chat_outputs)
        message.submit(on_send, chat_inputs, chat_outputs)
        reset.click(guarded(on_reset, lambda text: [gr.update(), gr.update(), gr.update(), problem(text)]),
                    [client, profile, version, context, *form], [edited_chat, saved_chat, sessions, play_status])

        refresh.click(guarded(on_sessions, lambda text: (gr.update(), problem(text))), [client],
                      [session_table, inspect_status])
        session_table.select(on_pick, [session_table], [session_id])
        show.click(guarded(on_show, lambda text: [*(gr.update() for _ in range(5)), problem(text)]),
                   [client, session_id], [transcript, snapshot, lead, events, session_context, inspect_status])
        dlq_refresh.click(guarded(on_dlq, lambda text: (gr.update(), problem(text))), [], [dlq_table, dlq_status])
        redrive.click(guarded(on_redrive, lambda text: (gr.update(), problem(text))), [], [dlq_table, dlq_status])
    return page
