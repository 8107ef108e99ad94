"""The ingest ledger: one item per counted order or event, and one per finished file.

Orders and events are claimed here (inside the same transaction that adds them to a profile, see
profiles_table.apply_deltas) so a repeated delivery counts nothing twice. A finished file's item lets a
re-delivered S3 event skip the whole file.
"""

import time
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.dal.items import from_item, to_item


def file_record_key(file_id: str) -> str:
    return f"file#{file_id}"


def finished_file(table_name: str, file_id: str) -> dict[str, Any] | None:
    """The summary stored when the file was finished, or None."""
    try:
        response = clients.table(table_name).get_item(Key={"record_key": file_record_key(file_id)}, ConsistentRead=True)
    except ClientError as exc:
        raise clients.translate(exc, "ingest_ledger.finished_file") from exc
    item = response.get("Item")
    return from_item(item) if item else None


def mark_file_finished(table_name: str, file_id: str, summary: dict[str, Any], *, ttl_days: int) -> None:
    item = to_item(
        {
            **summary,
            "record_key": file_record_key(file_id),
            "expires_at": int(time.time()) + ttl_days * 86400,
        }
    )
    try:
        clients.table(table_name).put_item(Item=item)
    except ClientError as exc:
        raise clients.translate(exc, "ingest_ledger.mark_file_finished") from exc
