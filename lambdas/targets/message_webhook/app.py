"""Lambda handler of the `message-webhook` target (an SQS batch in, `{"batchItemFailures": [...]}` out).

The handler is the library's, so `ob-serve` runs the very same function: see
`openbrain.targets.message_webhook.handler`. Imports no langchain (tests/targets/test_lambda_imports.py).
"""

from openbrain.targets.message_webhook import handler

__all__ = ["handler"]
