"""The embedded store's process: moto on 127.0.0.1, every DynamoDB write on disk before it is answered.

`python -m openbrain.aws.store_server STORE` serves DynamoDB, SSM, EventBridge and SQS (moto's WSGI app) on a free
loopback port for every OpenBrain process of this user on the machine. `openbrain.aws.embedded_store`
starts it on first use and finds it through the state file; nobody needs to start it by hand.

Files next to the store file `STORE` (all mode 0600, in a 0700 directory):

- `STORE`: the snapshot, `{"format": 2, "journal": ID, "tables": [{"region", "name", "create", "ttl", "items"}],
  "parameters": [{"region", "put"}]}` (`create` and `ttl` are the CreateTable and UpdateTimeToLive requests that
  made the table, `items` its items in DynamoDB's JSON, binary values base64 as on the wire; `put` the last
  PutParameter request of each SSM parameter: the embedded backend's secret store, e.g. the webhook signing secrets
  `ob-admin` makes, in clear text in this file of yours alone, as `~/.aws/credentials` keeps keys). A format-1
  file (`{"format": 1, "tables": {name: [items]}}`, written until issue 11) is read too: its items wait for their
  table to be created, then go into it.
- `STORE.journal`: a line `{"journal": ID}`, then one line per answered DynamoDB or SSM parameter write, in the
  order moto applied them: `{"region", "op", "body"}` (`"service": "ssm"` on a parameter's). Each line is written
  and fsync'd before the write is answered. On start the journal is replayed over the snapshot if their ids agree
  (a compaction that died between writing the snapshot and the new journal leaves an old journal the snapshot
  already holds); a torn last line was never answered.
- `STORE.server`: `{"pid", "port", "token"}` while the process serves. Every request must carry the token in the
  `x-openbrain-store-token` header, so another local user cannot read or write the store through the port.
- `STORE.clients`: each OpenBrain process using the store holds a shared lock on it while its backend is open.

Compaction (the tables to a new snapshot, an empty journal) runs on start, when the journal passes
`COMPACT_AT_BYTES`, and when the process stops: after `idle` seconds with no request and no process attached, or
on SIGTERM. EventBridge buses, rules and SQS queues live only in this process: they are made again by the next
backend that starts, and messages still queued are lost when it stops.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from openbrain.core.errors import StoredDataError

SNAPSHOT_FORMAT = 2
TOKEN_HEADER = "x-openbrain-store-token"  # noqa: S105 - a header name, not a secret
COMPACT_AT_BYTES = 8 * 1024 * 1024
DEFAULT_IDLE_SECONDS = 300.0
HEALTH_PATH = "/openbrain-store"  # answered by the store itself (with the token): is this the store, alive
UNREADABLE_EXIT = 3  # the exit status when the store file cannot be read (its message is the last line)
# What each journaled service's requests are sent as: X-Amz-Target prefix, JSON content type.
SERVICES = {"dynamodb": ("DynamoDB_20120810.", "application/x-amz-json-1.0"),
            "ssm": ("AmazonSSM.", "application/x-amz-json-1.1")}
# The operations that change something, by service: journaled when moto answered them 200.
WRITES = {"dynamodb": frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
                                 "CreateTable", "DeleteTable", "UpdateTable", "UpdateTimeToLive"}),
          "ssm": frozenset({"PutParameter", "DeleteParameter", "DeleteParameters"})}


def sibling(store: Path, suffix: str) -> Path:
    """The file next to `store` named `<store name><suffix>` (`.journal`, `.server`, `.clients`, `.lock`, `.log`)."""
    return store.with_name(store.name + suffix)


def open_private(path: Path) -> IO[str]:
    """`path` opened for appending, created readable only by the owner (for the lock files)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temp file, fsync, rename), readable only by the owner."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())  # the rename must never publish a half-written file
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # and the rename itself survives a power cut
    finally:
        os.close(directory)


class Store:
    """moto's DynamoDB with its tables in `path`: loads them, journals every write, compacts."""

    def __init__(self, path: Path, app: Callable[..., Iterable[bytes]]) -> None:
        self.path = path
        self.app = app  # moto's WSGI app
        self.journal_path = sibling(path, ".journal")
        self.write_lock = threading.Lock()  # one write at a time: the journal's order is moto's order
        self._journal: IO[str] | None = None
        self._tables: dict[tuple[str, str], dict[str, Any]] = {}  # (region, name) -> {"create", "ttl"}
        self._parameters: dict[tuple[str, str], dict[str, Any]] = {}  # (region, name) -> its last PutParameter
        self._pending: dict[str, list[Any]] = {}  # name -> items of a format-1 file, waiting for their table

    # --- calling moto in-process ---------------------------------------------------------------------------------

    def call(self, region: str, op: str, body: dict[str, Any], service: str = "dynamodb") -> tuple[int, dict[str, Any]]:
        """One request straight to moto's app (no HTTP): status and JSON answer."""
        prefix, content_type = SERVICES[service]
        data = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
            "wsgi.input": BytesIO(data), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False, "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": content_type, "HTTP_HOST": f"{service}.{region}.amazonaws.com",
            "HTTP_X_AMZ_TARGET": prefix + op,
            "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=openbrain/20260101/{region}/{service}/aws4_request, "
                                  "SignedHeaders=host, Signature=0",
        }
        status: list[str] = []
        chunks = self.app(environ, lambda s, h, e=None: status.append(s))
        answer = b"".join(chunks)
        return int(status[0].split()[0]), json.loads(answer or b"{}")

    def _must(self, region: str, op: str, body: dict[str, Any], service: str = "dynamodb") -> dict[str, Any]:
        status, answer = self.call(region, op, body, service)
        if status != 200:
            what = body.get("TableName") or body.get("Name") or "?"
            raise ValueError(f"{op} on {what}: {answer.get('message') or answer}")
        return answer

    # --- loading ---------------------------------------------------------------------------------------------------

    def load(self) -> int:
        """Load the snapshot and replay the journal over it; returns how many items the snapshot held."""
        try:
            journal_id, count = self._load_snapshot()
            self._replay(journal_id)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoredDataError(
                f"the embedded store {self.path} is not readable ({exc}); move it away to start afresh"
            ) from exc
        return count

    def _load_snapshot(self) -> tuple[str | None, int]:
        if not self.path.exists():
            return None, 0
        document = json.loads(self.path.read_text())
        version = document.get("format")
        if version == 1:
            tables = document["tables"]
            if not isinstance(tables, dict) or not all(
                isinstance(items, list) and all(isinstance(item, dict) for item in items) for items in tables.values()
            ):
                raise ValueError("tables must map table names to lists of items")
            self._pending = {name: items for name, items in tables.items() if items}
            return None, sum(len(items) for items in tables.values())
        if version != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown format {version!r}")
        pending = document.get("pending", {})
        if not isinstance(pending, dict):
            raise ValueError("pending must map table names to lists of items")
        self._pending = pending
        count = sum(len(items) for items in pending.values())
        for table in document["tables"]:
            region, name = table["region"], table["name"]
            self._must(region, "CreateTable", table["create"])
            if table.get("ttl"):
                self._must(region, "UpdateTimeToLive", table["ttl"])
            self._tables[(region, name)] = {"create": table["create"], "ttl": table.get("ttl")}
            self._put_items(region, name, table["items"])
            count += len(table["items"])
        for parameter in document.get("parameters", []):
            self._must(parameter["region"], "PutParameter", parameter["put"], "ssm")
            self._parameters[(parameter["region"], parameter["put"]["Name"])] = parameter["put"]
        return document["journal"], count

    def _put_items(self, region: str, name: str, items: list[Any]) -> None:
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            self._must(region, "BatchWriteItem", {"RequestItems": {name: batch}})

    def _replay(self, journal_id: str | None) -> None:
        if journal_id is None or not self.journal_path.exists():
            return
        with self.journal_path.open() as handle:
            lines = handle.read().splitlines()
        if not lines or json.loads(lines[0]).get("journal") != journal_id:
            return  # written before the snapshot: the snapshot holds it already
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except ValueError:
                break  # torn by a crash while it was written: that write was never answered
            service = entry.get("service", "dynamodb")
            status, _ = self.call(entry["region"], entry["op"], entry["body"], service)
            self._applied(entry["region"], entry["op"], entry["body"], status, service)

    def _applied(self, region: str, op: str, body: dict[str, Any], status: int, service: str = "dynamodb") -> None:
        """Track the table definitions and parameters a write changed, and fill a new table with its format-1
        items."""
        if status != 200:
            return
        if service == "ssm":
            names = body.get("Names", []) if op == "DeleteParameters" else [body.get("Name", "")]
            for name in names:
                self._parameters.pop((region, name), None)
            if op == "PutParameter":
                self._parameters[(region, body["Name"])] = {**body, "Overwrite": True}
            return
        name = body.get("TableName", "")
        if op == "CreateTable":
            self._tables[(region, name)] = {"create": body, "ttl": None}
            items = self._pending.pop(name, None)
            if items:  # a format-1 file's items go into their table once a backend creates it
                try:
                    self._put_items(region, name, items)
                except (ValueError, KeyError, TypeError) as exc:
                    raise StoredDataError(
                        f"the embedded store {self.path} is not readable (table {name}: {exc}); "
                        "move it away to start afresh"
                    ) from exc
                if self._journal is not None:  # serving: in a snapshot before anything else is written
                    self.compact()
        elif op == "DeleteTable":
            self._tables.pop((region, name), None)
        elif op == "UpdateTimeToLive" and (region, name) in self._tables:
            self._tables[(region, name)]["ttl"] = body

    # --- writing ---------------------------------------------------------------------------------------------------

    def applied_write(self, region: str, op: str, body: dict[str, Any], status: int,
                      service: str = "dynamodb") -> None:
        """After moto answered a write (under `write_lock`): put it in the journal, on disk before this returns,
        if it changed something (and the journal is open: not while loading)."""
        if status != 200:
            return
        journal = self._journal
        if journal is not None:
            entry = {"region": region, "op": op, "body": body}
            if service != "dynamodb":
                entry["service"] = service
            journal.write(json.dumps(entry, separators=(",", ":")) + "\n")
            journal.flush()
            os.fsync(journal.fileno())
        self._applied(region, op, body, status, service)
        if self._journal is not None and self._journal.tell() > COMPACT_AT_BYTES:
            self.compact()

    def compact(self) -> None:
        """Write every table to a new snapshot, then start an empty journal (call under `write_lock`)."""
        journal_id = uuid.uuid4().hex
        tables = []
        for (region, name), definition in sorted(self._tables.items()):
            items: list[Any] = []
            request: dict[str, Any] = {"TableName": name}
            while True:
                page = self._must(region, "Scan", request)
                items.extend(page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            tables.append({"region": region, "name": name, **definition, "items": items})
        # a format-1 file's items whose table no backend has created yet keep waiting for it
        document: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "journal": journal_id, "tables": tables,
                                    "parameters": [{"region": region, "put": put}
                                                   for (region, _), put in sorted(self._parameters.items())]}
        if self._pending:
            document["pending"] = self._pending
        write_private(self.path, json.dumps(document, separators=(",", ":")))
        if self._journal is not None:
            self._journal.close()
        write_private(self.journal_path, json.dumps({"journal": journal_id}) + "\n")
        self._journal = open_private(self.journal_path)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


class JournalingApp:
    """WSGI middleware around moto: refuses requests without the token, journals answered DynamoDB and SSM
    parameter writes."""

    def __init__(self, store: Store, token: str) -> None:
        self.store = store
        self.token = token
        self.last_request = time.monotonic()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.last_request = time.monotonic()
        if not secrets.compare_digest(environ.get("HTTP_X_OPENBRAIN_STORE_TOKEN", ""), self.token):
            return _answer(start_response, "403 Forbidden",
                           {"__type": "AccessDeniedException", "message": "the store token is missing or wrong"})
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _answer(start_response, "200 OK", {"pid": os.getpid()})
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, op = next(((name, target.removeprefix(prefix)) for name, (prefix, _) in SERVICES.items()
                            if target.startswith(prefix)), ("", ""))
        if op not in WRITES.get(service, ()):
            return self.store.app(environ, start_response)
        data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = BytesIO(data)
        region = _region(environ.get("HTTP_AUTHORIZATION", ""))
        answered: list[Any] = []
        with self.store.write_lock:
            chunks = b"".join(self.store.app(environ, lambda *args: answered.append(args)))
            status = int(answered[0][0].split()[0])
            try:
                self.store.applied_write(region, op, json.loads(data), status, service)
            except StoredDataError as exc:
                return _answer(start_response, "500 Internal Server Error",
                               {"__type": "InternalFailure", "message": exc.message})
        start_response(*answered[0])
        return [chunks]


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])
    return [data]


def _region(authorization: str) -> str:
    """The region of a SigV4 `Authorization` header (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`)."""
    _, _, credential = authorization.partition("Credential=")
    parts = credential.split("/")
    return parts[2] if len(parts) > 2 else "us-east-1"


def _attached(clients: IO[str]) -> bool:
    """Whether any OpenBrain process holds the store (a shared lock on `STORE.clients`)."""
    import fcntl

    try:
        fcntl.flock(clients.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    return False


def serve(path: Path, idle: float) -> int:
    """Load the store, serve it until it has been idle for `idle` seconds with nobody attached, compact, exit."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in STORE.log
    store = Store(path, DomainDispatcherApplication(create_backend_app))
    store.load()
    store.compact()
    app = JournalingApp(store, secrets.token_urlsafe(32))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    state = sibling(path, ".server")
    write_private(state, json.dumps({"pid": os.getpid(), "port": server.port, "token": app.token}))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    threading.Thread(target=server.serve_forever, name="store-http", daemon=True).start()
    clients = open_private(sibling(path, ".clients"))  # its lock is taken when stopping, held until exit
    while not stopping.wait(min(1.0, idle / 4)):
        if time.monotonic() - app.last_request >= idle and not _attached(clients):
            break  # now holding the clients lock: no process can attach until this one has exited
    state.unlink(missing_ok=True)
    server.shutdown()
    with store.write_lock:
        store.compact()
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openbrain.aws.store_server",
                                     description="the embedded store's process (started on first use)")
    parser.add_argument("store", type=Path, help="the store file (OB_MEMORY_STORE)")
    parser.add_argument("--idle", type=float, default=DEFAULT_IDLE_SECONDS,
                        help="stop after this many seconds without requests or attached processes")
    args = parser.parse_args(argv)
    try:
        return serve(args.store.expanduser(), args.idle)
    except StoredDataError as exc:
        print(exc.message, file=sys.stderr, flush=True)
        return UNREADABLE_EXIT
    except OSError as exc:
        print(f"the embedded store {args.store} could not start: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
