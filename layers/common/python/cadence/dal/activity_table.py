"""The activity table: one item per customer with the order and event aggregates ingest keeps.

    order_count, total_spend, first_order_at, last_order_at, event_count,
    last_visit_at, last_open_at, last_click_at

An orders or events file adds to a customer with ONE UpdateItem: an atomic ADD of the file's counts
and amounts (so concurrent files never lose each other's updates), guarded by the file's batch id (its
content hash; ingest sums the whole file first, see cadence.ingest.merge.ActivityTotals). The id is
added to a set of applied batches in the same update, on condition that the set does not hold it yet,
so a redelivered event, a retried part or the same bytes uploaded under another key add nothing twice.

First/last times: the same update sets them with if_not_exists (a new customer needs nothing else) and
returns the old item; only when a stored time is beaten does a second, conditional SET follow. Both are
safe to repeat, and a repeated batch re-checks them, so a crash between the two calls heals on retry.

The applied-batch sets are pruned by rotation: three attributes applied_batches_0..2, one per week
(epoch week modulo 3). An update checks this week's and last week's set, adds to this week's and
removes the one two weeks old, so an id is remembered for 7 to 14 days and a set holds at most two
weeks of batches. Repeats later than that are caught per file by the ingest ledger's content marker.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from botocore.exceptions import ClientError

from cadence.dal import batches, clients
from cadence.ingest.models import ActivityDelta, WriteOutcome

ATTRIBUTES = (
    "order_count",
    "total_spend",
    "first_order_at",
    "last_order_at",
    "event_count",
    "last_visit_at",
    "last_open_at",
    "last_click_at",
)
_SLOTS = 3
_WEEK_SECONDS = 7 * 86_400


def batch_slots(now: float) -> tuple[str, str, str]:
    """(this week's, last week's, the expiring) applied-batch attribute at epoch time `now`."""
    week = int(now) // _WEEK_SECONDS
    return tuple(f"applied_batches_{(week - age) % _SLOTS}" for age in (0, 1, 2))  # type: ignore[return-value]


def apply_deltas(
    table_name: str,
    deltas: Sequence[ActivityDelta],
    *,
    batch_id: str,
    workers: int = 8,
    clock: Callable[[], float] = time.time,
) -> WriteOutcome:
    """Add each customer's delta once per batch id; returns rows applied and rows of batches already applied.

    Raises:
        TransientError: DynamoDB throttled or timed out after the client's retries.
        PermanentError: DynamoDB refused an update.
    """
    if not deltas:
        return WriteOutcome()
    slots = batch_slots(clock())
    client = clients.client("dynamodb")

    def apply(delta: ActivityDelta) -> tuple[int, int]:
        return _apply_one(client, table_name, delta, batch_id=batch_id, slots=slots)

    if workers <= 1 or len(deltas) == 1:
        results = [apply(delta) for delta in deltas]
    else:
        # The low-level client is thread-safe; a small pool overlaps the round trips.
        with ThreadPoolExecutor(max_workers=min(workers, len(deltas))) as pool:
            results = list(pool.map(apply, deltas))
    return WriteOutcome(applied=sum(r[0] for r in results), skipped=sum(r[1] for r in results))


def _apply_one(
    client: Any, table_name: str, delta: ActivityDelta, *, batch_id: str, slots: tuple[str, str, str]
) -> tuple[int, int]:
    key = {"customer_id": {"S": delta.customer_id}}
    names = {"#cur": slots[0], "#prev": slots[1], "#old": slots[2]}
    values: dict[str, Any] = {":batch": {"SS": [batch_id]}, ":id": {"S": batch_id}}
    adds = ["#cur :batch"]
    for index, (name, amount) in enumerate(delta.added.items()):
        names[f"#a{index}"] = name
        values[f":a{index}"] = {"N": str(amount)}
        adds.append(f"#a{index} :a{index}")
    sets = []
    for index, (name, moment) in enumerate({**delta.earliest, **delta.latest}.items()):
        names[f"#t{index}"] = name
        values[f":t{index}"] = {"S": moment}
        sets.append(f"#t{index} = if_not_exists(#t{index}, :t{index})")
    expression = "ADD " + ", ".join(adds) + (" SET " + ", ".join(sets) if sets else "") + " REMOVE #old"
    try:
        response = client.update_item(
            TableName=table_name,
            Key=key,
            UpdateExpression=expression,
            ConditionExpression="NOT contains(#cur, :id) AND NOT contains(#prev, :id)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if clients.error_code(exc) != "ConditionalCheckFailedException":
            raise clients.translate(exc, "activity.apply") from exc
        # Already applied: a crash may have come between the ADD and the extremes, so check those again.
        stored = cast("Mapping[str, Any]", exc.response.get("Item", {}))
        _keep_extremes(client, table_name, delta, batches.deserialize(stored))
        return 0, delta.records
    _keep_extremes(client, table_name, delta, batches.deserialize(response.get("Attributes", {})))
    return delta.records, 0


def _beaten(delta: ActivityDelta, stored: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(attribute, value, operator the stored value must satisfy) for every stored time this batch beats."""
    beaten = []
    for name, moment in delta.earliest.items():
        if name in stored and str(stored[name]) > moment:
            beaten.append((name, moment, ">"))
    for name, moment in delta.latest.items():
        if name in stored and str(stored[name]) < moment:
            beaten.append((name, moment, "<"))
    return beaten


def _keep_extremes(client: Any, table_name: str, delta: ActivityDelta, stored: Mapping[str, Any]) -> None:
    """SET the times this batch beats, on condition they are still beaten (a concurrent batch may win)."""
    beaten = _beaten(delta, stored)
    if not beaten:
        return
    attempts = [beaten] if len(beaten) == 1 else [beaten, *([one] for one in beaten)]
    for group in attempts:
        names = {f"#t{i}": name for i, (name, _, _) in enumerate(group)}
        values = {f":t{i}": {"S": moment} for i, (_, moment, _) in enumerate(group)}
        try:
            client.update_item(
                TableName=table_name,
                Key={"customer_id": {"S": delta.customer_id}},
                UpdateExpression="SET " + ", ".join(f"#t{i} = :t{i}" for i in range(len(group))),
                ConditionExpression=" AND ".join(f"#t{i} {op} :t{i}" for i, (_, _, op) in enumerate(group)),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if clients.error_code(exc) != "ConditionalCheckFailedException":
                raise clients.translate(exc, "activity.keep_extremes") from exc
            continue  # a concurrent batch moved one of them: fall back to one conditional SET each
        if len(group) == len(beaten):
            return
