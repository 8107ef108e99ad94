"""The suppression table in moto, built from template.yaml: entries, change log, soft-bounce counts."""

from datetime import UTC, datetime, timedelta

from cadence.dal import suppression_table
from cadence.suppression import Reason, Suppression, address_hash

T0 = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)


def test_changes_are_read_across_days_from_a_moment_on(tables: dict[str, str]) -> None:
    table = tables["SuppressionTable"]
    before = Suppression.of_address("email", "a@example.com", Reason.COMPLAINT, "ses", at=T0 - timedelta(minutes=5))
    after = Suppression.of_address("sms", "+8613800138000", Reason.SMS_OPT_OUT, "sns", at=T0 + timedelta(minutes=5))
    suppression_table.add(table, [before, after])

    found = suppression_table.changes_since(table, T0, now=T0 + timedelta(minutes=6))

    assert found == [after]


def test_the_planner_list_holds_address_reasons_only_and_keeps_each_reason(tables: dict[str, str]) -> None:
    table = tables["SuppressionTable"]
    bounce = Suppression.of_address("email", "a@example.com", Reason.HARD_BOUNCE, "ses", customer_id="C1")
    withdrawn = Suppression.of_address("email", "a@example.com", Reason.CONSENT_WITHDRAWN, "ingest", customer_id="C1")
    other = Suppression.of_address("email", "b@example.com", Reason.CONSENT_WITHDRAWN, "ingest", customer_id="C2")
    suppression_table.add(table, [bounce, withdrawn, other])

    listed = suppression_table.suppressed_addresses(table, ["email", "sms"])

    assert listed == {("email", address_hash("a@example.com"))}
    reasons = {e.reason for e in suppression_table.entries_of(table, "email", address_hash("a@example.com"))}
    assert reasons == {Reason.HARD_BOUNCE, Reason.CONSENT_WITHDRAWN}  # the later reason did not replace the bounce


def test_a_soft_bounce_event_delivered_twice_counts_once(tables: dict[str, str]) -> None:
    table, hashed = tables["SuppressionTable"], address_hash("a@example.com")

    counts = [suppression_table.count_soft_bounce(table, "email", hashed, mid) for mid in ("m1", "m1", "m2")]

    assert counts == [1, None, 2]
