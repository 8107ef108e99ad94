"""Erasing a customer (the right to be forgotten): their profile, activity, score, send-ledger entries, replies, and
every line naming them in the files the data bucket keeps (rejected rows, reports, run members and batches, contact and
order history, the uploads themselves), every stored version of them included.

What stays is hashed: a tombstone of the customer id, so a later file re-importing the customer comes in without
consent, and `erasure` suppressions of their email address and phone number, so no campaign reaches them again
whatever a file says. Suppression entries that named the customer keep their hash, not the id.
"""

import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from cadence.config import ErasureSettings
from cadence.dal import (
    activity_table,
    conversations_table,
    erasure_store,
    ingest_ledger,
    profiles_table,
    suppression_table,
)
from cadence.observability import logger, metrics
from cadence.suppression import Reason, Suppression, address_hash, customer_hash

# The data bucket's prefixes holding customer data (the test checks these against the template's policies).
CUSTOMER_PREFIXES = (
    "incoming/",
    "rejected/",
    "reports/",
    "campaign-runs/",
    "contact-history/",
    "order-history/",
    "ingest-state/",
    "inbound-email/",
)


@dataclass
class ErasureReport:
    customer_id: str
    tables: dict[str, int] = field(default_factory=dict)
    objects_rewritten: list[str] = field(default_factory=list)
    objects_deleted: list[str] = field(default_factory=list)
    versions_deleted: int = 0
    tombstone: str = ""


def _pattern(tokens: Iterable[str]) -> re.Pattern[bytes]:
    # Whole values only: erasing C1 must leave C10's lines alone; case-blind, as addresses are compared.
    alternatives = b"|".join(re.escape(token.encode()) for token in sorted(set(tokens), key=len, reverse=True))
    return re.compile(rb"(?<![\w@.+-])(?:" + alternatives + rb")(?![\w@.+-])", re.IGNORECASE)


def scrub(data: bytes, pattern: re.Pattern[bytes]) -> bytes | None:
    """The object's bytes without the lines naming the customer (gzip kept gzip); None when none does.

    Raises:
        ValueError: the object names the customer but is not line-based text (it must be deleted whole).
    """
    packed = data[:2] == b"\x1f\x8b"
    text = gzip.decompress(data) if packed else data
    if not pattern.search(text):
        return None
    if b"\x00" in text[:4096] or text[:4] == b"PAR1":
        raise ValueError("binary object")
    kept = b"".join(line for line in text.splitlines(keepends=True) if not pattern.search(line))
    return gzip.compress(kept, mtime=0) if packed else kept


def erase(customer_id: str, settings: ErasureSettings, now: datetime | None = None) -> ErasureReport:
    """Remove every trace of the customer the system owns; safe to repeat (a second run finds nothing)."""
    now = now or datetime.now(UTC)
    report = ErasureReport(customer_id, tombstone=customer_hash(customer_id))
    profile = profiles_table.get(settings.profiles_table, customer_id) or {}
    addresses = {"email": profile.get("email"), "sms": profile.get("phone")}
    tokens = [customer_id, *[str(value) for value in addresses.values() if value]]
    # The tombstone and the address suppressions first: a re-import racing the erasure cannot resurrect consent.
    entries = [
        Suppression.of_address(channel, str(address), Reason.ERASURE, "erasure", at=now)  # type: ignore[arg-type]
        for channel, address in addresses.items()
        if address
    ]
    suppression_table.add(settings.suppression_table, entries)
    suppression_table.put_tombstone(settings.suppression_table, report.tombstone, at=now)
    report.tables["suppression_entries_unnamed"] = suppression_table.forget_customer(
        settings.suppression_table, customer_id
    )
    # Ingest writes activity items whole under this lease: a write read before the delete must land before it, or
    # it would put the erased item back (one read after it sees the tombstone and leaves the customer out).
    with ingest_ledger.held_lease(
        settings.ingest_ledger_table,
        activity_table.LEASE,
        seconds=activity_table.LEASE_SECONDS,
        wait_seconds=settings.erasure_activity_lease_wait_seconds,
    ):
        report.tables["activity"] = erasure_store.delete_customer_item(settings.activity_table, customer_id)
    for name, table in (("profiles", settings.profiles_table), ("scores", settings.scores_table)):
        report.tables[name] = erasure_store.delete_customer_item(table, customer_id)
    report.tables["sends"] = erasure_store.scrub_ledger(settings.sends_table, customer_id)
    # Their replies: under the customer, and under their addresses for replies that came before their profile.
    conversation_keys = [conversations_table.customer_pk(customer_id)] + [
        conversations_table.address_pk(channel, address_hash(str(address)))
        for channel, address in addresses.items()
        if address
    ]
    report.tables["conversations"] = sum(
        conversations_table.delete_partition(settings.conversations_table, pk) for pk in conversation_keys
    )
    _scrub_bucket(settings.data_bucket, _pattern(tokens), report)
    logger.info(
        "customer erased",
        extra={
            "customer_id": customer_id,
            "objects_rewritten": len(report.objects_rewritten),
            "objects_deleted": len(report.objects_deleted),
        },
    )
    metrics.add_metric(name="CustomersErased", unit=MetricUnit.Count, value=1)
    return report


def _scrub_bucket(bucket: str, pattern: re.Pattern[bytes], report: ErasureReport) -> None:
    """Rewrite (or delete) each object naming the customer, and delete its earlier versions: the bucket is
    versioned, so the scrubbed copy must be the only one left."""
    for key, versions in erasure_store.object_versions(bucket, CUSTOMER_PREFIXES):
        if not _names_customer(bucket, key, versions, pattern):
            continue
        try:
            cleaned = scrub(erasure_store.read_version(bucket, key, versions[0]), pattern)
        except ValueError:
            report.objects_deleted.append(key)  # not text: it goes whole
            report.versions_deleted += erasure_store.delete_versions(bucket, key, versions)
            continue
        report.objects_rewritten.append(key)
        if cleaned is None:
            # Only earlier versions named the customer: the current one stays.
            report.versions_deleted += erasure_store.delete_versions(bucket, key, versions[1:])
            continue
        erasure_store.put(bucket, key, cleaned)
        report.versions_deleted += erasure_store.delete_versions(bucket, key, versions)


def _names_customer(bucket: str, key: str, versions: Sequence[str], pattern: re.Pattern[bytes]) -> bool:
    for version in versions:
        data = erasure_store.read_version(bucket, key, version)
        text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        if pattern.search(text):
            return True
    return False
