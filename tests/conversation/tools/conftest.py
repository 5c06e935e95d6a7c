"""Tool contexts for calling tool functions directly, the way the agent runtime does."""

from __future__ import annotations

import pytest

from openbrain.aws.backend import Backend
from openbrain.conversation.tools.context import ToolContext
from openbrain.core.ids import new_id

CLIENT_ID = "acme"


@pytest.fixture
def offline_context() -> ToolContext:
    """A context for tools that need no tables."""
    return ToolContext(client_id=CLIENT_ID, session_id=new_id())


@pytest.fixture
def context(backend: Backend) -> ToolContext:
    """A context that reads the session's lead from the embedded tables."""
    return ToolContext(client_id=CLIENT_ID, session_id=new_id(), leads=backend.stores.leads, turn=1)
