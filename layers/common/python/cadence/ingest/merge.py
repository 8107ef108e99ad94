"""Accepted rows -> the writes they imply: merged customers, per-customer order and event aggregates.

Duplicate rule for customers: rows of one customer_id are ordered by updated_at, then by line; for each
column the latest non-empty value wins. So a later row that leaves a column empty keeps the earlier value,
and across files a profile only takes values from a row at least as new as the one it holds. Consent
fails closed: a row whose updated_at the file did not carry (the upload time stands in) may withdraw
consent but never turns a stored no into yes, so re-uploading an old export cannot undo a withdrawal.
Orders are unique by order_id and events by (customer_id, event_type, event_time, attributes) within a
file (the last row wins inside a chunk; a repeat in a later chunk is dropped). Orders and events are then
summed per customer, vectorised: one ActivityDelta per customer and chunk. A re-delivered or re-uploaded file
is recognised by its content (see cadence.dal.activity_table), not by order_id.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from cadence.event_types import ENGAGEMENT_ATTRIBUTES
from cadence.ingest.models import ActivityDelta, CustomerUpsert
from cadence.ingest.schemas import CUSTOMERS, Kind
from cadence.ingest.validation import LINE
from cadence.orders import OrderRecord
from cadence.suppression import Reason, Suppression

# Amounts are cleaned to 4 decimals: summed as integers of 1/10 000, totals are exact.
_AMOUNT_SCALE = 10_000
_CARRIED = "_updated_at_carried"
CONSENT_COLUMNS = tuple(column.name for column in CUSTOMERS.columns if column.kind is Kind.CONSENT)
# The columns of a channel: an address and its consent, which go together by the channel's own time.
CHANNELS = {"email": ("email", "consent_email"), "sms": ("phone", "consent_sms")}
_AT = "_at_"


@dataclass(frozen=True, slots=True)
class Merged[T]:
    items: list[T]
    duplicates_merged: int


def _present(value: Any) -> bool:
    return value is not None and not (pd.api.types.is_scalar(value) and pd.isna(value))


def merge_customers(
    accepted: pd.DataFrame, *, default_updated_at: str, extra_prefix: str | None = None
) -> Merged[CustomerUpsert]:
    """One upsert per customer_id by the latest-non-empty-value-per-column rule above.

    Columns starting with `extra_prefix` (custom attributes, e.g. Pinpoint's `attr_`) merge the same way.
    """
    if accepted.empty:
        return Merged([], 0)
    frame = accepted.copy()
    frame[_CARRIED] = frame["updated_at"].notna()
    frame["updated_at"] = frame["updated_at"].where(frame[_CARRIED], default_updated_at)
    for channel, names in CHANNELS.items():
        # When the latest row that said anything about the channel was written (see resolve_customer).
        touched = pd.concat([frame[name].notna() for name in names], axis=1).any(axis=1)
        frame[_AT + channel] = frame["updated_at"].where(touched, None)
    frame = frame.sort_values(["updated_at", LINE], kind="stable")
    rows = len(frame)
    if frame["customer_id"].duplicated().any():
        frame = frame.groupby("customer_id", sort=False).last().reset_index()
    fields = [name for name in CUSTOMERS.names if name not in {"customer_id", "updated_at"}]
    if extra_prefix:
        fields += [name for name in frame.columns if str(name).startswith(extra_prefix)]
    stamps = [_AT + channel for channel in CHANNELS]
    # Plain lists, not iterrows: building a Series per row costs more than the rest of ingest together.
    columns = {name: frame[name].tolist() for name in ("customer_id", "updated_at", _CARRIED, *fields, *stamps)}
    upserts = [
        CustomerUpsert(
            customer_id=str(customer_id),
            updated_at=str(columns["updated_at"][index]),
            fields={name: value for name in fields if _present(value := columns[name][index])},
            updated_at_carried=bool(columns[_CARRIED][index]),
            channel_updated_at={
                channel: str(value) for channel in CHANNELS if _present(value := columns[_AT + channel][index])
            },
        )
        for index, customer_id in enumerate(columns["customer_id"])
    ]
    return Merged(upserts, rows - len(upserts))


def resolve_customer(upsert: CustomerUpsert, stored: Mapping[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """The whole item to write for a merged row against the stored one, and whether the row was new enough.

    A row at least as new as the stored updated_at sets its non-empty columns; an older row only fills
    attributes the profile lacks. Every other stored attribute (score, decile, ...) is carried over.
    Address and consent of a channel (email + consent_email, phone + consent_sms) go by the channel's own
    time (`email_updated_at`, `sms_updated_at`; the profile's updated_at where none is stored yet): a row
    newer for the channel sets them even when another channel made the profile newer, and a row older for
    the channel never overwrites them. A stored no-consent stays no unless the row carried its own updated_at.
    """
    incoming = {"customer_id": upsert.customer_id, **upsert.fields, "updated_at": upsert.updated_at}
    if stored is None:
        return _stamp_channels(incoming, dict(upsert.channel_updated_at)), True
    held = stored.get("updated_at")
    newer = held is None or str(held) <= upsert.updated_at
    item = {**stored, **incoming} if newer else {**incoming, **stored}
    times: dict[str, str] = {}
    for channel, names in CHANNELS.items():
        held_at = stored.get(f"{channel}_updated_at", held)
        at = upsert.channel_updated_at.get(channel)
        if at is not None and (held_at is None or str(held_at) <= at):
            item.update({name: upsert.fields[name] for name in names if name in upsert.fields})
            times[channel] = at
        else:
            # Older for this channel (or silent about it): what is stored stays; a lacking value is filled.
            item.update({name: stored[name] for name in names if name in stored})
            if held_at is not None:
                times[channel] = str(held_at)
    if not upsert.updated_at_carried:
        for name in CONSENT_COLUMNS:
            if name in stored and stored[name] is not True:
                item[name] = stored[name]
    return _stamp_channels(item, times), newer


def _stamp_channels(item: dict[str, Any], times: Mapping[str, str]) -> dict[str, Any]:
    """Keep `<channel>_updated_at` only where it differs from the profile's updated_at (absent means equal)."""
    for channel, names in CHANNELS.items():
        at = times.get(channel)
        if at is not None and at != item["updated_at"] and any(name in item for name in names):
            item[f"{channel}_updated_at"] = at
        else:
            item.pop(f"{channel}_updated_at", None)
    return item


@dataclass(slots=True)
class SeenKeys:
    """64-bit hashes of the order ids / event keys earlier chunks of this invocation counted."""

    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))

    def to_bytes(self) -> bytes:
        """The hashes as little-endian uint64s, for the next part of a split file."""
        return self.hashes.astype("<u8").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SeenKeys":
        return cls(np.frombuffer(data, dtype="<u8").astype(np.uint64))

    def keep_new(self, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """The rows whose key no earlier chunk had, the last row of a key within this chunk; remembers them."""
        keys = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
        last = ~pd.Series(keys).duplicated(keep="last").to_numpy()
        fresh = last & ~np.isin(keys, self.hashes)
        self.hashes = np.concatenate([self.hashes, keys[fresh]])
        return frame[fresh]


def _delta_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame.reset_index().to_dict("records")
    return rows


def new_orders(accepted: pd.DataFrame, seen: SeenKeys | None = None) -> pd.DataFrame:
    """The chunk's orders no earlier chunk counted, the last row of an order id within the chunk."""
    if accepted.empty:
        return accepted
    return (seen or SeenKeys()).keep_new(accepted.sort_values(LINE, kind="stable"), ["order_id"])


def order_records(orders: pd.DataFrame) -> list[OrderRecord]:
    """Each order as the order history keeps it (what attribution reads)."""
    columns: dict[str, list[Any]] = {
        name: orders[name].tolist() if name in orders else [None] * len(orders)
        for name in ("order_id", "customer_id", "order_date", "amount", "currency", "coupon_code")
    }
    return [
        OrderRecord(
            order_id=str(order_id),
            customer_id=str(columns["customer_id"][index]),
            order_date=str(columns["order_date"][index]),
            amount=float(columns["amount"][index]),
            currency=str(currency) if _present(currency := columns["currency"][index]) else "",
            coupon_code=str(code) if _present(code := columns["coupon_code"][index]) else "",
        )
        for index, order_id in enumerate(columns["order_id"])
    ]


def order_deltas(accepted: pd.DataFrame, seen: SeenKeys | None = None) -> Merged[ActivityDelta]:
    """Per customer: how many new orders, their total, and the earliest and latest order time."""
    return summarise_orders(new_orders(accepted, seen), rows=len(accepted))


def summarise_orders(orders: pd.DataFrame, *, rows: int) -> Merged[ActivityDelta]:
    """`orders` (new_orders of a chunk of `rows` rows) summed per customer."""
    if orders.empty:
        return Merged([], rows)
    cents = (orders["amount"].astype("float64") * _AMOUNT_SCALE).round().astype("int64")
    grouped = orders.assign(_units=cents).groupby("customer_id", sort=False)
    summary = pd.DataFrame(
        {
            "count": grouped.size(),
            "units": grouped["_units"].sum(),
            "first": grouped["order_date"].min(),
            "last": grouped["order_date"].max(),
        }
    )
    deltas = [
        ActivityDelta(
            customer_id=str(row["customer_id"]),
            added={
                "order_count": int(row["count"]),
                "total_spend": Decimal(int(row["units"])) / _AMOUNT_SCALE,
            },
            records=int(row["count"]),
            earliest={"first_order_at": str(row["first"])},
            latest={"last_order_at": str(row["last"])},
        )
        for row in _delta_rows(summary)
    ]
    return Merged(deltas, rows - len(orders))


def event_deltas(accepted: pd.DataFrame, seen: SeenKeys | None = None) -> Merged[ActivityDelta]:
    """Per customer: how many new events and the latest visit, open and click."""
    if accepted.empty:
        return Merged([], 0)
    key = ["customer_id", "event_type", "event_time", "attributes"]
    events = (seen or SeenKeys()).keep_new(accepted.sort_values(LINE, kind="stable"), key)
    if events.empty:
        return Merged([], len(accepted))
    counts = events.groupby("customer_id", sort=False).size()
    engaged = events[events["event_type"].isin(list(ENGAGEMENT_ATTRIBUTES))]
    latest = (
        engaged.groupby(["customer_id", "event_type"], sort=False)["event_time"].max().unstack("event_type")
        if not engaged.empty
        else pd.DataFrame(index=pd.Index([], name="customer_id"))
    )
    latest = latest.reindex(columns=list(ENGAGEMENT_ATTRIBUTES)).rename(columns=ENGAGEMENT_ATTRIBUTES)
    latest_by_customer = {
        str(customer_id): {name: str(value) for name, value in row.items() if isinstance(value, str)}
        for customer_id, row in latest.to_dict("index").items()
    }
    deltas = [
        ActivityDelta(
            customer_id=str(customer_id),
            added={"event_count": int(count)},
            records=int(count),
            latest=latest_by_customer.get(str(customer_id), {}),
        )
        for customer_id, count in counts.items()
    ]
    return Merged(deltas, len(accepted) - len(events))


def withdrawals(
    stored: Mapping[str, Mapping[str, Any]], written: Iterable[Mapping[str, Any]], *, source: str, at: datetime
) -> list[Suppression]:
    """A suppression (consent_withdrawn) per channel whose consent a written item turns from yes to no.

    The address is the one the stored profile held, which sends planned before this file went to.
    """
    found = []
    for item in written:
        before = stored.get(str(item["customer_id"]))
        if before is None:
            continue
        for channel, (address_name, consent_name) in CHANNELS.items():
            address = before.get(address_name)
            if before.get(consent_name) is True and item.get(consent_name) is not True and address:
                found.append(
                    Suppression.of_address(
                        channel,  # type: ignore[arg-type]
                        str(address),
                        Reason.CONSENT_WITHDRAWN,
                        source,
                        at=at,
                        customer_id=str(item["customer_id"]),
                    )
                )
    return found
