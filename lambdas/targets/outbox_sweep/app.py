"""Lambda handler of the scheduled outbox sweep: see `openbrain.targets.outbox_sweep.handler`.

Imports no langchain (tests/targets/test_lambda_imports.py).
"""

from openbrain.targets.outbox_sweep import handler

__all__ = ["handler"]
