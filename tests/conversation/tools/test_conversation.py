"""end_conversation: marks the turn's session ended and records its event once (the commit publishes it)."""

from __future__ import annotations

import pytest

from openbrain.conversation.tools.context import ToolContext
from openbrain.conversation.tools.conversation import end_conversation
from openbrain.domain.events import ConversationEnded

pytestmark = pytest.mark.integration


def test_end_conversation_ends_the_session_and_announces_it(context: ToolContext) -> None:
    # given
    context.turn, context.lead_id = 3, "01JLEADLEADLEADLEADLEAD000"

    # when
    reply = end_conversation(context, "call_9", reason="the person said goodbye")

    # then
    assert reply == "The conversation is ended. Say a short goodbye."
    assert context.ended is True
    [event] = context.events
    assert isinstance(event, ConversationEnded)
    assert (event.session_id, event.client_id, event.tool_call_id) == (context.session_id, context.client_id, "call_9")
    assert (event.turn_count, event.lead_id) == (3, "01JLEADLEADLEADLEADLEAD000")


def test_end_conversation_announces_only_once(context: ToolContext) -> None:
    end_conversation(context, "call_1")

    reply = end_conversation(context, "call_2", reason="again")

    assert reply == "The conversation is already ended."
    assert context.ended is True
    assert [e.tool_call_id for e in context.events] == ["call_1"]


def test_end_conversation_without_a_lead_says_so(offline_context: ToolContext) -> None:
    end_conversation(offline_context, "call_1")

    [event] = offline_context.events
    assert isinstance(event, ConversationEnded)
    assert event.lead_id is None
