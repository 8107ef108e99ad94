"""Which model scored each profile: ids from a paginated projection Scan of the profiles, versions from the scores.

A Scan still reads (and is billed for) whole items, but returns one attribute, so a page carries thousands of
ids and the caller can stream them without holding the table in memory; each page's versions come from the
scores table in BatchGetItem calls of 100 keys.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cadence.dal import clients, scores_table


@dataclass(frozen=True, slots=True)
class ScoredVersion:
    """A profile's id and the model version that last scored it (None: never scored)."""

    customer_id: str
    model_version: str | None


def scan_model_versions(
    table_name: str, scores_table_name: str, page_size: int | None = None
) -> Iterator[ScoredVersion]:
    """Every profile's id and model version, page by page (``page_size`` items a page; default: 1 MB pages).

    Raises:
        TransientError: DynamoDB throttled or timed out after the client's retries.
        PermanentError: DynamoDB rejected the scan (e.g. the table does not exist, or access is denied).
    """
    kwargs: dict[str, Any] = {
        "ProjectionExpression": "#id",
        "ExpressionAttributeNames": {"#id": "customer_id"},
    }
    if page_size is not None:
        kwargs["Limit"] = page_size
    for page in clients.scan_pages(table_name, "profiles.scan_model_versions", **kwargs):
        ids = [str(item["customer_id"]) for item in page]
        versions = scores_table.model_versions(scores_table_name, ids)
        for customer_id in ids:
            yield ScoredVersion(customer_id, versions.get(customer_id))
