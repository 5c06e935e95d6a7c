"""`ob-admin` as a user runs it: one process per command, changes kept in the embedded store."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.cli import Cli, assert_one_line_error, free_port, usage_error
from support.endpoints import CREDENTIALS, lacking

from openbrain.cli.ob_admin import main

pytestmark = pytest.mark.e2e

PROG = "ob-admin"

# Run in a later process: does the stored client accept this key? (prints true/false)
CHECK_KEY = """
import sys
from openbrain.aws.backend import get_backend
from openbrain.storage.orm import Client
backend = get_backend()
try:
    print(str(Client.get(sys.argv[1]).has_api_key(sys.argv[2])).lower())
finally:
    backend.close()
"""


def _key_works(cli: Cli, client_id: str, api_key: str) -> bool:
    result = cli.run("python", "-c", CHECK_KEY, client_id, api_key)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "true"


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_client_create_prints_a_key_that_a_later_process_accepts(cli: Cli) -> None:
    # when
    result = cli.run(PROG, "client", "create", "Acme Inc", "--origin", "https://acme.example")

    # then: the key is on stdout once, with a warning on stderr, and works through the embedded store
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "client_id   acme-inc"
    api_key = lines[1].removeprefix("api_key     ")
    assert "shown only this once" in result.stderr
    assert _key_works(cli, "acme-inc", api_key)
    assert not _key_works(cli, "acme-inc", api_key[:-1] + ("A" if api_key[-1] != "A" else "B"))


def test_client_create_json_prints_id_and_key(cli: Cli) -> None:
    created = _json(cli.run(PROG, "client", "create", "Acme", "--client-id", "acme_1", "--json",
                            "--webhook", "http://127.0.0.1:9999/hook", "--webhook-secret-ref", "/ob/acme"))

    assert isinstance(created, dict) and set(created) == {"client_id", "api_key", "widget_key"}
    assert created["client_id"] == "acme_1"
    assert _key_works(cli, "acme_1", created["api_key"])


def test_client_list_and_show_in_json_never_show_keys(cli: Cli) -> None:
    # given
    key = _json(cli.run(PROG, "--json", "client", "create", "Beta"))["api_key"]
    cli.run(PROG, "client", "create", "Alpha", "--origin", "https://alpha.example", "--origin", "http://localhost:3000")

    # when
    listed = cli.run(PROG, "client", "list", "--json")
    shown = cli.run(PROG, "client", "show", "beta", "--json")
    text = cli.run(PROG, "client", "show", "beta")
    table = cli.run(PROG, "client", "list")

    # then
    clients = _json(listed)
    assert [c["client_id"] for c in clients] == ["alpha", "beta"]
    assert clients[0]["allowed_origins"] == ["https://alpha.example", "http://localhost:3000"]
    info = _json(shown)
    assert info["api_keys"] == 1 and info["profiles"] == []
    assert info["webhook_url"] is None and info["identity_secret_ref"] is None and info["identity_required"] is False
    # text: `label  value` lines, the values in one column, an unset value `-` (JSON's null and [])
    assert text.returncode == 0, text.stderr
    fields = text.stdout.split("\nlimits\n")[0].splitlines()
    assert [line.split(maxsplit=1)[0] for line in fields] == [name for name in info if name != "limits"]
    assert len({len(line) - len(line.split()[-1]) for line in fields}) == 1, text.stdout
    shown_as = dict(line.split(maxsplit=1) for line in fields)
    assert shown_as["webhook_url"] == shown_as["identity_secret_ref"] == shown_as["profiles"] == "-"
    assert shown_as["allowed_origins"] == "-" and shown_as["identity_required"] == "no"
    for output in (listed.stdout, shown.stdout, text.stdout, table.stdout):
        assert key not in output
        assert "hash" not in output
    assert table.stdout.splitlines()[0].split() == ["CLIENT_ID", "NAME", "KEYS", "ORIGINS", "WEBHOOK"]


def test_widget_snippet_prints_the_tag_of_the_versioned_widget_with_its_sri_hash(cli: Cli) -> None:
    import base64
    import hashlib

    from openbrain.web import widget

    # given a client and its widget key
    key = _json(cli.run(PROG, "client", "create", "Acme", "--json"))["widget_key"]
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod"
    digest = hashlib.sha384(widget().body).digest()

    # when
    shown = _json(cli.run(PROG, "client", "widget-snippet", "acme", "--api", api + "/", "--key", key, "--json",
                          "--ws", "wss://def456.execute-api.eu-west-1.amazonaws.com/Prod"))
    text = cli.run(PROG, "client", "widget-snippet", "acme", "--api", api)

    # then: the versioned URL named by the file's SHA-384, its SRI hash, and the attributes of docs/widget.md
    src = f"{api}/widget/{digest.hex()[:16]}.js"
    integrity = "sha384-" + base64.b64encode(digest).decode()
    assert shown["src"] == src and shown["integrity"] == integrity
    assert shown["tag"] == (f'<script src="{src}" integrity="{integrity}" crossorigin="anonymous" data-key="{key}" '
                            'data-profile="default" data-ws="wss://def456.execute-api.eu-west-1.amazonaws.com/Prod" '
                            "defer></script>")
    # without --key, a placeholder and a word on where the key comes from
    assert text.returncode == 0, text.stderr
    assert 'data-key="obw.acme.WIDGET-KEY"' in text.stdout and "client rotate-key acme --widget`" in text.stderr
    assert_one_line_error(cli.run(PROG, "client", "widget-snippet", "nobody", "--api", api), PROG,
                          "client 'nobody' not found")


SECRET = "s" * 43


@pytest.mark.parametrize(("args", "message"), [
    (("--key", f"ob.acme.{SECRET}"), ("error: --key is a server key (ob.…), which may do everything and must never "
                                      "be in a web page; give the widget key of client 'acme' (obw.acme.…)")),
    (("--key", "ob.acme.x"), "error: --key is a server key (ob.…)"),
    (("--key", f"obw.other.{SECRET}"), ("error: --key is a widget key of client 'other'; give the widget key "
                                        "of client 'acme'")),
    (("--key", "WIDGET-KEY"), "error: --key is not an API key; give the widget key of client 'acme'"),
    (("--api", "ftp://x"), "error: argument --api: must be a https:// or http:// URL, got 'ftp://x'"),
    (("--api", "https://"), "error: argument --api: must be a https:// or http:// URL, got 'https://'"),
    (("--ws", "https://x.example/ws"), "error: argument --ws: must be a wss:// or ws:// URL"),
], ids=["server key", "short server key", "another client's widget key", "not a key", "ftp api", "no host", "ws"])
def test_widget_snippet_refuses_what_must_not_be_in_a_web_page(capsys: pytest.CaptureFixture[str],
                                                              args: tuple[str, ...], message: str) -> None:
    error = usage_error(capsys, main, "client", "widget-snippet", "acme", "--api", "https://api.example", *args)

    assert error.startswith("ob-admin client widget-snippet: " + message), error
    assert SECRET not in error  # a key is never repeated


def test_rotate_key_revokes_the_old_key_for_later_processes(cli: Cli) -> None:
    old = _json(cli.run(PROG, "client", "create", "Acme", "--json"))["api_key"]

    rotated = _json(cli.run(PROG, "client", "rotate-key", "acme", "--json"))

    assert rotated["api_keys"] == 1
    assert _key_works(cli, "acme", rotated["api_key"])
    assert not _key_works(cli, "acme", old)


def test_rotate_key_keep_old_leaves_both_working(cli: Cli) -> None:
    old = _json(cli.run(PROG, "client", "create", "Acme", "--json"))["api_key"]

    result = cli.run(PROG, "client", "rotate-key", "acme", "--keep-old")

    assert result.returncode == 0, result.stderr
    new = result.stdout.splitlines()[1].removeprefix("api_key    ")
    assert "1 older key(s) still work" in result.stderr
    assert _key_works(cli, "acme", old) and _key_works(cli, "acme", new)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("client", "create", "Acme", "--origin", "https://acme.example/app"), "origin 'https://acme.example/app'"),
        (("client", "create", "Acme", "--webhook", "http://crm.example"), "webhook URL 'http://crm.example' must"),
        (("client", "show", "nobody"), "client 'nobody' not found"),
        (("client", "rotate-key", "nobody", "--json"), "client 'nobody' not found"),
        (("config", "import", "missing.yaml"), "cannot read missing.yaml"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli: Cli, args: tuple[str, ...], message: str) -> None:
    assert_one_line_error(cli.run(PROG, *args), PROG, message)


def test_creating_an_existing_client_is_refused(cli: Cli) -> None:
    first = _json(cli.run(PROG, "client", "create", "Acme", "--json"))

    result = cli.run(PROG, "client", "create", "Acme")

    assert_one_line_error(result, PROG, "client 'acme' already exists; new keys for it: "
                                        "`ob-admin client rotate-key acme`")
    assert _key_works(cli, "acme", first["api_key"])


@pytest.mark.parametrize("args", [
    ("client", "create", "Acme", "--client-id", "a.b"), ("client", "show", "../x"), ("client", "limits", "a b"),
    ("client", "rotate-key", ""), ("client", "widget-snippet", "x" * 65, "--api", "https://api.example"),
    ("client", "identity", "é"), ("client", "rotate-webhook-secret", "a/b"), ("config", "export", " "),
    ("config", "import", "-", "--client-id", "a.b"), ("usage", "a b"), ("schedules", "list", ""),
    ("schedules", "cancel", " ", "SESSION", "SCHEDULE"),
])
def test_every_client_id_argument_keeps_the_client_id_rule(capsys: pytest.CaptureFixture[str],
                                                           args: tuple[str, ...]) -> None:
    error = usage_error(capsys, main, *args)

    assert "client_id must be 1-64 letters, digits, '-' or '_', got" in error
    assert error.split(": error: ")[1].startswith(("argument CLIENT_ID: ", "argument --client-id: ")), error


@pytest.mark.parametrize(("args", "message"), [
    (("dlq", "list", "--limit", "0"), "argument --limit: must be a whole number of at least 1, got '0'"),
    (("dlq", "redrive", "--limit", "x"), "argument --limit: must be a whole number of at least 1, got 'x'"),
    (("outbox", "flush", "--grace", "-5"), "argument --grace: must be a whole number of at least 0, got '-5'"),
])
def test_a_number_out_of_its_range_is_a_usage_error(capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                                    message: str) -> None:
    assert usage_error(capsys, main, *args) == f"ob-admin {' '.join(args[:2])}: error: {message}"


@pytest.mark.parametrize("args", [("client", "create"), ("client",), (), ("config", "export")])
def test_usage_errors_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli.run(PROG, *args)
    assert result.returncode == 2
    assert "usage: ob-admin" in result.stderr
    assert "Traceback" not in result.stderr


CONFIGS = """\
client_id: acme
profiles:
  default:
    model: offline
  sales:
    model: offline
    temperature: 0.2
    system_message: |
      You sell anvils.
      Be brief.
    tools: [capture_lead]
    memory: {window_messages: 10}
"""


def test_config_import_then_export_round_trips_through_files(cli: Cli, tmp_path: Path) -> None:
    # given
    source = tmp_path / "acme.yaml"
    source.write_text(CONFIGS)

    # when
    imported = cli.run(PROG, "config", "import", str(source))
    again = _json(cli.run(PROG, "config", "import", str(source), "--json"))
    exported = cli.run(PROG, "config", "export", "acme", str(tmp_path / "out.yaml"))
    copied = _json(cli.run(PROG, "config", "import", str(tmp_path / "out.yaml"), "--client-id", "copy", "--json"))

    # then
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[0] == "created    default, sales"
    assert again["unchanged"] == ["default", "sales"]
    assert exported.stdout == f"exported 2 profile(s) of acme to {tmp_path / 'out.yaml'}\n"
    assert "(there is no client 'acme' (`" in exported.stderr  # profiles need no record, but say there is none
    assert copied["created"] == ["default", "sales"]
    acme = _json(cli.run(PROG, "config", "export", "acme", "--json"))
    copy = _json(cli.run(PROG, "config", "export", "copy", "-", "--format", "json"))
    assert acme["profiles"] == copy["profiles"]
    assert acme["profiles"]["sales"]["system_message"] == "You sell anvils.\nBe brief.\n"


def test_config_export_json_file_by_extension(cli: Cli, tmp_path: Path) -> None:
    cli.run(PROG, "config", "import", "-", stdin=CONFIGS)

    result = _json(cli.run(PROG, "config", "export", "acme", str(tmp_path / "acme.json"), "--json"))

    assert result == {"client_id": "acme", "file": str(tmp_path / "acme.json"), "format": "json",
                      "profiles": ["default", "sales"]}
    assert set(json.loads((tmp_path / "acme.json").read_text())["profiles"]) == {"default", "sales"}


def test_config_import_with_an_invalid_profile_writes_nothing(cli: Cli) -> None:
    document = CONFIGS + "  broken:\n    temperature: 7\n"

    result = cli.run(PROG, "config", "import", "-", stdin=document)

    assert_one_line_error(result, PROG, "profile 'broken': temperature must be between 0 and 2")
    assert _json(cli.run(PROG, "config", "export", "acme", "--json")) == {"client_id": "acme", "profiles": {}}


def test_config_import_dry_run_writes_nothing(cli: Cli) -> None:
    result = cli.run(PROG, "config", "import", "-", "--dry-run", stdin=CONFIGS)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "(dry run: nothing was written to acme)"
    assert _json(cli.run(PROG, "config", "export", "acme", "--json"))["profiles"] == {}


def test_config_import_of_bad_yaml_says_where(cli: Cli) -> None:
    result = cli.run(PROG, "config", "import", "-", stdin="client_id: acme\nprofiles: a: b\n")
    assert_one_line_error(result, PROG, "stdin is not valid YAML at line 2")


def test_init_on_the_memory_backend_explains_there_is_nothing_to_do(cli: Cli) -> None:
    text = cli.run(PROG, "init")
    report = _json(cli.run(PROG, "init", "--json"))

    assert text.returncode == 0, text.stderr
    assert "the embedded (memory) backend creates its tables" in text.stdout
    assert report["backend"] == "memory"


def test_init_against_an_unreachable_endpoint_is_one_line(cli: Cli) -> None:
    result = cli.run(PROG, "init", OB_BACKEND="aws", AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
                     AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    assert_one_line_error(result, PROG, "could not create the OpenBrain resources on http://127.0.0.1:")


def test_dlq_commands_report_in_text_and_json(cli: Cli) -> None:
    # the embedded backend's queues live only as long as one process, so they are empty here
    assert cli.run(PROG, "dlq", "list").stdout == "no dead-lettered messages\n"
    assert _json(cli.run(PROG, "dlq", "list", "lead-webhook", "--json")) == []
    redriven = _json(cli.run(PROG, "dlq", "redrive", "--json"))
    assert [(r["target"], r["moved"]) for r in redriven] == [("lead-webhook", 0), ("message-webhook", 0)]


def test_dlq_of_an_unknown_target_is_one_line(cli: Cli) -> None:
    assert_one_line_error(cli.run(PROG, "dlq", "list", "nope"), PROG, "no target named 'nope'")
    assert cli.run(PROG, "dlq", "redrive", "--limit", "0").returncode == 2


# --- against a real endpoint: moto's own server ----------------------------------------------------

def test_init_prepares_a_moto_server_and_is_idempotent(cli: Cli, moto_server: str) -> None:
    # given
    env = {"OB_BACKEND": "aws", "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}

    # when
    first = _json(cli.run(PROG, "init", "--json", **env))
    second = cli.run(PROG, "init", **env)

    # then
    assert set(first["tables"].values()) == {"created"}
    assert second.returncode == 0, second.stderr
    assert "created 0 of 7 tables" in second.stdout  # the six models' and the idempotency records'
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1",
                            aws_access_key_id="x", aws_secret_access_key="x")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")
    assert sorted(dynamodb.list_tables()["TableNames"]) == sorted(first["tables"])
    queues = sorted(url.rsplit("/", 1)[1] for url in sqs.list_queues()["QueueUrls"])
    assert queues == ["openbrain-lead-webhook", "openbrain-lead-webhook-dlq", "openbrain-message-webhook",
                      "openbrain-message-webhook-dlq"]
    # and the other commands work against the same endpoint from other processes
    key = _json(cli.run(PROG, "client", "create", "Acme", "--json", **env))["api_key"]
    assert _json(cli.run(PROG, "client", "list", "--json", **env))[0]["api_keys"] == 1
    assert key.startswith("ob.")
    # a dead letter is listed (and stays), then redriven to the target's queue
    dlq_url = sqs.get_queue_url(QueueName="openbrain-lead-webhook-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody="not an event")
    [letter] = _json(cli.run(PROG, "dlq", "list", "--json", **env))
    assert letter["target"] == "lead-webhook" and letter["error"]
    assert len(_json(cli.run(PROG, "dlq", "list", "--json", **env))) == 1
    [moved] = _json(cli.run(PROG, "dlq", "redrive", "lead-webhook", "--json", **env))
    assert moved["moved"] == 1
    assert _json(cli.run(PROG, "dlq", "list", "--json", **env)) == []
    queue_url = sqs.get_queue_url(QueueName="openbrain-lead-webhook")["QueueUrl"]
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue_url)["Messages"]] == ["not an event"]


def test_init_on_an_endpoint_without_ttl_creates_everything_and_says_ttl_is_unsupported(
        cli: Cli, moto_server: str) -> None:
    # given: DynamoDB through an endpoint that answers UpdateTimeToLive and TransactWriteItems as dynalite does
    with lacking(moto_server, "UpdateTimeToLive", "TransactWriteItems") as dynamodb_url:
        env = {"OB_BACKEND": "aws", "AWS_ENDPOINT_URL": moto_server, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
               **CREDENTIALS}

        # when
        text = cli.run(PROG, "init", **env)
        report = _json(cli.run(PROG, "init", "--json", **env))

    # then: every table, the bus and the queues, and one line about TTL
    assert text.returncode == 0, text.stderr
    assert text.stderr == ""
    lines = text.stdout.splitlines()
    assert lines[0].startswith("created 7 of 7 tables; bus openbrain-events, 4 queues and their rules are in place")
    [ttl] = [line for line in lines if "TTL" in line or "ttl" in line]
    assert ttl == (f"ttl    unsupported: {dynamodb_url} has no UpdateTimeToLive, so expired sessions, "
                   "idempotency records and rate-limit windows are never deleted (reads ignore them all the same)")
    assert (report["ttl"], set(report["tables"].values()), len(report["queues"])) == ("unsupported", {"exists"}, 4)
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x")
    assert sorted(url.rsplit("/", 1)[1] for url in sqs.list_queues()["QueueUrls"]) == [
        "openbrain-lead-webhook", "openbrain-lead-webhook-dlq", "openbrain-message-webhook",
        "openbrain-message-webhook-dlq"]


def test_config_import_on_an_endpoint_without_transactions_names_the_operation(cli: Cli, moto_server: str) -> None:
    # given: tables made on the moto server, then DynamoDB through an endpoint without TransactWriteItems
    env = {"OB_BACKEND": "aws", "AWS_ENDPOINT_URL": moto_server, **CREDENTIALS}
    assert cli.run(PROG, "init", **env).returncode == 0
    with lacking(moto_server, "UpdateTimeToLive", "TransactWriteItems") as dynamodb_url:
        # when
        result = cli.run(PROG, "config", "import", "-", stdin=CONFIGS, **env, AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url)

    # then: what is missing and what to do, and nothing written
    assert_one_line_error(result, PROG, "DynamoDB could not write the profiles of 'acme' (UnknownOperationException): "
                          "the endpoint does not implement TransactWriteItems; use one that does (DynamoDB, "
                          "DynamoDB Local, LocalStack, a moto server); nothing was written")
    assert _json(cli.run(PROG, "config", "export", "acme", "--json", **env))["profiles"] == {}


def test_outbox_flush_publishes_what_a_crashed_turn_left_and_clears_it(cli: Cli) -> None:
    from support.backend import installed_backend

    from openbrain.core.settings import Settings
    from openbrain.domain.events import ConversationEnded, to_outbox
    from openbrain.storage.orm import ChatSession

    # given: a stored session whose committed events were never published (the process died after the commit)
    with installed_backend(Settings(memory_store=cli.store)):
        session = ChatSession("acme", profile_name="default")
        event = ConversationEnded(client_id="acme", session_id=session.session_id, tool_call_id="call_1", turn_count=1)
        session.outbox = to_outbox([event])
        session.save()

    # when / then: a young outbox is left to its turn; with no grace it is published and cleared
    assert cli.run(PROG, "outbox", "flush").stdout == "published 0 event(s) of 0 session(s)\n"
    assert _json(cli.run(PROG, "outbox", "flush", "--grace", "0", "--json")) == {
        "sessions": 1, "events": 1, "failed": 0}
    with installed_backend(Settings(memory_store=cli.store)):
        assert ChatSession.get("acme", session.session_id).outbox is None
    assert cli.run(PROG, "outbox", "flush", "--grace", "soon").returncode == 2


# --- schedules (docs/scheduling.md) ---------------------------------------------------------------------------

def _scheduled(cli: Cli, message: str) -> tuple[str, str]:
    """Schedule with `ob` (a dps message, one process): the session's id and the scheduled message's."""
    reply = _json(cli.run("ob", "--json", message))
    [event] = reply["events"]
    assert event["type"] == "message.scheduled.v1"
    return reply["session_id"], event["object_id"]


def test_schedules_list_and_cancel_in_text_and_json(cli: Cli) -> None:
    # given: two sessions of the CLIs' client with a message waiting each
    first, daily = _scheduled(cli, "dps u every day at 8am\nGood morning!\nTime to stretch.")
    second, soon = _scheduled(cli, "dps c in 30 minutes\n\nAsk how the essay is going")

    # when
    text = cli.run(PROG, "schedules", "list", "public")
    listed = _json(cli.run(PROG, "schedules", "list", "public", "--json"))
    one = _json(cli.run(PROG, "schedules", "list", "public", "--session", first, "--json"))

    # then: JSON groups them by session; text is one line each, soonest first, with the prompt's first line
    assert {group["session_id"]: [(s["schedule_id"], s["prompt"]) for s in group["schedules"]] for group in listed} \
        == {first: [(daily, "Good morning!\nTime to stretch.")], second: [(soon, "Ask how the essay is going")]}
    assert one == [group for group in listed if group["session_id"] == first]
    [[morning], [essay]] = [group["schedules"] for group in sorted(listed, key=lambda g: g["session_id"] != first)]
    assert text.returncode == 0 and text.stderr == "", text.stderr  # `public` has no record, and needs none
    lines = {line.split()[0]: line for line in text.stdout.splitlines()}
    assert lines[daily] == (f"{daily}  session {first}  to the user  every day at 08:00 (UTC)  next "
                            f"{morning['next_at'][:10]} 08:00 UTC  Good morning!")
    assert lines[soon].startswith(f"{soon}  session {second}  to the chatbot  ")
    assert lines[soon].endswith("  Ask how the essay is going")
    soonest_first = sorted([morning, essay], key=lambda s: s["next_at"])
    assert list(lines) == [s["schedule_id"] for s in soonest_first]

    # when: both are cancelled, one in text and one in JSON
    cancelled = cli.run(PROG, "schedules", "cancel", "public", first, daily)
    cancelled_json = _json(cli.run(PROG, "schedules", "cancel", "public", second, soon, "--json"))

    # then
    assert cancelled.stdout == f"cancelled {daily} (every day at 08:00 (UTC))\n"
    assert cancelled_json == essay
    assert cli.run(PROG, "schedules", "list", "public").stdout == "(no scheduled messages)\n"
    assert _json(cli.run(PROG, "schedules", "list", "public", "--json")) == []
    # another id without a record is read the same way, with a note that there is no such client (a typo?)
    other = cli.run(PROG, "schedules", "list", "pubilc")
    assert other.returncode == 0 and other.stdout == "(no scheduled messages)\n"
    assert other.stderr.startswith("(there is no client 'pubilc' (`"), other.stderr
    assert "ob-admin client list` lists them)" in other.stderr


MISSING = "session '01KAAAAAAAAAAAAAAAAAAAAAAA' not found for client 'public' (or it expired)"  # docs/api.md's wording


@pytest.mark.parametrize(("args", "message"), [
    (("cancel", "public", "SESSION", "01KAAAAAAAAAAAAAAAAAAAAAAA"), "no scheduled message '01KAAAAAAAAAAAAAAA"),
    (("cancel", "public", "SESSION", "not an id"), "scheduled message not found"),
    (("cancel", "public", "01KAAAAAAAAAAAAAAAAAAAAAAA", "SCHEDULE"), MISSING),
    (("cancel", "public", "not an id", "SCHEDULE"),
     "session 'not an id' not found for client 'public' (or it expired)"),
    (("cancel", "acme", "SESSION", "SCHEDULE"), "session 'SESSION' not found for client 'acme' (or it expired)"),
    (("list", "public", "--session", "01KAAAAAAAAAAAAAAAAAAAAAAA"), MISSING),
])
def test_a_schedule_or_session_that_is_not_there_is_one_line_and_exit_1(cli: Cli, args: tuple[str, ...],
                                                                        message: str) -> None:
    # given: a waiting message, so what is refused is the id, not an empty store
    session_id, schedule_id = _scheduled(cli, "dps u in 1 hour\nhello")
    filled = [arg.replace("SESSION", session_id).replace("SCHEDULE", schedule_id) for arg in args]

    # when
    result = cli.run(PROG, "schedules", *filled)

    # then: one line, and nothing cancelled
    assert_one_line_error(result, PROG, message.replace("SESSION", session_id))
    assert [s["schedule_id"] for group in _json(cli.run(PROG, "schedules", "list", "public", "--json"))
            for s in group["schedules"]] == [schedule_id]
