"""How one file's per-customer delta lands on the customer's stored activity item (see cadence.dal.activity_table).

Pure: the table module reads the stored items, this module merges, the table module writes the results back.
Counts and amounts are added, first/last times kept as min/max, and the file's batch id goes into the item's
applied-batch set in the same item, so the one write that adds the counts also records that they were added:
a batch whose id the item holds adds nothing again, however often it is delivered.

The applied-batch sets rotate weekly: three attributes applied_batches_0..2 (epoch week modulo 3). A batch is
known when this week's or last week's set holds it; applying one adds it to this week's set and drops the set
two weeks old, so an id is remembered for 7 to 14 days and a set holds at most two weeks of batches.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cadence.ingest.models import ActivityDelta

_SLOTS = 3
_WEEK_SECONDS = 7 * 86_400


def batch_slots(now: float) -> tuple[str, str, str]:
    """(this week's, last week's, the expiring) applied-batch attribute at epoch time `now`."""
    week = int(now) // _WEEK_SECONDS
    current, previous, expiring = (f"applied_batches_{(week - age) % _SLOTS}" for age in (0, 1, 2))
    return current, previous, expiring


@dataclass(frozen=True, slots=True)
class MergedActivity:
    """The item to write (None when the stored one already says everything) and whether the counts were added."""

    item: dict[str, Any] | None
    added: bool


def merge_delta(
    stored: Mapping[str, Any] | None, delta: ActivityDelta, *, batch_id: str, slots: tuple[str, str, str]
) -> MergedActivity:
    """The stored item (None: the customer has none yet) with the delta applied once per batch id."""
    current, previous, expiring = slots
    item: dict[str, Any] = dict(stored) if stored else {"customer_id": delta.customer_id}
    known = batch_id in item.get(current, ()) or batch_id in item.get(previous, ())
    if not known:
        for name, amount in delta.added.items():
            item[name] = item.get(name, 0) + amount
        item[current] = {*item.get(current, ()), batch_id}
        item.pop(expiring, None)
    # Times go by min/max even for a known batch: an item written by the per-customer UpdateItem design could hold
    # a batch's counts without its times (a crash between its two updates), and min/max is safe to repeat.
    for name, moment in delta.earliest.items():
        if name not in item or str(item[name]) > moment:
            item[name] = moment
    for name, moment in delta.latest.items():
        if name not in item or str(item[name]) < moment:
            item[name] = moment
    return MergedActivity(item=None if stored is not None and item == stored else item, added=not known)
