"""template.yaml is kept in step with the code: keys, TTL, rules, queues, handlers, settings, secrets.

Everything the template declares that the code also knows is compared with the code's own definition
(the PynamoDB models, `openbrain.aws.resources.TARGETS`, `openbrain.domain.events.EVENT_TYPES`, `Settings`), so a change
on one side without the other fails here. cfn-lint runs on the template too.
"""

from __future__ import annotations

import ast
import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from pydantic import AliasChoices

from openbrain.aws.resources import (
    DLQ_RETENTION_SECONDS,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    LIMITS_TTL_ATTRIBUTE,
    SESSION_TTL_ATTRIBUTE,
    TARGETS,
)
from openbrain.core.settings import Settings
from openbrain.domain.events import EVENT_TYPES
from openbrain.storage.orm import MODELS

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"

# The handler each function runs, as agreed with the handlers' authors (CodeUri, Handler).
HANDLERS = {
    "ChatApiFunction": ("lambdas/chat_api/", "app.handler"),
    "ChatWsFunction": ("lambdas/chat_ws/", "app.handler"),
    "LeadWebhookFunction": ("lambdas/targets/lead_webhook/", "app.handler"),
    "MessageWebhookFunction": ("lambdas/targets/message_webhook/", "app.handler"),
    "OutboxSweepFunction": ("lambdas/targets/outbox_sweep/", "app.handler"),
    "ScheduledDeliveryFunction": ("lambdas/targets/scheduled_delivery/", "app.handler"),
}
# The functions that create and delete scheduled messages' schedules (a `chatbot` delivery runs a turn, whose model
# may schedule another), and the settings that tell them where (openbrain/aws/scheduler.py).
SCHEDULING = {"ChatApiFunction", "ChatWsFunction", "ScheduledDeliveryFunction"}
SCHEDULE_SETTINGS = {"OB_SCHEDULE_GROUP": "the functions that create schedules only",
                     "OB_SCHEDULER_ROLE_ARN": "the functions that create schedules only",
                     "OB_SCHEDULE_TARGET_ARN": "the functions that create schedules only",
                     "OB_SCHEDULE_DLQ_ARN": "the functions that create schedules only"}
# OB_* settings a deployed function does not need, and why. A new setting fails
# test_every_setting_a_function_needs_is_set until it is either set in the template or listed here.
NOT_NEEDED_IN_AWS = {
    "OB_REGION": "Lambda sets AWS_REGION, which Settings.region reads",
    "OB_MEMORY_STORE": "the memory backend's file; Lambda runs only the aws backend",
    "OB_MEMORY_STORE_IDLE_SECONDS": "the embedded store process's quiet period; Lambda runs only the aws backend",
    "OB_DEBUG": "CLI tracebacks only",
    "OB_TUNER_USER": "ob-tuner runs on an operator's machine, not in Lambda",
    "OB_TUNER_PASSWORD": "ob-tuner runs on an operator's machine, not in Lambda",
    "OB_WEBHOOK_SECRETS_PATH": "where ob-admin stores the secrets it makes; a function reads a client's by its ref",
    "OB_IDENTITY_SECRETS_PATH": "where ob-admin stores the identity secrets it makes; a function reads a client's "
                                "by its ref",
    "OB_WS_IDLE_SECONDS": "ob-serve's idle timeout; API Gateway closes an idle WebSocket itself after 10 minutes",
}
NOT_NEEDED_BY = {
    "LeadWebhookFunction": {"OB_MAX_MESSAGE_CHARS": "chat turns only", "OB_MAX_BODY_BYTES": "the HTTPS API only",
                            "OB_OPENAI_API_KEY_REF": "no model runs in a target",
                            "OB_IDEMPOTENCY_TABLE": "POST /chat only", "OB_WS_ACK_SECONDS": "the WebSocket API only",
                            **SCHEDULE_SETTINGS},
    "MessageWebhookFunction": {"OB_MAX_MESSAGE_CHARS": "chat turns only", "OB_MAX_BODY_BYTES": "the HTTPS API only",
                               "OB_OPENAI_API_KEY_REF": "no model runs in a target",
                               "OB_IDEMPOTENCY_TABLE": "POST /chat only", "OB_WS_ACK_SECONDS": "the WebSocket API only",
                               **SCHEDULE_SETTINGS},
    "ScheduledDeliveryFunction": {"OB_MAX_BODY_BYTES": "the HTTPS API only", "OB_IDEMPOTENCY_TABLE": "POST /chat only",
                                  "OB_WS_ACK_SECONDS": "the WebSocket API only",
                                  "OB_WEBHOOK_TIMEOUT_SECONDS": "event targets only"},
    "ChatApiFunction": {"OB_WEBHOOK_TIMEOUT_SECONDS": "event targets only",
                        "OB_WS_ACK_SECONDS": "the WebSocket API only"},
    "ChatWsFunction": {"OB_WEBHOOK_TIMEOUT_SECONDS": "event targets only",
                       "OB_IDEMPOTENCY_TABLE": "POST /chat only: a stream is not idempotent"},
    "OutboxSweepFunction": {"OB_MAX_MESSAGE_CHARS": "chat turns only", "OB_MAX_BODY_BYTES": "the HTTPS API only",
                            "OB_OPENAI_API_KEY_REF": "no model runs in the sweep",
                            "OB_WEBHOOK_TIMEOUT_SECONDS": "the sweep posts to no webhook",
                            "OB_IDEMPOTENCY_TABLE": "POST /chat only", "OB_WS_ACK_SECONDS": "the WebSocket API only",
                            **SCHEDULE_SETTINGS},
}
# OB_* variables the template sets that Settings does not read yet, with who reads them.
PENDING_SETTINGS: dict[str, str] = {}
# Tables each function may write (Crud) and only read, by model name.
TABLE_ACCESS = {
    "ChatApiFunction": ({"AgentConfig", "ChatSession", "Lead", "Idempotency", "RateCounter"}, {"Client"}),
    "ChatWsFunction": ({"ChatSession", "Lead", "Connection", "RateCounter"}, {"AgentConfig", "Client"}),
    "LeadWebhookFunction": ({"Lead"}, {"Client", "ChatSession"}),
    "MessageWebhookFunction": (set(), {"Client", "ChatSession"}),
    "OutboxSweepFunction": ({"ChatSession"}, set()),
    # a `chatbot` message is a chat turn: what the WebSocket function's turns write, and the connections it pushes to
    "ScheduledDeliveryFunction": ({"ChatSession", "Lead", "Connection", "RateCounter"}, {"AgentConfig", "Client"}),
}
AGENT_RUNTIME = {"langchain", "langchain-core", "langchain-openai", "langgraph", "openai", "tiktoken"}


# -------------------------------------------------------------------------------------------- loading
class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation's short tags into their long JSON forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id].get("Properties", {})


def function_env(template: dict[str, Any], function: str) -> dict[str, Any]:
    """A function's environment: Globals merged with its own variables (SAM's merge rule for maps)."""
    env = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    env.update(props(template, function).get("Environment", {}).get("Variables", {}))
    return env


def ref_id(value: Any) -> str:
    """The logical id a `!Ref X` or `!GetAtt X.Arn` points at."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"expected !Ref or !GetAtt, got {value!r}")


def setting_aliases() -> dict[str, str]:
    """Settings field name -> its OB_* environment variable."""
    aliases = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            env = [c for c in field.validation_alias.choices if isinstance(c, str) and c.startswith("OB_")]
            if env:
                aliases[name] = env[0]
    return aliases


def model_table_ids(template: dict[str, Any]) -> dict[str, str]:
    """Model name -> the logical id of its table, followed through Settings and the Globals env."""
    table_fields = [name for name in Settings.model_fields if name.endswith("_table")]
    markers = Settings(**{name: f"<{name}>" for name in table_fields})  # type: ignore[arg-type]
    aliases = setting_aliases()
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    result = {}
    for model_name, marker in markers.table_names().items():
        field = marker.strip("<>")
        result[model_name] = ref_id(env[aliases[field]])
    return result


def stack_named(suffix: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{suffix}"}


# -------------------------------------------------------------------------------------------- tables
def test_every_model_has_a_table_with_the_models_keys(template: dict[str, Any]) -> None:
    tables = model_table_ids(template)
    assert set(tables) == {model.__name__ for model in MODELS}
    assert set(tables.values()) | {"IdempotencyTable"} == set(resources(template, "AWS::DynamoDB::Table"))
    for model in MODELS:
        table = props(template, tables[model.__name__])
        schema = model._get_schema()
        assert sorted(table["KeySchema"], key=lambda k: k["KeyType"]) == sorted(
            schema["key_schema"], key=lambda k: k["KeyType"]
        ), model.__name__
        assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
            schema["attribute_definitions"], key=lambda a: a["AttributeName"]
        ), model.__name__
        assert {index["IndexName"]: (index["KeySchema"], index["Projection"])
                for index in table.get("GlobalSecondaryIndexes", [])} == {
            index["index_name"]: (index["key_schema"], index["projection"])
            for index in schema["global_secondary_indexes"]}, model.__name__


def test_key_names_are_the_documented_ones(template: dict[str, Any]) -> None:
    # given the keys from DESIGN.md; then the models (and so the template, above) use them
    expected = {
        "AgentConfig": ("client_id", "profile_name"),
        "ChatSession": ("client_id", "session_id"),
        "Lead": ("client_id", "lead_id"),
        "Client": ("client_id", None),
        "Connection": ("connection_id", None),
        "RateCounter": ("key", None),
    }
    assert {m.__name__: (m._hash_keyname, m._range_keyname) for m in MODELS} == expected


def test_tables_are_on_demand_recoverable_and_encrypted(template: dict[str, Any]) -> None:
    for name, table in resources(template, "AWS::DynamoDB::Table").items():
        p = table["Properties"]
        assert p["BillingMode"] == "PAY_PER_REQUEST", name
        assert p["SSESpecification"]["SSEEnabled"] is True, name
        # records of hours at most and counters that expire: nothing to recover or keep
        if name in {"IdempotencyTable", "ConnectionTable", "LimitsTable"}:
            continue
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert p["SSESpecification"]["SSEEnabled"] is True, name
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain", name


def test_the_idempotency_table_has_the_schema_and_expiry_powertools_uses(template: dict[str, Any]) -> None:
    table = props(template, "IdempotencyTable")
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE, "Enabled": True}


def test_only_sessions_connections_and_counters_expire_on_the_models_ttl_attribute(template: dict[str, Any]) -> None:
    tables = model_table_ids(template)
    for model in MODELS:
        ttl = props(template, tables[model.__name__]).get("TimeToLiveSpecification")
        expiring = {"ChatSession": SESSION_TTL_ATTRIBUTE, "Connection": SESSION_TTL_ATTRIBUTE,
                    "RateCounter": LIMITS_TTL_ATTRIBUTE}
        if model.__name__ in expiring:
            attribute = expiring[model.__name__]
            assert ttl == {"AttributeName": attribute, "Enabled": True}
            assert type(model.get_attributes()[attribute]).__name__ == "TTLAttribute"
        else:
            assert ttl is None, model.__name__


# -------------------------------------------------------------------------------------------- events
def _rule_for(template: dict[str, Any], target_name: str) -> dict[str, Any]:
    rules = [p for p in (r["Properties"] for r in resources(template, "AWS::Events::Rule").values())
             if p["Name"] == stack_named(target_name)]
    assert len(rules) == 1, f"one rule named <stack>-{target_name}"
    return rules[0]


def test_every_target_has_a_rule_with_the_codes_event_pattern(template: dict[str, Any]) -> None:
    assert len(resources(template, "AWS::Events::Rule")) == len(TARGETS)
    for target in TARGETS:
        rule = _rule_for(template, target.name)
        assert rule["EventPattern"] == target.event_pattern()
        assert set(rule["EventPattern"]["detail-type"]) <= set(EVENT_TYPES), "a detail type nobody emits"
        assert ref_id(rule["EventBusName"]) == "EventBus"
        assert rule["State"] == "ENABLED"


def test_event_bus_and_queue_prefix_are_what_the_functions_are_told(template: dict[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert ref_id(env["OB_EVENT_BUS"]) == "EventBus"
    assert props(template, "EventBus")["Name"] == stack_named("events")
    # queue and rule names are <OB_QUEUE_PREFIX>-<target> (resources.QueueTarget), the prefix the stack name
    assert env["OB_QUEUE_PREFIX"] == {"Ref": "AWS::StackName"}


def test_every_target_queue_has_a_dlq_redrive_and_the_codes_limits(template: dict[str, Any]) -> None:
    for target in TARGETS:
        rule_target = _rule_for(template, target.name)["Targets"][0]
        queue_id = ref_id(rule_target["Arn"])
        queue = props(template, queue_id)
        assert queue["QueueName"] == stack_named(target.name)
        assert queue["VisibilityTimeout"] == target.visibility_timeout
        assert queue["RedrivePolicy"]["maxReceiveCount"] == target.max_receive_count
        dlq_id = ref_id(queue["RedrivePolicy"]["deadLetterTargetArn"])
        assert props(template, dlq_id)["QueueName"] == stack_named(f"{target.name}-dlq")
        # the rule's own delivery failures go to the same DLQ, after a bounded retry
        assert ref_id(rule_target["DeadLetterConfig"]["Arn"]) == dlq_id
        assert set(rule_target["RetryPolicy"]) == {"MaximumEventAgeInSeconds", "MaximumRetryAttempts"}
        for q in (queue, props(template, dlq_id)):
            assert q.get("SqsManagedSseEnabled") is True
        assert props(template, dlq_id)["MessageRetentionPeriod"] == DLQ_RETENTION_SECONDS


def test_the_rule_may_send_to_its_queue_and_dlq_and_nobody_else_may(template: dict[str, Any]) -> None:
    policies = [r["Properties"] for r in resources(template, "AWS::SQS::QueuePolicy").values()]
    for target in TARGETS:
        rule_target = _rule_for(template, target.name)["Targets"][0]
        queue_id = ref_id(rule_target["Arn"])
        dlq_id = ref_id(rule_target["DeadLetterConfig"]["Arn"])
        [policy] = [p for p in policies if {ref_id(q) for q in p["Queues"]} == {queue_id, dlq_id}]
        [statement] = policy["PolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        rule_id = next(name for name, r in resources(template, "AWS::Events::Rule").items()
                       if r["Properties"]["Name"] == stack_named(target.name))
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def test_every_dlq_has_an_alarm_on_visible_messages(template: dict[str, Any]) -> None:
    alarms = [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()]
    for target in TARGETS:
        dlq_id = ref_id(_rule_for(template, target.name)["Targets"][0]["DeadLetterConfig"]["Arn"])
        matching = [a for a in alarms if a.get("Dimensions") == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]]
        assert len(matching) == 1, f"one alarm on {dlq_id}"
        alarm = matching[0]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_target_queue_feeds_a_function_with_partial_batch_failures(template: dict[str, Any]) -> None:
    for target in TARGETS:
        queue_id = ref_id(_rule_for(template, target.name)["Targets"][0]["Arn"])
        consumers = [
            (name, event["Properties"])
            for name, fn in resources(template, "AWS::Serverless::Function").items()
            for event in fn["Properties"].get("Events", {}).values()
            if event["Type"] == "SQS" and ref_id(event["Properties"]["Queue"]) == queue_id
        ]
        assert len(consumers) == 1, f"one function consumes {queue_id}"
        function, source = consumers[0]
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert 1 <= source["BatchSize"] <= 10
        timeout = props(template, function).get("Timeout", template["Globals"]["Function"]["Timeout"])
        # Lambda refuses an SQS event source whose visibility timeout is shorter than the function's
        assert timeout <= target.visibility_timeout, function
        # records are delivered one after another: a batch of slow webhooks must still fit in the timeout
        webhook_timeout = float(function_env(template, function).get("OB_WEBHOOK_TIMEOUT_SECONDS", 0))
        assert source["BatchSize"] * webhook_timeout + 5 <= timeout, function


# -------------------------------------------------------------------------------------------- functions
def test_functions_run_the_agreed_handlers(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Serverless::Function")
    assert set(functions) == set(HANDLERS)
    for name, (code_uri, handler) in HANDLERS.items():
        assert (functions[name]["Properties"]["CodeUri"], functions[name]["Properties"]["Handler"]) == (
            code_uri, handler)


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_handler_resolves_to_a_module_and_function(template: dict[str, Any], function: str) -> None:
    p = props(template, function)
    module, attribute = p["Handler"].rsplit(".", 1)
    path = ROOT / p["CodeUri"] / (module.replace(".", "/") + ".py")
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet (another change brings it)")
    tree = ast.parse(path.read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    defined |= {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                if isinstance(t, ast.Name)}
    # a thin handler re-exports the library's: `from openbrain.x import handler`
    defined |= {(alias.asname or alias.name) for node in tree.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert attribute in defined, f"{path.relative_to(ROOT)} defines no top-level {attribute!r}"


def test_every_setting_a_function_needs_is_set(template: dict[str, Any]) -> None:
    known = set(setting_aliases().values())
    assert set(NOT_NEEDED_IN_AWS) <= known, "a listed setting no longer exists"
    for function in HANDLERS:
        env = function_env(template, function)
        needed = known - set(NOT_NEEDED_IN_AWS) - set(NOT_NEEDED_BY.get(function, {}))
        assert needed <= set(env), f"{function} lacks {sorted(needed - set(env))}"
        assert env["OB_BACKEND"] == "aws"
        unknown = {k for k in env if k.startswith("OB_")} - known - set(PENDING_SETTINGS)
        assert not unknown, f"{function} sets OB_* variables nothing reads: {sorted(unknown)}"
    assert function_env(template, "ChatApiFunction")["OB_MAX_MESSAGE_CHARS"] == {"Ref": "MaxMessageChars"}
    assert function_env(template, "ChatApiFunction")["OB_SESSION_TTL_DAYS"] == {"Ref": "SessionTtlDays"}


def _policies(template: dict[str, Any], function: str) -> list[tuple[str, Any]]:
    return [next(iter(p.items())) for p in props(template, function)["Policies"]]


def test_functions_get_least_privilege_table_access(template: dict[str, Any]) -> None:
    table_model = {table: model for model, table in model_table_ids(template).items()}
    assert ref_id(function_env(template, "ChatApiFunction")["OB_IDEMPOTENCY_TABLE"]) == "IdempotencyTable"
    table_model["IdempotencyTable"] = "Idempotency"
    for function, (crud, read) in TABLE_ACCESS.items():
        granted: dict[str, set[str]] = {"DynamoDBCrudPolicy": set(), "DynamoDBReadPolicy": set()}
        for kind, arg in _policies(template, function):
            if kind in granted:
                granted[kind].add(table_model[ref_id(arg["TableName"])])
        assert granted == {"DynamoDBCrudPolicy": crud, "DynamoDBReadPolicy": read}, function


def _statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    return [statement for kind, arg in _policies(template, function) if kind == "Statement" for statement in arg]


def test_the_chat_apis_only_inline_statement_lets_it_update_a_clients_limits_and_nothing_else(
        template: dict[str, Any]) -> None:
    # the other inline statements: ManageConnections on the WebSocket API and the scheduled messages' (tested below)
    for function in HANDLERS:
        for statement in _statements(template, function):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert statement["Effect"] == "Allow", function
            if actions == ["execute-api:ManageConnections"]:
                assert function in {"ChatWsFunction", "ScheduledDeliveryFunction"}
                assert statement["Resource"]["Fn::Sub"].endswith(":${ChatWsApi}/${Stage}/*/@connections/*")
            elif all(action.startswith("scheduler:") for action in actions) or actions == ["iam:PassRole"]:
                assert function in SCHEDULING
            else:
                assert (function, actions) == ("ChatApiFunction", ["dynamodb:UpdateItem"])
                assert ref_id(statement["Resource"]) == "ClientTable"
                assert statement["Condition"] == {"ForAllValues:StringEquals": {
                    "dynamodb:Attributes": ["client_id", "limits", "updated_at", "version"]}}


def test_functions_use_only_scoped_policy_templates(template: dict[str, Any]) -> None:
    allowed = {"DynamoDBCrudPolicy", "DynamoDBReadPolicy", "EventBridgePutEventsPolicy",
               "SSMParameterReadPolicy", "AWSSecretsManagerGetSecretValuePolicy", "Statement"}
    for function in HANDLERS:
        for p in props(template, function)["Policies"]:
            assert isinstance(p, dict), f"{function}: managed policy {p!r} is not least privilege"
        policies = [(kind, arg) for kind, arg in _policies(template, function) if kind != "Statement"]
        assert {kind for kind, _ in policies} <= allowed, function
        bus = [arg for kind, arg in policies if kind == "EventBridgePutEventsPolicy"]
        assert [ref_id(b["EventBusName"]) for b in bus] in ([], ["EventBus"]), function
        for kind, arg in policies:
            text = str(arg)
            if kind in {"SSMParameterReadPolicy", "AWSSecretsManagerGetSecretValuePolicy"}:
                assert "${SecretsPrefix}/${Stage}/" in text, f"{function}: {kind} not scoped to the stack's path"
            if kind == "Statement":  # only the WebSocket function's: managing its own API's connections
                assert function == "ChatWsFunction"
                assert [(s["Effect"], s["Action"]) for s in arg] == [("Allow", "execute-api:ManageConnections")]
                assert arg[0]["Resource"]["Fn::Sub"].endswith(":${ChatWsApi}/${Stage}/*/@connections/*")


# -------------------------------------------------------------------------------------------- scheduled messages
DELIVERY_ARN = ("arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
                "${AWS::StackName}-scheduled-delivery")


def test_the_stack_has_its_own_schedule_group_and_schedules_dlq(template: dict[str, Any]) -> None:
    [group] = resources(template, "AWS::Scheduler::ScheduleGroup")
    assert group == "ScheduleGroup" and props(template, group)["Name"] == stack_named("schedules")
    dlq = props(template, "ScheduleDeadLetterQueue")
    assert dlq["QueueName"] == stack_named("schedules-dlq")
    assert (dlq["MessageRetentionPeriod"], dlq["SqsManagedSseEnabled"]) == (DLQ_RETENTION_SECONDS, True)
    alarms = [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()
              if r["Properties"].get("Dimensions") == [
                  {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"]}}]]
    assert [(a["MetricName"], a["Threshold"]) for a in alarms] == [("ApproximateNumberOfMessagesVisible", 0)]
    outputs = {ref_id(o["Value"]) for o in template["Outputs"].values()
               if isinstance(o["Value"], dict) and "Ref" in o["Value"]}
    assert {"ScheduleGroup", "ScheduleDeadLetterQueue"} <= outputs


def test_the_scheduler_role_is_for_this_accounts_scheduler_and_may_only_invoke_delivery_and_dead_letter(
        template: dict[str, Any]) -> None:
    role = props(template, "SchedulerRole")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Effect"], trust["Principal"], trust["Action"]) == (
        "Allow", {"Service": "scheduler.amazonaws.com"}, "sts:AssumeRole")
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                  "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ScheduleGroup", "Arn"]}}}
    [policy] = role["Policies"]
    granted = {(s["Effect"], s["Action"], str(s["Resource"])) for s in policy["PolicyDocument"]["Statement"]}
    assert granted == {("Allow", "lambda:InvokeFunction", str({"Fn::Sub": DELIVERY_ARN})),
                       ("Allow", "sqs:SendMessage", str({"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}))}
    assert "ManagedPolicyArns" not in role
    # the ARN the role may invoke is the delivery function's own
    delivery = props(template, "ScheduledDeliveryFunction")
    assert delivery["FunctionName"] == stack_named("scheduled-delivery")


def test_the_functions_that_schedule_are_told_where_and_may_touch_only_their_groups_schedules(
        template: dict[str, Any]) -> None:
    for function in HANDLERS:
        env = function_env(template, function)
        if function not in SCHEDULING:
            assert not set(SCHEDULE_SETTINGS) & set(env), function
            assert not any(str(s["Action"]).count("scheduler:") for s in _statements(template, function)), function
            continue
        assert ref_id(env["OB_SCHEDULE_GROUP"]) == "ScheduleGroup"
        assert env["OB_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
        assert env["OB_SCHEDULE_TARGET_ARN"] == {"Fn::Sub": DELIVERY_ARN}
        assert env["OB_SCHEDULE_DLQ_ARN"] == {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}
        statements = _statements(template, function)
        [schedules] = [s for s in statements if isinstance(s["Action"], list)
                       and all(a.startswith("scheduler:") for a in s["Action"])]
        assert set(schedules["Action"]) == {"scheduler:CreateSchedule", "scheduler:UpdateSchedule",
                                            "scheduler:DeleteSchedule", "scheduler:GetSchedule"}
        assert schedules["Resource"]["Fn::Sub"].endswith(":schedule/${ScheduleGroup}/*")
        [passing] = [s for s in statements if s["Action"] == "iam:PassRole"]
        assert passing["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
        assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_a_failed_delivery_is_retried_within_the_hour_then_dead_lettered(template: dict[str, Any]) -> None:
    from openbrain.aws.scheduler import RETRY_POLICY

    delivery = props(template, "ScheduledDeliveryFunction")
    assert delivery["EventInvokeConfig"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert delivery["DeadLetterQueue"] == {"Type": "SQS",
                                           "TargetArn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
    # Scheduler's own retries (openbrain/aws/scheduler.py) give up within the same hour
    assert RETRY_POLICY["MaximumEventAgeInSeconds"] == delivery["EventInvokeConfig"]["MaximumEventAgeInSeconds"]
    # the function runs a turn (which may take the API's whole 29 s) and the model key is a reference
    assert delivery["Timeout"] >= 30
    assert function_env(template, "ScheduledDeliveryFunction")["OB_OPENAI_API_KEY_REF"]["Fn::If"][0] == (
        "CreateOpenAIKeySecret")


# -------------------------------------------------------------------------------------------- artifacts
def test_layers_are_built_by_a_makefile_target_and_used(template: dict[str, Any]) -> None:
    layers = resources(template, "AWS::Serverless::LayerVersion")
    for name, layer in layers.items():
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        makefile = ROOT / layer["Properties"]["ContentUri"] / "Makefile"
        assert re.search(rf"^build-{name}:", makefile.read_text(), re.M), f"{makefile} lacks build-{name}"
    assert [ref_id(x) for x in props(template, "ChatApiFunction")["Layers"]] == ["ChatLayer"]
    assert [ref_id(x) for x in props(template, "ChatWsFunction")["Layers"]] == ["ChatLayer"]
    assert [ref_id(x) for x in props(template, "LeadWebhookFunction")["Layers"]] == ["CoreLayer"]
    assert [ref_id(x) for x in props(template, "MessageWebhookFunction")["Layers"]] == ["CoreLayer"]
    # a scheduled `chatbot` message runs a chat turn
    assert [ref_id(x) for x in props(template, "ScheduledDeliveryFunction")["Layers"]] == ["ChatLayer"]


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_core_layer_is_the_core_dependencies_without_the_agent_runtime() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = [r for r in pyproject["dependencies"] + pyproject["optional-dependencies"]["api"]
                if Requirement(r).name.lower() not in AGENT_RUNTIME]
    lines = (ROOT / "layers/core-requirements.txt").read_text().splitlines()
    listed = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert sorted(map(str, map(Requirement, listed))) == sorted(map(str, map(Requirement, expected)))


def test_nothing_in_the_core_layer_pulls_in_langchain() -> None:
    # given the dependency closure of the core layer's requirements, as installed here
    lines = (ROOT / "layers/core-requirements.txt").read_text().splitlines()
    todo = list(_names([line for line in lines if line.strip() and not line.startswith("#")]))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [Requirement(r).name.lower() for r in requires if "extra ==" not in r]
    # then none of it is the agent runtime
    assert not (seen & AGENT_RUNTIME), sorted(seen & AGENT_RUNTIME)


def test_function_folders_ship_no_dependencies_of_their_own(template: dict[str, Any]) -> None:
    for code_uri, handler in HANDLERS.values():
        requirements = ROOT / code_uri / Path(*handler.split(".")[:-2]) / "requirements.txt"
        lines = [ln for ln in requirements.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert lines == [], f"{requirements}: dependencies belong in the function's layer"


# -------------------------------------------------------------------------------------------- secrets
SECRETISH = re.compile(r"KEY|SECRET|PASSWORD|TOKEN(?!S)", re.I)  # "...Tokens...": a count of model tokens


def test_no_secret_in_environment_values_parameters_or_outputs(template: dict[str, Any]) -> None:
    for function in HANDLERS:
        for name, value in function_env(template, function).items():
            if SECRETISH.search(name):
                # a secret's location in openbrain.aws.secrets' format, never the secret itself
                assert name.endswith("_REF"), f"{function}: {name} looks like a secret value"
                for choice in value["Fn::If"][1:]:
                    assert choice["Fn::Sub"].startswith(("ssm:/", "secretsmanager:")), choice
        assert "OPENAI_API_KEY" not in function_env(template, function)
    for name, parameter in template["Parameters"].items():
        if SECRETISH.search(name) and not name.endswith(("Prefix", "Arn")):
            assert parameter.get("NoEcho") is True and parameter.get("Default", "") == "", name
    no_echo = {name for name, p in template["Parameters"].items() if p.get("NoEcho")}
    for name, output in template["Outputs"].items():
        assert not any(f"'Ref': '{p}'" in str(output["Value"]) for p in no_echo), name
    # the NoEcho key's only use is the secret that stores it
    uses = [rid for rid, r in template["Resources"].items() if "{'Ref': 'OpenAIApiKey'}" in str(r)]
    assert uses == ["OpenAIApiKeySecret"]


def test_template_text_holds_no_key_material() -> None:
    text = TEMPLATE_PATH.read_text()
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|ob_[A-Za-z0-9_-]{30,}", text)


def test_outputs_name_the_api_tables_bus_and_queues(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert "ApiUrl" in outputs and "ChatApi" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    referenced = {ref_id(o["Value"]) for o in outputs.values() if isinstance(o["Value"], dict) and "Ref" in o["Value"]}
    assert set(model_table_ids(template).values()) <= referenced
    assert "EventBus" in referenced
    for target in TARGETS:
        rule_target = _rule_for(template, target.name)["Targets"][0]
        assert {ref_id(rule_target["Arn"]), ref_id(rule_target["DeadLetterConfig"]["Arn"])} <= referenced


def test_api_stage_comes_from_the_stage_parameter(template: dict[str, Any]) -> None:
    api = props(template, "ChatApi")
    assert api["StageName"] == {"Ref": "Stage"}
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["dev", "prod"]
    assert api["MinimumCompressionSize"] == 1024  # widget.js (~24 KB) goes out gzipped to browsers that accept it
    # every method (CORS preflights included) reaches the function, which knows each client's origins
    events = props(template, "ChatApiFunction")["Events"]
    assert {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in events.values()} == {
        ("/", "ANY"), ("/{proxy+}", "ANY")}


def test_the_websocket_api_routes_its_three_routes_to_the_function_on_the_stage(template: dict[str, Any]) -> None:
    api = props(template, "ChatWsApi")
    assert (api["ProtocolType"], api["RouteSelectionExpression"]) == ("WEBSOCKET", "$request.body.action")
    routes = {r["Properties"]["RouteKey"]: r["Properties"]
              for r in resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$default", "$disconnect"}
    for route in routes.values():
        assert ref_id(route["ApiId"]) == "ChatWsApi"
        assert route["Target"] == {"Fn::Sub": "integrations/${ChatWsIntegration}"}
    integration = props(template, "ChatWsIntegration")
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert "${ChatWsFunction.Arn}" in integration["IntegrationUri"]["Fn::Sub"]
    stage = props(template, "ChatWsStage")
    assert (stage["StageName"], stage["AutoDeploy"]) == ({"Ref": "Stage"}, True)
    permission = props(template, "ChatWsInvokePermission")
    assert (ref_id(permission["FunctionName"]), permission["Principal"]) == (
        "ChatWsFunction", "apigateway.amazonaws.com")
    assert permission["SourceArn"]["Fn::Sub"].endswith(":${ChatWsApi}/*")
    # the ack rule's sweep: every minute, an event without requestContext (api/websocket.handler)
    sweep = props(template, "ChatWsFunction")["Events"]["SweepUnacknowledged"]
    assert (sweep["Type"], sweep["Properties"]["ScheduleExpression"]) == ("ScheduleV2", "rate(1 minute)")
    assert function_env(template, "ChatWsFunction")["OB_WS_ACK_SECONDS"] == {"Ref": "WsAckSeconds"}
    assert template["Parameters"]["WsAckSeconds"]["Default"] == 10
    alarms = [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()]
    assert [a["MetricName"] for a in alarms
            if a.get("Dimensions", [{}])[0].get("Value") == {"Ref": "ChatWsFunction"}] == ["Errors"]
    assert "${ChatWsApi}" in template["Outputs"]["ChatWsUrl"]["Value"]["Fn::Sub"]
    assert template["Outputs"]["ChatWsUrl"]["Value"]["Fn::Sub"].startswith("wss://")


def test_globals_pin_the_runtime(template: dict[str, Any]) -> None:
    g = template["Globals"]["Function"]
    assert g["Runtime"] == "python3.11" and g["Tracing"] == "Active"
    assert {"Architectures", "Timeout", "MemorySize"} <= set(g)


# -------------------------------------------------------------------------------------------- cfn-lint
def test_cfn_lint_finds_nothing() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE_PATH)
    assert [str(m) for m in matches] == []


def test_the_quota_alarm_watches_the_metrics_the_handlers_emit_for_the_named_client(template: dict[str, Any]) -> None:
    from openbrain.api import observability

    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "OpenBrain"
    alarm = template["Resources"]["QuotaNearlySpentAlarm"]
    assert alarm["Condition"] == "HasQuotaAlarmClient"
    queries = {query["Id"]: query for query in alarm["Properties"]["Metrics"]}
    watched = {query["MetricStat"]["Metric"]["MetricName"] for query in queries.values() if "MetricStat" in query}
    source = Path(observability.__file__).read_text()
    assert watched == {"Turns", "InputTokens", "OutputTokens"} and all(f'"{name}"' in source for name in watched)
    for query in queries.values():
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            assert metric["Namespace"] == "OpenBrain"
            assert metric["Dimensions"] == [{"Name": "client_id", "Value": {"Ref": "QuotaAlarmClientId"}}]
    assert [query["Id"] for query in queries.values() if query["ReturnData"]] == ["used"]
    assert alarm["Properties"]["Threshold"] == {"Ref": "QuotaAlarmPercent"}
