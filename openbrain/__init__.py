"""OpenBrain: configurable, stateful LLM chat agents stored in DynamoDB.

The package imports nothing heavy at import time: pick what you need from its modules
(`openbrain.conversation.chat`, `openbrain.storage.orm`, `openbrain.aws.backend`, ...).
"""

__version__ = "0.1.0"
