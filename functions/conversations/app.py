"""Conversations function: inbound SMS (End User Messaging two-way, through its SNS topic) and inbound email (an SES
receipt rule) -> keywords acted on, other replies classified and routed to a person or a quiet period
(cadence.conversations.inbound)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config, events
from cadence.conversations import email_replies, inbound
from cadence.conversations.intents import Classified
from cadence.dal import uploads
from cadence.errors import InvalidInputError
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    # SNS invokes asynchronously with one record: a failure is retried by Lambda, then lands in the on-failure queue.
    settings = config.conversation_settings()
    classifier = _classifier(settings)
    outcomes = [inbound.handle(_reply(raw, settings), settings, classifier).outcome for raw in event["Records"]]
    return {"outcomes": outcomes}


def _reply(raw: dict[str, Any], settings: config.ConversationSettings) -> inbound.Reply:
    if raw.get("eventSource") == "aws:ses":
        # An email through the receipt rule: its S3 action stored the message under its id before this action ran.
        receipt = events.SesReceiptRecord.model_validate(raw).ses
        if not settings.data_bucket:
            raise InvalidInputError("an inbound email arrived but DATA_BUCKET is not set")
        raw_message = uploads.read_bytes(settings.data_bucket, f"{settings.inbound_email_prefix}{receipt.message_id}")
        message = email_replies.parse(raw_message)
        return inbound.Reply.of_email(message, receipt, settings.inbound_email_domain)
    record = events.SnsRecord.model_validate(raw)
    return inbound.Reply.of_sms(record.message_as(events.InboundSms), _timestamp(record))


def _timestamp(record: events.SnsRecord) -> datetime:
    return datetime.fromisoformat(str(record.sns["Timestamp"]))


def _classifier(settings: config.ConversationSettings) -> inbound.Classifier | None:
    """The reply model the template names, or None: every reply that is not a keyword then goes to a person."""
    if not (settings.model_bucket and settings.intent_model_version):
        return None
    return _PublishedModel(settings.model_bucket, settings.intent_model_version)


class _PublishedModel:
    """The published reply model, fetched on the first reply that needs it (a STOP never waits for it) and then
    kept for the container's life."""

    def __init__(self, bucket: str, version: str) -> None:
        self._bucket, self._version = bucket, version

    def _model(self) -> inbound.Classifier:
        # Imported here: a container that only ever sees keywords never loads onnxruntime.
        from cadence.conversations.intent_model import loaded_intent_model  # noqa: PLC0415

        return loaded_intent_model(self._bucket, self._version)

    @property
    def confidence_threshold(self) -> float:
        return self._model().confidence_threshold

    def classify(self, texts: Sequence[str]) -> list[Classified]:
        return self._model().classify(texts)
