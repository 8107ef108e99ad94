"""The suppression list: channels and addresses no campaign may send to, and why (pure; storage in
cadence.dal.suppression_table).

Addresses are kept as hashes (cadence.campaigns.plan.address_hash of the normalised address), so the list holds
no address and an erased customer's entries stay as tombstones nobody can read an address from. Each entry names
its reason, its source and its time; every entry is also written to a compact change log, so dispatch checks a
batch against what changed since its run was planned with one Query, not a read of every profile.

Two kinds of reason:
- address reasons (hard bounce, complaint, unsubscribe, SMS opt-out, erasure, SES's account list, soft bounces
  past the threshold) stop every send to the address, whoever holds it and whatever a later file says of consent;
- `consent_withdrawn` (an ingested file set consent to no) stops the sends already planned for that customer; later
  runs follow the profile's consent, which a newer file may give again.
"""

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

# cadence.campaigns.definition.Channel, not imported: ingest and feedback load no campaign code.
Channel = Literal["email", "sms", "webhook"]


class Reason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    SMS_OPT_OUT = "sms_opt_out"
    ERASURE = "erasure"
    SES_SUPPRESSED = "ses_account_suppression"
    CONSENT_WITHDRAWN = "consent_withdrawn"


# Reasons that hold for the address itself (see the module docstring).
ADDRESS_REASONS = frozenset(Reason) - {Reason.CONSENT_WITHDRAWN}


def hash_normalised(address: str) -> str:
    """A compact stand-in for a normalised address: equal addresses, equal hashes (96 bits: no collisions at
    any audience size we plan for), and no address in what is stored of it."""
    return hashlib.blake2b(address.encode(), digest_size=12).hexdigest()


def customer_hash(customer_id: str) -> str:
    """An erased customer's tombstone key: the id hashed as addresses are (the id itself is not kept)."""
    return hash_normalised(f"customer:{customer_id}")


def address_hash(address: str) -> str:
    """The list's key of an address: equal after trimming and lower-casing, as the planner compares them."""
    return hash_normalised(address.strip().lower())


@dataclass(frozen=True, slots=True)
class Suppression:
    """One entry: stop `channel` to the address hashed as `address_hash` (and for `customer_id`, when known)."""

    channel: Channel
    address_hash: str
    reason: Reason
    source: str
    at: datetime
    customer_id: str | None = None

    @classmethod
    def of_address(
        cls,
        channel: Channel,
        address: str,
        reason: Reason,
        source: str,
        *,
        at: datetime | None = None,
        customer_id: str | None = None,
    ) -> "Suppression":
        return cls(channel, address_hash(address), reason, source, at or datetime.now(UTC), customer_id)


@dataclass(frozen=True, slots=True)
class Changes:
    """What was suppressed since a moment, as dispatch checks a batch against it."""

    customers: frozenset[tuple[str, str]] = frozenset()  # (channel, customer_id)
    addresses: frozenset[tuple[str, str]] = frozenset()  # (channel, address hash)
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[Suppression]) -> "Changes":
        customers: set[tuple[str, str]] = set()
        addresses: set[tuple[str, str]] = set()
        reasons: dict[tuple[str, str], str] = {}
        for entry in entries:
            if entry.customer_id:
                customers.add((entry.channel, entry.customer_id))
                reasons[(entry.channel, entry.customer_id)] = entry.reason.value
            if entry.reason in ADDRESS_REASONS:
                addresses.add((entry.channel, entry.address_hash))
                reasons[(entry.channel, entry.address_hash)] = entry.reason.value
        return cls(frozenset(customers), frozenset(addresses), reasons)

    def stops(self, channel: str, customer_id: str, address: str) -> str | None:
        """The reason a send to this customer and address must not leave, or None."""
        if (channel, customer_id) in self.customers:
            return self.reasons[(channel, customer_id)]
        hashed = (channel, address_hash(address))
        return self.reasons[hashed] if hashed in self.addresses else None


# A writer stamps an entry just before its write lands, and writers' clocks differ by a little: each refresh reads
# again this far back, so an entry stamped before the last read but written after it is still seen.
OVERLAP = timedelta(seconds=60)


@dataclass
class ChangeFeed:
    """A container's copy of the change log since the earliest moment asked for, refreshed at most every
    `ttl_seconds` by reading only what came after the last read (less the overlap).

    `fetch(since)` returns the log's entries stamped at or after `since`; `clock` gives monotonic seconds.
    """

    fetch: Callable[[datetime], list[Suppression]]
    ttl_seconds: float
    clock: Callable[[], float]
    _floor: datetime | None = None
    _read_from: datetime | None = None
    _fetched_at: float = float("-inf")
    _entries: dict[tuple[str, str, str, str | None, datetime], Suppression] = field(default_factory=dict)

    def since(self, moment: datetime, now: datetime | None = None) -> Changes:
        """The entries stamped at or after `moment` (at most `ttl_seconds` old)."""
        now = now or datetime.now(UTC)
        if self._floor is None or moment < self._floor:
            self._entries = {}
            self._load(moment, now)
            self._floor = moment
        elif self.clock() - self._fetched_at >= self.ttl_seconds:
            assert self._read_from is not None  # noqa: S101 - set with the floor
            self._load(self._read_from - OVERLAP, now)
        return Changes.of(entry for entry in self._entries.values() if entry.at >= moment)

    def _load(self, since: datetime, now: datetime) -> None:
        for entry in self.fetch(since):
            self._entries[(entry.channel, entry.address_hash, entry.reason, entry.customer_id, entry.at)] = entry
        self._read_from, self._fetched_at = now, self.clock()
