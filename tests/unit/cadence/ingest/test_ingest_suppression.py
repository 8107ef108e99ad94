"""A file that withdraws consent puts it on the suppression log, so sends planned before it stop."""

import os
from datetime import UTC, datetime, timedelta

from cadence.dal import suppression_table
from cadence.suppression import Reason, address_hash

HEADER = "customer_id,email,phone,first_name,consent_email,consent_sms,updated_at\n"


def test_consent_turned_off_by_a_newer_file_is_logged_per_channel(stack, ingest):
    started = datetime.now(UTC) - timedelta(seconds=1)
    ingest("incoming/customers/a.csv", HEADER + "101,ann@example.com,13800138001,Ann,yes,yes,2026-01-01T00:00:00Z\n"
           "102,bo@example.com,13800138002,Bo,yes,yes,2026-01-01T00:00:00Z\n")  # fmt: skip
    assert suppression_table.changes_since(os.environ["SUPPRESSION_TABLE"], started) == []

    ingest("incoming/customers/b.csv", HEADER + "101,ann@example.com,13800138001,Ann,no,yes,2026-02-01T00:00:00Z\n"
           "102,bo@example.com,13800138002,Bo,yes,yes,2026-02-01T00:00:00Z\n")  # fmt: skip

    (change,) = suppression_table.changes_since(os.environ["SUPPRESSION_TABLE"], started)
    assert (change.channel, change.customer_id, change.reason) == ("email", "101", Reason.CONSENT_WITHDRAWN)
    assert change.address_hash == address_hash("ann@example.com")
    assert change.source == "ingest:incoming/customers/b.csv"
    assert stack.profile("101")["consent_email"] is False


def test_a_file_repeating_a_withdrawal_logs_nothing_more(stack, ingest):
    started = datetime.now(UTC) - timedelta(seconds=1)
    ingest("incoming/customers/a.csv", HEADER + "201,cy@example.com,,Cy,yes,,2026-01-01T00:00:00Z\n")
    ingest("incoming/customers/b.csv", HEADER + "201,cy@example.com,,Cy,no,,2026-02-01T00:00:00Z\n")
    ingest("incoming/customers/c.csv", HEADER + "201,cy@example.com,,Cy,no,,2026-03-01T00:00:00Z\n")

    assert len(suppression_table.changes_since(os.environ["SUPPRESSION_TABLE"], started)) == 1
