"""An agent profile's rules: its defaults, its bounds and the tools it may name.

The tool implementations live in `openbrain.conversation.tools.registry`, which holds exactly these names
(a test keeps the two in step), so validating a profile needs no agent runtime.
"""

from __future__ import annotations

TOOL_NAMES = ("get_current_time", "convert_to_from_utc", "calculator", "capture_lead", "end_conversation")
DEFAULT_CLIENT_ID = "public"
DEFAULT_PROFILE = "default"
DEFAULT_MODEL = "openai:gpt-4o-mini"
DEFAULT_TOOLS = TOOL_NAMES
DEFAULT_SYSTEM_MESSAGE = (
    "You are a friendly, concise assistant. Answer questions directly. When someone wants to be "
    "contacted, collect their name and an email address or phone number and save them with the "
    "capture_lead tool. When they say goodbye, call end_conversation."
)
DEFAULT_ICEBREAKER = "Hi! I'm your OpenBrain assistant. How can I help you today?"

# Bounds that keep a turn (and what it costs) predictable.
MAX_ITERATIONS_RANGE = (1, 50)
MAX_EXECUTION_TIME_RANGE = (1, 900)  # seconds; API Gateway gives up at 29 s, Lambda at 15 min
MAX_TEXT_CHARS = 20_000  # system message and icebreaker
CONFIG_FIELDS = (
    "system_message",
    "icebreaker",
    "model",
    "temperature",
    "tools",
    "max_iterations",
    "max_execution_time",
    "memory",
)
