"""`ob MESSAGE`: one turn per process, sessions kept in the embedded store between processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support.cli import (
    BIN,
    STREAMED,
    TIMEOUT,
    Cli,
    assert_one_line_error,
    free_port,
    on_terminal,
    partial_reads,
    usage_error,
)
from support.endpoints import CREDENTIALS
from support.store import stop_store

pytestmark = pytest.mark.e2e

OFFLINE_NOTICE = "notice: OPENAI_API_KEY is not set; using the offline model instead of openai:gpt-4o-mini"
ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
ROOT = Path(__file__).resolve().parents[2]


def test_ob_answers_one_message(cli: Cli) -> None:
    # the venv's bin/ on PATH, as in an activated venv (tests/cli/test_common.py: the hint off PATH)
    result = cli.run("ob", "what is 6*7", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "6*7 = 42\n"
    assert OFFLINE_NOTICE in result.stderr.splitlines()
    match = re.search(rf"^\(session ({ULID}); continue with: ob --session \1 MESSAGE\)$", result.stderr, re.M)
    assert match, result.stderr
    assert "Traceback" not in result.stderr


def test_ob_json_prints_the_whole_response(cli: Cli) -> None:
    result = cli.run("ob", "--json", "what is 6*7")

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["message"] == "6*7 = 42"
    assert re.fullmatch(ULID, response["session_id"])
    assert response["events"] == []
    assert response["tool_calls"] == ["calculator"]
    assert (response["client_id"], response["profile_name"], response["model"]) == ("public", "default", "offline")
    assert response["ended"] is False


def test_ob_json_lists_the_events_of_the_turn(cli: Cli) -> None:
    result = cli.run("ob", "--json", "my name is Ada Lovelace, email ada@example.com")

    response = json.loads(result.stdout)
    assert response["message"] == "Saved the contact details; the team will follow up."
    [event] = response["events"]
    assert event["type"] == "lead.captured.v1"
    assert re.fullmatch(ULID, event["object_id"])


def test_ob_continues_a_session_in_another_process(cli: Cli) -> None:
    # given: a first process starts a session
    first = json.loads(cli.run("ob", "--json", "my name is Ada Lovelace").stdout)

    # when: a second process continues it
    second = cli.run("ob", "--json", "--session", first["session_id"], "do you remember me?")

    # then: the offline model sees the earlier message
    assert second.returncode == 0, second.stderr
    response = json.loads(second.stdout)
    assert response["session_id"] == first["session_id"]
    assert response["message"] == (
        'You said: "do you remember me?". That is message 2 I can see in this conversation; before it you said '
        '"my name is Ada Lovelace". I remember your name is Ada Lovelace.'
    )


def test_ob_does_not_repeat_the_session_hint_when_continuing(cli: Cli) -> None:
    session_id = json.loads(cli.run("ob", "--json", "hi").stdout)["session_id"]

    result = cli.run("ob", "--session", session_id, "what is 2^10")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "2^10 = 1024\n"
    assert "(session " not in result.stderr


def test_ob_refuses_to_continue_an_ended_session(cli: Cli) -> None:
    ended = json.loads(cli.run("ob", "--json", "goodbye").stdout)
    assert ended["ended"] is True
    assert ended["events"][0]["type"] == "conversation.ended.v1"

    result = cli.run("ob", "--session", ended["session_id"], "hello again")

    assert_one_line_error(result, "ob", "this conversation has ended; start a new one with reset")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--session", "unknown", "hi"], "session 'unknown' not found for client 'public' (or it expired)"),
        (["--profile", "nope", "hi"], "profile 'nope' not found for client 'public'"),
        (["--session", "X", "--model", "offline", "hi"],
         "--model applies to new sessions; a session keeps the model it started with"),
        (["--session", "X", "--timezone", "Europe/London", "hi"],
         "--timezone applies to new sessions; a session keeps the zone it started with"),
        (["--model", "gpt-4o", "hi"], "invalid model spec 'gpt-4o': use 'offline' or 'openai:<model>'"),
    ],
    ids=["unknown session", "unknown profile", "model with session", "timezone with session", "bad model spec"],
)
def test_ob_reports_a_bad_request_in_one_line(cli: Cli, args: list[str], message: str) -> None:
    result = cli.run("ob", *args)

    assert_one_line_error(result, "ob", message)


@pytest.mark.parametrize("program", ["ob", "ob_chat", "ob_tuner"])
@pytest.mark.parametrize("bad", ["../x", "a b", "", " ", "a.b", "x" * 65])
def test_every_cli_refuses_a_client_id_that_breaks_the_client_id_rule(capsys: pytest.CaptureFixture[str],
                                                                      program: str, bad: str) -> None:
    from importlib import import_module

    main = import_module(f"openbrain.cli.{program}").main

    error = usage_error(capsys, main, "--client-id", bad, *(["hi"] if program == "ob" else []))

    assert error.endswith(f": error: argument --client-id: client_id must be 1-64 letters, digits, '-' or '_', "
                          f"got {bad!r}"), error


def test_ob_with_a_blank_message_starts_a_session_and_prints_the_icebreaker(cli: Cli) -> None:
    result = cli.run("ob", "--json", "   ")

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["message"] == "Hi! I'm your OpenBrain assistant. How can I help you today?"
    assert response["tool_calls"] == []


def test_ob_refuses_a_blank_message_in_a_session(cli: Cli) -> None:
    session_id = json.loads(cli.run("ob", "--json", "hi").stdout)["session_id"]

    result = cli.run("ob", "--session", session_id, "   ")

    assert_one_line_error(result, "ob", "message must not be empty")


def test_ob_refuses_a_message_over_the_configured_limit(cli: Cli) -> None:
    result = cli.run("ob", "x" * 11, OB_MAX_MESSAGE_CHARS="10")

    assert_one_line_error(result, "ob", "message is 11 characters; the limit is 10 (OB_MAX_MESSAGE_CHARS)")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OB_BACKEND", "bogus"), ("OB_SESSION_TTL_DAYS", "0"), ("OB_MAX_MESSAGE_CHARS", "lots")],
)
def test_ob_names_a_bad_setting(cli: Cli, variable: str, value: str) -> None:
    result = cli.run("ob", "hi", **{variable: value})

    assert_one_line_error(result, "ob", f"invalid {variable}: ")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--bogus", "hi"], "unrecognized arguments: --bogus"),
        ([], "the following arguments are required: message"),
        (["--session"], "argument --session: expected one argument"),
    ],
)
def test_ob_reports_bad_flags_with_usage(cli: Cli, args: list[str], complaint: str) -> None:
    result = cli.run("ob", *args)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: ob ")
    assert f"ob: error: {complaint}" in result.stderr


@pytest.mark.parametrize(("program", "message"), [("ob", ["hi"]), ("ob-chat", [])])
def test_an_unknown_timezone_is_a_usage_error(cli: Cli, program: str, message: list[str]) -> None:
    result = cli.run(program, "--timezone", "Mars/Olympus_Mons", *message, stdin="hi\n")

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"usage: {program} ")
    assert result.stderr.splitlines()[-1] == (f"{program}: error: argument --timezone: 'Mars/Olympus_Mons' is not an "
                                              "IANA time zone such as Europe/London")


def test_ob_help(cli: Cli) -> None:
    result = cli.run("ob", "--help")

    assert result.returncode == 0
    assert result.stdout.startswith("usage: ob ")
    assert "--session" in result.stdout and "--json" in result.stdout


def test_ob_reports_an_unreadable_store_and_leaves_it_alone(cli: Cli) -> None:
    cli.store.write_text("{not json")

    result = cli.run("ob", "hi")

    assert_one_line_error(result, "ob", f"the embedded store {cli.store} is not readable (")
    assert cli.store.read_text() == "{not json"


def test_ob_keeps_the_store_private(cli: Cli) -> None:
    cli.run("ob", "my email is ada@example.com")
    stop_store(cli.store)  # it writes the journal into the store file as it stops

    assert cli.store.stat().st_mode & 0o777 == 0o600
    assert "ada@example.com" in cli.store.read_text()


# --- on the aws backend: a real endpoint, or none ----------------------------------------------------------------

def test_ob_names_the_endpoint_it_cannot_connect_to(cli: Cli) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    result = cli.run("ob", "hi", OB_BACKEND="aws", AWS_ENDPOINT_URL=endpoint, **CREDENTIALS)

    assert_one_line_error(result, "ob", f"DynamoDB could not read AgentConfig public/default: could not connect to "
                          f"{endpoint}/ (set by AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL, else AWS itself")


def test_ob_without_tables_suggests_ob_admin_init(cli: Cli, moto_server: str) -> None:
    result = cli.run("ob", "hi", OB_BACKEND="aws", AWS_ENDPOINT_URL=moto_server, **CREDENTIALS)

    assert_one_line_error(result, "ob", "DynamoDB could not read AgentConfig public/default "
                          "(ResourceNotFoundException): the table does not exist; "
                          "create the tables with `ob-admin init`")


def test_ob_publishes_to_the_eventbridge_endpoint_of_its_own_variable(
        cli: Cli, start_moto: Callable[[], str]) -> None:
    # given: tables on one endpoint; EventBridge and SQS on another, named by their own variables
    tables, events = start_moto(), start_moto()
    env = {"OB_BACKEND": "aws", "AWS_ENDPOINT_URL": tables, "AWS_ENDPOINT_URL_EVENTBRIDGE": events,
           "AWS_ENDPOINT_URL_SQS": events, **CREDENTIALS}
    assert cli.run("ob-admin", "init", **env).returncode == 0

    # when: a turn captures a lead
    result = cli.run("ob", "--json", "--model", "offline", "my name is Ada Lovelace, email ada@example.com", **env)

    # then: its event went through the EventBridge of AWS_ENDPOINT_URL_EVENTBRIDGE to that endpoint's queue
    assert result.returncode == 0, result.stderr
    [event] = json.loads(result.stdout)["events"]
    import boto3

    sqs = boto3.client("sqs", endpoint_url=events, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x")
    queue = sqs.get_queue_url(QueueName="openbrain-lead-webhook")["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    delivered = json.loads(message["Body"])
    assert (delivered["detail-type"], delivered["detail"]["lead_id"]) == ("lead.captured.v1", event["object_id"])
    # and the tables' endpoint has no bus of OpenBrain's at all
    other = boto3.client("events", endpoint_url=tables, region_name="us-east-1", aws_access_key_id="x",
                         aws_secret_access_key="x")
    assert [bus["Name"] for bus in other.list_event_buses()["EventBuses"]] == ["default"]


def test_ob_prints_the_offline_fallback_notice_on_a_sessions_first_turn_only(cli: Cli) -> None:
    # given: a session of the default profile (openai:gpt-4o-mini, no key), whose first turn gave the notice
    first = cli.run("ob", "--json", "hi")
    assert OFFLINE_NOTICE in first.stderr.splitlines()

    # when: another process continues it
    second = cli.run("ob", "--session", json.loads(first.stdout)["session_id"], "what is 2^10")

    # then: the same model, without the notice
    assert second.returncode == 0, second.stderr
    assert second.stdout == "2^10 = 1024\n"
    assert "notice:" not in second.stderr


# --- on a terminal: the reply as it arrives -----------------------------------------------------------------

def test_ob_on_a_terminal_prints_the_reply_as_it_arrives(cli: Cli, streaming_model: dict[str, str]) -> None:
    # when
    reads = on_terminal("ob", "--model", "openai:gpt-test", "what time is it in Tokyo?", env=streaming_model)

    # then: the reply came over several reads, and ends its line
    assert partial_reads(reads, STREAMED) >= 2, reads
    assert b"".join(reads) == STREAMED.encode() + b"\r\n"


def test_ob_no_stream_on_a_terminal_prints_the_reply_when_complete(cli: Cli, streaming_model: dict[str, str]) -> None:
    reads = on_terminal("ob", "--no-stream", "--model", "openai:gpt-test", "hi", env=streaming_model)

    assert partial_reads(reads, STREAMED) == 0, reads
    assert b"".join(reads) == STREAMED.encode() + b"\r\n"


def test_ob_piped_prints_the_streaming_models_reply_as_one_line(cli: Cli, streaming_model: dict[str, str]) -> None:
    result = cli.run("ob", "--model", "openai:gpt-test", "hi", **streaming_model)

    assert result.returncode == 0, result.stderr
    assert result.stdout == STREAMED + "\n"


def test_ob_schedules_a_dps_message_and_a_later_process_sees_it(cli: Cli) -> None:
    # when: the form, a blank line between the dps line and its prompt, on a machine in New York
    result = cli.run("ob", "dps c in 5 minutes\n\nsay hi\nand tell me a joke", TZ="America/New_York")

    # then: the confirmation is the reply, in the machine's zone; the session is kept for the next process, which
    # lists it
    assert result.returncode == 0, result.stderr
    found = re.fullmatch(rf"Scheduled a message to the assistant: .* America/New_York\. Its id is ({ULID})\.\n",
                         result.stdout)
    assert found, result.stdout
    session = re.search(rf"^\(session ({ULID}); continue with: ", result.stderr, re.M)
    assert session, result.stderr
    listed = json.loads(cli.run("ob-admin", "schedules", "list", "public", "--session", session.group(1),
                                "--json").stdout)
    [[waiting]] = [group["schedules"] for group in listed]
    assert (waiting["schedule_id"], waiting["recipient"], waiting["prompt"]) == (
        found.group(1), "chatbot", "say hi\nand tell me a joke")

    # and: dps help in that session explains the syntax and schedules nothing more
    help_text = cli.run("ob", "--session", session.group(1), "dps help")
    assert help_text.returncode == 0 and help_text.stdout.startswith("dps schedules a message. Write")


def test_the_readme_s_dps_example_for_bash_schedules_its_prompt(cli: Cli) -> None:
    # given: the README's one-line dps command, as typed into bash
    section = (ROOT / "README.md").read_text().split("## Scheduled messages")[1].split("\n## ")[0]
    [line] = re.findall(r"^ob \$'dps .*\\n.*'$", section, re.M)

    # when
    result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=TIMEOUT,
                            env={**cli.env, "PATH": f"{BIN}{os.pathsep}{cli.env['PATH']}"})

    # then: $'...' made the line break the prompt needs
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"Scheduled a message to you: .*\. Its id is {ULID}\.\n", result.stdout), result.stdout


@pytest.mark.parametrize(("message", "error"), [
    ("dps u every 5 minutes\nstretch", '"every 5 minutes" is too often: at most every 15 minutes'),
    ("dps me in 5 minutes\nhi", '"me" is not a recipient: use user (u) or chatbot (c)'),
    ("dps c in 5 minutes", 'No prompt: write what to send on the next line, below "dps c in 5 minutes".'),
])
def test_ob_reports_a_dps_message_not_understood_in_one_line(cli: Cli, message: str, error: str) -> None:
    assert_one_line_error(cli.run("ob", message), "ob", error)
