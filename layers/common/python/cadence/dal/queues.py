"""SQS producers: JSON bodies sent in batches of ten, with every failed entry retried or reported."""

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.errors import TransientError

SQS_BATCH_LIMIT = 10
_MAX_ROUNDS = 5


def chunked[T](items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items, in order, losing and repeating none."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def send_json_batches(queue_url: str, bodies: Iterable[Mapping[str, Any]]) -> int:
    """Send each body as one message, ten per SendMessageBatch call; returns the number sent.

    Raises:
        TransientError: some entries still failed after retries (the caller's retry resends them all;
            consumers are idempotent, so a repeat is harmless).
    """
    sent = 0
    for chunk in chunked(bodies, SQS_BATCH_LIMIT):
        sent += _send_chunk(queue_url, [json.dumps(body, separators=(",", ":"), default=str) for body in chunk])
    return sent


def _send_chunk(queue_url: str, bodies: Sequence[str]) -> int:
    pending = {str(index): body for index, body in enumerate(bodies)}
    for attempt in range(_MAX_ROUNDS):
        entries = [{"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()]
        try:
            response = clients.client("sqs").send_message_batch(QueueUrl=queue_url, Entries=entries)
        except ClientError as exc:
            raise clients.translate(exc, "sqs.send_message_batch") from exc
        for success in response.get("Successful", []):
            pending.pop(success["Id"], None)
        if not pending:
            return len(bodies)
        time.sleep(min(0.1 * 2**attempt, 2.0))
    raise TransientError(f"sqs.send_message_batch: {len(pending)} entries failed after retries")


# SQS's longest visibility timeout (12 hours).
_MAX_VISIBILITY_SECONDS = 43_200


def queue_url_of(queue_arn: str) -> str:
    """The queue URL for an SQS queue ARN (arn:<partition>:sqs:<region>:<account>:<name>), as an event names it."""
    _, partition, _, region, account, name = queue_arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def redeliver_after(queue_arn: str, receipt_handle: str, seconds: float) -> bool:
    """Let the received message come back in `seconds` (ChangeMessageVisibility) rather than at the queue's own
    visibility timeout; returns whether SQS took it. A failure is harmless: the message then comes back at its
    usual time."""
    timeout = min(max(round(seconds), 0), _MAX_VISIBILITY_SECONDS)
    try:
        clients.client("sqs").change_message_visibility(
            QueueUrl=queue_url_of(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=timeout
        )
    except ClientError:
        return False
    return True
