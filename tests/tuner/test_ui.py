"""The page's side of the tuner: chat bubbles for a turn and a stored transcript, the tools list, that the
page builds, and every listener (`Handlers`) called as the page calls it, errors included."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import gradio as gr
import pytest
from gradio.state_holder import SessionState
from support.targets import make_client

from openbrain.aws.backend import Backend
from openbrain.services.sessions import Message
from openbrain.storage.orm import AgentConfig, ChatSession
from openbrain.tuner.ui import (
    ANSWERING,
    RESTARTED,
    SCHEDULE_COLUMNS,
    SCHEDULED,
    EditorView,
    Handlers,
    NoteView,
    PlaygroundView,
    SessionView,
    build,
    listener,
    plain,
    problem,
    tools_markdown,
    transcript_messages,
    turn_messages,
)
from openbrain.tuner.workbench import FORM_FIELDS, Pair, SessionDetail, Turn, Workbench

pytestmark = pytest.mark.integration


def test_a_turn_shows_the_reply_and_under_it_its_tool_calls_and_events() -> None:
    turn = Turn(reply="Saved.", session_id="s1", tool_calls=["capture_lead"],
                events=[{"type": "lead.captured.v1", "event_id": "e1", "object_id": "l1"}], ended=True)

    user, reply, note = turn_messages("my email is ada@example.com", turn)

    assert user == {"role": "user", "content": "my email is ada@example.com"}
    assert reply == {"role": "assistant", "content": "Saved."}
    assert note == {"role": "assistant",
                    "content": "tools: capture_lead · events: lead.captured.v1 (e1) · conversation ended"}


def test_an_error_takes_the_place_of_the_reply() -> None:
    assert turn_messages("hi", Turn(error="profile 'draft' not found")) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "⚠ profile 'draft' not found"},
    ]
    assert turn_messages("", Turn(reply="Hello!")) == [{"role": "assistant", "content": "Hello!"}]


def test_a_streaming_turn_shows_the_message_then_the_tool_calls_and_the_reply_as_they_come() -> None:
    # given the events of a turn: a first step's words, a tool call, then the reply streamed in pieces
    events: list[dict[str, Any]] = [
        {"type": "turn.started", "session_id": "s1", "client_id": "acme", "profile_name": "default", "turn": 1},
        {"type": "token", "text": "Let me", "step": 1},
        {"type": "tool.started", "id": "c1", "name": "calculator"},
        {"type": "tool.finished", "id": "c1", "name": "calculator", "ok": True},
        {"type": "token", "text": "(17 + 5)", "step": 2},
        {"type": "token", "text": " * 3 = 66", "step": 2},
        {"type": "message", "text": "(17 + 5) * 3 = 66"},
        {"type": "turn.finished", "session_id": "s1", "client_id": "acme", "profile_name": "default",
         "model": "offline", "events": [], "tool_calls": ["calculator"], "stopped": None, "ended": False,
         "usage": {}},
    ]
    question = {"role": "user", "content": "what is (17 + 5) * 3"}

    # when the playground folds them into the pane, one after the other
    turn, histories = Turn(done=False), [turn_messages(question["content"], Turn(done=False))]
    for event in events:
        turn = turn.after(event)
        histories.append(turn_messages(question["content"], turn))

    # then the question shows before anything else, the tool call as a note while it runs and once it ran,
    # the reply as the text of the latest step so far, and last the stored reply with the notes under it
    def calls(status: str, outcome: str) -> dict[str, Any]:
        return {"role": "assistant", "content": outcome, "metadata": {"title": "calls calculator", "status": status}}

    assert histories == [
        [question],
        [question],
        [question, {"role": "assistant", "content": "Let me"}],
        [question, calls("pending", "running…"), {"role": "assistant", "content": "Let me"}],
        [question, calls("done", "done"), {"role": "assistant", "content": "Let me"}],
        [question, calls("done", "done"), {"role": "assistant", "content": "(17 + 5)"}],
        [question, calls("done", "done"), {"role": "assistant", "content": "(17 + 5) * 3 = 66"}],
        [question, calls("done", "done"), {"role": "assistant", "content": "(17 + 5) * 3 = 66"}],
        [question, {"role": "assistant", "content": "(17 + 5) * 3 = 66"},
         {"role": "assistant", "content": "tools: calculator"}],
    ]
    assert turn.session_id == "s1" and turn.done


def test_a_tool_that_fails_is_marked_so_while_the_turn_streams() -> None:
    turn = Turn(done=False).after({"type": "tool.started", "id": "c1", "name": "capture_lead"})
    turn = turn.after({"type": "tool.finished", "id": "c1", "name": "capture_lead", "ok": False})

    [_, note] = turn_messages("hi", turn)

    assert note["content"] == "failed (the tool answered with an error)" and note["metadata"]["status"] == "done"


def test_a_stored_transcript_shows_tool_calls_and_results_as_notes(backend: Backend) -> None:
    bench = Workbench(backend)
    values = {**bench.load("acme", "default").values, "model": "offline"}
    *_, (_, _, pair) = bench.compare("acme", "default", values, {}, None, Pair(), "what is 6 * 7")

    bubbles = transcript_messages(bench.session("acme", pair.edited or ""))

    assert [b["role"] for b in bubbles] == ["assistant", "user", "assistant", "assistant", "assistant"]
    assert bubbles[2]["metadata"]["title"] == "calls calculator"
    assert bubbles[3]["metadata"]["title"] == "result of calculator" and "42" in bubbles[3]["content"]
    assert "42" in bubbles[4]["content"]


def test_the_tools_list_names_each_argument_and_its_type() -> None:
    text = tools_markdown()

    assert "**calculator** (`expression: string`)" in text
    assert "`medications?: string[]`" in text and "`email?: string`" in text


def test_the_page_builds_with_the_editor_playground_and_inspector(backend: Backend) -> None:
    page = build(Workbench(backend), client_id="acme")

    labels = {getattr(block, "label", None) for block in page.blocks.values()}
    assert {"Client", "Profile", "Model", "System message", "Icebreaker", "Tools", "Edited (unsaved)",
            "Saved profile", "Transcript", "Lead", "Scheduled messages waiting in the session shown (soonest first)",
            "Scheduled message id (click a row)"} <= labels
    assert RESTARTED.startswith("—")


# --- the page's listeners (Handlers), as the page calls them ----------------------------------------------

CLIENT = "acme"


@pytest.fixture
def on(backend: Backend) -> Handlers:
    return Handlers(Workbench(backend))


def form_of(view: EditorView, **changes: Any) -> list[Any]:
    assert view.loaded is not None
    values = {**view.loaded.values, "model": "offline", **changes}
    return [values[name] for name in FORM_FIELDS]


def test_a_load_fills_the_form_the_state_the_status_and_the_profile_picker(on: Handlers) -> None:
    view = on.load(CLIENT, "default")

    outputs = view.outputs()
    assert len(outputs) == len(FORM_FIELDS) + 4
    assert outputs[len(FORM_FIELDS)] == view.loaded
    assert outputs[len(FORM_FIELDS) + 1] == ("**acme / default** — not stored yet (built-in defaults) · model "
                                            "openai:gpt-4o-mini → offline (no OPENAI\\_API\\_KEY)")
    assert outputs[-1]["choices"] == ["default"] and outputs[-1]["value"] == "default"


def test_save_writes_the_loaded_profile_and_refuses_when_the_pickers_show_another(on: Handlers) -> None:
    loaded = on.load(CLIENT, "default")
    saved = on.save(loaded.loaded, CLIENT, "default", *form_of(loaded, icebreaker="Hi from A."))
    assert saved.message == "✓ saved as version 1" and saved.loaded and saved.loaded.version == 1
    on.save_as(saved.loaded, "sales", *form_of(saved, icebreaker="Sales here."))

    # the operator picked `sales` but its load failed (or is still running): the form still holds `default`
    save = listener(on.save, EditorView)
    outputs = save(saved.loaded, CLIENT, "sales", *form_of(saved, icebreaker="Hi from A, again."))

    assert outputs[len(FORM_FIELDS) + 2].startswith("⚠ the editor holds acme / default, not acme / sales")
    assert AgentConfig.get(CLIENT, "sales").icebreaker == "Sales here."
    assert AgentConfig.get(CLIENT, "default").icebreaker == "Hi from A."


def test_a_conflict_or_a_bad_value_is_a_message_on_the_page(on: Handlers) -> None:
    loaded = on.load(CLIENT, "default")
    on.save(loaded.loaded, CLIENT, "default", *form_of(loaded))  # someone else saved version 1 meanwhile
    save = listener(on.save, EditorView)

    conflict = save(loaded.loaded, CLIENT, "default", *form_of(loaded))[len(FORM_FIELDS) + 2]
    invalid = save(loaded.loaded, CLIENT, "default", *form_of(loaded, temperature=5))[len(FORM_FIELDS) + 2]
    *_, unloaded = [*listener(on.send, PlaygroundView)(None, "{}", Pair(), [], [], "hi", *form_of(loaded))][-1]

    assert conflict.startswith("⚠ ") and "reload" in conflict
    assert invalid.startswith("⚠ temperature must be between 0 and 2")
    assert unloaded.startswith("⚠ no profile is loaded")


def test_an_unexpected_error_is_logged_and_named_not_shown_as_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> NoteView:
        raise RuntimeError("boom")

    outputs = listener(broken, NoteView)()

    assert outputs == "⚠ unexpected RuntimeError; see ob-tuner's output"  # one output: its value, as gradio wants
    assert "boom" in caplog.text


def test_delete_export_and_import_through_the_page(on: Handlers) -> None:
    loaded = on.load(CLIENT, "default")
    sales = on.save_as(loaded.loaded, "sales", *form_of(loaded, system_message="Sell."))

    document = on.export(sales.loaded, *form_of(sales, system_message="Sell more."))
    assert document.outputs()[0].startswith("✓ exported") and "Sell more." in (document.document or "")
    imported = on.import_(sales.loaded, document.document or "")
    assert imported.message.startswith("✓ imported: created none, updated \\['sales'\\]")
    assert imported.loaded and imported.loaded.values["system_message"] == "Sell more."

    other = listener(on.import_, EditorView)(imported.loaded, (document.document or "").replace("acme", "globex"))
    assert other[len(FORM_FIELDS) + 2].startswith("⚠ the document is for client 'globex', not 'acme'")

    deleted = on.delete(imported.loaded, CLIENT, "sales")
    assert deleted.message == "✓ deleted 'sales'" and deleted.loaded and deleted.loaded.name == "default"
    assert deleted.profiles == ["default"]


def test_the_playground_marks_new_sessions_when_the_form_changes(on: Handlers) -> None:
    loaded = on.load(CLIENT, "default")
    sending, *_, first = on.send(loaded.loaded, "{}", Pair(), [], [], "what is 6 * 7", *form_of(loaded))
    *_, again = on.send(loaded.loaded, "{}", first.pair, first.edited, first.saved, "and again", *form_of(loaded))
    *_, changed = on.send(loaded.loaded, "{}", again.pair, again.edited, again.saved, "hi",
                          *form_of(loaded, temperature=0.1))

    # the message box empties as the message is sent (the first view), and the last view leaves it alone
    assert sending.outputs()[3] == "" and first.edited and "42" in first.edited[1]["content"]
    assert first.outputs()[3] == gr.update()
    assert again.edited and RESTARTED not in [b["content"] for b in again.edited]
    assert changed.edited and [b["content"] for b in changed.edited].count(RESTARTED) == 1
    assert changed.pair and again.pair and changed.pair.edited != again.pair.edited
    [bad_context] = listener(on.send, PlaygroundView)(loaded.loaded, "{oops", Pair(), [], [], "hi", *form_of(loaded))
    assert bad_context[-1].startswith("⚠ tool context is not valid JSON")


def test_send_shows_the_message_at_once_then_the_replies_and_says_who_is_answering(on: Handlers) -> None:
    loaded = on.load(CLIENT, "default")

    first, *streaming, last = on.send(loaded.loaded, "{}", Pair(), [], [], "what is 6 * 7", *form_of(loaded))

    # the first view: the message in both panes, no reply yet, the box emptied, the edited side answering
    question = {"role": "user", "content": "what is 6 * 7"}
    assert (first.edited, first.saved) == ([question], [question])
    assert first.outputs()[3] == "" and first.message == f"… the edited profile is {ANSWERING}"
    # then views while they answer (the saved side only once the edited one is done), and the message box
    # is left to the person: they may type the next message meanwhile
    assert streaming and all(view.outputs()[3] == gr.update() and ANSWERING in view.message for view in streaming)
    # last: both replies as stored, nothing answering any more
    assert last.message == "" and last.edited and last.saved
    assert last.edited[1]["content"] == last.saved[1]["content"] == "6 * 7 = 42"
    assert last.pair and ChatSession.get(CLIENT, last.pair.saved).turn_count == 1


def test_the_inspector_lists_shows_and_finds_no_dead_letters(on: Handlers) -> None:
    loaded = on.load(CLIENT, "default")
    *_, sent = on.send(loaded.loaded, "{}", Pair(), [], [], "what is 6 * 7", *form_of(loaded))

    table = on.sessions(CLIENT)
    assert table.rows and len(table.rows) == 2 and table.message == "✓ 2 recent session(s)"
    assert sent.pair and sent.pair.saved == table.rows[0][0]  # newest first: the saved side ran second
    shown = on.show(CLIENT, table.rows[0][0]).outputs()
    assert shown[-1].startswith("✓ session ") and "42" in shown[0][-1]["content"]
    assert on.dead_letters().outputs() == [[], "✓ 0 dead-lettered message(s)"]


def test_the_inspector_shows_a_sessions_scheduled_messages_and_cancels_the_one_picked(on: Handlers) -> None:
    # given a dps command sent from the playground (Shift+Enter put its prompt on a line of its own)
    loaded = on.load(CLIENT, "default")
    *_, sent = on.send(loaded.loaded, "{}", Pair(), [], [], "dps u in 10 minutes\nDrink water", *form_of(loaded))
    assert sent.pair and sent.edited and sent.edited[1]["content"].startswith("Scheduled a message to you")
    session_id = sent.pair.edited or ""
    listed = on.sessions(CLIENT).rows or []
    assert {row[0]: row[-1] for row in listed} == {sent.pair.edited: 1, sent.pair.saved: 1}  # `scheduled`, last

    # when the session is shown
    shown = on.show(CLIENT, session_id)
    *_, rows, picked, held, line = shown.outputs()

    # then its waiting message is a row, the id box is emptied, and the session shown is the one a cancel acts on
    [[schedule_id, recipient, when, next_at, prompt, created_by, deliveries]] = rows
    assert (recipient, prompt, created_by, deliveries) == ("user", "Drink water", "user", 0)
    assert when.endswith(" UTC") and schedule_id in sent.edited[1]["content"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", next_at)
    assert (picked, held) == ("", (CLIENT, session_id))
    assert line.endswith("1 scheduled message(s) waiting")

    # when the operator cancels it
    *_, rows, picked, held, line = on.cancel_schedule(held, schedule_id).outputs()

    # then the table is empty, and the line says what was cancelled
    assert (rows, picked, held) == ([], "", (CLIENT, session_id))
    assert line.startswith(f"✓ cancelled scheduled message {schedule_id} to user (") and "0 waiting" in line

    # and cancelling it again, or with nothing shown, is a line on the page that changes nothing else
    cancel = listener(on.cancel_schedule, SessionView)
    *unchanged, again = cancel(held, schedule_id)
    assert again.startswith("⚠ no scheduled message") and all(u == gr.update() for u in unchanged)
    assert cancel(None, schedule_id)[-1] == "⚠ show a session first"


def test_a_cancel_runs_through_gradio_as_the_browser_sends_it(backend: Backend, on: Handlers) -> None:
    loaded = on.load(CLIENT, "default")
    *_, sent = on.send(loaded.loaded, "{}", Pair(), [], [], "dps c every day at 8am\nA monkey fact",
                       *form_of(loaded))
    assert sent.pair
    session_id = sent.pair.saved or ""
    [waiting] = on.workbench.session(CLIENT, session_id).schedules

    # when gradio runs the cancel with the session held in the page's State
    outputs = as_gradio_runs(build(on.workbench, client_id=CLIENT), "cancel_schedule", {0: (CLIENT, session_id)},
                             None, waiting.schedule_id)

    # then the table gradio sends back is empty and the session has no schedule left
    assert outputs[-1].startswith(f"✓ cancelled scheduled message {waiting.schedule_id} to chatbot (every day")
    assert outputs[5]["data"] == [] and outputs[5]["headers"] == SCHEDULE_COLUMNS
    assert ChatSession.get(CLIENT, session_id).schedules is None


def test_transcript_messages_a_schedule_made_are_marked() -> None:
    made = SessionDetail(summary={}, config_snapshot={}, model_label="offline", context={}, lead=None, events=[],
                         schedules=[], transcript=[
                             Message(role="assistant", content="Drink water", scheduled=True),
                             Message(role="user", content="a monkey fact", scheduled=True),
                             Message(role="assistant", content="Capuchins use tools."),
                             Message(role="user", content="thanks")])

    assert [b["content"] for b in transcript_messages(made)] == [
        f"{SCHEDULED}Drink water", f"{SCHEDULED}a monkey fact", "Capuchins use tools.", "thanks"]
    assert SCHEDULED == "⏰ scheduled: "


def test_messages_are_text_not_markdown() -> None:
    assert problem("profile '*x*' <img src=y> [a](b)") == "⚠ profile '\\*x\\*' &lt;img src=y&gt; \\[a\\](b)"
    assert plain("a_b") == "a\\_b"


# --- the page as gradio runs it: preprocess, the listener, postprocess --------------------------------------

def as_gradio_runs(page: gr.Blocks, name: str, state: dict[str, Any], *inputs: Any) -> list[Any]:
    """The outputs the browser gets from the page's first listener called `name`, given what the browser
    sends for its inputs (`state`: a State component's index among the inputs -> its value)."""
    [fn, *_] = [fn for fn in page.fns.values() if fn.name == name]
    session = SessionState(page)
    for index, value in state.items():
        session[fn.inputs[index]._id] = value
    return list(asyncio.run(page.process_api(fn, list(inputs), state=session))["data"])


def test_validate_as_you_type_answers_one_line_for_its_one_output(backend: Backend) -> None:
    # given the page and the profile it holds
    bench = Workbench(backend)
    loaded = bench.load("public", "default")
    form = [loaded.values[name] for name in FORM_FIELDS]

    # when gradio runs the validation of an edit
    outputs = as_gradio_runs(build(bench), "validate", {0: loaded}, None, *form)

    # then the one Markdown gets the line (not gradio's "Error": a list for one output is refused)
    assert outputs == ["✓ valid · model openai:gpt-4o-mini → offline (no OPENAI\\_API\\_KEY)"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("temperature", 3, "⚠ temperature must be between 0 and 2, got 3"),
    ("max_iterations", 51, "⚠ max\\_iterations must be between 1 and 50 (a whole number), got 51"),
    ("max_execution_time", 0, "⚠ max\\_execution\\_time must be between 1 and 900, got 0"),
    ("memory.max_stored_bytes", 5, "⚠ memory.max\\_stored\\_bytes must be between"),
])
def test_an_out_of_range_number_reaches_the_listener_and_gets_the_schemas_message(
    backend: Backend, field: str, value: float, message: str
) -> None:
    # given an edit out of the field's range, as the browser sends it
    bench = Workbench(backend)
    loaded = bench.load("public", "default")
    form = [value if name == field else loaded.values[name] for name in FORM_FIELDS]

    # when gradio runs the validation (gradio's own bounds check would raise its toast here instead)
    [line] = as_gradio_runs(build(bench), "validate", {0: loaded}, None, *form)

    # then the line under the form has the profile schema's message
    assert line.startswith(message)


def labelled(page: gr.Blocks, prefix: str) -> Any:
    """The one component of `page` whose label starts with `prefix`."""
    [block] = [block for block in page.blocks.values() if (getattr(block, "label", None) or "").startswith(prefix)]
    return block


def test_the_page_opens_on_public_where_obs_sessions_are(backend: Backend) -> None:
    # given a client whose id sorts before `public`
    make_client(None, None, "acme")

    # then the page opens on `public` and offers both; `--client-id` opens on the one it names
    picker = labelled(build(Workbench(backend)), "Client")
    assert picker.value == "public"
    assert [choice[0] for choice in picker.choices] == ["acme", "public"]
    assert labelled(build(Workbench(backend), client_id="acme"), "Client").value == "acme"


def test_the_page_fills_the_inspector_when_it_opens_and_when_the_client_changes(backend: Backend) -> None:
    page = build(Workbench(backend))

    listing = [fn for fn in page.fns.values() if fn.name == "sessions"]
    assert {trigger for fn in listing for _, trigger in fn.targets} == {"click", "load", "input"}
    assert all(fn.outputs[0] is labelled(page, "Recent sessions") for fn in listing)
