"""Dispatch checks each batch against what the suppression log holds since its run was planned."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.client import BaseClient

from cadence.campaigns import CampaignDefinition
from cadence.dal import dynamodb_wire, suppression_table
from cadence.suppression import Reason, Suppression
from functions.dispatch import app
from tests.unit.functions.test_dispatch_app import (
    CAMPAIGN,
    batch,
    dispatch_event,
    emails_sent,
    ledger,
    put_profile,
    store_campaign,
)

RUN = "winback@2026-11-23T02:00:00Z"
PLANNED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def stored_campaign(tables: dict[str, str]) -> CampaignDefinition:
    store_campaign(tables, CAMPAIGN)
    return CAMPAIGN


def suppress(tables: dict[str, str], *entries: Suppression) -> None:
    suppression_table.add(tables["SuppressionTable"], entries)


@pytest.fixture
def dynamodb_calls(aws: None, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every DynamoDB operation the code under test makes, with its parameters."""
    calls: list[tuple[str, dict[str, Any]]] = []
    make_api_call = BaseClient._make_api_call
    bulk_call = dynamodb_wire.call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            calls.append((operation, params))
        return make_api_call(client, operation, params)

    def recording_bulk(operation: str, request: dict[str, Any] | str, **kwargs: Any) -> Any:
        calls.append((operation, json.loads(request) if isinstance(request, str) else dict(request)))
        return bulk_call(operation, request, **kwargs)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    monkeypatch.setattr(dynamodb_wire, "call", recording_bulk)  # the batch APIs' own path (a dict or its JSON text)
    return calls


def test_an_address_bounced_or_complained_after_planning_is_not_sent_though_the_profile_consents(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
) -> None:
    for customer_id in ("S1", "S2", "S3", "S4"):
        put_profile(tables, customer_id)
    after = PLANNED + timedelta(minutes=30)
    suppress(
        tables,
        Suppression.of_address("email", "s1@example.com", Reason.HARD_BOUNCE, "ses", at=after),
        # a withdrawal the (eventually consistent) profile read has not seen yet: the log has it
        Suppression.of_address(
            "email", "s2@example.com", Reason.CONSENT_WITHDRAWN, "ingest", at=after, customer_id="S2"
        ),
        Suppression.of_address("email", "S3@Example.com", Reason.COMPLAINT, "ses", at=after, customer_id="X9"),
    )

    response = app.lambda_handler(dispatch_event(load_event, batch(["S1", "S2", "S3", "S4"], "email")), lambda_context)

    assert response == {"batchItemFailures": []}
    reasons = {cid: ledger(tables, cid)[f"{RUN}#email"].get("reason") for cid in ("S1", "S2", "S3", "S4")}
    assert reasons == {
        "S1": "suppressed_hard_bounce",
        "S2": "suppressed_consent_withdrawn",
        "S3": "suppressed_complaint",
        "S4": None,
    }
    assert {ledger(tables, cid)[f"{RUN}#email"]["status"] for cid in ("S1", "S2", "S3")} == {"SUPPRESSED"}
    assert emails_sent() == 1


def test_a_batch_costs_one_log_query_and_an_eventually_consistent_profile_read(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    dynamodb_calls: list[tuple[str, dict[str, Any]]],
) -> None:
    customers = [f"Q{n:02d}" for n in range(50)]
    for customer_id in customers:
        put_profile(tables, customer_id)
    dynamodb_calls.clear()

    app.lambda_handler(dispatch_event(load_event, batch(customers, "email")), lambda_context)
    app.lambda_handler(
        dispatch_event(load_event, batch(["Q00"], "sms", batch_id="sms-20261123T0200Z-00000")), lambda_context
    )

    log_queries = [p for op, p in dynamodb_calls if op == "Query" and p["TableName"] == tables["SuppressionTable"]]
    profile_reads = [p for op, p in dynamodb_calls if op == "BatchGetItem"]
    # One Query per UTC day since planning (the run is from a fixed past day), read again by the second batch only
    # after the feed's few seconds: here both batches share the first read.
    days = (datetime.now(UTC).date() - PLANNED.date()).days + 1
    assert len(log_queries) == days
    assert all(p["ConsistentRead"] for p in log_queries)
    assert len(profile_reads) == 2
    for params in profile_reads:
        (read,) = params["RequestItems"].values()
        assert read["ConsistentRead"] is False
        assert "ProjectionExpression" in read


def test_a_suppression_from_before_the_run_was_planned_is_left_to_the_planner(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
) -> None:
    put_profile(tables, "P1")
    # a day before the firing: the run's planner read the list and left the address out (or it was lifted since)
    suppress(
        tables,
        Suppression.of_address("email", "p1@example.com", Reason.UNSUBSCRIBE, "x", at=PLANNED - timedelta(days=1)),
    )

    app.lambda_handler(dispatch_event(load_event, batch(["P1"], "email")), lambda_context)

    assert ledger(tables, "P1")[f"{RUN}#email"]["status"] == "SENT"
