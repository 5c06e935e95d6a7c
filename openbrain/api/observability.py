"""The one place the chat API's Powertools logger is made. Library modules keep `logging.getLogger`;
their records go through the same structured handler. Nothing here logs message bodies or lead PII."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

logger = Logger(service="openbrain-chat-api")
copy_config_to_registered_loggers(source_logger=logger, include={"openbrain"})
