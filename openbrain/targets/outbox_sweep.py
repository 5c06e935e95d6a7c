"""The scheduled outbox sweep: publish the events committed turns could not (docs/events.md, "The outbox").

template.yaml runs `handler` every 5 minutes (`OutboxSweepFunction`); `ob-admin outbox flush` runs the same
`openbrain.conversation.outbox.flush` by hand. Imports no langchain (tests/targets/test_lambda_imports.py).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from openbrain.aws.backend import get_backend
from openbrain.conversation.outbox import flush

log = logging.getLogger(__name__)


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """An EventBridge Scheduler (or any) event in; how many sessions and events were published out. A session
    whose events the bus refused counts in `failed` and waits for the next run."""
    report = asdict(flush(get_backend()))
    if report["failed"]:
        log.error("outbox sweep: %d session(s) kept their outbox (the bus refused)", report["failed"])
    elif report["sessions"]:
        log.warning("outbox sweep published %d event(s) of %d session(s)", report["events"], report["sessions"])
    return report
