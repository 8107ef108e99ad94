"""A run split across invocations: segments of the audience, one finisher, a deadline.

Through the campaign function's handler against moto. Lambda's asynchronous invocations are taken at the DAL's
own client (a botocore before-call hook answers Invoke as Lambda does, 202) and delivered to the handler by the
test, in the order, number and with the request ids a test chooses: Lambda delivers at least once, retries under
the same request id, and gives up after its retries.
"""

import csv
import gzip
import io
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from pydantic import ValidationError

from cadence import campaign_control, campaign_runs, config
from cadence.campaigns import CampaignDefinition, run_id_for
from cadence.campaigns.lifecycle import State
from cadence.campaigns.plan import MemberFacts, plan_run
from cadence.dal import campaigns_table, clients, contact_history
from cadence.errors import InvalidInputError, PermanentError, TransientError
from cadence.events import RunStep
from functions.campaign import app

CUSTOMERS = 240
# The scores the audience's decile ceiling (8) lets the scan read: what a run considers.
CONSIDERED = sum(1 for i in range(CUSTOMERS) if i % 10 + 1 <= 8)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FIRING = {"campaign_id": "split", "scheduled_time": "2026-11-23T10:00:00Z"}
RUN_ID = run_id_for("split", NOW)
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:cadence-test-campaign"

CAMPAIGN: dict[str, Any] = {
    "campaign_id": "split",
    "name": "Split audience",
    "channels": ["email", "sms"],
    "audience": {"all": [{"field": "decile", "lte": 8}]},
    "holdout_percent": 15,
    "reentry": {"days": 7},
    "caps": {"overall": {"max": 1, "days": 7}},
    "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
    "offer": {"by": "decile", "tiers": [{"max": 3, "value": 5}], "otherwise": 10, "coupon": True},
    "email": {"subject": "Hello", "body": "{offer_value}% with {coupon_code}"},
    "sms": {"text": "{offer_value}% with {coupon_code}"},
}


@pytest.fixture
def audience(tables: dict[str, str], data_bucket: str, queues: dict[str, str]) -> list[str]:
    """CUSTOMERS scored customers exercising every member state: pairs sharing an email (C000 and C120, ...),
    some without address or consent, some this campaign reached 3 days ago (re-entry), some another campaign
    reached yesterday (its caps). Returns the ids of the scored customers."""
    dynamodb = boto3.resource("dynamodb")
    with (
        dynamodb.Table(tables["ProfilesTable"]).batch_writer() as profiles,
        dynamodb.Table(tables["ScoresTable"]).batch_writer() as scores,
    ):
        for i in range(CUSTOMERS):
            addressed = i % 17 != 0
            profiles.put_item(
                Item={
                    "customer_id": f"C{i:03d}",
                    **({"email": f"person{i % 120}@example.com", "phone": f"+86138{i:08d}"} if addressed else {}),
                    "consent_email": i % 13 != 0,
                    "consent_sms": i % 3 != 0 and i % 13 != 0,
                }
            )
            score = Decimal(str(round(1 - i / CUSTOMERS, 4)))
            scores.put_item(Item={"customer_id": f"C{i:03d}", "decile": i % 10 + 1, "score": score})
    bucket = config.campaign_settings().data_bucket
    again = [(f"C{i:03d}", "email") for i in range(0, CUSTOMERS, 7)]
    contact_history.put_run(bucket, "split", "split@2026-11-20T10:00:00Z", NOW.date() - timedelta(days=3), again)
    other = [(f"C{i:03d}", "sms") for i in range(0, CUSTOMERS, 5)]
    contact_history.put_run(bucket, "other", "other@2026-11-22T10:00:00Z", NOW.date() - timedelta(days=1), other)
    return [f"C{i:03d}" for i in range(CUSTOMERS)]


@pytest.fixture
def split_settings(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[str]:
    """What a stack gives the campaign function to split runs: itself to invoke, a schedule group for deadlines."""
    group = "cadence-test-campaigns"
    boto3.client("scheduler").create_schedule_group(Name=group)
    monkeypatch.setenv("CAMPAIGN_SCHEDULE_GROUP", group)
    monkeypatch.setenv("CAMPAIGN_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/cadence-test-campaign-scheduler")
    monkeypatch.setenv("CAMPAIGN_FUNCTION_ARN", FUNCTION_ARN)
    config.campaign_settings.cache_clear()
    yield group
    config.campaign_settings.cache_clear()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings read from this module's environment never outlive its tests (the loader caches them)."""
    yield
    config.campaign_settings.cache_clear()


def segment_size(monkeypatch: pytest.MonkeyPatch, size: int) -> config.CampaignSettings:
    monkeypatch.setenv("AUDIENCE_SEGMENT_SIZE", str(size))
    config.campaign_settings.cache_clear()
    return config.campaign_settings()


@dataclass
class Invocation:
    payload: dict[str, Any]
    request_id: str


class AsyncLambda:
    """Lambda's asynchronous Invoke, answered at the DAL's client: invocations wait here until a test delivers them."""

    def __init__(self) -> None:
        self.pending: list[Invocation] = []
        self.invoked: list[dict[str, Any]] = []
        clients.client("lambda").meta.events.register("before-call.lambda.Invoke", self._accept)

    def _accept(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        assert params["headers"]["X-Amz-Invocation-Type"] == "Event"
        assert FUNCTION_ARN in params["url_path"].replace("%3A", ":")
        payload = json.loads(params["body"])
        self.invoked.append(payload)
        self.pending.append(Invocation(payload, str(uuid.uuid4())))
        return AWSResponse(params["url"], 202, {}, None), {"StatusCode": 202}

    def take(self, step: str) -> list[Invocation]:
        """Remove and return the pending invocations of one step (segment, finish)."""
        taken = [invocation for invocation in self.pending if invocation.payload["run_step"]["step"] == step]
        self.pending = [invocation for invocation in self.pending if invocation not in taken]
        return taken

    def steps(self) -> Counter[str]:
        return Counter(payload["run_step"]["step"] for payload in self.invoked)


@pytest.fixture
def lambdas(aws: None) -> AsyncLambda:
    return AsyncLambda()


def deliver(invocation: Invocation, lambda_context: Any) -> dict[str, Any]:
    """One attempt of an asynchronous invocation (a retry keeps the request id); returns the step's outcome."""
    lambda_context.aws_request_id = invocation.request_id
    return app.lambda_handler(invocation.payload, lambda_context)["runs"][0]


def drain(lambdas: AsyncLambda, lambda_context: Any) -> list[dict[str, Any]]:
    """Deliver every pending invocation once, and those they make, until none is left."""
    outcomes = []
    while lambdas.pending:
        outcomes.append(deliver(lambdas.pending.pop(0), lambda_context))
    return outcomes


def fire(lambda_context: Any) -> dict[str, Any]:
    return app.lambda_handler(FIRING, lambda_context)["runs"][0]


def queued_batches(queues: dict[str, str]) -> list[dict[str, Any]]:
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


def members_rows(data_bucket: str) -> list[dict[str, str]]:
    body = boto3.client("s3").get_object(Bucket=data_bucket, Key=campaign_runs.members_key("split", RUN_ID))["Body"]
    return list(csv.DictReader(io.StringIO(body.read().decode("utf-8"))))


def one_invocation_plan(settings: config.CampaignSettings) -> Any:
    """The plan one invocation makes of the same run (same secret, history and time), all in process."""
    definition = CampaignDefinition.model_validate(CAMPAIGN)
    return plan_run(
        definition,
        RUN_ID,
        campaign_runs.candidates(definition, settings),
        now=NOW,
        history=campaign_runs.load_history(definition, RUN_ID, NOW.date(), settings),
        secret=campaigns_table.run_secret(settings.campaigns_table, "split", RUN_ID),
    )


def stored(tables: dict[str, str]) -> campaigns_table.StoredCampaign:
    campaign = campaigns_table.get_campaign(tables["CampaignsTable"], "split")
    assert campaign is not None
    return campaign


def store(settings: config.CampaignSettings) -> None:
    campaign_control.store(CampaignDefinition.model_validate(CAMPAIGN), settings)


@pytest.mark.parametrize("segments", [2, 3, 8])
def test_the_plan_is_the_same_whatever_the_number_of_segments(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    queues: dict[str, str],
    data_bucket: str,
    tables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    segments: int,
) -> None:
    # given a segment size that splits the scored customers in `segments`
    settings = segment_size(monkeypatch, -(-CUSTOMERS // segments))
    store(settings)

    # when the campaign fires and every invocation it makes is delivered
    fired = fire(lambda_context)
    outcomes = drain(lambdas, lambda_context)

    # then the firing split the run, each segment ran once and one finisher fanned it out
    assert fired["status"] == "SPLIT"
    assert lambdas.steps() == {"segment": segments, "finish": 1}
    (finished,) = [outcome for outcome in outcomes if outcome["status"] == "FANNED_OUT"]
    # and every member's state, variant, offer and code, the sends and the counters are one invocation's plan
    expected = one_invocation_plan(settings)
    assert members_rows(data_bucket) == [
        {key: str(value) for key, value in member.row().items()} for member in expected.members
    ]
    sends = {(b["channel"], s["customer_id"], s.get("coupon_code")) for b in queued_batches(queues) for s in b["sends"]}
    assert sends == {(s.channel, s.customer_id, s.coupon_code) for s in expected.sends()}
    counters = expected.counters()
    assert finished["considered"] == counters["considered"] == CONSIDERED
    assert finished["audience_size"] == counters["audience"] == sum(finished["members_by_state"].values())
    assert finished["members_by_state"] == {
        name.removeprefix("state_"): n for name, n in counters.items() if name.startswith("state_") and n
    }
    # the audience exercises every cross-member decision the split must keep
    assert {"holdout", "duplicate_address", "capped", "reentry_excluded", "no_address", "no_consent", "queued"} <= set(
        finished["members_by_state"]
    )
    # and the campaign rests again once the finisher is done
    assert stored(tables).state is State.DRAFT


def test_each_scored_customer_is_read_by_exactly_one_segment(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    data_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    settings = segment_size(monkeypatch, 50)  # 240 customers: 5 segments
    store(settings)
    fire(lambda_context)

    considered = [deliver(invocation, lambda_context)["considered"] for invocation in lambdas.take("segment")]

    assert len(considered) == 5
    assert all(considered)  # every segment holds some of the audience
    assert sum(considered) == CONSIDERED
    s3 = boto3.client("s3")
    ids: list[str] = []
    for k in range(5):
        body = s3.get_object(Bucket=data_bucket, Key=campaign_runs.segment_key("split", RUN_ID, k, 5))["Body"].read()
        facts = [fact.customer_id for fact in campaign_runs.read_facts(body)]
        assert facts == sorted(facts)  # in customer id order, so the finisher merges them
        ids += facts
    assert len(ids) == len(set(ids))
    assert "person" not in str(ids)  # addresses are not in what segments write (hashes only)


def test_retried_and_repeated_segments_never_double_count_and_start_one_finish(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    queues: dict[str, str],
    data_bucket: str,
    tables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    settings = segment_size(monkeypatch, 80)  # 3 segments
    store(settings)
    fire(lambda_context)
    fire(lambda_context)  # Scheduler delivers a firing at least once: the repeat invokes the segments again
    segments = lambdas.take("segment")
    assert len(segments) == 6

    # when every segment runs twice (both deliveries) and once more as a retry of the last one
    for invocation in [*segments, segments[-1]]:
        assert deliver(invocation, lambda_context)["status"] == "SEGMENT_DONE"
    # then the write that completed the set and each one after it asked for the finisher: one claims the finish
    finishes = lambdas.take("finish")
    assert len(finishes) == 5
    outcomes = [deliver(invocation, lambda_context) for invocation in finishes]
    assert [outcome["members_key"] is not None for outcome in outcomes] == [True, False, False, False, False]
    assert {outcome["status"] for outcome in outcomes} == {"FANNED_OUT"}  # the later ones found it fanned out

    # and the run's counters are the one-invocation plan's, the sends queued once
    expected = one_invocation_plan(settings)
    run = campaigns_table.get_run(tables["CampaignsTable"], "split", RUN_ID)
    assert run is not None
    assert (run["status"], run["considered"], run["audience_size"]) == ("FANNED_OUT", CONSIDERED, len(expected.members))
    sends = [(b["channel"], s["customer_id"]) for b in queued_batches(queues) for s in b["sends"]]
    assert sorted(sends) == sorted((s.channel, s.customer_id) for s in expected.sends())
    assert len(members_rows(data_bucket)) == len(expected.members)
    # a late delivery of a segment changes nothing
    assert deliver(segments[0], lambda_context)["status"] == "FANNED_OUT"
    assert lambdas.pending == []


class FailingSendBatch:
    """SQS failing the next `times` SendMessageBatch calls (a dependency down while the finisher queues)."""

    def __init__(self, times: int) -> None:
        self.left = times
        clients.client("sqs").meta.events.register("before-call.sqs.SendMessageBatch", self._fail)

    def _fail(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.left <= 0:
            return None
        self.left -= 1
        error = {"Error": {"Code": "ServiceUnavailable", "Message": "down"}}
        return AWSResponse(params["url"], 503, {}, None), error


def test_a_finisher_retried_after_a_failure_finishes_and_the_campaign_runs_until_then(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    queues: dict[str, str],
    tables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    settings = segment_size(monkeypatch, 100)
    store(settings)
    fire(lambda_context)
    for invocation in lambdas.take("segment"):
        deliver(invocation, lambda_context)
        assert stored(tables).state is State.RUNNING  # every segment done or not, the run is not over
    (finish,) = lambdas.take("finish")

    # when the finisher fails after claiming the finish (SQS down while it queues)
    FailingSendBatch(times=1)
    with pytest.raises(TransientError):
        deliver(finish, lambda_context)
    assert stored(tables).state is State.RUNNING

    # then a second finisher (a repeated segment's) stands aside, and Lambda's retry of the first finishes
    assert deliver(Invocation(finish.payload, str(uuid.uuid4())), lambda_context)["status"] == "duplicate"
    finished = deliver(finish, lambda_context)
    assert finished["status"] == "FANNED_OUT"
    assert finished["sends_queued"] == len(one_invocation_plan(settings).sends())
    assert stored(tables).state is State.DRAFT


def deadline_event(group: str) -> dict[str, Any]:
    """The payload of the run's deadline schedule, as Scheduler would invoke the function with it."""
    scheduler = boto3.client("scheduler")
    (listed,) = [s for s in scheduler.list_schedules(GroupName=group)["Schedules"] if s["Name"].startswith("deadline-")]
    schedule = scheduler.get_schedule(Name=listed["Name"], GroupName=group)
    at = datetime.strptime(schedule["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    assert timedelta(minutes=59) < at - datetime.now(UTC) <= timedelta(minutes=60)
    return json.loads(schedule["Target"]["Input"])


def test_a_segment_that_failed_every_retry_fails_the_run_and_its_campaign_at_the_deadline(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    queues: dict[str, str],
    tables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    settings = segment_size(monkeypatch, 100)  # 3 segments
    store(settings)
    fire(lambda_context)
    first, second, lost = lambdas.take("segment")
    deliver(first, lambda_context)
    deliver(second, lambda_context)  # the third failed all its retries: Lambda sent it to the failure queue

    outcome = app.lambda_handler(deadline_event(split_settings), lambda_context)["runs"][0]

    assert outcome["status"] == "FAILED"
    campaign = stored(tables)
    assert campaign.state is State.FAILED
    assert f"run {RUN_ID} did not fan out by its deadline (2 of 3 segments done)" in (campaign.state_reason or "")
    run = campaigns_table.get_run(tables["CampaignsTable"], "split", RUN_ID)
    assert run is not None
    assert run["status"] == "FAILED"
    # a segment arriving late (Lambda's queue held it) finishes nothing, and nothing was sent
    assert deliver(lost, lambda_context)["status"] == "FAILED"
    assert lambdas.pending == []
    assert queued_batches(queues) == []


def test_the_deadline_of_a_run_that_fanned_out_changes_nothing(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    tables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    store(segment_size(monkeypatch, 100))
    fire(lambda_context)
    drain(lambdas, lambda_context)

    outcome = app.lambda_handler(deadline_event(split_settings), lambda_context)["runs"][0]

    assert outcome["status"] == "FANNED_OUT"
    assert stored(tables).state is State.DRAFT


def test_a_segment_whose_reads_are_refused_fails_the_run_at_once(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    queues: dict[str, str],
    tables: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    store(segment_size(monkeypatch, 100))
    fire(lambda_context)
    # given the function's settings name a scores table that is not there (a broken deploy)
    monkeypatch.setenv("SCORES_TABLE", "no-such-table")
    config.campaign_settings.cache_clear()
    (segment, *_) = lambdas.take("segment")

    with pytest.raises(PermanentError, match="ResourceNotFoundException"):
        deliver(segment, lambda_context)

    campaign = stored(tables)
    assert campaign.state is State.FAILED
    assert f"run {RUN_ID} failed in its segment step" in (campaign.state_reason or "")
    assert deliver(segment, lambda_context)["status"] == "FAILED"  # Lambda's retry does nothing more


def test_a_small_audience_is_planned_in_the_firing_invocation(
    audience: list[str],
    split_settings: str,
    lambdas: AsyncLambda,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    store(segment_size(monkeypatch, CUSTOMERS))

    fired = fire(lambda_context)

    assert fired["status"] == "FANNED_OUT"
    assert fired["considered"] == CONSIDERED
    assert lambdas.invoked == []
    assert boto3.client("scheduler").list_schedules(GroupName=split_settings)["Schedules"] == []


def test_a_split_run_needs_the_function_to_invoke(
    audience: list[str], tables: dict[str, str], monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    settings = segment_size(monkeypatch, 100)
    store(settings)

    with pytest.raises(InvalidInputError, match="CAMPAIGN_FUNCTION_ARN"):
        fire(lambda_context)

    assert stored(tables).state is State.FAILED


@pytest.mark.parametrize(
    "step",
    [
        {"step": "segment", "segment": 0},
        {"step": "segment", "segment": 3, "total": 3},
        {"step": "finish", "segment": 0, "total": 3},
        {"step": "reticulate"},
    ],
)
def test_a_run_step_names_its_segment_exactly_when_it_is_one(step: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RunStep.model_validate({"campaign_id": "split", "scheduled_time": "2026-11-23T10:00:00Z", **step})


def test_a_segments_facts_keep_each_members_contact_and_a_segment_written_before_contacts_still_reads() -> None:
    reachable = MemberFacts(
        "C1",
        None,
        "a",
        0.25,
        ("email",),
        ("hash",),
        datetime(2026, 12, 3, 9, tzinfo=UTC),
        contact={"email": "li@例子.cn", "consent_email": True, "first_name": '李, "小"'},
    )
    held_out = MemberFacts("C2", None, None, None)

    assert list(campaign_runs.read_facts(campaign_runs.facts_body([reachable, held_out]))) == [reachable, held_out]

    # a segment an earlier version wrote: no contact column, so its sends read the profile
    old = io.StringIO()
    writer = csv.writer(old)
    writer.writerow(MemberFacts.FIELDS[:-1])
    writer.writerow(reachable.to_row()[:-1])
    [read] = campaign_runs.read_facts(gzip.compress(old.getvalue().encode()))
    assert read.contact is None
    assert read.customer_id == "C1"
    assert read.channels == ("email",)
