"""The activity table: one item per customer with the order and event aggregates ingest keeps.

    order_count, total_spend, first_order_at, last_order_at, event_count,
    last_visit_at, last_open_at, last_click_at

An orders or events file is summed per customer first (cadence.ingest.merge.ActivityTotals), then applied by
read-merge-write: the stored items are read (BatchGetItem, 100 keys a call, strongly consistent), each file's
delta merged in (cadence.ingest.activity: counts added, times as min/max, the file's batch id, its content
hash, noted in the item's applied-batch sets) and the changed items written back whole (BatchWriteItem, 25 a
call). About 5 calls per 100 customers, one write unit and one read unit each, where a conditional UpdateItem
per customer (and a second one whenever a stored first/last time was beaten) took one call per customer.

Exactly once: the counts and the batch id land in the same item write, so a crash between two writes leaves
each item either with both or with neither; a retried part, a redelivered event or the same bytes uploaded
under another key reads the ids and adds nothing twice (repeats after the sets' 7 to 14 days are caught per
file by the ingest ledger's content marker).

No lost updates: BatchWriteItem takes no condition, so every writer of this table holds the ingest ledger's
lease LEASE (cadence.dal.ingest_ledger.held_lease) from its read to its last write: ingest for each slice of a
file's totals, erasure for its delete. The lease lasts LEASE_SECONDS, the longest either function may run, so
it cannot run out under a live holder.
"""

import itertools
import time
from collections.abc import Callable, Sequence

from cadence.dal import batches
from cadence.ingest import activity
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
LEASE = "activity"
# The Timeout of the ingest and erasure functions (template.yaml): no invocation outlives its lease.
LEASE_SECONDS = 900
batch_slots = activity.batch_slots


def apply_deltas(
    table_name: str,
    deltas: Sequence[ActivityDelta],
    *,
    batch_id: str,
    workers: int = 8,
    clock: Callable[[], float] = time.time,
) -> WriteOutcome:
    """Add each customer's delta (one per customer) once per batch id; returns rows applied and rows of batches
    already applied. The caller holds the lease LEASE.

    Raises:
        TransientError: DynamoDB throttled, or kept keys or items unprocessed after every retry.
        PermanentError: DynamoDB refused a request.
    """
    slots = activity.batch_slots(clock())
    applied = skipped = 0
    # Reads of one block go out together, then its writes: `workers` BatchGetItem calls at a time.
    for block in itertools.batched(deltas, batches.GET_LIMIT * max(workers, 1), strict=False):
        # Strongly consistent: the previous lease holder's writes must be read, or this write would undo them.
        customer_ids = [delta.customer_id for delta in block]
        stored = batches.items_by_key(table_name, "customer_id", customer_ids, action="activity.read", workers=workers)
        changed = []
        for delta in block:
            merged = activity.merge_delta(stored.get(delta.customer_id), delta, batch_id=batch_id, slots=slots)
            if merged.added:
                applied += delta.records
            else:
                skipped += delta.records
            if merged.item is not None:
                changed.append(merged.item)
        batches.put_items(table_name, changed, action="activity.apply", workers=workers)
    return WriteOutcome(applied=applied, skipped=skipped)
