"""Tool contexts for calling tool functions directly, the way the agent runtime does."""

from __future__ import annotations

import pytest
from support.fakes import RecordingEventsClient

from openbrain.aws.backend import Backend
from openbrain.aws.events import EventPublisher
from openbrain.conversation.tools.context import ToolContext
from openbrain.core.ids import new_id

CLIENT_ID = "acme"


@pytest.fixture
def events_client() -> RecordingEventsClient:
    return RecordingEventsClient()


@pytest.fixture
def offline_context(events_client: RecordingEventsClient) -> ToolContext:
    """A context for tools that need no tables: its events go to a recording client."""
    return ToolContext(client_id=CLIENT_ID, session_id=new_id(), publisher=EventPublisher(events_client, "bus"))


@pytest.fixture
def context(backend: Backend) -> ToolContext:
    """A context whose events go through the embedded EventBridge bus (and on to its SQS queues)."""
    return ToolContext(client_id=CLIENT_ID, session_id=new_id(), publisher=backend.events, turn=1)


@pytest.fixture
def unreachable_bus_context(backend: Backend) -> ToolContext:
    """A context whose publisher targets a bus that does not exist: every publish fails."""
    publisher = EventPublisher(backend.client("events"), "no-such-bus")
    return ToolContext(client_id=CLIENT_ID, session_id=new_id(), publisher=publisher, turn=1)
