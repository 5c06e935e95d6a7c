"""What the page makes of the workbench's results: chat bubbles for a turn and a stored transcript, the
tools list, and that the page builds on a backend."""

from __future__ import annotations

import pytest

from openbrain.backend import Backend
from openbrain.tuner.ui import RESTARTED, build, tools_markdown, transcript_messages, turn_messages
from openbrain.tuner.workbench import Pair, Turn, Workbench

pytestmark = pytest.mark.integration


def test_a_turn_shows_the_reply_and_under_it_its_tool_calls_and_events() -> None:
    turn = Turn(reply="Saved.", session_id="s1", tool_calls=["capture_lead"],
                events=[{"type": "lead.captured.v1", "event_id": "e1", "object_id": "l1"}], ended=True)

    user, reply, note = turn_messages("my email is ada@example.com", turn)

    assert user == {"role": "user", "content": "my email is ada@example.com"}
    assert reply == {"role": "assistant", "content": "Saved."}
    assert note == {"role": "assistant",
                    "content": "*tools: capture_lead · events: lead.captured.v1 (e1) · conversation ended*"}


def test_an_error_takes_the_place_of_the_reply() -> None:
    assert turn_messages("hi", Turn(error="profile 'draft' not found")) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "⚠ profile 'draft' not found"},
    ]
    assert turn_messages("", Turn(reply="Hello!")) == [{"role": "assistant", "content": "Hello!"}]


def test_a_stored_transcript_shows_tool_calls_and_results_as_notes(backend: Backend) -> None:
    bench = Workbench(backend)
    values = {**bench.load("acme", "default").values, "model": "offline"}
    _, _, pair = bench.compare("acme", "default", values, {}, None, Pair(), "what is 6 * 7")

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
            "Saved profile", "Transcript", "Lead"} <= labels
    assert RESTARTED.startswith("—")
