"""Plain records ingest hands to the data-access layer and the report it writes; no pandas, no boto3.

The DAL imports these, so this module stays free of heavy imports: loading it must not load pandas.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class FileRef:
    """One object in S3, pinned to the version the notification named when the bucket is versioned."""

    bucket: str
    key: str
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What S3 says about an object before we read it."""

    size: int
    etag: str
    last_modified: str  # ISO-8601 UTC
    metadata: dict[str, str] = field(default_factory=dict)
    version_id: str | None = None


@dataclass(slots=True)  # not frozen: one is built per customer row of every file, and frozen doubles that cost
class CustomerUpsert:
    """The customer columns of one merged customer row; None values are left untouched in the profile."""

    customer_id: str
    updated_at: str  # ISO-8601 UTC; decides which of two deliveries wins
    fields: dict[str, Any]
    # False when the file did not carry updated_at and the upload time stands in for it.
    updated_at_carried: bool = True
    # Per channel ("email", "sms"): the updated_at of the latest row that set its address or consent.
    channel_updated_at: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActivityDelta:
    """What one chunk of orders or events adds to one customer's activity item.

    `added` maps attribute names to the amounts ADDed (order_count, total_spend, event_count);
    `earliest` and `latest` map attribute names to ISO times kept as min and max; `records` is how many
    rows the delta stands for (the report counts them as applied or skipped).
    """

    customer_id: str
    added: dict[str, int | Decimal]
    records: int
    earliest: dict[str, str] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """How many rows took effect and how many were repeats (of a batch already applied, or older than the profile)."""

    applied: int = 0
    skipped: int = 0
