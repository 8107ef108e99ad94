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
