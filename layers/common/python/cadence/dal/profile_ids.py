"""Which model scored each profile: customer_id and model_version only, read with a paginated projection Scan.

A Scan still reads (and is billed for) whole items, but returns two attributes, so a page carries thousands of
ids and the caller can stream them without holding the table in memory.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients


@dataclass(frozen=True, slots=True)
class ScoredVersion:
    """A profile's id and the model version that last scored it (None: never scored)."""

    customer_id: str
    model_version: str | None


def scan_model_versions(table_name: str, page_size: int | None = None) -> Iterator[ScoredVersion]:
    """Every profile's id and model version, page by page (``page_size`` items a page; default: 1 MB pages).

    Raises:
        TransientError: DynamoDB throttled or timed out after the client's retries.
        PermanentError: DynamoDB rejected the scan (e.g. the table does not exist, or access is denied).
    """
    kwargs: dict[str, Any] = {
        "ProjectionExpression": "#id, #version",
        "ExpressionAttributeNames": {"#id": "customer_id", "#version": "model_version"},
    }
    if page_size is not None:
        kwargs["Limit"] = page_size
    table = clients.table(table_name)
    while True:
        try:
            page = table.scan(**kwargs)
        except ClientError as exc:
            raise clients.translate(exc, "profiles.scan_model_versions") from exc
        for item in page.get("Items", []):
            version = item.get("model_version")
            yield ScoredVersion(str(item["customer_id"]), version if isinstance(version, str) else None)
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
