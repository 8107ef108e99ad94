"""The one definition of the propensity features: a customer profile in, a float32 row out.

Training (model_build) and serving (the score function) both call ``build_feature_matrix``, so a
feature cannot drift between them. Everything the ONNX graph cannot express (parsing timestamps,
missing values, flags from strings) happens here; the graph only scales and predicts.

numpy only: the score function's layer has numpy and onnxruntime, not pandas.

Missing values, by feature kind:

* "days since" features use ``MISSING_DAYS`` (ten years) when the timestamp is missing or unparseable:
  "never" sorts as "very long ago", which is what a recency means to both estimators.
* counts and amounts use 0; ``has_ordered`` tells "no orders" apart from "orders worth nothing".
* flags are 0 unless the value is clearly true (consent is never presumed).

Every value is rounded to a fixed grid (whole days, 4 decimals on log scales) and capped, so distinct
values stay far apart in float32: tree thresholds learned in float64 then fall between the same
float32 values in onnxruntime as in sklearn, and parity holds.
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

import numpy as np

MISSING_DAYS: Final = 3650.0
"""Days used for an event that never happened (or cannot be parsed); also the cap of every "days" feature."""

MAX_COUNT: Final = 1_000_000.0
MAX_AMOUNT: Final = 1_000_000_000.0
MAX_ORDERS_PER_30D: Final = 1000.0
_DECIMALS: Final = 4
_SECONDS_PER_DAY: Final = 86_400.0
_MIN_PHONE_DIGITS: Final = 7
_TRUE_STRINGS: Final = frozenset({"true", "t", "yes", "y", "1"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One column of the feature matrix."""

    name: str
    dtype: str
    meaning: str


FEATURE_SPEC: Final[tuple[FeatureSpec, ...]] = (
    FeatureSpec("recency_days", "float32", "Whole days from last_order_at to as_of; MISSING_DAYS when never ordered."),
    FeatureSpec("has_ordered", "float32", "1 when order_count > 0 or last_order_at is set, else 0."),
    FeatureSpec("frequency", "float32", "order_count (whole orders, capped at MAX_COUNT); 0 when missing."),
    FeatureSpec(
        "log_monetary", "float32", "ln(1 + total_spend), total_spend capped to [0, MAX_AMOUNT]; 0 when missing."
    ),
    FeatureSpec("log_avg_order_value", "float32", "ln(1 + total_spend / order_count); 0 without orders."),
    FeatureSpec(
        "tenure_days", "float32", "Whole days from the earlier of signup_date and first_order_at; 0 when both missing."
    ),
    FeatureSpec("orders_per_30d", "float32", "order_count per 30 days of tenure (tenure floored at 30 days)."),
    FeatureSpec("days_since_last_visit", "float32", "Whole days from last_visit_at; MISSING_DAYS when missing."),
    FeatureSpec("days_since_last_open", "float32", "Whole days from last_open_at; MISSING_DAYS when missing."),
    FeatureSpec("days_since_last_click", "float32", "Whole days from last_click_at; MISSING_DAYS when missing."),
    FeatureSpec("days_since_last_engagement", "float32", "The least of the three engagement recencies."),
    FeatureSpec("log_event_count", "float32", "ln(1 + event_count), event_count capped at MAX_COUNT; 0 when missing."),
    FeatureSpec("has_email", "float32", "1 when email looks like an address (x@y.z), else 0."),
    FeatureSpec("has_phone", "float32", "1 when phone holds at least 7 digits, else 0."),
    FeatureSpec("consent_email", "float32", "1 when consent_email is true, else 0."),
    FeatureSpec("consent_sms", "float32", "1 when consent_sms is true, else 0."),
)

FEATURE_NAMES: Final[tuple[str, ...]] = tuple(spec.name for spec in FEATURE_SPEC)


def build_feature_row(profile: Mapping[str, Any], as_of: datetime) -> list[float]:
    """The features of one profile as of a moment, in FEATURE_SPEC order; always finite."""
    now = _as_utc(as_of)
    order_count = _capped(_number(profile.get("order_count")), 0.0, MAX_COUNT)
    order_count = float(math.floor(order_count)) if order_count is not None else 0.0
    total_spend = _capped(_number(profile.get("total_spend")), 0.0, MAX_AMOUNT) or 0.0
    last_order = _timestamp(profile.get("last_order_at"))
    first_seen = _earliest(_timestamp(profile.get("signup_date")), _timestamp(profile.get("first_order_at")))
    event_count = _capped(_number(profile.get("event_count")), 0.0, MAX_COUNT) or 0.0

    tenure_days = _days_between(first_seen, now) if first_seen is not None else 0.0
    engagement = [
        _days_since(_timestamp(profile.get(key)), now) for key in ("last_visit_at", "last_open_at", "last_click_at")
    ]
    row = [
        _days_since(last_order, now),
        1.0 if order_count > 0 or last_order is not None else 0.0,
        order_count,
        _log1p(total_spend),
        _log1p(total_spend / order_count) if order_count > 0 else 0.0,
        tenure_days,
        min(_round(order_count * 30.0 / max(tenure_days, 30.0)), MAX_ORDERS_PER_30D),
        *engagement,
        min(engagement),
        _log1p(event_count),
        1.0 if _is_email(profile.get("email")) else 0.0,
        1.0 if _is_phone(profile.get("phone")) else 0.0,
        _flag(profile.get("consent_email")),
        _flag(profile.get("consent_sms")),
    ]
    return row


def build_feature_matrix(profiles: Sequence[Mapping[str, Any]], as_of: datetime) -> np.ndarray:
    """A float32 matrix of shape (len(profiles), len(FEATURE_NAMES)), one row per profile, same order."""
    rows = [build_feature_row(profile, as_of) for profile in profiles]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURE_NAMES))


def _as_utc(moment: datetime) -> datetime:
    # Naive datetimes are read as UTC: every timestamp in the feeds and profiles is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timestamp(value: Any) -> datetime | None:
    try:
        if isinstance(value, datetime):
            return _as_utc(value)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str) and value.strip():
            return _as_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        # Unparseable, or an offset that pushes year 1 / 9999 out of range: treated as missing.
        return None
    return None


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def _days_between(earlier: datetime, later: datetime) -> float:
    # Whole days, never negative: a timestamp after as_of (clock skew) counts as "today".
    days = math.floor((later - earlier).total_seconds() / _SECONDS_PER_DAY)
    return float(min(max(days, 0), MISSING_DAYS))


def _days_since(moment: datetime | None, now: datetime) -> float:
    return MISSING_DAYS if moment is None else _days_between(moment, now)


def _number(value: Any) -> float | None:
    # bool is an int subclass; a boolean count is a data error, not 0 or 1.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal | str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None
    return None


def _capped(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(max(value, low), high)


def _round(value: float) -> float:
    return round(value, _DECIMALS)


def _log1p(value: float) -> float:
    return _round(math.log1p(value))


def _flag(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float | Decimal):
        # Through _number: comparing a signalling Decimal NaN raises instead of answering.
        return 1.0 if _number(value) == 1.0 else 0.0
    if isinstance(value, str):
        return 1.0 if value.strip().lower() in _TRUE_STRINGS else 0.0
    return 0.0


def _is_email(value: Any) -> bool:
    return isinstance(value, str) and _EMAIL.match(value.strip()) is not None


def _is_phone(value: Any) -> bool:
    return isinstance(value, str) and sum(char.isdigit() for char in value) >= _MIN_PHONE_DIGITS
