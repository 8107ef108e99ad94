"""Accepted rows -> the writes they imply: merged customers, per-customer order and event aggregates.

Duplicate rule for customers: rows of one customer_id are ordered by updated_at, then by line; for each
column the latest non-empty value wins. So a later row that leaves a column empty keeps the earlier value,
and across files a profile only takes values from a row at least as new as the one it holds. Consent
fails closed: a row whose updated_at the file did not carry (the upload time stands in) may withdraw
consent but never turns a stored no into yes, so re-uploading an old export cannot undo a withdrawal.
Orders are unique by order_id and events by (customer_id, event_type, event_time, attributes) within a
file (the last row wins inside a chunk; a repeat in a later chunk is dropped). Orders and events are then
summed per customer, vectorised, and the chunks' sums added up over the file (ActivityTotals): one
ActivityDelta per customer and file. A re-delivered or re-uploaded file
is recognised by its content (see cadence.dal.activity_table), not by order_id.
"""

import gzip
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from cadence import collector
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


@dataclass(slots=True)
class MergedCustomers:
    """A chunk's customers merged by the rule above, still a frame: one row per customer_id, with the `fields`
    columns, updated_at, whether the file carried it, and each channel's updated_at (None: silent about it)."""

    frame: pd.DataFrame
    fields: list[str]
    customer_ids: list[str]
    duplicates_merged: int
    # By column, which rows hold a value (`frame[name].notna()`), where known without a look at every row.
    present: Mapping[str, np.ndarray] = field(default_factory=dict)

    def upserts(self, rows: np.ndarray | None = None) -> list[CustomerUpsert]:
        """An upsert per customer (of `rows`, positions in the frame, when given), in the frame's order."""
        frame = self.frame if rows is None else self.frame.iloc[rows]
        if frame.empty:
            return []
        # Plain lists, not iterrows: building a Series per row costs more than the rest of ingest together.
        values = _present_by_row({name: frame[name] for name in self.fields}, len(frame))
        stamps = _present_by_row({channel: frame[_AT + channel] for channel in CHANNELS}, len(frame), as_text=True)
        # Positional and by map: keyword arguments per row cost as much again as building the upsert.
        return list(
            map(
                CustomerUpsert,
                map(str, frame["customer_id"].tolist()),
                map(str, frame["updated_at"].tolist()),
                values,
                frame[_CARRIED].tolist(),
                stamps,
            )
        )


@collector.paused()
def merge_customer_frame(
    accepted: pd.DataFrame,
    *,
    default_updated_at: str,
    extra_prefix: str | None = None,
    present: Mapping[str, np.ndarray] | None = None,
) -> MergedCustomers:
    """One row per customer_id by the latest-non-empty-value-per-column rule above.

    Columns starting with `extra_prefix` (custom attributes, e.g. Pinpoint's `attr_`) merge the same way.
    `present`: by column, which rows of `accepted` hold a value, where known (validation's `present`).
    """
    if accepted.empty:
        return MergedCustomers(pd.DataFrame(), [], [], 0)
    frame = accepted.copy(deep=False)  # copy-on-write: the columns set below are the new frame's alone
    known = dict(present or {})

    def holds(name: str) -> np.ndarray:
        return known[name] if name in known else frame[name].notna().to_numpy()

    frame[_CARRIED] = holds("updated_at")
    frame["updated_at"] = frame["updated_at"].where(frame[_CARRIED], default_updated_at)
    known["updated_at"] = np.ones(len(frame), dtype=bool)
    for channel, names in CHANNELS.items():
        # When the latest row that said anything about the channel was written (see resolve_customer).
        touched = np.logical_or.reduce([holds(name) for name in names])
        frame[_AT + channel] = frame["updated_at"].where(touched, None)
        known[_AT + channel] = touched
    rows = len(frame)
    if frame["customer_id"].duplicated().any():
        frame = frame.sort_values(["updated_at", LINE], kind="stable")
        frame = frame.groupby("customer_id", sort=False).last().reset_index()
        known = {}  # rows merged: what each holds is looked up again
    fields = [name for name in CUSTOMERS.names if name not in {"customer_id", "updated_at"}]
    if extra_prefix:
        fields += [name for name in frame.columns if str(name).startswith(extra_prefix)]
    customer_ids = list(map(str, frame["customer_id"].tolist()))
    return MergedCustomers(frame, fields, customer_ids, rows - len(frame), known)


def merge_customers(
    accepted: pd.DataFrame, *, default_updated_at: str, extra_prefix: str | None = None
) -> Merged[CustomerUpsert]:
    """One upsert per customer_id by the rule above (merge_customer_frame, a row each)."""
    merged = merge_customer_frame(accepted, default_updated_at=default_updated_at, extra_prefix=extra_prefix)
    with collector.paused():
        return Merged(merged.upserts(), merged.duplicates_merged)


def _present_by_row(columns: Mapping[str, pd.Series], rows: int, *, as_text: bool = False) -> list[dict[str, Any]]:
    """Each row's present values (not None, not NaN: groupby().last() may leave NaN) by column name.

    The columns present in every row make each row's dict in one call; the others are added where present.
    """
    everywhere: dict[str, list[Any]] = {}
    somewhere: list[tuple[str, list[Any], list[bool]]] = []
    for name, column in columns.items():
        present = column.notna().to_numpy()
        if not present.any():
            continue
        cells: list[Any] = column.astype(object).tolist()
        if as_text:
            cells = [str(cell) for cell in cells]
        if present.all():
            everywhere[name] = cells
        else:
            somewhere.append((name, cells, present.tolist()))
    dicts = list(map(_dict_of(tuple(everywhere)), *everywhere.values())) if everywhere else [{} for _ in range(rows)]
    for name, cells, present in somewhere:
        for row, cell, keep in zip(dicts, cells, present, strict=True):
            if keep:
                row[name] = cell
    return dicts


@cache
def _dict_of(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """`lambda v0, v1, ...: {names[0]: v0, names[1]: v1, ...}`: a dict display, 1.4x as fast as a key at a time.

    Safe to compile: each name is written as its repr(), a string literal, and the values are parameters.
    """
    parameters = ", ".join(f"v{i}" for i in range(len(names)))
    display = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    made: Callable[..., dict[str, Any]] = eval(f"lambda {parameters}: {{{display}}}")  # noqa: S307
    return made


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
        # A new profile (every row of a first load): it holds no stamps to drop, so only the ones to add.
        for channel, names, stamp in _CHANNEL_STAMPS:
            at = upsert.channel_updated_at.get(channel)
            if at is not None and at != upsert.updated_at and not incoming.keys().isdisjoint(names):
                incoming[stamp] = at
        return incoming, True
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
    for channel, names, stamp in _CHANNEL_STAMPS:
        at = times.get(channel)
        if at is not None and at != item["updated_at"] and not item.keys().isdisjoint(names):
            item[stamp] = at
        else:
            item.pop(stamp, None)
    return item


_CHANNEL_STAMPS = tuple((channel, names, f"{channel}_updated_at") for channel, names in CHANNELS.items())


@dataclass(slots=True)
class CustomerWrites:
    """What a chunk's merged customers write: the profiles they create, column by column (the attributes in
    the order resolve_customer gives them; None: the profile lacks it), and the stored profiles they change."""

    created: dict[str, list[Any]]
    updated: list[dict[str, Any]]
    applied: int  # rows at least as new as the stored profile (every created one)
    skipped: int  # rows older than it: they only filled what it lacked

    @property
    def created_count(self) -> int:
        return len(self.created.get("customer_id", ()))


@collector.paused()
def customer_writes(
    merged: MergedCustomers, stored: Mapping[str, Mapping[str, Any]], *, erased: Callable[[str], bool] | None = None
) -> CustomerWrites:
    """`resolve_customer` of every merged customer against its stored profile, keeping the items that change.

    Customers without a stored profile (every one of a first load) are resolved a column at a time, never as a
    dict per row: each attribute is the row's value, the channel stamps as resolve_customer adds them.
    Customers `erased` says were erased come back without consent (every consent attribute they hold is False).
    """
    held_rows = [row for row, customer_id in enumerate(merged.customer_ids) if customer_id in stored]
    updated: list[dict[str, Any]] = []
    applied = skipped = 0
    for upsert in merged.upserts(np.array(held_rows, dtype=np.int64)) if held_rows else []:
        held = stored[upsert.customer_id]
        item, newer = resolve_customer(upsert, held)
        if erased is not None and erased(upsert.customer_id):
            item |= {name: False for name in CONSENT_COLUMNS if name in item}
        applied, skipped = applied + newer, skipped + (not newer)
        if item != held:
            updated.append(item)
    new_rows = None
    if held_rows:
        new_rows = np.ones(len(merged.customer_ids), dtype=bool)
        new_rows[held_rows] = False
    created = _created_columns(merged, new_rows, erased)
    return CustomerWrites(created, updated, applied + len(created.get("customer_id", ())), skipped)


def _created_columns(
    merged: MergedCustomers, rows: np.ndarray | None, erased: Callable[[str], bool] | None
) -> dict[str, list[Any]]:
    """The new profiles' attributes by column (`rows`: a mask of the frame's rows; None: all of them)."""
    frame = merged.frame if rows is None else merged.frame[rows]
    if frame.empty:
        return {}

    def cells(name: str) -> tuple[list[Any], np.ndarray]:
        held = merged.present.get(name)
        return _cells(frame[name], None if held is None else held if rows is None else held[rows])

    customer_ids = merged.customer_ids if rows is None else [merged.customer_ids[row] for row in np.flatnonzero(rows)]
    columns: dict[str, list[Any]] = {"customer_id": customer_ids}
    present: dict[str, np.ndarray] = {}
    for name in merged.fields:
        values, held = cells(name)
        if held.any():
            columns[name], present[name] = values, held
    updated_at = list(map(str, frame["updated_at"].tolist()))
    columns["updated_at"] = updated_at
    # Unmerged rows hold each channel's time only as their own updated_at (merge_customer_frame): no stamp differs.
    for channel, names, stamp in _CHANNEL_STAMPS if merged.duplicates_merged else ():
        times, timed = cells(_AT + channel)
        holds_channel = np.zeros(len(frame), dtype=bool)
        for name in names:
            holds_channel |= present.get(name, False)
        kept = timed & holds_channel
        if kept.any():
            texts = [str(at) if keep else None for at, keep in zip(times, kept.tolist(), strict=True)]
            stamps = [at if at != updated else None for at, updated in zip(texts, updated_at, strict=True)]
            if any(at is not None for at in stamps):
                columns[stamp] = stamps
    if erased is not None:
        gone = [erased(customer_id) for customer_id in customer_ids]
        if any(gone):
            for name in CONSENT_COLUMNS:
                if name in columns:
                    columns[name] = [
                        False if was and value is not None else value
                        for value, was in zip(columns[name], gone, strict=True)
                    ]
    return columns


def _cells(column: pd.Series, present: np.ndarray | None = None) -> tuple[list[Any], np.ndarray]:
    """The column's values as Python objects with None where absent (None or NaN), and where they are present
    (`present`: that, when known)."""
    present = column.notna().to_numpy() if present is None else present
    cells = column.to_numpy(dtype=object)
    if not present.all():
        cells = cells.copy()
        cells[~present] = None
    return cells.tolist(), present


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
    return Merged(ActivityTotals([order_summary(orders)]).deltas(), rows - len(orders))


def order_summary(orders: pd.DataFrame) -> pd.DataFrame:
    """Per customer (the index): the orders' count, total (in 1/10 000) and first and last order time."""
    if orders.empty:
        return _empty_summary()
    units = (orders["amount"].astype("float64") * _AMOUNT_SCALE).round().astype("int64")
    grouped = orders.assign(_units=units).groupby("customer_id", sort=False)
    return pd.DataFrame(
        {
            _RECORDS: grouped.size(),
            "order_count": grouped.size(),
            "total_spend": grouped["_units"].sum(),
            "first_order_at": grouped["order_date"].min(),
            "last_order_at": grouped["order_date"].max(),
        }
    )


def new_events(accepted: pd.DataFrame, seen: SeenKeys | None = None) -> pd.DataFrame:
    """The chunk's events no earlier chunk counted (the last row of a key within the chunk)."""
    if accepted.empty:
        return accepted
    key = ["customer_id", "event_type", "event_time", "attributes"]
    return (seen or SeenKeys()).keep_new(accepted.sort_values(LINE, kind="stable"), key)


def event_summary(events: pd.DataFrame) -> pd.DataFrame:
    """Per customer (the index): how many events, and the latest visit, open and click."""
    if events.empty:
        return _empty_summary()
    counts = events.groupby("customer_id", sort=False).size()
    summary = pd.DataFrame({_RECORDS: counts, "event_count": counts})
    engaged = events[events["event_type"].isin(list(ENGAGEMENT_ATTRIBUTES))]
    if not engaged.empty:
        latest = engaged.groupby(["customer_id", "event_type"], sort=False)["event_time"].max().unstack("event_type")
        present = [kind for kind in ENGAGEMENT_ATTRIBUTES if kind in latest.columns]
        summary = summary.join(latest[present].rename(columns=ENGAGEMENT_ATTRIBUTES))
    return summary


def event_deltas(accepted: pd.DataFrame, seen: SeenKeys | None = None) -> Merged[ActivityDelta]:
    """Per customer: how many new events and the latest visit, open and click."""
    events = new_events(accepted, seen)
    return Merged(ActivityTotals([event_summary(events)]).deltas(), len(accepted) - len(events))


# How many rows a customer's sums stand for; the other columns of a summary are attributes of the activity item.
_RECORDS = "_records"
_ADDED = ("order_count", "total_spend", "event_count")
_EARLIEST = ("first_order_at",)


def _empty_summary() -> pd.DataFrame:
    return pd.DataFrame({_RECORDS: pd.Series(dtype="int64")}, index=pd.Index([], name="customer_id", dtype=object))


@dataclass(slots=True)
class ActivityTotals:
    """The per-customer sums of every order or event a file's chunks counted so far (order_summary, event_summary).

    Ingest applies them once per file, not once per chunk: a customer in every chunk of a 20-chunk file
    costs one update instead of 20. Summing is exact (integer counts, amounts in 1/10 000, min/max of
    times), so the same chunks give the same totals however the file was split across invocations.
    """

    summaries: list[pd.DataFrame] = field(default_factory=list)

    def add(self, summary: pd.DataFrame) -> None:
        if not summary.empty:
            self.summaries.append(summary)

    def frame(self) -> pd.DataFrame:
        """One row per customer, in the order they first appeared."""
        if not self.summaries:
            return _empty_summary()
        if len(self.summaries) > 1:
            combined = pd.concat(self.summaries)
            how = {
                name: "sum" if name == _RECORDS or name in _ADDED else "min" if name in _EARLIEST else "max"
                for name in combined.columns
            }
            self.summaries = [combined.groupby(level=0, sort=False).agg(how)]
        return self.summaries[0]

    @property
    def records(self) -> int:
        return int(self.frame()[_RECORDS].sum())

    def deltas(self) -> list[ActivityDelta]:
        frame = self.frame()
        columns = {name: frame[name].tolist() for name in frame.columns}
        customer_ids = [str(cid) for cid in frame.index]
        deltas = []
        for index, customer_id in enumerate(customer_ids):
            values = {name: column[index] for name, column in columns.items() if _present(column[index])}
            deltas.append(
                ActivityDelta(
                    customer_id=customer_id,
                    added={
                        name: Decimal(int(value)) / _AMOUNT_SCALE if name == "total_spend" else int(value)
                        for name, value in values.items()
                        if name in _ADDED
                    },
                    records=int(values[_RECORDS]),
                    earliest={name: str(value) for name, value in values.items() if name in _EARLIEST},
                    latest={
                        name: str(value)
                        for name, value in values.items()
                        if name not in _ADDED and name not in _EARLIEST and name != _RECORDS
                    },
                )
            )
        return deltas

    def to_bytes(self) -> bytes:
        """The totals as gzipped CSV, for the next part of a split file."""
        return gzip.compress(self.frame().to_csv(index_label="customer_id").encode("utf-8"), mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ActivityTotals":
        frame = pd.read_csv(io.BytesIO(gzip.decompress(data)), dtype=str, keep_default_na=False)
        if frame.empty:
            return cls()
        frame = frame.set_index("customer_id")
        for name in frame.columns:
            if name == _RECORDS or name in _ADDED:
                frame[name] = frame[name].astype("int64")
            else:
                frame[name] = frame[name].where(frame[name] != "", None)
        return cls([frame])


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
