"""Accepted rows -> the writes they imply: merged customers, per-customer order and event aggregates.

Duplicate rule for customers: rows of one customer_id are ordered by updated_at, then by line; for each
column the latest non-empty value wins. So a later row that leaves a column empty keeps the earlier value,
and across files a profile only takes values from a row at least as new as the one it holds.
Orders are unique by order_id (the last row of an id in a file wins). Events are unique by
(customer_id, event_type, event_time, attributes). Repeats across files are ignored by the ingest ledger.
"""

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from cadence.ingest.cleaning import stable_hash
from cadence.ingest.models import AggregateDelta, CountedRecord, CustomerUpsert
from cadence.ingest.schemas import CUSTOMERS
from cadence.ingest.validation import LINE

ENGAGEMENT = {"visit": "last_visit_at", "open": "last_open_at", "click": "last_click_at"}


@dataclass(frozen=True, slots=True)
class Merged[T]:
    items: list[T]
    duplicates_merged: int


def merge_customers(accepted: pd.DataFrame, *, default_updated_at: str) -> Merged[CustomerUpsert]:
    """One upsert per customer_id by the latest-non-empty-value-per-column rule above."""
    if accepted.empty:
        return Merged([], 0)
    frame = accepted.copy()
    frame["updated_at"] = frame["updated_at"].where(frame["updated_at"].notna(), default_updated_at)
    frame = frame.sort_values(["updated_at", LINE], kind="stable")
    rows = len(frame)
    if frame["customer_id"].duplicated().any():
        frame = frame.groupby("customer_id", sort=False).last().reset_index()
    fields = [name for name in CUSTOMERS.names if name not in {"customer_id", "updated_at"}]
    # Plain lists, not iterrows: building a Series per row costs more than the rest of ingest together.
    columns = {name: frame[name].tolist() for name in ("customer_id", "updated_at", *fields)}
    upserts = [
        CustomerUpsert(
            customer_id=str(customer_id),
            updated_at=str(columns["updated_at"][index]),
            fields={
                name: value for name in fields if (value := columns[name][index]) is not None and not pd.isna(value)
            },
        )
        for index, customer_id in enumerate(columns["customer_id"])
    ]
    return Merged(upserts, rows - len(upserts))


def order_deltas(accepted: pd.DataFrame) -> Merged[AggregateDelta]:
    """Per customer: the orders to claim, their amounts, and the earliest and latest order time."""
    if accepted.empty:
        return Merged([], 0)
    orders = accepted.sort_values(LINE, kind="stable").drop_duplicates("order_id", keep="last")
    deltas = []
    for customer_id, group in orders.groupby("customer_id", sort=False):
        records = tuple(
            CountedRecord(record_key=f"order#{order_id}", amount=Decimal(repr(amount)))
            for order_id, amount in zip(group["order_id"], group["amount"], strict=True)
        )
        deltas.append(
            AggregateDelta(
                customer_id=str(customer_id),
                records=records,
                counter="order_count",
                total="total_spend",
                earliest={"first_order_at": str(group["order_date"].min())},
                latest={"last_order_at": str(group["order_date"].max())},
            )
        )
    return Merged(deltas, len(accepted) - len(orders))


def event_deltas(accepted: pd.DataFrame) -> Merged[AggregateDelta]:
    """Per customer: the events to claim and the latest visit, open and click."""
    if accepted.empty:
        return Merged([], 0)
    events = accepted.copy()
    events["record_key"] = [
        "event#" + stable_hash(*parts)
        for parts in zip(
            events["customer_id"], events["event_type"], events["event_time"], events["attributes"], strict=True
        )
    ]
    events = events.drop_duplicates("record_key", keep="last")
    deltas = []
    for customer_id, group in events.groupby("customer_id", sort=False):
        latest = {
            attribute: str(group.loc[group["event_type"] == event_type, "event_time"].max())
            for event_type, attribute in ENGAGEMENT.items()
            if (group["event_type"] == event_type).any()
        }
        deltas.append(
            AggregateDelta(
                customer_id=str(customer_id),
                records=tuple(CountedRecord(record_key=key) for key in group["record_key"]),
                counter="event_count",
                latest=latest,
            )
        )
    return Merged(deltas, len(accepted) - len(events))
