"""The targets every conformance test runs against, each a `Target` with the `Stores` of one DynamoDB:

- `moto`: the embedded backend (in-process moto, the `backend` fixture of tests/conftest.py);
- `moto-server`: a `ThreadedMotoServer` on 127.0.0.1 (one per test session), reached over HTTP by the
  `aws` backend through `AWS_ENDPOINT_URL`, its resources made by `init_resources`;
- `endpoint`: opt-in, any DynamoDB-compatible endpoint named by `OB_CONFORMANCE_ENDPOINT` (DynamoDB Local,
  dynalite, ...): only DynamoDB is needed there (`AWS_ENDPOINT_URL_DYNAMODB`). See docs/storage.md.

Tests isolate themselves by client id (a fresh one per test), so a target's tables may be shared: nothing
is reset between tests, and scans are checked for what a test wrote, not for equality.

The threaded moto server shares moto's state with the in-process one (one Python process), and the
embedded backend resets that state when it starts: so the server's resources are made again (idempotently)
for every test rather than once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from support.conformance import Target

from openbrain.aws.backend import Backend, set_backend
from openbrain.core.ids import new_id
from openbrain.core.settings import Settings
from openbrain.storage.orm import bind_models
from openbrain.storage.stores import Stores

ENDPOINT = os.environ.get("OB_CONFORMANCE_ENDPOINT") or None
TARGETS = ["moto", "moto-server", *(["endpoint"] if ENDPOINT else [])]


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    if request.param == "moto":
        yield Target("moto", request.getfixturevalue("backend"))
        return
    # the models are bound globally (openbrain.storage.orm.bind_models): rebind whatever backend was
    # installed once this test is done with them
    installed = set_backend(None)
    set_backend(installed)
    for name, value in (("AWS_ACCESS_KEY_ID", "conformance"), ("AWS_SECRET_ACCESS_KEY", "conformance")):
        monkeypatch.setenv(name, os.environ.get(name) or value)
    started: Target | None = None
    try:
        if request.param == "moto-server":
            started = _on_moto_server(request.getfixturevalue("moto_server_url"), monkeypatch)
        else:
            started = _on_endpoint(str(ENDPOINT), monkeypatch)
        yield started
    finally:
        if started is not None:
            started.backend.close()
        if installed is not None:
            bind_models(installed.settings)


def _on_moto_server(url: str, monkeypatch: pytest.MonkeyPatch) -> Target:
    from openbrain.aws.resources import init_resources

    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    backend = Backend(Settings(backend="aws", memory_store=None)).start()
    init_resources(backend)
    return Target("moto-server", backend)


def _on_endpoint(url: str, monkeypatch: pytest.MonkeyPatch) -> Target:
    from openbrain.aws.resources import create_tables

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
    settings = Settings(backend="aws", memory_store=None, agent_config_table="openbrain-conformance-agent-configs",
                        chat_session_table="openbrain-conformance-chat-sessions",
                        lead_table="openbrain-conformance-leads", client_table="openbrain-conformance-clients",
                        connection_table="openbrain-conformance-connections",
                        idempotency_table="openbrain-conformance-idempotency",
                        limits_table="openbrain-conformance-limits")
    backend = Backend(settings).start()
    ttl = create_tables(settings)  # False on an endpoint without DynamoDB's TTL API
    return Target("endpoint", backend, ttl=ttl, transactions=_has_transactions(backend))


def _has_transactions(backend: Backend) -> bool:
    """An empty TransactWriteItems is a ValidationException where the operation exists."""
    from botocore.exceptions import ClientError

    try:
        backend.client("dynamodb").transact_write_items(TransactItems=[])
    except ClientError as exc:
        return exc.response["Error"].get("Code") != "UnknownOperationException"
    return True


@pytest.fixture
def transactions(target: Target) -> None:
    """Skips a test of a target without DynamoDB's TransactWriteItems."""
    if not target.transactions:
        pytest.skip(f"{target.name} does not implement DynamoDB's TransactWriteItems")


@pytest.fixture
def stores(target: Target) -> Stores:
    return target.stores


@pytest.fixture
def client_id() -> str:
    """A client of this test alone (lower case: a valid client id on every table)."""
    return "conf-" + new_id().lower()
