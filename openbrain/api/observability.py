"""The one place the chat API's Powertools logger and metrics are made. Library modules keep `logging.getLogger`;
their records go through the same structured handler. Nothing here logs message bodies or lead PII.

Metrics: `emit_turn` prints one turn's usage (services/usage.py) as one CloudWatch EMF blob, namespace
`POWERTOOLS_METRICS_NAMESPACE` (the template sets `OpenBrain`), dimension `client_id`: `Turns`, `InputTokens`,
`OutputTokens`, `TurnErrors`, `RateLimited` (counts) and `TurnLatency` (ms, stored turns only). Printed when the turn
ends (an explicit flush, inside the invocation): each turn has its own `client_id`, and Powertools' `Metrics` keeps
one set of metrics and dimensions per process, shared by every instance and thread (`ob-serve` runs handlers on
threads), so a turn's metrics get a provider of their own. Without a namespace (`ob-serve`, the tests, unless they
set one), or with Powertools' `POWERTOOLS_METRICS_DISABLED`, nothing is printed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.shared import constants

if TYPE_CHECKING:
    from openbrain.services.usage import TurnUsage

logger = Logger(service="openbrain-chat-api")
copy_config_to_registered_loggers(source_logger=logger, include={"openbrain"})


def emit_turn(usage: TurnUsage) -> None:
    """`usage` as CloudWatch metrics (module docstring)."""
    if not os.environ.get(constants.METRICS_NAMESPACE_ENV):
        return
    metrics = AmazonCloudWatchEMFProvider()
    metrics.add_dimension("client_id", usage.client_id)
    for name, value in (("Turns", usage.turns), ("InputTokens", usage.input_tokens),
                        ("OutputTokens", usage.output_tokens), ("TurnErrors", usage.errors),
                        ("RateLimited", usage.rate_limited)):
        metrics.add_metric(name, MetricUnit.Count, value)
    if usage.turns:
        metrics.add_metric("TurnLatency", MetricUnit.Milliseconds, usage.latency_ms)
    metrics.flush_metrics()
