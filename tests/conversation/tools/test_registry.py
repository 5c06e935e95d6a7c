"""The tool registry: plain specs, and the langchain tools built from them for a turn."""

from __future__ import annotations

import inspect

import pytest
from langchain.tools import ToolRuntime
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError

from openbrain.conversation.tools.context import ToolContext
from openbrain.conversation.tools.registry import TOOLS, ToolSpec, build_tools
from openbrain.domain.profile import DEFAULT_TOOLS, TOOL_NAMES

_RUNTIME_ONLY = {"runtime", "context", "tool_call_id"}


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_tool_spec_has_a_pydantic_args_schema(name: str) -> None:
    spec = TOOLS[name]

    assert isinstance(spec, ToolSpec)
    assert spec.name == name
    assert spec.description.strip()
    assert issubclass(spec.args_schema, BaseModel)
    schema = spec.json_schema()
    assert schema["type"] == "object"
    assert not _RUNTIME_ONLY & set(schema.get("properties", {}))


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_tool_function_takes_the_context_then_the_tool_call_id_then_its_arguments(name: str) -> None:
    spec = TOOLS[name]
    parameters = list(inspect.signature(spec.func).parameters.values())

    assert [p.name for p in parameters[:2]] == ["context", "tool_call_id"]
    rest = parameters[2:]
    if rest and rest[0].kind is inspect.Parameter.VAR_KEYWORD:  # capture_lead takes **fields
        return
    assert {p.name for p in rest} == set(spec.args_schema.model_fields)


def test_the_default_profile_only_names_registered_tools() -> None:
    assert set(DEFAULT_TOOLS) <= set(TOOLS)


def test_the_registry_implements_exactly_the_tool_names_a_profile_may_select() -> None:
    assert tuple(TOOLS) == TOOL_NAMES


def test_build_tools_hides_the_runtime_from_the_model() -> None:
    tools = build_tools(sorted(TOOLS))

    assert [tool.name for tool in tools] == sorted(TOOLS)
    for tool in tools:
        spec = TOOLS[tool.name]
        visible = convert_to_openai_tool(tool)["function"]
        assert visible["description"] == spec.description
        properties = visible["parameters"].get("properties", {})
        assert set(properties) == set(spec.json_schema().get("properties", {}))
        assert not _RUNTIME_ONLY & set(properties)
        call_schema = tool.tool_call_schema
        assert isinstance(call_schema, type) and issubclass(call_schema, BaseModel)
        assert not _RUNTIME_ONLY & set(call_schema.model_json_schema().get("properties", {}))


def test_build_tools_keeps_the_requested_order_and_subset() -> None:
    assert [t.name for t in build_tools(["end_conversation", "calculator"])] == ["end_conversation", "calculator"]
    assert build_tools([]) == []


def _runtime(context: ToolContext, tool_call_id: str) -> ToolRuntime[ToolContext]:
    return ToolRuntime(
        state={}, context=context, config={}, stream_writer=lambda _: None, tool_call_id=tool_call_id, store=None
    )


def test_a_built_tool_runs_with_the_turns_context_and_tool_call_id(offline_context: ToolContext) -> None:
    # given
    [tool] = build_tools(["end_conversation"])

    # when: the agent runtime calls it, injecting the turn's runtime
    result = tool.invoke(
        {
            "type": "tool_call",
            "name": "end_conversation",
            "id": "call_7",
            "args": {"reason": "bye", "runtime": _runtime(offline_context, "call_7")},
        }
    )

    # then
    assert result.content == "The conversation is ended. Say a short goodbye."
    assert result.tool_call_id == "call_7"
    assert offline_context.ended is True
    assert offline_context.tool_calls == ["end_conversation"]
    assert offline_context.events[0].tool_call_id == "call_7"


def test_a_built_tool_refuses_arguments_its_schema_does_not_allow(offline_context: ToolContext) -> None:
    [tool] = build_tools(["convert_to_from_utc"])
    args = {"time": "10:00", "timezone": "UTC", "direction": "sideways", "runtime": _runtime(offline_context, "c1")}

    with pytest.raises(ValidationError, match="direction"):
        tool.invoke({"type": "tool_call", "name": "convert_to_from_utc", "id": "c1", "args": args})

    assert offline_context.tool_calls == []
