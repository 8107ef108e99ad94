"""Feeds in, profile dicts out: history aggregated up to a cutoff into the same shape the profiles table holds.

Training must see a customer exactly as the score function will, so a snapshot is built as profile
dicts (ISO strings, ints, floats, missing keys for missing values) and turned into features by
``cadence.features.build_feature_matrix``, the function the score Lambda calls.

Only history strictly before the cutoff counts: an order at the cutoff itself belongs to the label window.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from cadence.errors import InvalidInputError
from cadence.event_types import ENGAGEMENT_ATTRIBUTES, is_valid_event_type, normalise_event_type
from cadence.features import build_feature_matrix
from model_build.labels import purchase_labels
from model_build.synthetic import CUSTOMER_COLUMNS, EVENT_COLUMNS, ORDER_COLUMNS, SyntheticData

REQUIRED_ORDER_COLUMNS: Final = ("customer_id", "order_date", "amount")
REQUIRED_EVENT_COLUMNS: Final = ("customer_id", "event_type", "event_time")
_PROFILE_CUSTOMER_FIELDS: Final = tuple(name for name in CUSTOMER_COLUMNS if name != "customer_id")


@dataclass(frozen=True)
class Feeds:
    """Cleaned feeds: ids stripped strings, times UTC timestamps, amounts floats; customers/events optional."""

    orders: pd.DataFrame
    customers: pd.DataFrame | None = None
    events: pd.DataFrame | None = None

    def fingerprint(self) -> str:
        """sha256 of the cleaned content, independent of file formatting and of row order."""
        digest = hashlib.sha256()
        for name, frame in (("orders", self.orders), ("customers", self.customers), ("events", self.events)):
            digest.update(name.encode())
            if frame is not None:
                hashed = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
                digest.update(hashed.tobytes())
        return digest.hexdigest()

    def row_counts(self) -> dict[str, int]:
        frames = {"orders": self.orders, "customers": self.customers, "events": self.events}
        return {name: len(frame) for name, frame in frames.items() if frame is not None}


@dataclass(frozen=True)
class Snapshot:
    """Every known customer as of a cutoff: profiles, their features and (when known) their labels."""

    cutoff: datetime
    customer_ids: list[str]
    profiles: list[dict[str, Any]]
    features: np.ndarray
    labels: np.ndarray | None

    @property
    def positives(self) -> int:
        return 0 if self.labels is None else int(self.labels.sum())


def read_feeds(orders: Path, customers: Path | None = None, events: Path | None = None) -> Feeds:
    """Read feed CSVs as strings (ids and phones keep their leading zeros) and clean them.

    Raises:
        InvalidInputError: a file lacks a required column.
    """
    return prepare_feeds(
        _read_csv(orders, ORDER_COLUMNS, REQUIRED_ORDER_COLUMNS),
        _read_csv(customers, CUSTOMER_COLUMNS, ("customer_id",)) if customers else None,
        _read_csv(events, EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS) if events else None,
    )


def feeds_from_synthetic(data: SyntheticData) -> Feeds:
    return prepare_feeds(data.orders, data.customers, data.events)


def prepare_feeds(
    orders: pd.DataFrame, customers: pd.DataFrame | None = None, events: pd.DataFrame | None = None
) -> Feeds:
    """Clean raw string frames: rows without a customer id or a parseable time are dropped, duplicates removed.

    Raises:
        InvalidInputError: a frame lacks a required column.
    """
    _require(orders, REQUIRED_ORDER_COLUMNS, "orders")
    clean_orders = pd.DataFrame(
        {
            "order_id": _strings(orders["order_id"]) if "order_id" in orders else "",
            "customer_id": _strings(orders["customer_id"]),
            "order_date": _times(orders["order_date"]),
            # An order with an unreadable amount still happened: it counts, worth 0.
            "amount": pd.to_numeric(orders["amount"], errors="coerce").fillna(0.0).astype(float),
        }
    )
    clean_orders = clean_orders[(clean_orders["customer_id"] != "") & clean_orders["order_date"].notna()]
    with_id = clean_orders["order_id"] != ""
    # Feeds get re-sent: an order id seen twice is one order, its last row wins (as in ingest).
    clean_orders = pd.concat(
        [clean_orders[with_id].drop_duplicates("order_id", keep="last"), clean_orders[~with_id]]
    ).sort_values(["order_date", "customer_id"], kind="stable")

    clean_customers = None
    if customers is not None:
        _require(customers, ("customer_id",), "customers")
        frame = customers.loc[:, [c for c in CUSTOMER_COLUMNS if c in customers.columns]].copy()
        for column in frame.columns:
            frame[column] = _strings(frame[column])
        frame = frame[frame["customer_id"] != ""]
        if "updated_at" in frame:
            frame = frame.assign(_updated=_times(frame["updated_at"])).sort_values("_updated", kind="stable")
            frame = frame.drop(columns="_updated")
        # As ingest merges profiles: per column, the newest non-empty value wins (groupby.last skips NA).
        merged = frame.replace("", pd.NA).groupby("customer_id", sort=True).last().fillna("")
        clean_customers = merged.reset_index().loc[:, list(frame.columns)]

    clean_events = None
    if events is not None:
        _require(events, REQUIRED_EVENT_COLUMNS, "events")
        frame = pd.DataFrame(
            {
                "customer_id": _strings(events["customer_id"]),
                "event_type": _event_types(events["event_type"]),
                "event_time": _times(events["event_time"]),
                "attributes": _strings(events["attributes"]) if "attributes" in events else "",
            }
        )
        # As ingest rejects them: rows without a customer, a readable time or a valid event type.
        frame = frame[(frame["customer_id"] != "") & frame["event_time"].notna() & frame["event_type"].notna()]
        # A re-sent event is one event (ingest's key: customer, type, time, attributes).
        clean_events = frame.drop_duplicates().reset_index(drop=True)

    return Feeds(orders=clean_orders.reset_index(drop=True), customers=clean_customers, events=clean_events)


def build_profiles(feeds: Feeds, cutoff: datetime) -> list[dict[str, Any]]:
    """One profile dict per customer known before the cutoff, sorted by customer_id.

    A customer is known when the customers feed lists them with a sign-up before the cutoff (or no
    readable sign-up date), or when they ordered or had an event before it.
    """
    moment = pd.Timestamp(_utc(cutoff))
    orders = feeds.orders[feeds.orders["order_date"] < moment]
    events = feeds.events[feeds.events["event_time"] < moment] if feeds.events is not None else None

    by_id: dict[str, dict[str, Any]] = {}
    if feeds.customers is not None:
        signup = _times(feeds.customers["signup_date"]) if "signup_date" in feeds.customers else None
        known = feeds.customers if signup is None else feeds.customers[~(signup >= moment)]
        for record in known.to_dict("records"):
            fields = _customer_fields({str(key): value for key, value in record.items()})
            by_id[fields["customer_id"]] = fields
    for customer_id in orders["customer_id"].unique():
        by_id.setdefault(customer_id, {"customer_id": customer_id})
    if events is not None:
        for customer_id in events["customer_id"].unique():
            by_id.setdefault(customer_id, {"customer_id": customer_id})

    if len(orders):
        grouped = orders.groupby("customer_id", sort=False)
        summary = pd.DataFrame(
            {
                "order_count": grouped.size(),
                "total_spend": grouped["amount"].sum(),
                "first_order_at": grouped["order_date"].min(),
                "last_order_at": grouped["order_date"].max(),
            }
        )
        for customer_id, count, spend, first, last in zip(
            summary.index,
            summary["order_count"],
            summary["total_spend"],
            summary["first_order_at"],
            summary["last_order_at"],
            strict=True,
        ):
            profile = by_id[str(customer_id)]
            profile.update(
                order_count=int(count),
                total_spend=round(float(spend), 2),
                first_order_at=first.isoformat(),
                last_order_at=last.isoformat(),
            )

    if events is not None and len(events):
        for customer_id, count in events.groupby("customer_id", sort=False).size().items():
            by_id[str(customer_id)]["event_count"] = int(count)
        engagement = events[events["event_type"].isin(list(ENGAGEMENT_ATTRIBUTES))]
        latest = engagement.groupby(["customer_id", "event_type"], sort=False)["event_time"].max()
        for customer_id, event_type, moment_seen in zip(
            latest.index.get_level_values(0), latest.index.get_level_values(1), latest, strict=True
        ):
            by_id[str(customer_id)][ENGAGEMENT_ATTRIBUTES[str(event_type)]] = moment_seen.isoformat()

    return [by_id[customer_id] for customer_id in sorted(by_id)]


def build_snapshot(feeds: Feeds, cutoff: datetime, horizon_days: int | None) -> Snapshot:
    """Profiles and features as of the cutoff; labels for [cutoff, cutoff + horizon) when a horizon is given."""
    profiles = build_profiles(feeds, cutoff)
    customer_ids = [profile["customer_id"] for profile in profiles]
    labels = purchase_labels(feeds.orders, customer_ids, cutoff, horizon_days) if horizon_days else None
    return Snapshot(
        cutoff=_utc(cutoff),
        customer_ids=customer_ids,
        profiles=profiles,
        features=build_feature_matrix(profiles, _utc(cutoff)),
        labels=labels,
    )


def _customer_fields(record: dict[str, Any]) -> dict[str, Any]:
    # Match the profiles table: empty strings are missing attributes, consents are booleans.
    profile: dict[str, Any] = {"customer_id": record["customer_id"]}
    for field in _PROFILE_CUSTOMER_FIELDS:
        value = record.get(field, "")
        if value == "":
            continue
        if field in {"consent_email", "consent_sms"}:
            profile[field] = value.strip().lower() in {"true", "t", "yes", "y", "1"}
        else:
            profile[field] = value
    return profile


def _read_csv(path: Path, columns: Sequence[str], required: Sequence[str]) -> pd.DataFrame:
    wanted = set(columns)
    frame = pd.read_csv(
        path,
        dtype=str,
        usecols=lambda column: column in wanted,
        keep_default_na=False,
        na_values=[],
        encoding="utf-8",
    )
    _require(frame, required, path.name)
    return frame


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InvalidInputError(f"{name} lacks required columns: {', '.join(missing)}")


def _strings(column: pd.Series) -> pd.Series:
    return column.fillna("").astype(str).str.strip()


def _event_types(column: pd.Series) -> pd.Series:
    # cadence.event_types is the one normaliser (ingest resolves the same aliases); each distinct value once.
    text = column.fillna("").astype(str)
    names = {value: normalise_event_type(value) for value in text.unique()}
    valid = {value: name if is_valid_event_type(name) else None for value, name in names.items()}
    return text.map(valid).astype(object)


def _times(column: pd.Series) -> pd.Series:
    # ISO-8601 only, like cadence.features; a naive time is UTC.
    return pd.to_datetime(_strings(column), format="ISO8601", utc=True, errors="coerce")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
