"""A run from its firing to its last settled send, through the campaign and dispatch handlers and the dispatch
queue: completion, pause holding queued sends until resume, cancel ending them, and sends failing for good."""

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from cadence import campaign_control, config, run_report
from cadence.campaigns import CampaignDefinition
from cadence.dal import campaigns_table, clients, suppression_table
from cadence.ingest import merge
from functions.campaign import app as campaign_app
from functions.dispatch import app as dispatch_app
from infra import sesv2_shim
from tests.unit.functions import provider_faults
from tests.unit.functions.provider_faults import ProviderFaults

CAMPAIGN = {
    "campaign_id": "winback",
    "name": "Win back",
    "channels": ["email", "sms"],
    "holdout_percent": 10,
    "email": {"subject": "Hello {first_name}", "body": "We miss you"},
    "sms": {"text": "We miss you"},
    "schedule": {"cron": "0 2 * * ? *"},
}
FIRING = "2026-11-23T02:00:00Z"
RUN_ID = f"winback@{FIRING}"
# The template's dispatch queue: after this many receives a message goes to the dead-letter queue.
MAX_RECEIVES = 5


@pytest.fixture
def stack(
    tables: dict[str, str], queues: dict[str, str], data_bucket: str, ses_sender: str, release_settings: str
) -> Iterator[None]:
    """The tables, queues, bucket and schedule group, 60 scored customers with consent to both channels, and the
    campaign stored with a daily schedule."""
    dynamodb = boto3.resource("dynamodb")
    with (
        dynamodb.Table(tables["ProfilesTable"]).batch_writer() as profiles,
        dynamodb.Table(tables["ScoresTable"]).batch_writer() as scores,
    ):
        for i in range(60):
            customer_id = f"C{i:04d}"
            profiles.put_item(
                Item={
                    "customer_id": customer_id,
                    "first_name": f"N{i}",
                    "email": f"{customer_id.lower()}@example.com",
                    "phone": f"+86138{i:08d}",
                    "consent_email": True,
                    "consent_sms": True,
                }
            )
            scores.put_item(Item={"customer_id": customer_id, "decile": 1 + i % 10, "score": Decimal("0.5")})
    campaign_control.store(CampaignDefinition.model_validate(CAMPAIGN), config.campaign_settings())
    yield


@pytest.fixture
def provider(aws: None) -> Iterator[ProviderFaults]:
    with provider_faults.injected() as faults:
        for cached in (clients.send_client, clients.client, clients.table):
            cached.cache_clear()
        yield faults
    for cached in (clients.send_client, clients.client, clients.table):
        cached.cache_clear()


def fire(lambda_context: Any) -> dict[str, Any]:
    return campaign_app.lambda_handler({"campaign_id": "winback", "scheduled_time": FIRING}, lambda_context)["runs"][0]


def drain(queues: dict[str, str], lambda_context: Any, rounds: int = 10) -> int:
    """Deliver the dispatch queue to the dispatch handler as SQS would, until it is empty (each failed record
    comes back at once with its receive count raised; after MAX_RECEIVES it is dropped, as to the DLQ).
    Returns how many messages went to the dead-letter queue."""
    sqs = boto3.client("sqs")
    url = queues["DISPATCH_QUEUE_URL"]
    dead = 0
    for _ in range(rounds * MAX_RECEIVES):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return dead
        event = {"Records": [_record(message) for message in messages]}
        try:
            response = dispatch_app.lambda_handler(event, lambda_context)
            failures = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        except BatchProcessingError:  # every record failed: the invocation fails and SQS redelivers them all
            failures = {message["MessageId"] for message in messages}
        for message in messages:
            receives = int(message["Attributes"]["ApproximateReceiveCount"])
            if message["MessageId"] in failures and receives < MAX_RECEIVES:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
                continue
            dead += message["MessageId"] in failures
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the dispatch queue never drained")


def _record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"],
            "SentTimestamp": message["Attributes"]["SentTimestamp"],
            "SenderId": "123456789012",
            "ApproximateFirstReceiveTimestamp": message["Attributes"]["ApproximateFirstReceiveTimestamp"],
        },
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:test-dispatch",
        "awsRegion": "us-east-1",
    }


def run_item() -> dict[str, Any]:
    run = campaigns_table.get_run(config.campaign_settings().campaigns_table, "winback", RUN_ID)
    assert run is not None
    return run


def counters() -> dict[str, int]:
    settings = config.campaign_settings()
    return run_report.run_counters(settings.sends_table, RUN_ID, run_report.queued_sends(run_item()))


def emails_by_recipient() -> Counter[str]:
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    return Counter(address for message in sent for address in message.destinations["ToAddresses"])


def sms_by_number() -> Counter[str]:
    return Counter(number for number, *_ in sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values())


def assert_each_sent_once(queued: int) -> None:
    """Every queued send reached its customer, and none twice."""
    emails, texts = emails_by_recipient(), sms_by_number()
    assert sum(emails.values()) + sum(texts.values()) == queued
    assert set(emails.values()) | set(texts.values()) == {1}


def take_one_batch(queues: dict[str, str]) -> dict[str, Any]:
    """Receive one batch message and keep it out of the queue for ten minutes (a test delivers it by hand)."""
    sqs = boto3.client("sqs")
    [message] = sqs.receive_message(
        QueueUrl=queues["DISPATCH_QUEUE_URL"], MaxNumberOfMessages=1, VisibilityTimeout=600, AttributeNames=["All"]
    )["Messages"]
    return message


def quiet_for_a_lease(*attributes: str) -> None:
    """Time passes: the run's `attributes` (settled_at: the counter's last move, ...) are a lease and a second old."""
    lease = config.dispatch_settings().dispatch_lease_seconds
    names = ", ".join(f"{name} = :at" for name in attributes)
    boto3.resource("dynamodb").Table(config.campaign_settings().campaigns_table).update_item(
        Key={"campaign_id": "winback", "record_key": f"RUN#{RUN_ID}"},
        UpdateExpression=f"SET {names}",
        ExpressionAttributeValues={":at": (datetime.now(UTC) - timedelta(seconds=lease + 1)).isoformat()},
    )


def settle_and_die_before_counting(message: dict[str, Any], lambda_context: Any, provider: ProviderFaults) -> None:
    """Deliver the message to a worker that claims and settles its batch, then dies before counting it."""
    provider.once("dynamodb.UpdateItem", provider_faults.ANSWERED)  # the claim, as SENDING
    provider.once("dynamodb.UpdateItem", provider_faults.KILLED_AFTER)  # the settle
    with pytest.raises(provider_faults.WorkerKilled):
        dispatch_app.lambda_handler({"Records": [_redelivery(message, 2)]}, lambda_context)
    provider.clear()


def test_a_run_completes_when_its_last_send_settles_with_counters_adding_up_to_what_it_queued(
    stack: None, queues: dict[str, str], lambda_context: Any
) -> None:
    outcome = fire(lambda_context)
    queued = outcome["sends_queued"]
    assert queued == 2 * (60 - outcome["holdout_size"])
    assert run_item()["status"] == "FANNED_OUT"

    drain(queues, lambda_context)

    run = run_item()
    assert run["status"] == "COMPLETED"
    assert run["final_counters"] == {**dict.fromkeys(run_report.OUTCOMES, 0), "held": 0, "sent": queued, "unsettled": 0}
    assert run["sends_settled"] == queued
    assert_each_sent_once(queued)


def test_pausing_holds_the_queued_sends_and_resuming_sends_each_once(
    stack: None, queues: dict[str, str], lambda_context: Any
) -> None:
    # given a run fanned out, then the marketer pauses the campaign before dispatch reaches the queue
    queued = fire(lambda_context)["sends_queued"]
    settings = config.campaign_settings()
    campaign_control.pause("winback", settings)

    drain(queues, lambda_context)

    # then nothing went out, nothing was dropped: every send waits HELD, and the run is not complete
    assert emails_by_recipient() == Counter()
    assert sms_by_number() == Counter()
    assert counters() == {**dict.fromkeys(run_report.OUTCOMES, 0), "held": queued, "unsettled": 0}
    assert run_item()["status"] == "FANNED_OUT"

    # when it is resumed, and the held sends are delivered (twice over, as SQS may)
    campaign_control.resume("winback", settings)
    bodies = _peek(queues)
    assert sum(len(body["sends"]) for body in bodies) == queued
    drain(queues, lambda_context)
    run_report.release_held(settings, "winback")  # a repeated resume finds nothing left to queue
    boto3.client("sqs").send_message(QueueUrl=queues["DISPATCH_QUEUE_URL"], MessageBody=json.dumps(bodies[0]))
    drain(queues, lambda_context)

    # then each customer got each message exactly once, and the run completed with every send sent
    assert_each_sent_once(queued)
    assert run_item()["status"] == "COMPLETED"
    assert run_item()["final_counters"]["sent"] == queued


def _peek(queues: dict[str, str]) -> list[dict[str, Any]]:
    """The bodies of the messages waiting on the dispatch queue, left there (visible again at once)."""
    sqs = boto3.client("sqs")
    url = queues["DISPATCH_QUEUE_URL"]
    bodies, handles = [], []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
        "Messages", []
    ):
        bodies += [json.loads(message["Body"]) for message in messages]
        handles += [message["ReceiptHandle"] for message in messages]
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return bodies


def test_cancelling_a_paused_campaign_ends_its_held_sends_cancelled_and_completes_the_run(
    stack: None, queues: dict[str, str], lambda_context: Any
) -> None:
    queued = fire(lambda_context)["sends_queued"]
    settings = config.campaign_settings()
    campaign_control.pause("winback", settings)
    drain(queues, lambda_context)

    campaign_control.cancel("winback", settings)
    drain(queues, lambda_context)

    assert emails_by_recipient() == Counter()
    assert run_item()["status"] == "COMPLETED"
    assert run_item()["final_counters"]["cancelled"] == queued


def test_a_resume_that_lands_while_dispatch_is_holding_a_batch_loses_none_of_it(
    stack: None, queues: dict[str, str], lambda_context: Any
) -> None:
    # given the campaign paused, and the marketer resuming it just as dispatch holds the first batch: after
    # dispatch read the paused state, before it noted the run as held (so the resume finds nothing to queue)
    queued = fire(lambda_context)["sends_queued"]
    settings = config.campaign_settings()
    campaign_control.pause("winback", settings)
    client = clients.table(settings.campaigns_table).meta.client
    resumed = []

    def resume_first(params: dict[str, Any], **_: Any) -> None:
        if str(params.get("UpdateExpression", "")).startswith("ADD held_runs") and not resumed:
            resumed.append(campaign_control.resume("winback", settings))

    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", resume_first)
    try:
        drain(queues, lambda_context)
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", resume_first)
    drain(queues, lambda_context)  # whatever was held before the resume and queued by it

    # then every send went out once all the same
    assert resumed
    assert_each_sent_once(queued)
    assert run_item()["status"] == "COMPLETED"


def test_sends_failing_on_their_last_delivery_complete_the_run_as_failed_and_retry_failed_reopens_it(
    stack: None, queues: dict[str, str], lambda_context: Any, provider: ProviderFaults
) -> None:
    # given SNS throttling every SMS for as long as SQS redelivers (then the batches go to the dead-letter queue)
    provider.always("sns.Publish", provider_faults.error("sns", "Throttling", 400))
    outcome = fire(lambda_context)
    sms_queued = outcome["sends_by_channel"]["sms"]

    dead = drain(queues, lambda_context)

    # then the run completed: emails sent, every SMS failed (none lost, none in limbo)
    assert dead > 0
    run = run_item()
    assert run["status"] == "COMPLETED"
    assert run["final_counters"]["failed"] == sms_queued
    assert run["final_counters"]["sent"] == outcome["sends_queued"] - sms_queued

    # when SNS recovers and the operator retries the failed sends, the run reopens and completes again
    provider.clear()
    assert run_report.retry_failed(config.campaign_settings(), "winback", RUN_ID) == sms_queued
    assert run_item()["status"] == "FANNED_OUT"
    drain(queues, lambda_context)
    run = run_item()
    assert run["status"] == "COMPLETED"
    assert run["final_counters"]["sent"] == outcome["sends_queued"]
    assert set(sms_by_number().values()) == {1}


def test_a_run_completes_when_a_worker_died_between_settling_a_batch_and_counting_it(
    stack: None, queues: dict[str, str], lambda_context: Any, provider: ProviderFaults
) -> None:
    # given a run whose first batch is settled, and its worker dies before adding it to the run's counter
    # (the claim is answered, the settle reaches the table, then the worker is gone)
    queued = fire(lambda_context)["sends_queued"]
    sqs = boto3.client("sqs")
    url = queues["DISPATCH_QUEUE_URL"]
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])["Messages"]
    provider.once("dynamodb.UpdateItem", provider_faults.ANSWERED)  # the claim, as SENDING
    provider.once("dynamodb.UpdateItem", provider_faults.KILLED_AFTER)  # the settle
    with pytest.raises(provider_faults.WorkerKilled):
        dispatch_app.lambda_handler({"Records": [_record(first[0])]}, lambda_context)
    provider.clear()
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)

    # when every batch is delivered, the killed one again (found settled: nothing is sent twice)
    drain(queues, lambda_context)

    # then the run is completed all the same, each send once
    run = run_item()
    assert run["status"] == "COMPLETED"
    assert run["final_counters"]["sent"] == queued
    assert_each_sent_once(queued)


def test_a_settled_batch_redelivered_reads_the_ledger_only_once_the_run_has_gone_quiet(
    stack: None, queues: dict[str, str], lambda_context: Any, provider: ProviderFaults
) -> None:
    # given a run whose first batch was settled by a worker that died before counting it, and every other batch
    # delivered and counted since
    fire(lambda_context)
    killed = take_one_batch(queues)
    settle_and_die_before_counting(killed, lambda_context, provider)
    drain(queues, lambda_context)
    assert run_item()["status"] == "FANNED_OUT"  # its counter is short by the killed batch

    # when the killed batch comes back while the counter moved less than a lease ago, it asks again later
    # without reading the ledger
    queries_before = provider.attempts["dynamodb.Query"]
    with pytest.raises(BatchProcessingError, match="its run still open: asking again later"):
        dispatch_app.lambda_handler({"Records": [_redelivery(killed, 2)]}, lambda_context)
    assert provider.attempts["dynamodb.Query"] == queries_before
    assert run_item()["status"] == "FANNED_OUT"
    # and SQS brings it back once the run can have gone quiet, not at the visibility it was received with (600 s)
    lease = config.dispatch_settings().dispatch_lease_seconds
    assert lease - 2 < seconds_until_visible(killed["MessageId"]) <= lease + 1

    # and once the run has been quiet for a lease, the next delivery reads the ledger and completes the run
    quiet_for_a_lease("settled_at")
    response = dispatch_app.lambda_handler({"Records": [_redelivery(killed, 3)]}, lambda_context)
    assert response["batchItemFailures"] == []
    assert run_item()["status"] == "COMPLETED"


def test_an_invocation_counts_its_batches_on_the_run_in_one_write_and_the_run_completes(
    stack: None, queues: dict[str, str], lambda_context: Any, provider: ProviderFaults
) -> None:
    queued = fire(lambda_context)["sends_queued"]
    sqs = boto3.client("sqs")
    url = queues["DISPATCH_QUEUE_URL"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    writes_before = provider.attempts["dynamodb.UpdateItem"]

    response = dispatch_app.lambda_handler({"Records": [_record(m) for m in messages]}, lambda_context)

    # every batch of the run came in this invocation: each is claimed and settled, the run's counter moves once
    # for all of them, and that completes the run (one more write)
    assert _peek(queues) == []  # nothing else is queued
    assert response["batchItemFailures"] == []
    assert provider.attempts["dynamodb.UpdateItem"] - writes_before == 2 * len(messages) + 1 + 1
    assert int(run_item()["sends_settled"]) == queued
    assert run_item()["status"] == "COMPLETED"
    assert_each_sent_once(queued)


def test_of_many_redelivered_settled_batches_of_a_quiet_run_one_a_quiet_period_reads_the_ledger(
    stack: None, queues: dict[str, str], lambda_context: Any, provider: ProviderFaults
) -> None:
    # given a run whose first batch was settled by a worker that died before counting it, the rest still queued,
    # and no batch counted for longer than a lease
    fire(lambda_context)
    killed = take_one_batch(queues)
    settle_and_die_before_counting(killed, lambda_context, provider)
    quiet_for_a_lease("settled_at")

    # when its duplicates come back one after another, only the first reads the run's ledger
    queries_before = provider.attempts["dynamodb.Query"]
    for receive_count in (3, 3, 3):
        with pytest.raises(BatchProcessingError, match="its run still open"):
            dispatch_app.lambda_handler({"Records": [_redelivery(killed, receive_count)]}, lambda_context)
    assert provider.attempts["dynamodb.Query"] == queries_before + 1

    # and once the rest is sent and another quiet period passed, the next duplicate reads it and completes the run
    drain(queues, lambda_context)
    assert run_item()["status"] == "FANNED_OUT"  # short by the batch counted by nobody
    quiet_for_a_lease("settled_at", "ledger_checked_at")
    response = dispatch_app.lambda_handler({"Records": [_redelivery(killed, 4)]}, lambda_context)
    assert response["batchItemFailures"] == []
    assert run_item()["status"] == "COMPLETED"


def test_a_batch_whose_worker_died_after_claiming_it_comes_back_as_the_lease_runs_out_and_is_never_sent_twice(
    stack: None, queues: dict[str, str], lambda_context: Any, provider: ProviderFaults
) -> None:
    # given a batch claimed SENDING by a worker that died right after the claim (SES may or may not have it)
    queued = fire(lambda_context)["sends_queued"]
    claimed = take_one_batch(queues)
    provider.once("dynamodb.UpdateItem", provider_faults.KILLED_AFTER)
    with pytest.raises(provider_faults.WorkerKilled):
        dispatch_app.lambda_handler({"Records": [_redelivery(claimed, 1)]}, lambda_context)
    provider.clear()

    # when it is delivered again while the lease runs, it is handed back to come back as the lease runs out
    with pytest.raises(BatchProcessingError, match="held by another delivery's lease"):
        dispatch_app.lambda_handler({"Records": [_redelivery(claimed, 2)]}, lambda_context)
    lease = config.dispatch_settings().dispatch_lease_seconds
    assert lease - 2 < seconds_until_visible(claimed["MessageId"]) <= lease + 1

    # then, the lease run out, its sends are in doubt (never sent again), every other one is sent once, and the
    # run completes with counters adding up
    body = json.loads(claimed["Body"])
    boto3.resource("dynamodb").Table(config.dispatch_settings().sends_table).update_item(
        Key={"customer_id": f"BATCH#{RUN_ID}", "send_key": f"{body['channel']}#{body['batch_id']}"},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()},
    )
    boto3.client("sqs").change_message_visibility(
        QueueUrl=queues["DISPATCH_QUEUE_URL"], ReceiptHandle=claimed["ReceiptHandle"], VisibilityTimeout=0
    )
    drain(queues, lambda_context)
    run = run_item()
    assert run["status"] == "COMPLETED"
    assert run["final_counters"]["in_doubt"] == len(body["sends"])
    assert run["final_counters"]["sent"] == queued - len(body["sends"])
    emails, texts = emails_by_recipient(), sms_by_number()
    assert sum(emails.values()) + sum(texts.values()) == queued - len(body["sends"])
    assert set(emails.values()) | set(texts.values()) == {1}


def test_each_send_carries_what_planning_read_so_dispatch_reads_no_profile_and_renders_from_it(
    stack: None, queues: dict[str, str], lambda_context: Any, provider: ProviderFaults
) -> None:
    queued = fire(lambda_context)["sends_queued"]
    # the profile changes after planning in a way the campaign does not care about
    boto3.resource("dynamodb").Table(config.dispatch_settings().profiles_table).update_item(
        Key={"customer_id": "C0001"},
        UpdateExpression="SET first_name = :name",
        ExpressionAttributeValues={":name": "X"},
    )
    profile_reads = provider.attempts["dynamodb.BatchGetItem"]
    sms_batch = next(body for body in _peek(queues) if body["channel"] == "sms")

    drain(queues, lambda_context)

    # no profile was read to send, and every message is rendered from what the run read
    assert provider.attempts["dynamodb.BatchGetItem"] == profile_reads
    assert_each_sent_once(queued)
    sent_to = {message.destinations["ToAddresses"][0]: message for message in sesv2_shim.SHIM.messages}
    assert sent_to["c0001@example.com"].subject == "Hello N1"
    # an SMS carries the phone and the SMS consent it was planned with, not the email address
    assert {"phone", "consent_sms", "first_name"} <= set(sms_batch["sends"][0]["contact"])
    assert "email" not in sms_batch["sends"][0]["contact"]


def test_consent_withdrawn_by_a_file_after_planning_stops_the_send_the_batch_carries(
    stack: None, queues: dict[str, str], lambda_context: Any
) -> None:
    queued = fire(lambda_context)["sends_queued"]
    # a customers file withdraws C0001's email consent between planning and sending (ingest logs the change)
    before = {"C0001": {"customer_id": "C0001", "email": "c0001@example.com", "consent_email": True}}
    after = [{"customer_id": "C0001", "consent_email": False}]
    withdrawn = merge.withdrawals(before, after, source="ingest:incoming/customers/late.csv", at=datetime.now(UTC))
    suppression_table.add(config.dispatch_settings().suppression_table, withdrawn)

    drain(queues, lambda_context)

    emails = emails_by_recipient()
    assert "c0001@example.com" not in emails
    assert run_item()["status"] == "COMPLETED"
    assert run_item()["final_counters"]["suppressed"] == 1
    assert sum(emails.values()) + sum(sms_by_number().values()) == queued - 1


def seconds_until_visible(message_id: str) -> float:
    """When SQS will deliver the (received) message again, from moto's copy of the dispatch queue."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["test-dispatch"]
    [message] = [m for m in queue._messages if m.id == message_id]
    return (message.visible_at - time.time() * 1000) / 1000


def _redelivery(message: dict[str, Any], receive_count: int) -> dict[str, Any]:
    """The message as SQS delivers it for the `receive_count`-th time."""
    return _record({**message, "Attributes": {**message["Attributes"], "ApproximateReceiveCount": str(receive_count)}})
