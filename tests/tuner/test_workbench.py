"""The tuner's operations (openbrain/tuner/workbench.py), driven the way its buttons drive them, on the
embedded backend: profiles saved with optimistic locking, YAML through configs_io, playground turns
through the real chat turn with the offline model, and the inspector reading what those turns stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from support.targets import WebhookServer, fail_until_dead_lettered, load_handler, make_client, put_ssm_secret

from openbrain.aws.backend import Backend
from openbrain.conversation.chat import ChatMessage, chat
from openbrain.conversation.schedules import deliver_due
from openbrain.core.clock import utcnow
from openbrain.core.errors import ConflictError, InvalidInputError, NotFoundError
from openbrain.domain.profile import CONFIG_FIELDS, DEFAULT_PROFILE, DEFAULT_TOOLS, AgentProfile, MemoryPolicy
from openbrain.services.configs_io import load_document
from openbrain.storage.orm import AgentConfig, ChatSession, Lead
from openbrain.tuner.workbench import (
    FORM_FIELDS,
    Pair,
    Workbench,
    config_from_values,
    parse_context,
    profile_from_values,
    tool_catalogue,
)

pytestmark = pytest.mark.integration
CLIENT = "acme"
ARITHMETIC = "what is (17 + 5) * 3"


@pytest.fixture
def bench(backend: Backend) -> Workbench:
    return Workbench(backend)


def offline_values(bench: Workbench, **changes: Any) -> dict[str, Any]:
    """The editor's values for acme's default profile, on the offline model, with `changes`."""
    values = {**bench.load(CLIENT, DEFAULT_PROFILE).values, "model": "offline"}
    values.update(changes)
    return values


def saved_profile(bench: Workbench, name: str = DEFAULT_PROFILE, **changes: Any) -> dict[str, Any]:
    values = offline_values(bench, **changes)
    bench.save(CLIENT, name, values, None)
    return values


# --- the profile editor -------------------------------------------------------------------------------

def test_an_unstored_default_profile_loads_with_the_built_in_values(bench: Workbench) -> None:
    loaded = bench.load(CLIENT, DEFAULT_PROFILE)

    assert loaded.version is None and not loaded.stored
    assert list(loaded.values) == list(FORM_FIELDS)
    assert loaded.values["tools"] == list(DEFAULT_TOOLS)
    assert loaded.values["memory.max_stored_bytes"] == MemoryPolicy().max_stored_bytes
    assert bench.profiles(CLIENT) == [DEFAULT_PROFILE]
    assert CLIENT in bench.clients(CLIENT) and "public" in bench.clients()


def test_the_form_is_the_profile_schema_flattened(bench: Workbench) -> None:
    values = bench.load(CLIENT, DEFAULT_PROFILE).values

    flattened = (*(name for name in CONFIG_FIELDS if name != "memory"),
                 *(f"memory.{name}" for name in MemoryPolicy.model_fields))
    assert flattened == FORM_FIELDS
    assert profile_from_values(values) == AgentProfile()  # the built-in profile, through the form and back


def test_a_loaded_profile_and_a_session_name_the_model_their_turns_run(bench: Workbench) -> None:
    # given no model key: the built-in profile's openai:gpt-4o-mini runs offline
    assert bench.load(CLIENT, DEFAULT_PROFILE).model_label == "openai:gpt-4o-mini → offline (no OPENAI_API_KEY)"

    # when a session starts on it, and the profile is then saved on the offline model
    *_, (_, _, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, offline_values(bench), {}, None, Pair(), "hi")
    saved_profile(bench)

    # then the session's snapshot still runs the fallback, the saved profile runs offline as asked
    assert bench.session(CLIENT, pair.saved or "").model_label == "openai:gpt-4o-mini → offline (no OPENAI_API_KEY)"
    assert bench.load(CLIENT, DEFAULT_PROFILE).model_label == "offline"


def test_save_creates_then_updates_with_the_version_it_loaded(bench: Workbench) -> None:
    values = offline_values(bench, system_message="You sell bicycles.", temperature=0.2)

    first = bench.save(CLIENT, "sales", values, None)
    second = bench.save(CLIENT, "sales", {**first.values, "icebreaker": "Need a bike?"}, first.version)

    assert (first.version, second.version) == (1, 2)
    stored = AgentConfig.get(CLIENT, "sales")
    assert (stored.system_message, stored.icebreaker, stored.temperature, stored.model) == (
        "You sell bicycles.", "Need a bike?", 0.2, "offline")
    assert bench.profiles(CLIENT) == ["default", "sales"]


def test_saving_over_a_profile_someone_else_saved_is_a_conflict_and_writes_nothing(bench: Workbench) -> None:
    loaded = bench.save(CLIENT, "sales", offline_values(bench), None)
    bench.save(CLIENT, "sales", {**loaded.values, "icebreaker": "theirs"}, loaded.version)  # another operator

    with pytest.raises(ConflictError, match="reload"):
        bench.save(CLIENT, "sales", {**loaded.values, "icebreaker": "mine"}, loaded.version)

    assert AgentConfig.get(CLIENT, "sales").icebreaker == "theirs"
    with pytest.raises(ConflictError):  # a "new" profile that someone created meanwhile
        bench.save(CLIENT, "sales", loaded.values, None)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("temperature", 3, "temperature must be between 0 and 2"),
    ("max_iterations", 2.5, "max_iterations must be a whole number"),
    ("max_execution_time", 0, "max_execution_time must be between 1 and 900"),
    ("model", "gpt-4o", "model"),
    ("tools", ["calculator", "rm_rf"], "unknown tool"),
    ("memory.window_messages", 1001, "window_messages must be between 1 and 1000"),
    ("memory.max_stored_bytes", 5, "max_stored_bytes must be between"),
    ("temperature", None, "temperature must be a number"),
])
def test_invalid_values_name_the_field_and_save_nothing(bench: Workbench, field: str, value: Any,
                                                        message: str) -> None:
    values = offline_values(bench, **{field: value}) if "." not in field else {**offline_values(bench), field: value}

    with pytest.raises(InvalidInputError, match=message):
        config_from_values(CLIENT, "sales", values)
    with pytest.raises(InvalidInputError, match=message):
        bench.save(CLIENT, "sales", values, None)
    assert bench.profiles(CLIENT) == [DEFAULT_PROFILE]


def test_save_as_makes_a_new_profile_and_never_overwrites_one(bench: Workbench) -> None:
    values = saved_profile(bench, "sales")

    copy = bench.save_as(CLIENT, " support ", {**values, "icebreaker": "Support here."})

    assert (copy.name, copy.version) == ("support", 1)
    assert AgentConfig.get(CLIENT, "support").icebreaker == "Support here."
    with pytest.raises(ConflictError, match="already exists"):
        bench.save_as(CLIENT, "sales", values)
    with pytest.raises(InvalidInputError, match="profile_name"):
        bench.save_as(CLIENT, "no spaces allowed", values)


def test_delete_needs_the_version_it_loaded(bench: Workbench) -> None:
    saved_profile(bench, "sales")
    loaded = bench.load(CLIENT, "sales")
    bench.save(CLIENT, "sales", loaded.values, loaded.version)  # someone saved since

    with pytest.raises(ConflictError):
        bench.delete(CLIENT, "sales", loaded.version)
    bench.delete(CLIENT, "sales", bench.load(CLIENT, "sales").version)

    assert bench.profiles(CLIENT) == [DEFAULT_PROFILE]
    with pytest.raises(NotFoundError, match="not stored"):
        bench.delete(CLIENT, DEFAULT_PROFILE, None)


def test_a_profile_exported_as_yaml_imports_into_the_client_its_document_names(bench: Workbench) -> None:
    values = offline_values(bench, system_message="Line one.\nLine two.", tools=["calculator"])

    text = bench.export_yaml(CLIENT, "sales", values)
    with pytest.raises(InvalidInputError, match="the document is for client 'acme', not 'globex'"):
        bench.import_yaml("globex", text)
    report = bench.import_yaml("globex", text.replace("client_id: acme", "client_id: globex"))

    assert "system_message: |" in text  # multi-line text as a block, as ob-admin exports it
    assert load_document(text, "yaml")["profiles"]["sales"]["tools"] == ["calculator"]
    assert report.created == ["sales"]
    assert bench.load("globex", "sales").values == values
    assert bench.profiles(CLIENT) == [DEFAULT_PROFILE]  # the refused import wrote nothing
    assert bench.import_yaml(CLIENT, text).created == ["sales"]
    assert bench.import_yaml(CLIENT, text).unchanged == ["sales"]


def test_a_bad_import_writes_nothing(bench: Workbench) -> None:
    good = bench.export_yaml(CLIENT, "sales", offline_values(bench))
    bad = good + "  broken:\n    temperature: 9\n"

    with pytest.raises(InvalidInputError, match="broken"):
        bench.import_yaml(CLIENT, bad)
    with pytest.raises(InvalidInputError, match="YAML"):
        bench.import_yaml(CLIENT, "profiles: [unclosed")
    with pytest.raises(InvalidInputError, match="paste"):
        bench.import_yaml(CLIENT, "  ")
    assert bench.profiles(CLIENT) == [DEFAULT_PROFILE]


def test_the_tool_catalogue_shows_every_tool_with_its_argument_schema() -> None:
    catalogue = {tool["name"]: tool for tool in tool_catalogue()}

    assert set(catalogue) == set(DEFAULT_TOOLS)
    assert catalogue["calculator"]["arguments"]["required"] == ["expression"]
    assert "email" in catalogue["capture_lead"]["arguments"]["properties"]
    assert all(tool["description"] for tool in catalogue.values())


# --- the playground ------------------------------------------------------------------------------------

def test_compare_sends_the_same_message_to_the_edited_and_the_saved_profile(bench: Workbench) -> None:
    values = saved_profile(bench)
    edited = {**values, "tools": ["get_current_time"]}  # the edit: no calculator

    *_, (with_edit, as_saved, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, edited, {}, 1, Pair(), ARITHMETIC)

    assert as_saved.tool_calls == ["calculator"] and "66" in as_saved.reply
    assert with_edit.tool_calls == [] and "66" not in with_edit.reply
    assert pair.restarted and pair.edited == with_edit.session_id and pair.saved == as_saved.session_id
    assert ChatSession.get(CLIENT, pair.edited).config_snapshot["tools"] == ["get_current_time"]
    assert AgentConfig.get(CLIENT, DEFAULT_PROFILE).tools == list(DEFAULT_TOOLS)  # nothing saved


def test_compare_yields_both_sides_as_they_stream_the_edited_side_first(bench: Workbench) -> None:
    values = saved_profile(bench)

    states = list(bench.compare(CLIENT, DEFAULT_PROFILE, values, {}, 1, Pair(), ARITHMETIC))

    # first neither side has answered; the saved side starts only once the edited one is done
    (edited, saved, _), *_, (last_edited, last_saved, pair) = states
    assert not edited.done and not saved.done and edited.reply == saved.reply == ""
    assert all(e.done or (not s.done and s.session_id is None and not s.tools) for e, s, _ in states)
    # each side's reply only grows within a step, and ends as the reply stored in its session
    for side, last in ((0, last_edited), (1, last_saved)):
        assert last.done and last.tool_calls == ["calculator"] and "66" in last.reply
        assert bench.session(CLIENT, last.session_id or "").transcript[-1].content == last.reply
        assert all(state[side].step < 2 or last.reply.startswith(state[side].reply) for state in states)
    assert (pair.edited, pair.saved) == (last_edited.session_id, last_saved.session_id)


def test_the_playground_continues_its_sessions_until_the_config_changes(bench: Workbench) -> None:
    values = saved_profile(bench)
    *_, (_, _, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, values, {}, 1, Pair(), "My name is Ada Lovelace")

    *_, (edited, saved, same) = bench.compare(CLIENT, DEFAULT_PROFILE, values, {}, 1, pair, "hello again")
    *_, (_, _, fresh) = bench.compare(CLIENT, DEFAULT_PROFILE, {**values, "temperature": 0.1}, {}, 1, same, "hi")

    assert (same.edited, same.saved, same.restarted) == (pair.edited, pair.saved, False)
    assert "Ada Lovelace" in edited.reply and "Ada Lovelace" in saved.reply  # the offline model sees history
    assert ChatSession.get(CLIENT, same.edited).turn_count == 2
    assert fresh.restarted and fresh.edited not in (pair.edited, None) and fresh.saved != pair.saved


def test_reset_starts_both_sides_with_their_own_icebreakers(bench: Workbench) -> None:
    values = saved_profile(bench, icebreaker="Saved hello.")

    edited, saved, pair = bench.reset(CLIENT, DEFAULT_PROFILE, {**values, "icebreaker": "Edited hello."}, {}, 1)

    assert (edited.reply, saved.reply) == ("Edited hello.", "Saved hello.")
    assert pair.edited == edited.session_id and pair.saved == saved.session_id
    assert ChatSession.get(CLIENT, pair.edited).turn_count == 0


def test_an_unsaved_profile_can_be_tried_and_the_saved_side_says_it_is_not_stored(bench: Workbench) -> None:
    *_, (edited, saved, _) = bench.compare(CLIENT, "draft", offline_values(bench), {}, None, Pair(), ARITHMETIC)

    assert "66" in edited.reply and edited.error is None
    assert saved.error and "'draft' not found" in saved.error and saved.session_id is None


def test_a_bad_edit_is_an_error_on_the_edited_side_only(bench: Workbench) -> None:
    values = saved_profile(bench)

    *_, (edited, saved, _) = bench.compare(CLIENT, DEFAULT_PROFILE, {**values, "temperature": 7}, {}, 1, Pair(),
                                           ARITHMETIC)

    assert edited.error and "temperature" in edited.error
    assert "66" in saved.reply


def test_tool_context_reaches_the_session_and_bad_context_is_refused(bench: Workbench) -> None:
    values = saved_profile(bench)

    *_, (_, _, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, values, parse_context('{"page": "pricing"}'), 1,
                                     Pair(), "hi")

    assert ChatSession.get(CLIENT, pair.edited).context == {"page": "pricing"}
    assert parse_context("  ") == {}
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_context("{page: pricing}")
    with pytest.raises(InvalidInputError, match="JSON object"):
        parse_context("[1, 2]")


# --- the inspector -------------------------------------------------------------------------------------

def test_the_inspector_shows_a_session_its_transcript_lead_and_events(bench: Workbench) -> None:
    values = saved_profile(bench, system_message="Collect leads.")
    *_, (_, _, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, values, {"page": "pricing"}, 1, Pair(),
                                     "My name is Ada Lovelace, email ada@example.com")

    detail = bench.session(CLIENT, pair.saved or "")

    assert detail.summary["turns"] == 1 and detail.summary["lead_id"]
    roles = [message.role for message in detail.transcript]
    assert roles == ["assistant", "user", "assistant", "tool", "assistant"]  # icebreaker, message, call, result, reply
    call = detail.transcript[2].tool_calls[0]
    assert call.name == "capture_lead" and call.args["email"] == "ada@example.com"
    assert detail.transcript[3].tool_call_id == call.id  # the result of that capture_lead call
    assert detail.config_snapshot["system_message"] == "Collect leads."
    assert detail.context == {"page": "pricing"}
    assert detail.lead and detail.lead["email"] == "ada@example.com" and detail.lead["full_name"] == "Ada Lovelace"
    assert [event["type"] for event in detail.events] == ["lead.captured.v1"]
    assert detail.events[0]["object_id"] == detail.lead["lead_id"]


def test_recent_sessions_are_newest_first_and_only_the_clients_own(bench: Workbench, backend: Backend) -> None:
    ids = [chat(ChatMessage(client_id=CLIENT, agent_config_overrides={"model": "offline"}, message=f"hi {n}"),
                backend).session_id for n in range(3)]
    chat(ChatMessage(client_id="globex", agent_config_overrides={"model": "offline"}, message="hi"), backend)

    rows = bench.recent_sessions(CLIENT)

    assert [row["session_id"] for row in rows] == ids[::-1]
    assert rows[0]["turns"] == 1 and rows[0]["profile"] == DEFAULT_PROFILE
    with pytest.raises(NotFoundError):  # another client's session is not found under this one
        bench.session("globex", ids[0])
    with pytest.raises(InvalidInputError, match="pick a session"):
        bench.session(CLIENT, "")


def test_a_dps_command_in_the_playground_schedules_and_the_inspector_lists_and_cancels_it(bench: Workbench) -> None:
    # given: a dps command typed in the playground, its prompt on the line after the command's
    before = utcnow()
    *_, (edited, saved, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, offline_values(bench),
                                              {"timezone": "Europe/London"}, None, Pair(),
                                              "dps u in 10 minutes\nDrink water")

    # then each side scheduled one message (the command's answer says what and its id) and ran no model
    for turn in (edited, saved):
        assert turn.error is None and turn.reply.startswith("Scheduled a message to you")
        assert [event["type"] for event in turn.events] == ["message.scheduled.v1"]
    detail = bench.session(CLIENT, pair.edited or "")
    [waiting] = detail.schedules
    assert (waiting.recipient, waiting.prompt, waiting.timezone) == ("user", "Drink water", "Europe/London")
    assert waiting.schedule_id in edited.reply and waiting.description in edited.reply
    assert before + timedelta(minutes=10, seconds=-1) <= waiting.next_at <= utcnow() + timedelta(minutes=10)
    assert detail.summary["scheduled"] == 1
    assert {row["session_id"]: row["scheduled"] for row in bench.recent_sessions(CLIENT)} == {
        pair.edited: 1, pair.saved: 1}

    # when the operator cancels the edited side's
    cancelled = bench.cancel_schedule(CLIENT, pair.edited or "", waiting.schedule_id)

    # then it is gone from that session only, and cannot be cancelled twice
    assert cancelled.schedule_id == waiting.schedule_id and cancelled.prompt == "Drink water"
    assert bench.session(CLIENT, pair.edited or "").schedules == []
    assert [s.prompt for s in bench.session(CLIENT, pair.saved or "").schedules] == ["Drink water"]
    with pytest.raises(NotFoundError, match="no scheduled message"):
        bench.cancel_schedule(CLIENT, pair.edited or "", waiting.schedule_id)
    with pytest.raises(NotFoundError):  # another session's message is not this one's to cancel
        bench.cancel_schedule(CLIENT, pair.edited or "", bench.session(CLIENT, pair.saved or "").schedules[0]
                              .schedule_id)
    with pytest.raises(InvalidInputError, match="pick a scheduled message"):
        bench.cancel_schedule(CLIENT, pair.saved or "", " ")
    with pytest.raises(NotFoundError):  # nor another client's
        bench.cancel_schedule("globex", pair.saved or "", waiting.schedule_id)
    assert len(bench.session(CLIENT, pair.saved or "").schedules) == 1


def test_the_inspectors_transcript_tells_what_a_schedule_delivered(bench: Workbench, backend: Backend) -> None:
    # given a message scheduled to each recipient, delivered when due
    *_, (_, _, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, offline_values(bench), {}, None, Pair(),
                                     "dps u in 10 minutes\nDrink water")
    list(bench.compare(CLIENT, DEFAULT_PROFILE, offline_values(bench), {}, None, pair,
                       "dps c in 10 minutes\nwhat is 6 * 7"))
    assert len(deliver_due(backend, utcnow() + timedelta(minutes=11))) == 4  # two per side

    # then the transcript marks the messages the schedules made, and the turn's reply is the model's own
    detail = bench.session(CLIENT, pair.edited or "")
    assert [(m.role, m.content, m.scheduled) for m in detail.transcript if m.role != "tool" and m.content] == [
        ("assistant", detail.config_snapshot["icebreaker"], False),
        ("assistant", "Drink water", True),
        ("user", "what is 6 * 7", True),
        ("assistant", "6 * 7 = 42", False),
    ]
    assert detail.schedules == [] and detail.summary["scheduled"] == 0


def test_a_dead_letter_is_listed_and_redrive_delivers_it(bench: Workbench, backend: Backend,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handler = load_handler()
    with WebhookServer() as webhook:
        make_client(webhook.url, put_ssm_secret(backend))
        saved_profile(bench)
        webhook.status = 500
        list(bench.compare(CLIENT, DEFAULT_PROFILE, offline_values(bench), {}, 1, Pair(),
                           "I'm Ada Lovelace, email ada@example.com"))
        fail_until_dead_lettered(backend, handler)  # what the target's Lambda would do, until SQS gives up

        letters = bench.dead_letters()
        assert len(letters) == 2  # one lead per side of the playground
        assert {letter["event_type"] for letter in letters} == {"lead.captured.v1"}
        assert {letter["client_id"] for letter in letters} == {CLIENT}

        webhook.status = 200
        results = {result.target: result for result in bench.redrive()}

        result = results["lead-webhook"]
        assert (result.moved, result.processed, result.failed) == (2, 2, 0)
        assert results["message-webhook"].moved == 0
        assert bench.dead_letters() == []
        assert len(webhook.requests) > 2
        assert {lead.status for lead in Lead.get_all(CLIENT)} == {"delivered"}


def test_a_side_whose_conversation_ended_starts_a_new_session_with_the_next_message(bench: Workbench) -> None:
    values = saved_profile(bench)

    *_, (edited, saved, pair) = bench.compare(CLIENT, DEFAULT_PROFILE, values, {}, 1, Pair(), "goodbye")
    *_, (after, _, _) = bench.compare(CLIENT, DEFAULT_PROFILE, values, {}, 1, pair, ARITHMETIC)

    assert edited.ended and saved.ended and (pair.edited, pair.saved) == (None, None)
    assert after.error is None and "66" in after.reply and after.session_id != edited.session_id
