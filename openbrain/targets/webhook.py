"""What the targets that post events to a client's webhook share (`lead-webhook`, `message-webhook`).

A `WebhookTarget` reads one SQS message body (an EventBridge envelope), checks it is an event the target handles,
has the subclass `deliver` it, and logs the outcome naming ids only. `post` sends a body to `Client.webhook_url`
signed per Standard Webhooks (`webhook-id` = the event's idempotency key; signing.py) with `X-OpenBrain-Event`
and `User-Agent`, and raises unless the webhook answered 2xx. `batch_handler` is the Lambda handler's body: an
SQS batch through Powertools' `BatchProcessor`, answered with `batchItemFailures`. See docs/targets.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from openbrain.aws.secrets import SecretResolver, resolver_for
from openbrain.core.errors import ConfigurationError, NotFoundError, OpenBrainError, UpstreamError
from openbrain.domain.profile import DEFAULT_CLIENT_ID
from openbrain.domain.urls import webhook_host
from openbrain.targets.http import post_json
from openbrain.targets.records import MalformedRecordError, parse_body
from openbrain.targets.signing import signed_headers

if TYPE_CHECKING:
    from openbrain.aws.backend import Backend
    from openbrain.domain.events import Event
    from openbrain.storage.orm import ChatSession, Client

USER_AGENT = "OpenBrain-Webhook/1"

log = logging.getLogger(__name__)

Poster = Callable[[str, bytes, dict[str, str], float], int]


class WebhookRejectedError(UpstreamError):
    """The webhook answered with something other than 2xx."""

    code = "webhook_rejected"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Outcome:
    """What became of one record that did not fail (`object_id`: the event's object, a lead or a schedule).
    `skipped`: it could not be delivered and never will be (logged at WARNING); `ignored`: the client does not want
    it (logged at INFO)."""

    status: Literal["delivered", "duplicate", "skipped", "ignored"]
    event_id: str
    object_id: str | None = None
    reason: str = ""


class WebhookTarget:
    """A target posting events to their client's webhook through one backend. `post` is the HTTP call (injectable
    for other transports). Subclasses name themselves, list the events they handle and `deliver` one."""

    name: ClassVar[str]
    handles: ClassVar[tuple[type[Event], ...]]
    object_kind: ClassVar[str]  # what the event's object id names, for the logs: "lead", "schedule"

    def __init__(
        self,
        backend: Backend,
        *,
        secrets: SecretResolver | None = None,
        post: Poster = post_json,
        timeout: float | None = None,
    ) -> None:
        self.backend = backend
        self.secrets = secrets or resolver_for(backend)
        self._post = post
        self.timeout = timeout if timeout is not None else backend.settings.webhook_timeout_seconds

    def deliver(self, event: Any) -> Outcome:
        raise NotImplementedError

    def handle_body(self, body: str) -> Outcome:
        """Handle one SQS message body. Returns how it was acknowledged; raises (an `OpenBrainError`) when the
        record must fail and be retried."""
        try:
            record = parse_body(body)
        except MalformedRecordError as exc:
            log.warning("%s: malformed record: %s", self.name, exc.message)
            raise
        event = record.event
        if not isinstance(event, self.handles):
            error = MalformedRecordError(f"{event.detail_type} is not an event the {self.name} target handles")
            log.warning("%s: %s (event %s)", self.name, error.message, event.event_id)
            raise error
        about = (f"{self.name}: {event.detail_type} {event.event_id} for client {event.client_id} "
                 f"{self.object_kind} {event.object_id()}")
        try:
            outcome = self.deliver(event)
        except OpenBrainError as exc:
            log.warning("%s failed: %s", about, exc.message)
            raise
        level = logging.WARNING if outcome.status == "skipped" else logging.INFO  # "ignored": the client's choice
        log.log(level, "%s: %s%s", about, outcome.status, f" ({outcome.reason})" if outcome.reason else "")
        return outcome

    def client_of(self, event: Event) -> Client | None:
        """The event's client; `None` when it no longer exists (deleted data cannot be delivered however often
        the record is retried)."""
        try:
            return self.backend.stores.clients.get(event.client_id)
        except NotFoundError:
            return None

    def without_client(self, event: Event, object_id: str | None) -> Outcome:
        """What becomes of an event whose client has no record. The CLIs' own client (`public`, the default of `ob`
        and `ob-chat`) needs none (docs/admin.md), so it has no webhook that could want its events: ignored (INFO),
        as for a client without a webhook URL. Any other client was deleted: skipped (WARNING)."""
        if event.client_id == DEFAULT_CLIENT_ID:
            return Outcome("ignored", event.event_id, object_id,
                           f"the CLIs' client {DEFAULT_CLIENT_ID} has no record, so no webhook")
        return Outcome("skipped", event.event_id, object_id, "the client no longer exists")

    def session_of(self, event: Event) -> ChatSession | None:
        """The event's session; `None` when it has expired or is gone (the event still goes out)."""
        try:
            return self.backend.stores.sessions.get(event.client_id, event.session_id)
        except NotFoundError:
            return None

    @staticmethod
    def profile_name(session: ChatSession | None) -> str | None:
        if session is None:
            return None
        snapshot = session.config_snapshot if isinstance(session.config_snapshot, dict) else {}
        return session.profile_name or snapshot.get("profile_name")

    def post(self, client: Client, event: Event, body: bytes) -> None:
        """POST `body` (the exact bytes signed) to the client's webhook as `event`. Raises `ConfigurationError`
        for a client without a webhook URL or secret reference (or an unreadable secret), `WebhookRejectedError`
        for a non-2xx answer, `UpstreamError` when the webhook cannot be reached or does not answer in time."""
        if not client.webhook_url:
            raise ConfigurationError(f"client {client.client_id} has no webhook URL")
        if not client.webhook_secret_ref:
            raise ConfigurationError(f"client {client.client_id} has no webhook signing secret reference")
        secret = self.secrets.resolve(client.webhook_secret_ref)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-OpenBrain-Event": event.detail_type,
            **signed_headers(secret, event.idempotency_key, body),
        }
        status = self._post(client.webhook_url, body, headers, self.timeout)
        if not 200 <= status < 300:
            if status in (401, 403):  # perhaps the secret was rotated: read it again on the retry
                self.secrets.invalidate(client.webhook_secret_ref)
            raise WebhookRejectedError(
                f"the webhook at {webhook_host(client.webhook_url)} answered HTTP {status}", status
            )


def batch_handler(target: WebhookTarget, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch in, `{"batchItemFailures": [...]}` out: a record whose delivery raises is reported as a batch
    item failure, so SQS retries only it and, after the queue's maxReceiveCount, moves it to the dead-letter queue.
    A batch whose every record failed is still answered so (not an exception): local pollers and tests see the same
    shape, and for Lambda both mean "retry all of them"."""
    from aws_lambda_powertools.utilities.batch import process_partial_response

    def record_handler(record: SQSRecord) -> Outcome:
        return target.handle_body(record.body)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                         context=context))
