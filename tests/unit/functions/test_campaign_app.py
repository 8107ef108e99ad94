import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from cadence.dal import campaigns_table
from cadence.errors import InvalidInputError
from functions.campaign import app

CAMPAIGN = {
    "campaign_id": "winback",
    "name": "Win back",
    "channels": ["email", "sms"],
    "audience": {"max_decile": 5},
    "holdout_percent": 20,
    "email": {"subject": "Hello", "body": "We miss you"},
    "sms": {"text": "We miss you"},
}


@pytest.fixture
def scored_customers(tables: dict[str, str]) -> list[str]:
    """200 scored customers, deciles 1..10 in turn, all consenting to both channels."""
    dynamodb = boto3.resource("dynamodb")
    ids = []
    with (
        dynamodb.Table(tables["ProfilesTable"]).batch_writer() as profiles,
        dynamodb.Table(tables["ScoresTable"]).batch_writer() as scores,
    ):
        for i in range(200):
            customer_id = f"C{i:04d}"
            ids.append(customer_id)
            profiles.put_item(
                Item={
                    "customer_id": customer_id,
                    "email": f"{customer_id}@example.com",
                    "phone": "+8613800138000",
                    "consent_email": True,
                    "consent_sms": True,
                }
            )
            scores.put_item(
                Item={"customer_id": customer_id, "decile": i % 10 + 1, "score": Decimal("0.5"), "model_version": "m1"}
            )
    return ids


def queued_sends(queues: dict[str, str]) -> list[dict[str, str]]:
    sqs = boto3.client("sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queues["DISPATCH_QUEUE_URL"], MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=queues["DISPATCH_QUEUE_URL"],
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return bodies


def test_a_scheduled_firing_fans_out_every_active_campaign_once(
    tables: dict[str, str],
    queues: dict[str, str],
    scored_customers: list[str],
    load_event: Any,
    lambda_context: Any,
) -> None:
    campaigns_table.put_definition(tables["CampaignsTable"], "winback", CAMPAIGN, active=True)
    paused = {**CAMPAIGN, "campaign_id": "paused"}
    campaigns_table.put_definition(tables["CampaignsTable"], "paused", paused, active=False)

    result = app.lambda_handler(load_event("schedule"), lambda_context)
    repeat = app.lambda_handler(load_event("schedule"), lambda_context)

    (run,) = result["runs"]
    assert run["run_id"] == "winback@2026-11-23T10:00:00Z"
    assert run["audience_size"] == 100  # deciles 1..5 of 200
    assert run["holdout_size"] > 0
    assert run["sends_by_channel"] == {"email": 100 - run["holdout_size"], "sms": 100 - run["holdout_size"]}
    sends = queued_sends(queues)
    assert len(sends) == run["sends_queued"] == 2 * (100 - run["holdout_size"])
    assert {send["campaign_id"] for send in sends} == {"winback"}
    assert repeat["runs"][0]["status"] == "duplicate"
    stored_run = campaigns_table.get_run(tables["CampaignsTable"], "winback", run["run_id"])
    assert stored_run is not None
    assert stored_run["status"] == "FANNED_OUT"
    assert stored_run["holdout_size"] == run["holdout_size"]


def test_a_named_campaign_runs_when_its_own_schedule_fires(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    campaigns_table.put_definition(tables["CampaignsTable"], "winback", CAMPAIGN, active=True)

    result = app.lambda_handler({"campaign_id": "winback", "scheduled_time": "2026-11-23T11:00:00Z"}, lambda_context)

    assert result["runs"][0]["sends_queued"] == len(queued_sends(queues)) > 0


def test_a_named_campaign_queues_nothing_when_it_is_inactive(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    # given a campaign switched off (its stored flag), though its own schedule still fires
    campaigns_table.put_definition(tables["CampaignsTable"], "winback", {**CAMPAIGN, "active": True}, active=False)

    result = app.lambda_handler({"campaign_id": "winback", "scheduled_time": "2026-11-23T11:00:00Z"}, lambda_context)

    assert [(run["campaign_id"], run["status"], run["sends_queued"]) for run in result["runs"]] == [
        ("winback", "inactive", 0)
    ]
    assert queued_sends(queues) == []
    assert campaigns_table.get_run(tables["CampaignsTable"], "winback", result["runs"][0]["run_id"]) is None


def test_an_unknown_campaign_is_an_error(tables: dict[str, str], queues: dict[str, str], lambda_context: Any) -> None:
    with pytest.raises(InvalidInputError, match="campaign nope is not defined"):
        app.lambda_handler({"campaign_id": "nope", "scheduled_time": "2026-11-23T11:00:00Z"}, lambda_context)


def test_an_event_without_a_scheduled_time_is_rejected(tables: dict[str, str], lambda_context: Any) -> None:
    with pytest.raises(ValidationError):
        app.lambda_handler({"campaign_id": "winback"}, lambda_context)
