"""Client and key management, config export/import and `init`, in-process against the embedded backend.

(`openbrain/services/configs_io.py` is tested here too, beside the admin functions `ob-admin` calls.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.backend import installed_backend

from openbrain.aws.backend import Backend
from openbrain.aws.resources import init_resources
from openbrain.core.errors import ConflictError, InvalidInputError, NotFoundError
from openbrain.core.settings import Settings
from openbrain.domain.profile import CONFIG_FIELDS, AgentProfile, MemoryPolicy
from openbrain.domain.urls import validate_origin, validate_webhook_url
from openbrain.services import configs_io
from openbrain.services.clients import (
    create_client,
    describe_client,
    get_client,
    list_clients,
    rotate_key,
    slugify,
)
from openbrain.services.configs_io import dump_document, export_configs, import_configs, load_document
from openbrain.storage.dynamodb import DynamoDBProfileStore
from openbrain.storage.orm import AgentConfig, ChatSession, Client

pytestmark = pytest.mark.integration


# --- clients ---------------------------------------------------------------------------------------

def test_create_client_stores_only_the_hash_of_the_key_it_returns(backend: Backend) -> None:
    # when
    client, api_key, _ = create_client(backend.stores, "Acme Inc.",
                                       origins=["https://Acme.example:443/", "http://localhost:3000"],
                                       webhook_url="https://crm.acme.example/hook", webhook_secret_ref="/ob/acme")

    # then: the id is a slug of the name, origins are as a browser sends them, the key verifies
    stored = Client.get("acme-inc")
    assert client.client_id == "acme-inc"
    assert stored.display_name == "Acme Inc."
    assert list(stored.allowed_origins) == ["https://acme.example", "http://localhost:3000"]
    assert (stored.webhook_url, stored.webhook_secret_ref) == ("https://crm.acme.example/hook", "/ob/acme")
    assert stored.has_api_key(api_key)
    assert not stored.has_api_key(api_key + "x")
    assert api_key not in json.dumps(stored.serialize())


def test_create_client_takes_an_explicit_id(backend: Backend) -> None:
    client, _, _ = create_client(backend.stores, "Ünïcode Café", client_id="cafe_1")
    assert client.client_id == "cafe_1"
    assert slugify("Ünïcode Café") == "unicode-cafe"


def test_create_client_refuses_an_existing_id_and_leaves_it_alone(backend: Backend) -> None:
    _, first_key, _ = create_client(backend.stores, "Acme", client_id="acme")

    with pytest.raises(ConflictError, match="client 'acme' already exists"):
        create_client(backend.stores, "Someone else", client_id="acme")

    stored = Client.get("acme")
    assert stored.display_name == "Acme"
    assert stored.has_api_key(first_key)
    assert len(stored.api_key_hashes) == 2  # its server key and its widget key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "client_id": "has space"}, "client_id must be"),
        ({"name": "x", "client_id": "a.b"}, "client_id must be"),
        ({"name": "x", "client_id": "a" * 65}, "client_id must be"),
        ({"name": "!!!"}, "cannot make a client id"),
        ({"name": "   "}, "client name must be"),
        ({"name": "x", "origins": ["https://acme.example/path"]}, "without path"),
        ({"name": "x", "origins": ["ftp://acme.example"]}, r"must be http\(s\)://host"),
        ({"name": "x", "origins": ["acme.example"]}, r"must be http\(s\)://host"),
        ({"name": "x", "origins": ["https://acme.example:99999"]}, "not a valid URL"),
        ({"name": "x", "webhook_url": "http://crm.example/hook"}, "must use https://"),
        ({"name": "x", "webhook_url": "https://user:pw@crm.example/hook"}, "must not contain credentials"),
        ({"name": "x", "webhook_secret_ref": "has space"}, "secret reference"),
    ],
)
def test_create_client_rejects_bad_input_before_writing(backend: Backend, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        create_client(backend.stores, **kwargs)
    assert list_clients(backend.stores) == []


def test_webhooks_may_use_plain_http_only_to_this_machine() -> None:
    assert validate_webhook_url("http://127.0.0.1:8081/hook") == "http://127.0.0.1:8081/hook"
    assert validate_webhook_url("http://localhost/hook") == "http://localhost/hook"
    with pytest.raises(InvalidInputError):
        validate_webhook_url("http://10.0.0.1/hook")


def test_origins_are_normalised_like_the_origin_header() -> None:
    assert validate_origin("HTTPS://Example.COM") == "https://example.com"
    assert validate_origin("http://example.com:80") == "http://example.com"
    assert validate_origin("http://[::1]:8080") == "http://[::1]:8080"


def test_list_and_show_never_reveal_keys_or_hashes(backend: Backend) -> None:
    _, key_b, _ = create_client(backend.stores, "Beta", client_id="beta")
    _, key_a, _ = create_client(backend.stores, "Alpha", client_id="alpha", origins=["https://alpha.example"])

    listed = [describe_client(client) for client in list_clients(backend.stores)]

    assert [c["client_id"] for c in listed] == ["alpha", "beta"]
    assert listed[0]["api_keys"] == 1
    assert listed[0]["allowed_origins"] == ["https://alpha.example"]
    text = json.dumps(listed)
    for client_id, key in (("alpha", key_a), ("beta", key_b)):
        assert key not in text
        for stored_hash in Client.get(client_id).api_key_hashes:
            assert str(stored_hash) not in text


def test_show_of_an_unknown_client_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError, match="client 'nobody' not found"):
        get_client(backend.stores, "nobody")


def test_rotate_key_revokes_the_old_keys(backend: Backend) -> None:
    _, old_key, _ = create_client(backend.stores, "Acme", client_id="acme")

    client, new_key = rotate_key(backend.stores, "acme")

    stored = Client.get("acme")
    assert stored.has_api_key(new_key)
    assert not stored.has_api_key(old_key)
    assert stored.api_key_count("server") == 1 and stored.api_key_count("widget") == 1  # the widget key stays
    assert client.version == stored.version == 2


def test_rotate_key_can_keep_the_old_keys(backend: Backend) -> None:
    _, old_key, _ = create_client(backend.stores, "Acme", client_id="acme")

    _, new_key = rotate_key(backend.stores, "acme", keep_old=True)

    stored = Client.get("acme")
    assert stored.has_api_key(old_key) and stored.has_api_key(new_key)


def test_rotate_key_of_an_unknown_client_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        rotate_key(backend.stores, "nobody")


# --- config export / import ------------------------------------------------------------------------

SALES_PROMPT = "You sell anvils.\nBe brief.\n"


def _store_profiles(client_id: str) -> None:
    AgentConfig(client_id, "default", model="offline").save()
    AgentConfig(client_id, "sales", model="offline", system_message=SALES_PROMPT, temperature=0.25,
                tools=["capture_lead"], max_execution_time=12.5, memory=MemoryPolicy(window_messages=10)).save()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_then_import_into_another_client_copies_every_profile(backend: Backend, fmt: str) -> None:
    # given
    _store_profiles("acme")
    text = dump_document(export_configs(backend.stores.profiles, "acme"), fmt)  # type: ignore[arg-type]

    # when
    report = import_configs(backend.stores.profiles, load_document(text, fmt), client_id="acme-staging")  # type: ignore[arg-type]

    # then
    assert (report.created, report.updated, report.unchanged) == (["default", "sales"], [], [])
    store = backend.stores.profiles
    assert export_configs(store, "acme-staging")["profiles"] == export_configs(store, "acme")["profiles"]
    sales = AgentConfig.get("acme-staging", "sales")
    assert (sales.system_message, sales.temperature, sales.max_execution_time) == (SALES_PROMPT, 0.25, 12.5)
    assert sales.memory.window_messages == 10


def test_an_exported_profile_is_the_profile_schema_as_plain_values(backend: Backend) -> None:
    _store_profiles("acme")

    exported = export_configs(backend.stores.profiles, "acme")["profiles"]["sales"]

    assert list(exported) == list(CONFIG_FIELDS)
    default = export_configs(backend.stores.profiles, "acme")["profiles"]["default"]
    assert exported["max_execution_time"] == 12.5 and default["max_execution_time"] == 30  # whole seconds as ints
    assert AgentProfile.parse(exported) == AgentConfig.get("acme", "sales").profile()


def test_yaml_export_keeps_multiline_text_readable(backend: Backend) -> None:
    _store_profiles("acme")
    text = dump_document(export_configs(backend.stores.profiles, "acme"), "yaml")
    assert "    system_message: |\n      You sell anvils.\n      Be brief.\n" in text


def test_importing_what_is_stored_changes_nothing(backend: Backend) -> None:
    _store_profiles("acme")

    report = import_configs(backend.stores.profiles, export_configs(backend.stores.profiles, "acme"))

    assert report.unchanged == ["default", "sales"]
    assert AgentConfig.get("acme", "sales").version == 1


def test_import_updates_through_the_stored_version(backend: Backend) -> None:
    # given
    _store_profiles("acme")
    document = export_configs(backend.stores.profiles, "acme")
    document["profiles"]["sales"]["temperature"] = 1.5
    document["profiles"]["new"] = {"model": "offline"}

    # when
    report = import_configs(backend.stores.profiles, document)

    # then
    assert (report.created, report.updated, report.unchanged) == (["new"], ["sales"], ["default"])
    sales = AgentConfig.get("acme", "sales")
    assert (sales.temperature, sales.version) == (1.5, 2)
    assert AgentConfig.get("acme", "new").version == 1


def test_fields_left_out_take_the_defaults(backend: Backend) -> None:
    _store_profiles("acme")

    import_configs(backend.stores.profiles, {"client_id": "acme", "profiles": {"sales": {"model": "offline"}}})

    profiles = export_configs(backend.stores.profiles, "acme")["profiles"]
    assert profiles["sales"] == profiles["default"]


def test_import_writes_nothing_if_any_profile_is_invalid(backend: Backend) -> None:
    # given: one stored profile, and a document that changes it, adds one, and has one bad profile
    _store_profiles("acme")
    before = export_configs(backend.stores.profiles, "acme", include_versions=True)
    document = {"client_id": "acme", "profiles": {
        "sales": {"model": "offline", "temperature": 0.1},
        "fresh": {"model": "offline"},
        "broken": {"model": "offline", "tools": ["no_such_tool"]},
    }}

    # when / then
    with pytest.raises(InvalidInputError, match="profile 'broken': unknown tool"):
        import_configs(backend.stores.profiles, document)
    assert export_configs(backend.stores.profiles, "acme", include_versions=True) == before


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"client_id": "acme", "profiles": {"p": {"temprature": 1}}}, "unknown field"),
        ({"client_id": "acme", "profiles": {"p": {"memory": {"window": 1}}}}, "unknown memory field"),
        ({"client_id": "acme", "profiles": {"p": {"memory": 5}}}, "memory must be a mapping"),
        ({"client_id": "acme", "profiles": {"p": "text"}}, "must be a mapping of fields"),
        ({"client_id": "acme", "profiles": {"bad name": {}}}, "profile_name must be"),
        ({"client_id": "acme", "profiles": {"p": {"temperature": "hot"}}}, "temperature must be"),
        ({"client_id": "acme", "profiles": {"p": {"version": "1"}}}, "version must be a whole number"),
        ({"client_id": "acme", "profiles": ["p"]}, "profiles must be a mapping"),
        ({"profiles": {}}, "no client_id"),
        ({"client_id": "a.b", "profiles": {}}, "client_id must be"),
        ({"client_id": "acme", "profiles": {}, "extra": 1}, "unknown top-level key"),
    ],
)
def test_import_rejects_malformed_documents(backend: Backend, document: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        import_configs(backend.stores.profiles, document)
    assert AgentConfig.get_all("acme") == []


def test_load_document_names_the_place_of_a_syntax_error() -> None:
    with pytest.raises(InvalidInputError, match=r"configs.yaml is not valid YAML at line 2"):
        load_document("client_id: acme\nprofiles: p: 1\n", "yaml", "configs.yaml")
    with pytest.raises(InvalidInputError, match="is not valid JSON"):
        load_document("{", "json")
    with pytest.raises(InvalidInputError, match="must be a mapping"):
        load_document("", "yaml")


def test_dry_run_reports_without_writing(backend: Backend) -> None:
    document = {"client_id": "acme", "profiles": {"p": {"model": "offline"}}}
    report = import_configs(backend.stores.profiles, document, dry_run=True)

    assert report.created == ["p"] and report.dry_run
    assert AgentConfig.get_all("acme") == []


def test_import_of_a_stale_export_is_a_conflict_and_writes_nothing(backend: Backend) -> None:
    # given: an export with versions, then someone edits a profile
    _store_profiles("acme")
    document = export_configs(backend.stores.profiles, "acme", include_versions=True)
    edited = AgentConfig.get("acme", "sales")
    edited.temperature = 0.9
    edited.save()
    document["profiles"]["sales"]["temperature"] = 0.1
    document["profiles"]["fresh"] = {"model": "offline"}

    # when / then
    with pytest.raises(ConflictError, match="'sales' of client 'acme' is at version 2, not version 1"):
        import_configs(backend.stores.profiles, document)
    assert AgentConfig.get("acme", "sales").temperature == 0.9
    assert [c.profile_name for c in AgentConfig.get_all("acme")] == ["default", "sales"]


def test_a_change_between_reading_and_writing_is_a_conflict_and_nothing_is_written(backend: Backend) -> None:
    # given: the import has read the stored profiles and planned its writes
    _store_profiles("acme")
    profiles = {"sales": {"model": "offline"}, "fresh": {"model": "offline"}}
    report = configs_io.ImportReport("acme", dry_run=False)
    writes = configs_io._plan(backend.stores.profiles, "acme", profiles, report)
    # ... when someone else saves the profile first
    other = AgentConfig.get("acme", "sales")
    other.icebreaker = "Theirs"
    other.save()

    # when / then: the transaction is refused as a whole
    with pytest.raises(ConflictError, match=r"profile\(s\) sales of client 'acme' changed while importing; "
                                            "nothing was written"):
        backend.stores.profiles.save_all("acme", writes)
    assert AgentConfig.get("acme", "sales").icebreaker == "Theirs"
    with pytest.raises(NotFoundError):
        AgentConfig.get("acme", "fresh")


def test_a_large_import_is_written_in_several_transactions(backend: Backend) -> None:
    store = DynamoDBProfileStore(AgentConfig, transaction_items=2)
    profiles = {f"p{i}": {"model": "offline"} for i in range(5)}

    report = import_configs(store, {"client_id": "acme", "profiles": profiles})

    assert report.created == sorted(profiles)
    assert len(AgentConfig.get_all("acme")) == 5


# --- init ------------------------------------------------------------------------------------------

def test_init_on_the_memory_backend_says_it_creates_its_own_resources(backend: Backend) -> None:
    report = init_resources(backend)

    assert report.backend == "memory"
    assert "creates its tables, bus, rules and queues itself" in report.message
    assert set(report.tables) == {"openbrain-agent-configs", "openbrain-chat-sessions", "openbrain-leads",
                                  "openbrain-clients", "openbrain-idempotency", "openbrain-limits",
                                  "openbrain-connections"}


@pytest.fixture
def empty_aws_account() -> Iterator[Backend]:
    """The `aws` backend against an empty in-process account (moto): nothing exists until init."""
    from moto import mock_aws

    with mock_aws(), installed_backend(Settings(backend="aws", memory_store=None, queue_prefix="t")) as started:
        yield started


def test_init_creates_every_resource_on_an_empty_account_and_can_run_again(empty_aws_account: Backend) -> None:
    # when
    first = init_resources(empty_aws_account)
    second = init_resources(empty_aws_account)

    # then
    assert set(first.tables.values()) == {"created"}
    assert set(second.tables.values()) == {"exists"}
    assert second.queues == first.queues
    assert set(first.queues) == {"t-lead-webhook", "t-lead-webhook-dlq", "t-message-webhook", "t-message-webhook-dlq"}
    dynamodb = empty_aws_account.client("dynamodb")
    assert sorted(dynamodb.list_tables()["TableNames"]) == sorted(first.tables)
    ttl = dynamodb.describe_time_to_live(TableName="openbrain-chat-sessions")["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    events = empty_aws_account.client("events")
    assert sorted(r["Name"] for r in events.list_rules(EventBusName="openbrain-events")["Rules"]) == [
        "t-lead-webhook", "t-message-webhook"]
    # and the models work against what init made
    create_client(empty_aws_account.stores, "Acme", client_id="acme")
    assert get_client(empty_aws_account.stores, "acme").display_name == "Acme"


def test_init_adds_an_index_a_table_made_before_it_lacks(empty_aws_account: Backend) -> None:
    # given: the sessions table as a stack made before end-user identity had it: without the users' index
    init_resources(empty_aws_account)
    dynamodb = empty_aws_account.client("dynamodb")
    dynamodb.update_table(TableName="openbrain-chat-sessions",
                          GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "client_user-updated_at"}}])
    assert not dynamodb.describe_table(TableName="openbrain-chat-sessions")["Table"].get("GlobalSecondaryIndexes")

    # when
    init_resources(empty_aws_account)

    # then: it is back, and lists a user's sessions
    [index] = dynamodb.describe_table(TableName="openbrain-chat-sessions")["Table"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "client_user-updated_at"
    session = ChatSession("acme", profile_name="default")
    session.bind_user("ada")
    empty_aws_account.stores.sessions.save(session)
    assert [s.session_id for s in empty_aws_account.stores.sessions.of_user("acme", "ada")] == [session.session_id]
