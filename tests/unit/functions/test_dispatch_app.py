import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from cadence import campaign_control, config, email_templates, unsubscribe
from cadence.campaigns import CampaignDefinition
from cadence.campaigns.lifecycle import State
from cadence.dal import campaigns_table, clients, suppression_table
from cadence.dal import email_templates as stored_templates
from cadence.dal.sends_table import Outcome
from functions.dispatch import app
from infra import sesv2_shim
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


def store_campaign(tables: dict[str, str], campaign: CampaignDefinition) -> None:
    """The campaign scheduled, with its email templates (what `cadence campaign deploy` makes)."""
    for template in email_templates.templates_of(campaign, os.environ["EMAIL_TEMPLATE_PREFIX"]).values():
        stored_templates.put(template)
    campaigns_table.put_definition(
        tables["CampaignsTable"], campaign.campaign_id, campaign.model_dump(mode="json"), State.SCHEDULED
    )


@pytest.fixture
def stored_campaign(tables: dict[str, str]) -> CampaignDefinition:
    store_campaign(tables, CAMPAIGN)
    return CAMPAIGN


@pytest.fixture
def provider(aws: None) -> Iterator[ProviderFaults]:
    """SES and SNS as moto answers them, unless a test plans a fault; counts every HTTP attempt."""
    with provider_faults.injected() as faults:
        for cached in (clients.send_client, clients.client, clients.table):
            cached.cache_clear()  # the DAL's clients are built after the faults are in place
        yield faults
    for cached in (clients.send_client, clients.client, clients.table):
        cached.cache_clear()


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


NO_FAILURES = {"batchItemFailures": []}


def deliver(load_event: Any, lambda_context: Any, *messages: dict[str, Any]) -> dict[str, Any]:
    """The dispatch handler's answer to an SQS delivery of these messages (see dispatch_event)."""
    return app.lambda_handler(dispatch_event(load_event, *messages), lambda_context)  # type: ignore[no-any-return]


def request(customer_id: str, channel: str, run_id: str = "winback@2026-11-23T02:00:00Z") -> dict[str, str]:
    return {"campaign_id": "winback", "run_id": run_id, "customer_id": customer_id, "channel": channel}


def batch(customer_ids: list[str], channel: str, batch_id: str = "email-20261123T0200Z-00000") -> dict[str, Any]:
    """A batch message as the campaign run queues it (cadence.campaigns.plan.Batch.to_message)."""
    return {
        "campaign_id": "winback",
        "run_id": "winback@2026-11-23T02:00:00Z",
        "channel": channel,
        "batch_id": batch_id,
        "sends": [{"customer_id": customer_id} for customer_id in customer_ids],
    }


def ledger(tables: dict[str, str], customer_id: str) -> dict[str, dict[str, Any]]:
    """The customer's sends by "<run>#<channel>", read from the batch items: each send's settled outcome, or its
    batch's status while none is settled."""
    entries = {}
    for item in boto3.resource("dynamodb").Table(tables["SendsTable"]).scan()["Items"]:
        recipients = item.get("recipients", {})
        if customer_id not in recipients and item["batch_id"] != f"customer-{customer_id}":
            continue
        if customer_id not in recipients:
            entries[f"{item['run_id']}#{item['channel']}"] = {"status": item["status"]}
            continue
        outcome = Outcome.from_attribute(recipients[customer_id])
        fields = {
            "status": outcome.status.value,
            "reason": outcome.reason,
            "provider_message_id": outcome.message_id,
            "variant": outcome.variant,
            "offer_value": outcome.offer_value,
            "coupon_code": outcome.coupon_code,
        }
        entries[f"{item['run_id']}#{item['channel']}"] = {key: value for key, value in fields.items() if value}
    return entries


def emails_sent() -> int:
    return int(boto3.client("ses").get_send_quota()["SentLast24Hours"])


def sms_sent() -> list[tuple[str, str]]:
    return [(number, text) for number, text, *_ in sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values()]


def test_a_redelivered_send_goes_out_once(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C1")

    first = deliver(load_event, lambda_context, request("C1", "email"))
    second = deliver(load_event, lambda_context, request("C1", "email"))

    assert first == second == NO_FAILURES
    assert emails_sent() == 1
    entry = ledger(tables, "C1")["winback@2026-11-23T02:00:00Z#email"]
    assert entry["status"] == "SENT"
    assert entry["provider_message_id"]


def test_sms_is_published_to_the_profile_phone_with_the_rendered_text(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C2", phone="+8613912345678", first_name="Wang")

    response = deliver(load_event, lambda_context, request("C2", "sms"))

    assert response == NO_FAILURES
    assert sms_sent() == [("+8613912345678", "Wang, 10% off this week")]
    assert ledger(tables, "C2")["winback@2026-11-23T02:00:00Z#sms"]["status"] == "SENT"


def test_sms_to_a_country_the_stack_does_not_allow_is_rejected_and_never_published(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    # the test environment allows 86 only (SMS_ALLOWED_COUNTRY_CODES), as the template's default does
    put_profile(tables, "C2", phone="+447700900123")

    response = deliver(load_event, lambda_context, request("C2", "sms"))

    assert response == NO_FAILURES
    assert sms_sent() == []
    entry = ledger(tables, "C2")["winback@2026-11-23T02:00:00Z#sms"]
    assert (entry["status"], entry["reason"]) == ("REJECTED", "sms_country_not_allowed")


def test_nothing_is_sent_when_consent_was_withdrawn_after_planning(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C3", consent_email=False)

    deliver(load_event, lambda_context, request("C3", "email"))

    assert emails_sent() == 0
    assert ledger(tables, "C3")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SUPPRESSED"


def test_a_provider_rejection_is_recorded_and_not_retried(
    tables: dict[str, str], stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    # given no verified sender identity, SES (and moto) reject the message
    put_profile(tables, "C4")

    response = deliver(load_event, lambda_context, request("C4", "email"))

    assert response == NO_FAILURES
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


def test_a_queued_send_of_a_deleted_or_unknown_campaign_is_recorded_and_not_sent(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    put_profile(tables, "C6")
    unknown = {**request("C6", "sms"), "campaign_id": "ghost", "run_id": "ghost@2026-11-23T02:00:00Z"}
    event = dispatch_event(load_event, unknown, request("C6", "email"))

    response = app.lambda_handler(event, lambda_context)

    assert response == NO_FAILURES
    entries = ledger(tables, "C6")
    assert entries["ghost@2026-11-23T02:00:00Z#sms"]["status"] == "SUPPRESSED"
    assert entries["ghost@2026-11-23T02:00:00Z#sms"]["reason"] == "campaign_not_defined"
    assert entries["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"
    assert sms_sent() == []


def test_the_whole_batch_is_retried_when_every_record_fails(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
) -> None:
    put_profile(tables, "C8")
    provider.always("sesv2.SendBulkEmail", provider_faults.rest_json_error("TooManyRequestsException", 429))

    with pytest.raises(BatchProcessingError):
        deliver(load_event, lambda_context, request("C8", "email"))

    assert ledger(tables, "C8")["winback@2026-11-23T02:00:00Z#email"]["status"] == "FAILED"


def test_logs_never_carry_the_address_or_phone(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    captured_logs: io.StringIO,
) -> None:
    put_profile(tables, "C7", email="private.person@example.com", phone="+8613700000007", consent_sms=False)

    deliver(load_event, lambda_context, request("C7", "email"), request("C7", "sms"))

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
        ("sesv2.SendBulkEmail", "SomethingNew", 503),  # an unknown code: transient by its status alone
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
    assert deliver(load_event, lambda_context, request("T1", channel)) == NO_FAILURES
    assert ledger(tables, "T1")[f"winback@2026-11-23T02:00:00Z#{channel}"]["status"] == "SENT"
    assert emails_sent() == 1
    assert len(sms_sent()) == 1


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [("sns.Publish", "InvalidParameter", 400), ("sesv2.SendBulkEmail", "MessageRejected", 400)],
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

    response = deliver(load_event, lambda_context, request("T2", channel))

    assert response == NO_FAILURES
    entry = ledger(tables, "T2")[f"winback@2026-11-23T02:00:00Z#{channel}"]
    assert entry["status"] == "REJECTED"
    assert code in entry["reason"]


def metrics_emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """The metrics the invocations so far flushed (Powertools prints EMF documents to stdout)."""
    totals: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            name = definition["Name"]
            totals[name] = totals.get(name, 0.0) + sum(document[name])
    return totals


def test_a_send_whose_answer_never_came_is_recorded_in_doubt_and_not_sent_again_when_redelivered(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    captured_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given SNS took the request but its answer never arrived (it may well have sent the SMS)
    put_profile(tables, "U1", phone="+8613700000042")
    provider.always("sns.Publish", provider_faults.read_timeout)

    response = deliver(load_event, lambda_context, request("U1", "sms"))

    # then it was tried once, is not retried by SQS either, and the ledger says the outcome is unknown
    assert response == NO_FAILURES
    assert provider.attempts["sns.Publish"] == 1
    entry = ledger(tables, "U1")["winback@2026-11-23T02:00:00Z#sms"]
    assert entry["status"] == "IN_DOUBT"
    assert entry["reason"].endswith("read_timeout")
    assert metrics_emitted(capsys).get("SendsInDoubt") == 1

    # when the same send is delivered again, with SNS answering now
    provider.clear()
    again = deliver(load_event, lambda_context, request("U1", "sms"))

    # then nothing is published: a second SMS is worse than a missing one
    assert again == NO_FAILURES
    assert provider.attempts["sns.Publish"] == 1
    assert sms_sent() == []
    assert ledger(tables, "U1")["winback@2026-11-23T02:00:00Z#sms"]["status"] == "IN_DOUBT"
    logged = captured_logs.getvalue()
    assert "U1" in logged
    assert "13700000042" not in logged


@pytest.mark.parametrize(
    "fault",
    [
        provider_faults.connect_timeout,
        provider_faults.no_endpoint,
        provider_faults.rest_json_error("TooManyRequestsException", 429),
        provider_faults.rest_json_error("ServiceUnavailable", 503),
    ],
    ids=["connect-timeout", "no-endpoint", "throttled", "unavailable"],
)
def test_a_send_is_attempted_once_per_delivery_and_left_to_sqs_when_it_provably_failed(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    fault: provider_faults.Fault,
) -> None:
    # given SES keeps failing in a way that shows the email was not sent
    put_profile(tables, "U2")
    provider.always("sesv2.SendBulkEmail", fault)
    event = dispatch_event(load_event, request("U2", "email"), request("U2", "sms"))

    response = app.lambda_handler(event, lambda_context)

    # then the SDK did not retry within the invocation (SQS redelivers instead) and the ledger lets the retry in
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert provider.attempts["sesv2.SendBulkEmail"] == 1
    assert ledger(tables, "U2")["winback@2026-11-23T02:00:00Z#email"]["status"] == "FAILED"
    provider.clear()
    assert deliver(load_event, lambda_context, request("U2", "email")) == NO_FAILURES
    assert emails_sent() == 1
    assert ledger(tables, "U2")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"


class ClockedContext:
    """The test context, with the invocation's remaining time computed by the test."""

    def __init__(self, context: Any, remaining_ms: Callable[[], int]) -> None:
        self._context = context
        self._remaining_ms = remaining_ms

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms()


def test_records_are_left_unclaimed_for_redelivery_when_the_invocation_is_running_out_of_time(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a batch of three where the first send leaves only 15 of the function's 60 seconds
    for customer_id in ("R1", "R2", "R3"):
        put_profile(tables, customer_id)
    event = dispatch_event(load_event, *(request(customer_id, "email") for customer_id in ("R1", "R2", "R3")))
    context = ClockedContext(lambda_context, lambda: 60_000 - 45_000 * emails_sent())

    response = app.lambda_handler(event, context)

    # then the two records not started are reported, so SQS redelivers them, and nothing claims them meanwhile
    assert response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"][1:]]}
    assert emails_sent() == 1
    assert ledger(tables, "R1")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"
    assert ledger(tables, "R2") == ledger(tables, "R3") == {}
    assert metrics_emitted(capsys).get("SendsDeferred") == 2
    # and a redelivery with time to spare sends them
    assert deliver(load_event, lambda_context, *(request(c, "email") for c in ("R2", "R3"))) == NO_FAILURES
    assert emails_sent() == 3


def test_queued_sends_of_a_campaign_cancelled_after_planning_end_cancelled(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    # given the run was planned, then the marketer cancelled the campaign
    put_profile(tables, "K3")
    campaign_control.cancel(CAMPAIGN.campaign_id, config.campaign_settings())

    response = app.lambda_handler(
        dispatch_event(load_event, request("K3", "email"), request("K3", "sms")), lambda_context
    )

    # then nothing goes out, and both sends end in the final CANCELLED state, not as suppressed
    assert response == NO_FAILURES
    assert emails_sent() == 0
    assert sms_sent() == []
    entries = ledger(tables, "K3")
    assert {(entry["status"], entry["reason"]) for entry in entries.values()} == {("CANCELLED", "campaign_cancelled")}
    assert len(entries) == 2


def test_queued_sends_of_a_campaign_paused_after_planning_are_held_not_sent_nor_dropped(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given the run was planned, then the marketer paused the campaign
    put_profile(tables, "K1")
    campaign_control.pause(CAMPAIGN.campaign_id, config.campaign_settings())

    response = app.lambda_handler(
        dispatch_event(load_event, request("K1", "email"), request("K1", "sms")), lambda_context
    )

    # then nothing goes out, and every queued send waits HELD in the ledger for the resume to queue it again
    # (tests/unit/functions/test_run_completion.py follows them through the resume)
    assert response == NO_FAILURES
    assert emails_sent() == 0
    assert sms_sent() == []
    entries = ledger(tables, "K1")
    assert {(entry["status"], entry["reason"]) for entry in entries.values()} == {("HELD", "campaign_paused")}
    assert len(entries) == 2
    assert metrics_emitted(capsys).get("SendsHeld") == 2
    stored = campaigns_table.get_campaign(tables["CampaignsTable"], CAMPAIGN.campaign_id)
    assert stored is not None and stored.held_runs == {"winback@2026-11-23T02:00:00Z"}


def test_queued_sends_wait_for_a_campaign_switched_off_before_the_lifecycle_existed(
    tables: dict[str, str], ses_sender: str, load_event: Any, lambda_context: Any
) -> None:
    # given a campaign item stored before lifecycle states: only its active attribute, switched off (paused)
    put_profile(tables, "K2")
    boto3.resource("dynamodb").Table(tables["CampaignsTable"]).put_item(
        Item={
            "campaign_id": CAMPAIGN.campaign_id,
            "record_key": "DEFINITION",
            "definition": json.dumps(CAMPAIGN.model_dump(mode="json")),
            "active": False,
        }
    )

    response = deliver(load_event, lambda_context, request("K2", "email"))

    assert response == NO_FAILURES
    assert emails_sent() == 0
    assert ledger(tables, "K2")["winback@2026-11-23T02:00:00Z#email"]["status"] == "HELD"


def test_the_variant_message_carries_the_offer_and_coupon_and_the_ledger_keeps_the_code(
    tables: dict[str, str], provider: ProviderFaults, load_event: Any, lambda_context: Any
) -> None:
    # given a campaign with an A/B arm whose SMS names the offer and the recipient's coupon code
    campaign = CampaignDefinition.model_validate(
        {
            **CAMPAIGN.model_dump(mode="json"),
            "channels": ["sms"],
            "variants": [
                {"name": "a", "weight": 1},
                {"name": "b", "weight": 1, "sms": {"text": "{first_name}: {offer_value}% off, code {coupon_code}"}},
            ],
        }
    )
    store_campaign(tables, campaign)
    put_profile(tables, "V1")
    planned = {**request("V1", "sms"), "variant": "b", "offer_value": "15", "coupon_code": "K7QW2M9XR4TZ"}

    deliver(load_event, lambda_context, planned)

    assert sms_sent() == [("+8613800138000", "Li: 15% off, code K7QW2M9XR4TZ")]
    (sent,) = ledger(tables, "V1").values()
    assert (sent["status"], sent["variant"], sent["coupon_code"]) == ("SENT", "b", "K7QW2M9XR4TZ")


def expire_lease(tables: dict[str, str], customer_id: str, channel: str) -> None:
    """Time passes: the send's lease (the function's timeout) has run out."""
    boto3.resource("dynamodb").Table(tables["SendsTable"]).update_item(
        Key={"customer_id": "BATCH#winback@2026-11-23T02:00:00Z", "send_key": f"{channel}#customer-{customer_id}"},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": "2026-01-01T00:00:00+00:00"},
    )


def test_a_send_whose_worker_died_reading_before_its_claim_is_sent_by_the_next_delivery_at_once(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
) -> None:
    # given the worker died reading the campaign: what sending needs is read before the batch is claimed
    put_profile(tables, "L1")
    provider.once("dynamodb.GetItem", provider_faults.killed)
    with pytest.raises(provider_faults.WorkerKilled):
        deliver(load_event, lambda_context, request("L1", "email"))
    assert ledger(tables, "L1") == {}  # nothing claimed, so nothing to wait for

    # when SQS redelivers it, it is sent at once, without waiting for a lease
    assert deliver(load_event, lambda_context, request("L1", "email")) == NO_FAILURES
    assert emails_sent() == 1
    assert ledger(tables, "L1")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"


def test_a_batch_of_a_paused_campaign_whose_worker_died_after_claiming_it_is_handed_back_until_its_lease_expired(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a paused campaign's batch, CLAIMED (it will not send), and its worker died before settling it HELD
    campaign_control.pause(CAMPAIGN.campaign_id, config.campaign_settings())
    put_profile(tables, "L1")
    provider.once("dynamodb.UpdateItem", provider_faults.KILLED_AFTER)
    with pytest.raises(provider_faults.WorkerKilled):
        deliver(load_event, lambda_context, request("L1", "email"))
    assert ledger(tables, "L1")["winback@2026-11-23T02:00:00Z#email"]["status"] == "CLAIMED"

    # when SQS redelivers it while the dead worker's lease still runs, it is handed back (not dropped)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        deliver(load_event, lambda_context, request("L1", "email"))
    assert metrics_emitted(capsys).get("SendsLeaseHeld") == 1

    # and once the lease ran out, the next delivery takes the claim over and holds the send: nothing was sent
    expire_lease(tables, "L1", "email")
    assert deliver(load_event, lambda_context, request("L1", "email")) == NO_FAILURES
    assert emails_sent() == 0
    assert ledger(tables, "L1")["winback@2026-11-23T02:00:00Z#email"]["status"] == "HELD"


def test_a_send_whose_worker_died_during_the_provider_call_is_in_doubt_and_never_sent_again(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given SES accepted the email and the worker died before reading the answer
    put_profile(tables, "L2")
    provider.once("sesv2.SendBulkEmail", provider_faults.KILLED_AFTER)
    with pytest.raises(provider_faults.WorkerKilled):
        deliver(load_event, lambda_context, request("L2", "email"))
    assert emails_sent() == 1

    # when redelivered within the lease it waits; after the lease it is settled in doubt, and never sent again
    with pytest.raises(BatchProcessingError, match="All records failed"):
        deliver(load_event, lambda_context, request("L2", "email"))
    expire_lease(tables, "L2", "email")
    for _ in range(2):
        assert deliver(load_event, lambda_context, request("L2", "email")) == NO_FAILURES

    assert emails_sent() == 1
    assert provider.attempts["sesv2.SendBulkEmail"] == 1
    entry = ledger(tables, "L2")["winback@2026-11-23T02:00:00Z#email"]
    assert (entry["status"], entry["reason"]) == ("IN_DOUBT", "lease_expired_while_sending")
    assert metrics_emitted(capsys).get("SendsInDoubt") == 1


def test_a_claim_is_given_back_unsent_when_the_reads_left_too_little_time_to_send_and_settle(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
) -> None:
    # given the claim starts with a minute left, but the campaign and profile reads leave 15 s (budget: 19 s)
    put_profile(tables, "L3")
    context = ClockedContext(lambda_context, lambda: 15_000 if provider.attempts["dynamodb.BatchGetItem"] else 60_000)

    with pytest.raises(BatchProcessingError, match="All records failed"):
        app.lambda_handler(dispatch_event(load_event, request("L3", "email")), context)

    # then SES is not called, the send is FAILED (claimable) and SQS redelivers it
    assert provider.attempts["sesv2.SendBulkEmail"] == 0
    entry = ledger(tables, "L3")["winback@2026-11-23T02:00:00Z#email"]
    assert (entry["status"], entry["reason"]) == ("FAILED", "deferred")
    assert deliver(load_event, lambda_context, request("L3", "email")) == NO_FAILURES
    assert emails_sent() == 1


def test_ledger_retries_are_bounded_and_a_send_whose_outcome_was_not_recorded_is_not_sent_again(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
) -> None:
    # given DynamoDB throttles every write after the batch was claimed SENDING
    put_profile(tables, "L4")
    provider.once("dynamodb.UpdateItem", provider_faults.ANSWERED)  # the claim, as SENDING
    for _ in range(10):
        provider.once("dynamodb.UpdateItem", provider_faults.json_error("ProvisionedThroughputExceededException", 400))

    with pytest.raises(BatchProcessingError, match="All records failed"):
        deliver(load_event, lambda_context, request("L4", "email"))

    # then botocore gave up after the ledger's three attempts (not the default client's eight), the record is
    # left for redelivery, and a redelivery after the lease settles it in doubt instead of sending again
    assert provider.attempts["dynamodb.UpdateItem"] == 1 + clients.LEDGER_BUDGET.attempts
    provider.clear()
    expire_lease(tables, "L4", "email")
    assert deliver(load_event, lambda_context, request("L4", "email")) == NO_FAILURES
    assert emails_sent() == 1
    assert ledger(tables, "L4")["winback@2026-11-23T02:00:00Z#email"]["status"] == "IN_DOUBT"


@pytest.fixture
def no_throttle_rounds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Destinations SES throttled are FAILED at once (not sent again within the invocation)."""
    monkeypatch.setenv("DISPATCH_THROTTLE_ROUNDS", "0")
    config.dispatch_settings.cache_clear()
    yield
    config.dispatch_settings.cache_clear()


def ses_takes_one_message_then_throttles() -> None:
    """The shim's send rate leaves room for one message now (a bucket of one, refilled in a millisecond)."""
    sesv2_shim.SHIM.configure(max_send_rate=1000.0, burst=1)


def test_only_the_throttled_sends_of_a_batch_are_sent_again_and_none_twice(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    no_throttle_rounds: None,
) -> None:
    # given a batch of four (one without consent) where SES takes the first email and throttles the others
    for customer_id in ("B1", "B2", "B3"):
        put_profile(tables, customer_id)
    put_profile(tables, "B4", consent_email=False)
    event = dispatch_event(load_event, batch(["B1", "B2", "B3", "B4"], "email"), request("B9", "sms"))
    put_profile(tables, "B9")
    ses_takes_one_message_then_throttles()

    response = app.lambda_handler(event, lambda_context)

    # then the batch is reported for redelivery with the throttled sends FAILED and the others settled
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    entries = {c: ledger(tables, c)["winback@2026-11-23T02:00:00Z#email"] for c in ("B1", "B2", "B3", "B4")}
    assert {c: entry["status"] for c, entry in entries.items()} == {
        "B1": "SENT",
        "B2": "FAILED",
        "B3": "FAILED",
        "B4": "SUPPRESSED",
    }
    assert entries["B2"]["reason"] == "ACCOUNT_THROTTLED"
    assert emails_sent() == 1

    # and the redelivered batch sends only the failed ones, in one call; a further repeat sends nothing
    sesv2_shim.SHIM.configure()
    for _ in range(2):
        assert deliver(load_event, lambda_context, batch(["B1", "B2", "B3", "B4"], "email")) == NO_FAILURES
    assert sorted(m.destinations["ToAddresses"][0] for m in sesv2_shim.SHIM.messages) == [
        "b2@example.com",
        "b3@example.com",
    ]
    assert emails_sent() == 3
    assert provider.attempts["sesv2.SendBulkEmail"] == 2
    assert ledger(tables, "B2")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"
    assert ledger(tables, "B4")["winback@2026-11-23T02:00:00Z#email"]["reason"] == "no_consent_or_address"


def test_destinations_ses_throttled_are_sent_again_within_the_invocation_once_each(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
) -> None:
    # given SES lets one message through at a time (its bucket refills within milliseconds)
    customer_ids = ["P1", "P2", "P3"]
    for customer_id in customer_ids:
        put_profile(tables, customer_id)
    ses_takes_one_message_then_throttles()

    response = deliver(load_event, lambda_context, batch(customer_ids, "email"))

    # then the worker slowed down and sent the throttled ones again itself: every one sent, exactly once
    assert response == NO_FAILURES
    assert sorted(m.destinations["ToAddresses"][0] for m in sesv2_shim.SHIM.messages) == [
        "p1@example.com",
        "p2@example.com",
        "p3@example.com",
    ]
    assert provider.attempts["sesv2.SendBulkEmail"] == 3
    assert {ledger(tables, c)["winback@2026-11-23T02:00:00Z#email"]["status"] for c in customer_ids} == {"SENT"}


def deliver_with_the_second_email_throttled(
    tables: dict[str, str], load_event: Any, lambda_context: Any, customer_ids: list[str]
) -> None:
    """Deliver one email batch of these customers: SES accepts the first send and throttles the others (no retry
    within the invocation: use with the no_throttle_rounds fixture)."""
    for customer_id in customer_ids:
        put_profile(tables, customer_id)
    ses_takes_one_message_then_throttles()
    with pytest.raises(BatchProcessingError):
        deliver(load_event, lambda_context, batch(customer_ids, "email"))
    sesv2_shim.SHIM.configure()


def test_a_batch_cut_off_mid_send_is_in_doubt_only_for_the_sends_not_settled_before(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    provider: ProviderFaults,
    no_throttle_rounds: None,
) -> None:
    # given a batch whose first delivery left one send FAILED, and whose redelivery died while sending it
    deliver_with_the_second_email_throttled(tables, load_event, lambda_context, ["D1", "D2"])
    provider.once("sesv2.SendBulkEmail", provider_faults.KILLED_AFTER)
    with pytest.raises(provider_faults.WorkerKilled):
        deliver(load_event, lambda_context, batch(["D1", "D2"], "email"))

    # when it is delivered again after the lease
    boto3.resource("dynamodb").Table(tables["SendsTable"]).update_item(
        Key={"customer_id": "BATCH#winback@2026-11-23T02:00:00Z", "send_key": "email#email-20261123T0200Z-00000"},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": "2026-01-01T00:00:00+00:00"},
    )
    deliver(load_event, lambda_context, batch(["D1", "D2"], "email"))

    # then the send settled before keeps its outcome, the one cut off is in doubt, and nothing went out twice
    assert ledger(tables, "D1")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"
    assert ledger(tables, "D2")["winback@2026-11-23T02:00:00Z#email"]["status"] == "IN_DOUBT"
    assert emails_sent() == 2


def test_a_retry_naming_only_the_failed_sends_of_a_batch_keeps_every_other_outcome(
    tables: dict[str, str],
    ses_sender: str,
    stored_campaign: CampaignDefinition,
    load_event: Any,
    lambda_context: Any,
    no_throttle_rounds: None,
) -> None:
    # given a batch of two whose second email was throttled
    deliver_with_the_second_email_throttled(tables, load_event, lambda_context, ["X1", "X2"])

    # when `cadence campaign retry-failed` queues the batch with only the failed send
    response = deliver(load_event, lambda_context, batch(["X2"], "email"))

    # then that one is sent and the first keeps its outcome (one email each)
    assert response == NO_FAILURES
    assert emails_sent() == 2
    assert ledger(tables, "X1")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"
    assert ledger(tables, "X2")["winback@2026-11-23T02:00:00Z#email"]["status"] == "SENT"


def test_an_email_is_sent_from_its_template_with_escaped_html_and_one_click_unsubscribe_headers(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    # given a customer whose first name is markup
    put_profile(tables, "H1", first_name="<script>alert(1)</script>", city="O'Fallon")

    deliver(load_event, lambda_context, request("H1", "email"))

    (message,) = sesv2_shim.SHIM.messages
    # then the HTML part carries the name escaped, the plain parts as written
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "O&#x27;Fallon" in message.html
    assert message.subject == "Hello <script>alert(1)</script>"
    assert message.body.startswith("Dear <script>alert(1)</script> from O'Fallon, we miss you.")
    # and the message went through the stack's configuration set, with RFC 8058 headers naming a signed link
    assert message.configuration_set == os.environ["SES_CONFIGURATION_SET"]
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message.headers["List-Unsubscribe"].removeprefix("<").removesuffix(">")
    assert url.startswith(os.environ["UNSUBSCRIBE_BASE_URL"] + "?token=")
    assert url in message.body
    key = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["UNSUBSCRIBE_SECRET_ARN"])
    claims = unsubscribe.verify(
        key["SecretString"].encode(), parse_qs(urlsplit(url).query)["token"][0], datetime.now(UTC)
    )
    assert (claims.customer_id, claims.channel, claims.campaign_id, claims.run_id) == (
        "H1",
        "email",
        "winback",
        "winback@2026-11-23T02:00:00Z",
    )
    sent = ledger(tables, "H1")["winback@2026-11-23T02:00:00Z#email"]
    assert (sent["status"], sent["provider_message_id"]) == ("SENT", message.id)


def test_a_batch_of_two_variants_sends_one_bulk_call_per_variant_template(
    tables: dict[str, str], ses_sender: str, provider: ProviderFaults, load_event: Any, lambda_context: Any
) -> None:
    # given a campaign whose arm b has its own email
    campaign = CampaignDefinition.model_validate(
        {
            **CAMPAIGN.model_dump(mode="json"),
            "variants": [
                {"name": "a", "weight": 1},
                {"name": "b", "weight": 1, "email": {"subject": "B {first_name}", "body": "{offer_value}% off"}},
            ],
        }
    )
    store_campaign(tables, campaign)
    for customer_id in ("W1", "W2", "W3"):
        put_profile(tables, customer_id)
    message = batch(["W1", "W2", "W3"], "email")
    message["sends"] = [
        {"customer_id": "W1", "variant": "a"},
        {"customer_id": "W2", "variant": "b", "offer_value": "15"},
        {"customer_id": "W3", "variant": "a"},
    ]

    assert deliver(load_event, lambda_context, message) == NO_FAILURES

    # then each arm's recipients went out in one call with that arm's template
    assert provider.attempts["sesv2.SendBulkEmail"] == 2
    by_address = {m.destinations["ToAddresses"][0]: m for m in sesv2_shim.SHIM.messages}
    assert by_address["w2@example.com"].subject == "B Li"
    assert by_address["w2@example.com"].body.startswith("15% off")
    assert by_address["w1@example.com"].template == by_address["w3@example.com"].template
    assert by_address["w1@example.com"].template != by_address["w2@example.com"].template


def test_storing_a_campaign_makes_its_templates_an_edit_makes_new_ones_and_cancel_deletes_them(
    tables: dict[str, str],
) -> None:
    settings = config.campaign_settings()
    sesv2 = boto3.client("sesv2")

    def names() -> set[str]:
        from moto.ses.models import ses_backends  # noqa: PLC0415 - SESv2 has no ListEmailTemplates in the shim

        return set(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].templates)

    campaign_control.store(CAMPAIGN, settings)
    first = names()
    (name,) = first
    assert sesv2.get_email_template(TemplateName=name)["TemplateContent"]["Subject"] == "Hello {{first_name}}"

    # when the email is edited and stored again: a new template, the old one kept for batches still using it
    edited = CAMPAIGN.model_copy(update={"email": CAMPAIGN.email.model_copy(update={"subject": "Hi {first_name}"})})
    campaign_control.store(edited, settings)
    assert len(names()) == 2
    assert first < names()

    # and cancel deletes the current campaign's template
    campaign_control.cancel(CAMPAIGN.campaign_id, settings)
    assert names() == first


def test_a_send_planned_longer_ago_than_the_suppression_log_keeps_reads_the_profile_not_what_it_carries(
    tables: dict[str, str], ses_sender: str, stored_campaign: CampaignDefinition, load_event: Any, lambda_context: Any
) -> None:
    # given two batches carrying a consenting contact, the profile having withdrawn consent since
    put_profile(tables, "P1", consent_email=False)
    carried = {"email": "p1@example.com", "consent_email": True, "first_name": "Li"}
    fired_long_ago = (datetime.now(UTC) - timedelta(days=suppression_table.LOG_DAYS + 5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old_run, new_run = f"winback@{fired_long_ago}", "winback@" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for run_id in (old_run, new_run):
        message = batch(["P1"], "email") | {"run_id": run_id}
        message["sends"][0]["contact"] = carried
        deliver(load_event, lambda_context, message)

    # then the batch planned before the log's horizon reads the profile and is suppressed; the recent one trusts
    # its plan and the log, which holds no withdrawal (the profile was changed behind ingest's back)
    assert ledger(tables, "P1")[f"{old_run}#email"]["status"] == "SUPPRESSED"
    assert ledger(tables, "P1")[f"{new_run}#email"]["status"] == "SENT"
    assert emails_sent() == 1
