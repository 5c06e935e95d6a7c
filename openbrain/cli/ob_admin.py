"""`ob-admin`: clients and API keys, AgentConfig export/import, usage, dead-letter queues, outboxes, and `init`.

Thin: each command parses, calls `openbrain.services.clients`, `openbrain.services.configs_io`, `.usage`,
`openbrain.targets.dlq` or `openbrain.conversation.outbox`, prints (text, or JSON with --json) and closes
the backend so the embedded store keeps the change.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openbrain.cli.common import add_version, command, dumps, number_between, parse_client_id, run
from openbrain.core.errors import OpenBrainError

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend

PROG = "ob-admin"


def _key_notice(client_id: str) -> str:
    rotate = f"{command(PROG)} client rotate-key {client_id}"
    return (f"(keys are shown only this once: store them now; `{rotate}` and `{rotate} --widget` make new ones. The "
            "server key (ob.…) may do everything: keep it secret. The widget key (obw.…) may only chat: it is the one "
            "to put in a web page.)")


def _signing_notice(client_id: str) -> str:
    return ("(the webhook secret too is shown only this once: give it to the receiver, which verifies each delivery "
            f"with it (docs/targets.md); `{command(PROG)} client rotate-webhook-secret {client_id}` makes a new one)")


@contextmanager
def _opened() -> Iterator[Backend]:
    from openbrain.aws.backend import get_backend

    backend = get_backend()
    try:
        yield backend
    finally:
        backend.close()


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(dumps(data) if args.json else text)


def _fields(pairs: dict[str, Any], indent: str = "") -> list[str]:
    """What the commands show of one thing, as text: `label  value` lines, the values in one column. An unset value
    (None, no items) is `-`, yes/no is `yes`/`no`, and numbers have thousands separators (--json: null, [], true)."""
    width = max(map(len, pairs), default=0) + 2
    return [f"{indent}{label:<{width}}{_shown(value)}" for label, value in pairs.items()]


def _shown(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


# --- client ----------------------------------------------------------------------------------------

def _client_create(args: argparse.Namespace) -> int:
    from openbrain.services.clients import create_client, rotate_webhook_secret

    secret = None
    with _opened() as backend:
        client, api_key, widget_key = create_client(
            backend.stores, args.name, client_id=args.client_id, origins=args.origin or (), webhook_url=args.webhook,
            webhook_secret_ref=args.webhook_secret_ref,
        )
        if args.webhook and not args.webhook_secret_ref:
            try:
                client, secret = rotate_webhook_secret(backend, client.client_id)
            except OpenBrainError:
                backend.stores.clients.delete(client)  # nothing half-made: no client whose leads cannot be signed
                raise
    created = {"client_id": client.client_id, "api_key": api_key, "widget_key": widget_key}
    shown = {**created, "webhook_secret": secret} if secret else created
    if secret:
        created |= {"webhook_secret": secret, "webhook_secret_ref": client.webhook_secret_ref}
    _emit(args, created, "\n".join(_fields(shown)))
    if not args.json:
        print(_key_notice(client.client_id), file=sys.stderr)
        if secret:
            print(_signing_notice(client.client_id), file=sys.stderr)
    return 0


def _client_list(args: argparse.Namespace) -> int:
    from openbrain.services.clients import describe_client, list_clients

    with _opened() as backend:
        clients = [describe_client(client) for client in list_clients(backend.stores)]
    rows = [("CLIENT_ID", "NAME", "KEYS", "ORIGINS", "WEBHOOK")] + [
        (c["client_id"], c["display_name"], str(c["api_keys"]), ",".join(c["allowed_origins"]) or "-",
         c["webhook_url"] or "-")
        for c in clients
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    table = "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[4]])
                      for row in rows)
    _emit(args, clients, table if clients else f"no clients yet; create one with: {command(PROG)} client create NAME")
    return 0


def _client_show(args: argparse.Namespace) -> int:
    from openbrain.services.clients import describe_client, get_client, profile_names

    with _opened() as backend:
        info = describe_client(get_client(backend.stores, args.client_id),
                               profile_names(backend.stores, args.client_id))
    limits = info.pop("limits")
    _emit(args, {**info, "limits": limits}, "\n".join([*_fields(info), "limits", *_fields(limits, "  ")]))
    return 0


def _client_limits(args: argparse.Namespace) -> int:
    from openbrain.domain.limits import RateLimits
    from openbrain.services.clients import get_client, set_limits

    changes = {name: getattr(args, name) for name in RateLimits.model_fields if getattr(args, name) is not None}
    with _opened() as backend:
        if changes or args.reset:
            limits = set_limits(backend.stores, args.client_id, changes, reset=args.reset)
        else:
            limits = get_client(backend.stores, args.client_id).rate_limits
    shown = limits.model_dump()
    _emit(args, {"client_id": args.client_id, "limits": shown},
          "\n".join([f"limits of {args.client_id} (docs/api.md, Rate limits and quotas)",
                     *_fields(shown, "  ")]))
    return 0


def _usage(args: argparse.Namespace) -> int:
    from openbrain.services.usage import date_range, usage_report

    start, end = date_range(args.from_, args.to)
    with _opened() as backend:
        report = usage_report(backend.stores.counters, args.client_id, start, end)
        _note_if_unknown(args, backend)
    columns = ("turns", "input_tokens", "output_tokens", "errors", "rate_limited", "mean_latency_ms")
    lines = [f"usage of {args.client_id}, {start} to {end} (UTC days; every key's turns)",
             f"{'day':<12}" + "".join(f"{name:>17}" for name in columns)]
    for label, counts in [*((str(day.day), day) for day in report.days), ("total", report.totals)]:
        cells = (getattr(counts, name) for name in columns)
        lines.append(f"{label:<12}" + "".join(f"{'-' if n is None else format(n, ','):>17}" for n in cells))
    _emit(args, report.model_dump(mode="json", by_alias=True), "\n".join(lines))
    return 0


def _note_if_unknown(args: argparse.Namespace, backend: Backend) -> None:
    """What a client's data is read for (usage, scheduled messages) is its id, record or not: `public`, the CLIs'
    default, has none, nor has any other id `ob --client-id` was given. An id other than `public` without a record
    gets a note on stderr (text output only), so that a mistyped one does not pass for a client with nothing."""
    from openbrain.core.errors import NotFoundError
    from openbrain.domain.profile import DEFAULT_CLIENT_ID

    if args.json or args.client_id == DEFAULT_CLIENT_ID:
        return
    try:
        backend.stores.clients.get(args.client_id)
    except NotFoundError:
        print(f"(there is no client {args.client_id!r} (`{command(PROG)} client list` lists them): this is only what "
              f"the CLIs stored under that id, as `{command('ob')} --client-id {args.client_id}` does)",
              file=sys.stderr)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a day as YYYY-MM-DD, got {text!r}") from None


def _client_rotate_key(args: argparse.Namespace) -> int:
    from openbrain.services.clients import rotate_key

    with _opened() as backend:
        client, api_key = rotate_key(backend.stores, args.client_id, keep_old=args.keep_old, kind=args.kind)
    keys = client.api_key_count(args.kind)
    _emit(args, {"client_id": client.client_id, "kind": args.kind, "api_key": api_key, "api_keys": keys},
          "\n".join(_fields({"client_id": client.client_id, "api_key": api_key})))
    if not args.json:
        kept = f"{keys - 1} older key(s) still work" if args.keep_old else "every older key is revoked"
        print(f"({kept}) {_key_notice(client.client_id)}", file=sys.stderr)
    return 0


def _client_widget_snippet(args: argparse.Namespace) -> int:
    from openbrain.services.clients import get_client
    from openbrain.web import embed_tag, widget

    if args.key is not None and (problem := _not_a_widget_key(args.key, args.client_id)):
        args.usage(problem)
    with _opened() as backend:
        client = get_client(backend.stores, args.client_id)
    script = widget()
    api = args.api.rstrip("/")
    key = args.key or f"obw.{client.client_id}.WIDGET-KEY"
    tag = embed_tag(api + script.versioned_path, key, args.profile, integrity=script.integrity, ws=args.ws)
    _emit(args, {"client_id": client.client_id, "src": api + script.versioned_path, "integrity": script.integrity,
                 "tag": tag}, tag)
    if not args.json and not args.key:
        print(f"(put the client's widget key in data-key: it is shown only when made; `{command(PROG)} client "
              f"rotate-key {client.client_id} --widget` makes a new one)", file=sys.stderr)
    return 0


def _not_a_widget_key(key: str, client_id: str) -> str | None:
    """Why `key` may not go in a web page as `client_id`'s widget key (None: it may). A server key may do everything
    and another client's key chats as that client: either in a page is a leak. The key itself is never repeated."""
    from openbrain.storage.orm.client import API_KEY_PREFIX, parse_api_key

    wanted = f"give the widget key of client {client_id!r} (obw.{client_id}.…)"
    if key.startswith(API_KEY_PREFIX):
        return f"--key is a server key (ob.…), which may do everything and must never be in a web page; {wanted}"
    parsed = parse_api_key(key)
    if parsed is None:
        return f"--key is not an API key; {wanted}"
    if parsed[1] != client_id:
        return f"--key is a widget key of client {parsed[1]!r}; {wanted}"
    return None


def _web_url(*schemes: str) -> Callable[[str], str]:
    """argparse `type` of a URL the widget calls: one of `schemes` with a host."""
    from urllib.parse import urlsplit

    def check(text: str) -> str:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in schemes or not parts.hostname:
            raise argparse.ArgumentTypeError(f"must be a {' or '.join(f'{s}://' for s in schemes)} URL, got {text!r}")
        return text

    return check


def _client_rotate_webhook_secret(args: argparse.Namespace) -> int:
    from openbrain.services.clients import rotate_webhook_secret

    with _opened() as backend:
        client, secret = rotate_webhook_secret(backend, args.client_id, args.webhook)
    shown = {"client_id": client.client_id, "webhook_url": client.webhook_url, "webhook_secret": secret}
    _emit(args, {**shown, "webhook_secret_ref": client.webhook_secret_ref}, "\n".join(_fields(shown)))
    if not args.json:
        print(f"(running targets sign with it within 5 minutes, or at once after a refusal of the old signature) "
              f"{_signing_notice(client.client_id)}", file=sys.stderr)
    return 0


# --- config ----------------------------------------------------------------------------------------

def _config_export(args: argparse.Namespace) -> int:
    from openbrain.core.errors import InvalidInputError
    from openbrain.services.configs_io import dump_document, export_configs, format_for

    to_stdout = args.file == "-"
    if to_stdout and args.json:  # the document is the output: --json asks for it as JSON
        if args.format == "yaml":
            raise InvalidInputError("--json writes the document as JSON; leave out --format yaml")
        args.format = "json"
    fmt = format_for(None if to_stdout else args.file, args.format)
    with _opened() as backend:
        document = export_configs(backend.stores.profiles, args.client_id, include_versions=args.with_versions)
        _note_if_unknown(args, backend)
    text = dump_document(document, fmt)
    if to_stdout:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot write {args.file}: {exc.strerror or exc}") from exc
    names = list(document["profiles"])
    _emit(args, {"client_id": args.client_id, "file": args.file, "format": fmt, "profiles": names},
          f"exported {len(names)} profile(s) of {args.client_id} to {args.file}")
    return 0


def _config_import(args: argparse.Namespace) -> int:
    from openbrain.core.errors import InvalidInputError
    from openbrain.services.configs_io import format_for, import_configs, load_document

    if args.file == "-":
        text, source = sys.stdin.read(), "stdin"
    else:
        try:
            text, source = Path(args.file).read_text(encoding="utf-8"), args.file
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}") from exc
    document = load_document(text, format_for(None if args.file == "-" else args.file, args.format), source)
    with _opened() as backend:
        report = import_configs(backend.stores.profiles, document, client_id=args.client_id, dry_run=args.dry_run)
    lines = _fields({"created": report.created, "updated": report.updated, "unchanged": report.unchanged})
    if report.dry_run:
        lines.append(f"(dry run: nothing was written to {report.client_id})")
    _emit(args, report.as_dict(), "\n".join(lines))
    return 0


# --- dlq -------------------------------------------------------------------------------------------

def _target_names(name: str | None) -> list[str]:
    from openbrain.aws.resources import TARGETS

    return [name] if name else [target.name for target in TARGETS]


def _dlq_list(args: argparse.Namespace) -> int:
    from openbrain.targets.dlq import list_dead_letters

    with _opened() as backend:
        found = {name: list_dead_letters(backend, name, limit=args.limit) for name in _target_names(args.target)}
    data = [{"target": name, **letter.as_dict()} for name, letters in found.items() for letter in letters]
    lines = [f"{d['target']}  {d['message_id']}  {d['event_type'] or '(unreadable: ' + str(d['error']) + ')'}  "
             f"client={d['client_id'] or '-'}  receives={d['receive_count']}  redrives={d['redrive_count']}"
             for d in data]
    _emit(args, data, "\n".join(lines) or "no dead-lettered messages")
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    from openbrain.targets.dlq import redrive

    with _opened() as backend:
        results = [redrive(backend, name, limit=args.limit) for name in _target_names(args.target)]
    data = [result.as_dict() for result in results]
    _emit(args, data, "\n".join(f"{r.target}: moved {r.moved} message(s) back to its queue" for r in results))
    return 0


# --- outbox ----------------------------------------------------------------------------------------

def _outbox_flush(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from openbrain.conversation.outbox import flush

    with _opened() as backend:
        report = flush(backend, grace=timedelta(seconds=args.grace))
    text = f"published {report.events} event(s) of {report.sessions - report.failed} session(s)"
    if report.failed:
        text += f"; {report.failed} session(s) kept their outbox: the event bus refused (run it again later)"
    _emit(args, asdict(report), text)
    return 1 if report.failed else 0


# --- schedules -------------------------------------------------------------------------------------

def _schedules_list(args: argparse.Namespace) -> int:
    from openbrain.services.sessions import client_schedules, session_schedules

    with _opened() as backend:
        if args.session:
            found = [session_schedules(backend.stores, args.client_id, args.session)]
        else:
            found = client_schedules(backend.stores, args.client_id)
        _note_if_unknown(args, backend)
    waiting = sorted(((s, group.session_id) for group in found for s in group.schedules), key=lambda x: x[0].next_at)
    lines = [f"{s.schedule_id}  session {session_id}  to the {s.recipient}  {s.description}  "
             f"next {s.next_at:%Y-%m-%d %H:%M} UTC  {s.prompt.splitlines()[0][:60]}" for s, session_id in waiting]
    _emit(args, [group.model_dump(mode="json") for group in found], "\n".join(lines) or "(no scheduled messages)")
    return 0


def _schedules_cancel(args: argparse.Namespace) -> int:
    from openbrain.core.ids import existing_id
    from openbrain.services.sessions import cancel_schedule

    with _opened() as backend:
        cancelled = cancel_schedule(backend, args.client_id, args.session_id,
                                    existing_id(args.schedule_id, "scheduled message"))
    _emit(args, cancelled.model_dump(mode="json"), f"cancelled {cancelled.schedule_id} ({cancelled.description})")
    return 0


# --- init ------------------------------------------------------------------------------------------

def _init(args: argparse.Namespace) -> int:
    from openbrain.aws.resources import init_resources

    with _opened() as backend:
        report = init_resources(backend)
    lines = [report.message]
    if report.backend != "memory":
        lines += [f"table  {name}  {state}" for name, state in report.tables.items()]
        lines += [f"bus    {report.event_bus}"] + [f"queue  {url}" for url in report.queues.values()]
        if not report.ttl:
            lines.append(f"ttl    unsupported: {report.endpoint} has no UpdateTimeToLive, so expired sessions, "
                         "idempotency records and rate-limit windows are never deleted (reads ignore them all the "
                         "same)")
    _emit(args, report.as_dict(), "\n".join(lines))
    return 0


# --- the parser ------------------------------------------------------------------------------------

def _client_identity(args: argparse.Namespace) -> int:
    from openbrain.services.clients import get_client
    from openbrain.services.identity import require_identity, rotate_identity_secret

    secret = None
    with _opened() as backend:
        client = get_client(backend.stores, args.client_id)
        if args.rotate:
            client, secret = rotate_identity_secret(backend, args.client_id)
        if args.require is not None:
            client = require_identity(backend, args.client_id, args.require)
    shown: dict[str, Any] = {"client_id": client.client_id, "identity_secret_ref": client.identity_secret_ref,
                             "identity_required": bool(client.identity_required)}
    if secret:
        shown["identity_secret"] = secret
    _emit(args, shown, "\n".join(_fields(shown)))
    if secret and not args.json:
        print("(the identity secret is shown only this once: give it to the client's server, which signs user ids "
              "(X-User-Hash) with it, or widget tokens with a key derived from it (docs/api.md, End-user "
              "identity); hashes and tokens made with the old secret are refused from now on)", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                           help="machine-readable output")
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Manage OpenBrain clients, API keys and agent configs, and create the AWS resources on "
        "an endpoint. Uses the backend of OB_BACKEND (the embedded store by default).",
    )
    add_version(p)
    p.add_argument("--json", action="store_true", default=False, help="machine-readable output")
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from openbrain.domain.limits import RateLimits  # its fields are `client limits`' options

    def command(group: Any, name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = group.add_parser(name, parents=[json_flag], help=text, description=text)
        sub.set_defaults(handler=handler, usage=sub.error)  # `args.usage(message)`: a usage error, exit 2
        return sub

    client = commands.add_parser("client", help="create, list, show clients; rotate API keys")
    clients = client.add_subparsers(dest="client_command", required=True, metavar="COMMAND")
    create = command(clients, "create", _client_create, "create a client and print its first API key (once)")
    create.add_argument("name", metavar="NAME", help="display name")
    create.add_argument("--client-id", type=parse_client_id,
                        help="client id (1-64 of A-Z a-z 0-9 - _) [a slug of NAME]")
    create.add_argument("--origin", action="append", metavar="URL",
                        help="allowed browser origin http(s)://host[:port]; repeat for several")
    create.add_argument("--webhook", metavar="URL",
                        help="lead webhook, https:// (http:// only to 127.0.0.1/localhost)")
    create.add_argument("--webhook-secret-ref", metavar="REF",
                        help="SSM parameter or Secrets Manager secret holding the webhook signing secret "
                             "[with --webhook: a new secret, stored in SSM and printed once]")
    command(clients, "list", _client_list, "list clients (never keys or their hashes)")
    show = command(clients, "show", _client_show, "show one client and its profiles")
    show.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    limits = command(clients, "limits", _client_limits,
                     "show or set the client's rate limits and quotas (widget-key turns, 0 refusing every turn; "
                     "scheduled messages waiting, 0 refusing every one, and their shortest interval)")
    limits.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    for name, spec in RateLimits.model_fields.items():
        limits.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, metavar="N",
                            help=f"{spec.description} [{spec.default:,}]")
    limits.add_argument("--reset", action="store_true", help="every limit not given goes back to its default")
    rotate = command(clients, "rotate-key", _client_rotate_key,
                     "make a new API key (printed once) and revoke the old ones")
    rotate.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    rotate.add_argument("--keep-old", action="store_true", help="keep the old keys working too")
    rotate.add_argument("--widget", dest="kind", action="store_const", const="widget", default="server",
                        help="rotate the widget key (obw.…, chat only) instead of the server key (ob.…)")
    snippet = command(clients, "widget-snippet", _client_widget_snippet,
                      "print the <script> tag that embeds the chat widget, pinned to this version by its SRI hash")
    snippet.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    snippet.add_argument("--api", required=True, metavar="URL", type=_web_url("https", "http"),
                         help="the chat API's URL (the stack output ApiUrl, or ob-serve's http://127.0.0.1:8080)")
    snippet.add_argument("--key", metavar="KEY",
                         help="the client's widget key (obw.<CLIENT_ID>.…; never a server key) [a placeholder]")
    snippet.add_argument("--profile", default="default", help="the profile the widget chats with [default]")
    snippet.add_argument("--ws", metavar="URL", type=_web_url("wss", "ws"),
                         help="the WebSocket URL, when it is not the API's /ws (on AWS: the stack output ChatWsUrl)")
    rotate_secret = command(clients, "rotate-webhook-secret", _client_rotate_webhook_secret,
                            "make a new webhook signing secret (printed once), stored in SSM")
    rotate_secret.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    rotate_secret.add_argument("--webhook", metavar="URL", help="also set the lead webhook URL")
    identity = command(clients, "identity", _client_identity,
                       "show the client's end-user identity settings; make a new identity secret (printed once, "
                       "stored in SSM); require a verified end user on every widget-key request")
    identity.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    identity.add_argument("--rotate", action="store_true",
                          help="make a new identity secret (the old one stops working at once)")
    identity.add_argument("--require", action=argparse.BooleanOptionalAction, default=None,
                          help="refuse (or, with --no-require, accept) widget-key requests without a verified "
                               "end user [unchanged]")

    config = commands.add_parser("config", help="export or import a client's AgentConfigs (YAML/JSON)")
    configs = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    export = command(configs, "export", _config_export, "write every profile of a client as YAML or JSON")
    export.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    export.add_argument("file", metavar="FILE", nargs="?", default="-", help="file to write, or - for stdout [-]")
    export.add_argument("--format", choices=("yaml", "json"), help="[json for *.json, else yaml]")
    export.add_argument("--with-versions", action="store_true",
                        help="record each profile's version, so importing fails if it changed meanwhile")
    imp = command(configs, "import", _config_import,
                  "create/update profiles from a file: all validated first, nothing written if any is invalid")
    imp.add_argument("file", metavar="FILE", help="file to read, or - for stdin")
    imp.add_argument("--client-id", type=parse_client_id,
                     help="import into this client instead of the document's client_id")
    imp.add_argument("--format", choices=("yaml", "json"), help="[json for *.json, else yaml]")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")

    dlq = commands.add_parser("dlq", help="inspect and redrive the event targets' dead-letter queues")
    dlqs = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    listing = command(dlqs, "list", _dlq_list, "show dead-lettered events (they stay in the queue)")
    moving = command(dlqs, "redrive", _dlq_redrive,
                     "move dead-lettered events back to their target's queue, for the target to retry")
    for sub in (listing, moving):
        sub.add_argument("target", metavar="TARGET", nargs="?", help="e.g. lead-webhook [every target]")
        sub.add_argument("--limit", type=number_between(int, 1), default=1000,
                         help="at most this many messages per target [1000]")

    box = commands.add_parser("outbox", help="publish the events committed chat turns could not (docs/events.md)")
    boxes = box.add_subparsers(dest="outbox_command", required=True, metavar="COMMAND")
    flushing = command(boxes, "flush", _outbox_flush,
                       "publish every session outbox committed more than GRACE seconds ago, and clear it")
    flushing.add_argument("--grace", type=number_between(int, 0), default=60,
                          help="leave younger outboxes to the turn publishing them [60]")

    schedule = commands.add_parser("schedules", help="list and cancel scheduled messages (docs/scheduling.md)")
    schedules = schedule.add_subparsers(dest="schedules_command", required=True, metavar="COMMAND")
    listing = command(schedules, "list", _schedules_list, "show a client's scheduled messages waiting, soonest first")
    listing.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    listing.add_argument("--session", metavar="SESSION_ID", help="only this session's [every session's]")
    cancelling = command(schedules, "cancel", _schedules_cancel, "cancel a scheduled message")
    cancelling.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    for name in ("session_id", "schedule_id"):
        cancelling.add_argument(name, metavar=name.upper())

    usage = command(commands, "usage", _usage,
                    "show a client's usage per UTC day: turns, model tokens, errors, rate-limited requests, latency")
    usage.add_argument("client_id", metavar="CLIENT_ID", type=parse_client_id)
    usage.add_argument("--from", dest="from_", type=_day, metavar="YYYY-MM-DD", help="first day [29 days before --to]")
    usage.add_argument("--to", type=_day, metavar="YYYY-MM-DD", help="last day [today]")

    command(commands, "init", _init,
            "create the tables, event bus, rules and queues on the configured endpoint (idempotent)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(PROG, lambda: int(args.handler(args)))


if __name__ == "__main__":
    sys.exit(main())
