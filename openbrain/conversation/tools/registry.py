"""The named tools an AgentConfig can select.

A `ToolSpec` is plain data (name, description, pydantic argument schema, function), so listing and
validating tools needs no agent runtime; `build_tools` turns specs into langchain tools for a turn.
Each function receives the turn's `ToolContext` as its first argument; the model only sees the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from openbrain.conversation.tools import calculator, conversation, lead, schedule_tools, time_tools
from openbrain.conversation.tools.context import ToolContext

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args_schema: type[BaseModel]
    func: Callable[..., str]

    def json_schema(self) -> dict[str, Any]:
        return self.args_schema.model_json_schema()


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("get_current_time", time_tools.CURRENT_TIME_DESCRIPTION, time_tools.CurrentTimeArgs,
                 time_tools.get_current_time),
        ToolSpec("convert_to_from_utc", time_tools.CONVERT_DESCRIPTION, time_tools.ConvertArgs,
                 time_tools.convert_to_from_utc),
        ToolSpec("calculator", calculator.DESCRIPTION, calculator.CalculatorArgs, calculator.calculate),
        ToolSpec("capture_lead", lead.DESCRIPTION, lead.LeadArgs, lead.capture_lead),
        ToolSpec("end_conversation", conversation.DESCRIPTION, conversation.EndConversationArgs,
                 conversation.end_conversation),
        ToolSpec("schedule_message", schedule_tools.SCHEDULE_DESCRIPTION, schedule_tools.ScheduleArgs,
                 schedule_tools.schedule_message),
        ToolSpec("list_schedules", schedule_tools.LIST_DESCRIPTION, schedule_tools.ListArgs,
                 schedule_tools.list_schedules),
        ToolSpec("cancel_schedule", schedule_tools.CANCEL_DESCRIPTION, schedule_tools.CancelArgs,
                 schedule_tools.cancel_schedule),
    )
}


def build_tools(names: Iterable[str]) -> list[BaseTool]:
    """langchain tools for the named specs; each gets the turn's ToolContext through `ToolRuntime`."""
    from langchain.tools import ToolRuntime
    from langchain_core.tools import StructuredTool

    def bind(spec: ToolSpec) -> BaseTool:
        def run(runtime: Any, **kwargs: Any) -> str:
            context = runtime.context
            context.tool_calls.append(spec.name)
            return spec.func(context, runtime.tool_call_id or "", **kwargs)

        # A real (not string) annotation: langchain finds the injected `runtime` argument by its type.
        run.__annotations__ = {"runtime": ToolRuntime[ToolContext], "return": str}

        return StructuredTool.from_function(
            run, name=spec.name, description=spec.description, args_schema=spec.args_schema
        )

    return [bind(TOOLS[name]) for name in names]
