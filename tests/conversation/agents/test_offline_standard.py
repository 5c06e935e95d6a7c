"""langchain's standard chat-model tests (`langchain-tests`) run against the offline model.

`ChatModelUnitTests` apply in full. Of `ChatModelIntegrationTests`, what a rule-based model cannot do is marked
the way provider packages mark it: by the test class's `has_*` / `supports_*` properties, and by a skip with its
reason where langchain-tests has no property (a tool it is handed that is not one of OpenBrain's: it has no rule
to call it). docs/models.md gives the counts and the command.
"""

from __future__ import annotations

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from openbrain.conversation.agents.offline import OfflineChatModel

FOREIGN_TOOL = "calls only OpenBrain's built-in tools: it has no rule for a tool it is handed, so never calls one"
not_applicable = pytest.mark.xfail(reason=FOREIGN_TOOL, raises=AssertionError, strict=True)


class TestOfflineChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return OfflineChatModel


class TestOfflineChatModelIntegration(ChatModelIntegrationTests):
    # its async tests are unmarked: they run under pytest-asyncio's auto mode (pyproject.toml)
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return OfflineChatModel

    @property
    def has_structured_output(self) -> bool:
        return False  # it cannot write a joke to a schema

    @property
    def supports_model_override(self) -> bool:
        return False  # there is one offline model

    # The tests below hand it tools of their own (magic_function, get_weather, ...) and expect a call.
    @not_applicable
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @not_applicable
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @not_applicable
    def test_tool_calling_with_no_arguments(self, model: BaseChatModel) -> None:
        super().test_tool_calling_with_no_arguments(model)

    @not_applicable
    def test_bind_runnables_as_tools(self, model: BaseChatModel) -> None:
        super().test_bind_runnables_as_tools(model)

    @not_applicable
    def test_tool_choice(self, model: BaseChatModel) -> None:
        super().test_tool_choice(model)

    @not_applicable
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @not_applicable
    def test_unicode_tool_call_integration(
        self, model: BaseChatModel, *, tool_choice: str | None = None, force_tool_call: bool = True
    ) -> None:
        super().test_unicode_tool_call_integration(model, tool_choice=tool_choice, force_tool_call=force_tool_call)
