"""The ingest ledger: one item per finished file and one per finished file content.

`file#<key>@<version>` lets a re-delivered S3 event skip the whole file at once (its report is already
written). `content#<md5>` says a file with these bytes was counted in full, under whatever key: a later
upload of the same bytes is still read and reported, but adds nothing to the activity table. Repeats
inside the activity table's batch window (7-14 days) are caught there too; this marker covers the rest
of `INGEST_LEDGER_TTL_DAYS`. Orders and events are no longer claimed one by one.

`lease#customers` serialises the read-merge-write of customer chunks across concurrent invocations: a
BatchWriteItem takes no condition, so two customers files written at the same moment could otherwise
put an older row over a newer one. The lease is held for one chunk at a time and expires by itself.
`lease#activity` does the same for the activity table's read-merge-write (see cadence.dal.activity_table).
"""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.dal.items import from_item, to_item
from cadence.errors import TransientError


def file_record_key(file_id: str) -> str:
    return f"file#{file_id}"


def content_record_key(content_id: str) -> str:
    return f"content#{content_id}"


def _get(table_name: str, record_key: str, action: str) -> dict[str, Any] | None:
    try:
        response = clients.table(table_name).get_item(Key={"record_key": record_key}, ConsistentRead=True)
    except ClientError as exc:
        raise clients.translate(exc, action) from exc
    item = response.get("Item")
    return from_item(item) if item else None


def _put(table_name: str, record_key: str, values: dict[str, Any], *, ttl_days: int, action: str) -> None:
    item = to_item({**values, "record_key": record_key, "expires_at": int(time.time()) + ttl_days * 86400})
    try:
        clients.table(table_name).put_item(Item=item)
    except ClientError as exc:
        raise clients.translate(exc, action) from exc


def finished_file(table_name: str, file_id: str) -> dict[str, Any] | None:
    """The summary stored when the file was finished, or None."""
    return _get(table_name, file_record_key(file_id), "ingest_ledger.finished_file")


def mark_file_finished(table_name: str, file_id: str, summary: dict[str, Any], *, ttl_days: int) -> None:
    _put(table_name, file_record_key(file_id), summary, ttl_days=ttl_days, action="ingest_ledger.mark_file_finished")


def counted_content(table_name: str, content_id: str) -> dict[str, Any] | None:
    """What was stored when a file with this content was finished (source_key), or None."""
    return _get(table_name, content_record_key(content_id), "ingest_ledger.counted_content")


def mark_content_counted(table_name: str, content_id: str, source_key: str, *, ttl_days: int) -> None:
    _put(
        table_name,
        content_record_key(content_id),
        {"source_key": source_key},
        ttl_days=ttl_days,
        action="ingest_ledger.mark_content_counted",
    )


def lease_record_key(name: str) -> str:
    return f"lease#{name}"


def take_lease(table_name: str, name: str, owner: str, *, seconds: int, now: float | None = None) -> bool:
    """Hold the lease `name` for `seconds` unless another owner holds it unexpired; True when held.

    Raises:
        TransientError / PermanentError: DynamoDB failed (a lease held by another owner is not an error).
    """
    moment = int(time.time() if now is None else now)
    try:
        clients.table(table_name).put_item(
            Item={
                "record_key": lease_record_key(name),
                "owner": owner,
                "lease_until": moment + seconds,
                "expires_at": moment + seconds + 86_400,
            },
            ConditionExpression="attribute_not_exists(record_key) OR lease_until < :now OR #owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":now": moment, ":owner": owner},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, "ingest_ledger.take_lease") from exc
    return True


def release_lease(table_name: str, name: str, owner: str) -> None:
    """Give the lease up if this owner still holds it."""
    try:
        clients.table(table_name).delete_item(
            Key={"record_key": lease_record_key(name)},
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": owner},
        )
    except ClientError as exc:
        if clients.error_code(exc) != "ConditionalCheckFailedException":
            raise clients.translate(exc, "ingest_ledger.release_lease") from exc


@contextmanager
def held_lease(
    table_name: str, name: str, *, seconds: int, wait_seconds: float, poll_seconds: float = 0.5
) -> Iterator[None]:
    """Hold the lease `name` for the block, waiting at most `wait_seconds` for another holder to let it go.

    Raises:
        TransientError: another owner held the lease all along (a retry tries again), or DynamoDB failed.
    """
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while not take_lease(table_name, name, owner, seconds=seconds):
        if time.monotonic() > deadline:
            raise TransientError(f"ingest: the {name} write lease stayed taken")
        time.sleep(poll_seconds)
    try:
        yield
    finally:
        release_lease(table_name, name, owner)
