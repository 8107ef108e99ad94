"""The suppression list's rules and the per-container copy of its change log (pure)."""

from datetime import UTC, datetime, timedelta

from cadence.suppression import OVERLAP, ChangeFeed, Changes, Reason, Suppression, address_hash

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def entry(reason: Reason, *, at: datetime = T0, customer_id: str | None = None, address: str = "a@example.com"):
    return Suppression.of_address("email", address, reason, "test", at=at, customer_id=customer_id)


def test_an_address_reason_stops_every_customer_holding_the_address() -> None:
    changes = Changes.of([entry(Reason.HARD_BOUNCE, customer_id="C1")])

    assert changes.stops("email", "C2", " A@Example.com ") == "hard_bounce"
    assert changes.stops("sms", "C2", "a@example.com") is None
    assert changes.stops("email", "C3", "b@example.com") is None


def test_a_withdrawn_consent_stops_only_that_customer() -> None:
    changes = Changes.of([entry(Reason.CONSENT_WITHDRAWN, customer_id="C1")])

    assert changes.stops("email", "C1", "new-address@example.com") == "consent_withdrawn"
    assert changes.stops("email", "C2", "a@example.com") is None


def test_the_hash_normalises_like_the_planner() -> None:
    assert address_hash("  Someone@Example.COM") == address_hash("someone@example.com")
    assert "someone" not in address_hash("someone@example.com")


class Log:
    """A change log in memory that counts its reads."""

    def __init__(self) -> None:
        self.entries: list[Suppression] = []
        self.reads: list[datetime] = []

    def fetch(self, since: datetime) -> list[Suppression]:
        self.reads.append(since)
        return [e for e in self.entries if e.at >= since]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_feed_reads_once_per_ttl_and_then_only_what_came_after_its_last_read() -> None:
    log, clock = Log(), Clock()
    feed = ChangeFeed(fetch=log.fetch, ttl_seconds=5, clock=clock)
    log.entries.append(entry(Reason.COMPLAINT, at=T0 + timedelta(minutes=1), customer_id="C1"))

    first = feed.since(T0, now=T0 + timedelta(minutes=10))
    log.entries.append(entry(Reason.UNSUBSCRIBE, at=T0 + timedelta(minutes=10), customer_id="C2"))
    clock.now = 4.9
    cached = feed.since(T0, now=T0 + timedelta(minutes=10, seconds=5))
    clock.now = 5.0
    fresh = feed.since(T0, now=T0 + timedelta(minutes=10, seconds=6))

    assert first.stops("email", "C1", "x@example.com") == "complaint"
    assert cached.stops("email", "C2", "y@example.com") is None  # within the ttl: the copy, no read
    assert fresh.stops("email", "C2", "y@example.com") == "unsubscribe"
    assert fresh.stops("email", "C1", "x@example.com") == "complaint"  # kept from the first read
    assert log.reads == [T0, T0 + timedelta(minutes=10) - OVERLAP]


def test_an_earlier_moment_reads_the_log_again_from_there_and_later_ones_filter_the_copy() -> None:
    log, clock = Log(), Clock()
    feed = ChangeFeed(fetch=log.fetch, ttl_seconds=5, clock=clock)
    log.entries.append(entry(Reason.HARD_BOUNCE, at=T0 - timedelta(hours=1), address="old@example.com"))

    later = feed.since(T0)
    earlier = feed.since(T0 - timedelta(hours=2))

    assert later.stops("email", "C9", "old@example.com") is None
    assert earlier.stops("email", "C9", "old@example.com") == "hard_bounce"
    assert log.reads == [T0, T0 - timedelta(hours=2)]
