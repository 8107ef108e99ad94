"""The scores table: one item per customer, written whole by the score function and by nobody else.

Scores live apart from the profiles so that the score function can write them with BatchWriteItem
(25 a call) without ever overwriting what ingest writes to a profile at the same moment.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import batches, clients
from cadence.dal.items import from_item, to_item

ATTRIBUTES = ("score", "decile", "model_version", "scored_at")


def put_many(table_name: str, scores: Sequence[Mapping[str, Any]], *, workers: int = 4) -> None:
    """Write each customer's latest score ({customer_id, *ATTRIBUTES}) whole, in batches of 25.

    Raises:
        TransientError: items stayed unprocessed after every retry, or DynamoDB throttled.
    """
    # Keys must be unique within a BatchWriteItem call: the last score of a customer wins.
    items = [to_item(score) for score in {score["customer_id"]: score for score in scores}.values()]
    batches.put_items(table_name, items, action="scores.put_many", workers=workers)


def scan(
    table_name: str,
    max_decile: int = 10,
    *,
    segments: int = 1,
    workers: int = 1,
    attributes: Sequence[str] | None = None,
    only: Sequence[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every score with a decile up to `max_decile` (1 is the most likely to buy), page by page.

    With `segments` > 1 a parallel Scan, `workers` segments at once, in no particular order; `only` reads just
    those segments of the `segments`. `attributes` names what to read ({customer_id, *ATTRIBUTES} by default).

    Raises:
        TransientError: DynamoDB throttled or timed out after the client's retries.
    """
    names = {"#decile": "decile"}
    projection: dict[str, Any] = {}
    if attributes:
        names |= {f"#a{i}": name for i, name in enumerate(attributes)}
        projection["ProjectionExpression"] = ", ".join(f"#a{i}" for i in range(len(attributes)))
    pages = batches.scan_segments(
        table_name,
        segments=segments,
        workers=workers,
        action="scores.scan",
        only=only,
        FilterExpression="#decile <= :max_decile",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":max_decile": max_decile},
        **projection,
    )
    for page in pages:
        yield from (from_item(item) for item in page)


def item_count(table_name: str) -> int:
    """About how many scores the table holds (DescribeTable's ItemCount, refreshed by DynamoDB every few hours).

    Raises:
        TransientError / PermanentError: DynamoDB failed or refused the call.
    """
    try:
        table = clients.client("dynamodb").describe_table(TableName=table_name)["Table"]
    except ClientError as exc:
        raise clients.translate(exc, "scores.item_count") from exc
    return int(table.get("ItemCount", 0))


def model_versions(table_name: str, customer_ids: Sequence[str]) -> dict[str, str]:
    """The model version that last scored each of the customers (absent: never scored)."""
    versions: dict[str, str] = {}
    unique_ids = list(dict.fromkeys(customer_ids))
    for start in range(0, len(unique_ids), batches.GET_LIMIT):
        keys: list[Mapping[str, Any]] = [{"customer_id": cid} for cid in unique_ids[start : start + batches.GET_LIMIT]]
        items = batches.get_items(
            {table_name: keys}, projections={table_name: ("customer_id", "model_version")}, action="scores.versions"
        )
        versions.update({str(item["customer_id"]): str(item["model_version"]) for item in items[table_name]})
    return versions
