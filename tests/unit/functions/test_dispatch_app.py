import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from cadence.campaigns import CampaignDefinition
from cadence.dal import campaigns_table, clients
from functions.dispatch import app
from tests.unit.functions import provider_faults
from tests.unit.functions.provider_faults import ProviderFaults

CAMPAIGN = CampaignDefinition.model_validate(
    {
        "campaign_id": "winback",
        "name": "Win back",
        "channels": ["email", "sms"],
        "email": {"subject": "Hello {first_name}", "body": "Dear {first_name} from {city}, we miss you."},
        "sms": {"text": "{first_name}, 10% off this week"},
    }
)


@pytest.fixture
def stored_campaign(tables: dict[str, str]) -> CampaignDefinition:
    campaigns_table.put_definition(tables["CampaignsTable"], CAMPAIGN.campaign_id, CAMPAIGN.model_dump(), active=True)
    return CAMPAIGN


@pytest.fixture
def provider(aws: None) -> Iterator[ProviderFaults]:
    """SES and SNS as moto answers them, unless a test plans a fault; counts every HTTP attempt."""
    with provider_faults.injected() as faults:
        clients.client.cache_clear()  # the DAL's clients are built after the faults are in place
        yield faults
    clients.client.cache_clear()


def put_profile(tables: dict[str, str], customer_id: str, **overrides: Any) -> None:
    item = {
        "customer_id": customer_id,
        "email": f"{customer_id.lower()}@example.com",
        "phone": "+8613800138000",
        "first_name": "Li",
        "city": "Hangzhou",
        "consent_email": True,
        "consent_sms": True,
    }
    item.update(overrides)
    boto3.resource("dynamodb").Table(tables["ProfilesTable"]).put_item(
        Item={k: v for k, v in item.items() if v is not None}
    )


def dispatch_event(load_event: Any, *requests: dict[str, str]) -> dict[str, Any]:
    """The real SQS event shape, one record per request, each with a fresh message id (as a retrying producer)."""
    template = load_event("sqs_dispatch")["Records"][0]
    return {
        "Records": [{**template, "messageId": str(uuid.uuid4()), "body": json.dumps(request)} for request in requests]
    }


def request(customer_id: str, channel: str, run_id: str = "winback@2026-11-23T02:00:00Z") -> dict[str, str]:
    return {"campaign_id": "winback", "run_id": run_id, "customer_id": customer_id, "channel": channel}


def ledger(tables: dict[str, str], customer_id: str) -> dict[str, dict[str, Any]]:
    items = boto3.resource("dynamodb").Table(tables["SendsTable"]).scan()["Items"]
    return {item["send_key"]: item for item in items if item["customer_id"] == customer_id}


def emails_sent() -> int:
    return int(boto3.client("ses").get_send_quota()["SentLast24Hours"])


def sms_sent() -> list[tuple[str, str]]:
    return [(number, text) for number, text, *_ in sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values()]


def test_a_redelivered_send_goes_out_once(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C1")

    first = app.lambda_handler(dispatch_event(load_event, request("C1", "email")), lambda_context)
    second = app.lambda_handler(dispatch_event(load_event, request("C1", "email")), lambda_context)

    assert first == second == {"batchItemFailures": []}
    assert emails_sent() == 1
    entry = ledger(tables, "C1")["winback@2026-11-23T02:00:00Z#email"]
    assert entry["status"] == "SENT"
    assert entry["provider_message_id"]


def test_sms_is_published_to_the_profile_phone_with_the_rendered_text(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C2", phone="+8613912345678", first_name="Wang")

    response = app.lambda_handler(dispatch_event(load_event, request("C2", "sms")), lambda_context)

    assert response == {"batchItemFailures": []}
    assert sms_sent() == [("+8613912345678", "Wang, 10% off this week")]
    assert ledger(tables, "C2")["winback@2026-11-23T02:00:00Z#sms"]["status"] == "SENT"


def test_nothing_is_sent_when_consent_was_withdrawn_after_planning(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C3", consent_email=False)

    app.lambda_handler(dispatch_event(load_event, request("C3", "email")), lambda_context)

    assert emails_sent() == 0
    assert ledger(tables, "C3")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SUPPRESSED"


def test_a_provider_rejection_is_recorded_and_not_retried(
    tables: dict[str, str], stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    # given no verified sender identity, SES (and moto) reject the message
    put_profile(tables, "C4")

    response = app.lambda_handler(dispatch_event(load_event, request("C4", "email")), lambda_context)

    assert response == {"batchItemFailures": []}
    entry = ledger(tables, "C4")["winback@2026-11-23T02:00:00Z#email"]
    assert entry["status"] == "REJECTED"
    assert "MessageRejected" in entry["reason"]


def test_a_malformed_record_is_reported_as_a_batch_item_failure(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C5")
    event = dispatch_event(load_event, request("C5", "email"), {"campaign_id": "winback", "channel": "fax"})
    bad_message_id = event["Records"][1]["messageId"]

    response = app.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": bad_message_id}]}
    assert emails_sent() == 1


def test_an_unknown_campaign_fails_its_record_and_sends_nothing_for_it(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C6")
    unknown = {**request("C6", "sms"), "campaign_id": "ghost"}
    event = dispatch_event(load_event, unknown, request("C6", "email"))

    response = app.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert list(ledger(tables, "C6")) == ["winback@2026-11-23T02:00:00Z#email"]
    assert sms_sent() == []


def test_the_whole_batch_is_retried_when_every_record_fails(
    tables: dict[str, str], ses_sender: str, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C8")

    with pytest.raises(BatchProcessingError):
        app.lambda_handler(dispatch_event(load_event, request("C8", "email")), lambda_context)

    assert ledger(tables, "C8") == {}


def test_logs_never_carry_the_address_or_phone(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    captured_logs: io.StringIO,
) -> None:
    put_profile(tables, "C7", email="private.person@example.com", phone="+8613700000007", consent_sms=False)

    app.lambda_handler(dispatch_event(load_event, request("C7", "email"), request("C7", "sms")), lambda_context)

    logged = captured_logs.getvalue()
    assert "C7" in logged  # the ids are there, so the check below looks at real log output
    assert "private.person" not in logged
    assert "13700000007" not in logged


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("sns.Publish", "Throttled", 429),  # SNS's throttling code, not "Throttling"
        ("sns.Publish", "InternalError", 500),
        ("sns.Publish", "KMSThrottling", 400),  # transient by its code alone
        ("ses.SendEmail", "SomethingNew", 503),  # an unknown code: transient by its status alone
    ],
)
def test_a_throttled_or_failing_provider_is_retried_via_sqs_not_rejected_when_it_answers_429_or_5xx(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    operation: str,
    code: str,
    status: int,
) -> None:
    # given the provider of one channel keeps failing while the other works
    put_profile(tables, "T1")
    service = operation.partition(".")[0]
    channel, other = ("sms", "email") if service == "sns" else ("email", "sms")
    provider.always(operation, provider_faults.error(service, code, status))
    event = dispatch_event(load_event, request("T1", channel), request("T1", other))

    response = app.lambda_handler(event, lambda_context)

    # then that send is left for SQS to redeliver, and a redelivery sends it once the provider recovers
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert ledger(tables, "T1")[f"winback@2026-11-23T02:00:00Z#{channel}"]["status"] == "FAILED"
    provider.clear()
    assert app.lambda_handler(dispatch_event(load_event, request("T1", channel)), lambda_context) == {
        "batchItemFailures": []
    }
    assert ledger(tables, "T1")[f"winback@2026-11-23T02:00:00Z#{channel}"]["status"] == "SENT"
    assert emails_sent() == 1
    assert len(sms_sent()) == 1


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [("sns.Publish", "InvalidParameter", 400), ("ses.SendEmail", "MessageRejected", 400)],
)
def test_a_provider_refusal_is_still_a_rejection_when_it_answers_4xx(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    operation: str,
    code: str,
    status: int,
) -> None:
    put_profile(tables, "T2")
    service = operation.partition(".")[0]
    channel = "sms" if service == "sns" else "email"
    provider.always(operation, provider_faults.error(service, code, status))

    response = app.lambda_handler(dispatch_event(load_event, request("T2", channel)), lambda_context)

    assert response == {"batchItemFailures": []}
    entry = ledger(tables, "T2")[f"winback@2026-11-23T02:00:00Z#{channel}"]
    assert entry["status"] == "REJECTED"
    assert code in entry["reason"]
