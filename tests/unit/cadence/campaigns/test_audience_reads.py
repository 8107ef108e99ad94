"""Reading a run's audience at scale: a parallel Scan of the scores, concurrent BatchGetItem of the profiles.

Through the public interface (campaign_runs.candidates, preview, run_campaign) against moto: every scored
customer the rule can reach is read exactly once whatever the segments, throttled keys are read again, and the
plan is the same with one segment as with many.
"""

import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from cadence import campaign_control, campaign_runs, config
from cadence.campaigns.definition import CampaignDefinition
from cadence.dal import clients
from cadence.errors import PermanentError
from cadence.events import CampaignTrigger
from tests.unit.functions.provider_faults import json_answer

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CUSTOMERS = 400
# Each score item carries this much padding, so a segment's scan runs over several 1 MB pages.
PADDING = "x" * 40_000

CAMPAIGN: dict[str, Any] = {
    "campaign_id": "audience-at-scale",
    "name": "Top deciles",
    "channels": ["email", "sms"],
    "audience": {"all": [{"field": "decile", "lte": 7}]},
    "holdout_percent": 20,
    "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 2}],
    "offer": {"by": "decile", "tiers": [{"max": 2, "value": 5}], "otherwise": 10},
    "email": {"subject": "Hello", "body": "{first_name}, {offer_value}% with {coupon_code}"},
    "sms": {"text": "{offer_value}% with {coupon_code}"},
}


def definition(**changes: Any) -> CampaignDefinition:
    return CampaignDefinition.model_validate({**CAMPAIGN, **changes})


def settings(segments: int, workers: int, **changes: Any) -> config.CampaignSettings:
    return config.campaign_settings().model_copy(
        update={"audience_scan_segments": segments, "audience_read_workers": workers, **changes}
    )


@pytest.fixture
def audience(tables: dict[str, str], data_bucket: str) -> dict[str, int]:
    """CUSTOMERS scored customers (deciles 1..10 in turn, every fifth a VIP, pairs sharing an email), two scored
    customers without a profile, and profiles nobody scored. Returns each scored profile's decile."""
    dynamodb = boto3.resource("dynamodb")
    deciles = {}
    with (
        dynamodb.Table(tables["ProfilesTable"]).batch_writer() as profiles,
        dynamodb.Table(tables["ScoresTable"]).batch_writer() as scores,
        dynamodb.Table(tables["ActivityTable"]).batch_writer() as activity,
    ):
        for i in range(CUSTOMERS):
            customer_id = f"C{i:05d}"
            deciles[customer_id] = i % 10 + 1
            profiles.put_item(
                Item={
                    "customer_id": customer_id,
                    "email": f"person{i // 2}@example.com",  # two customer ids per address
                    "phone": f"+86138{i:08d}",
                    "first_name": "Li",
                    "loyalty_notes": "not planned with, not sent",
                    "consent_email": True,
                    "consent_sms": i % 3 != 0,
                    "vip": i % 5 == 0,
                }
            )
            activity.put_item(Item={"customer_id": customer_id, "order_count": i % 7})
            scores.put_item(
                Item={
                    "customer_id": customer_id,
                    "decile": deciles[customer_id],
                    "score": Decimal(str(round(1 - i / CUSTOMERS, 4))),
                    "model_version": "m1",
                    "padding": PADDING,
                }
            )
        for i in range(2):
            scores.put_item(Item={"customer_id": f"GONE{i}", "decile": 1, "score": Decimal("0.9")})
        for i in range(5):
            profiles.put_item(Item={"customer_id": f"UNSCORED{i}", "email": f"u{i}@example.com"})
    return deciles


class ApiCalls:
    """Counts the DAL's DynamoDB requests by operation: every one, botocore's or the bulk wire's, emits the DAL
    client's before-send (counted first, ahead of any handler that answers in DynamoDB's place)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        clients.client("dynamodb").meta.events.register_first("before-send.dynamodb", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1


@pytest.mark.parametrize(("segments", "workers"), [(1, 1), (3, 2), (8, 8), (13, 4)])
def test_every_reachable_scored_customer_is_read_exactly_once_when_the_scan_has_segments(
    audience: dict[str, int], segments: int, workers: int
) -> None:
    calls = ApiCalls()

    read = list(campaign_runs.candidates(definition(), settings(segments, workers)))

    # then each scored customer with a profile and a decile the rule can reach, once, in customer id order
    expected = sorted(customer_id for customer_id, decile in audience.items() if decile <= 7)
    assert [candidate.customer_id for candidate in read] == expected
    # with the score and the activity of that very customer
    assert all(candidate.score["decile"] == audience[candidate.customer_id] for candidate in read)
    assert all(candidate.activity["order_count"] == int(candidate.customer_id[1:]) % 7 for candidate in read)
    # and the segments were scanned page by page (16 MB of scores do not fit in one page a segment)
    assert calls.counts["Scan"] > segments


def test_only_what_the_run_plans_with_is_read_of_a_profile_and_custom_attributes_are_kept(
    audience: dict[str, int],
) -> None:
    vip = definition(audience={"all": [{"field": "profile.vip", "eq": True}, {"field": "decile", "lte": 7}]})

    plan = campaign_runs.preview(vip, settings(4, 4), NOW)

    assert sorted(member.customer_id for member in plan.members) == sorted(
        customer_id for customer_id, decile in audience.items() if decile <= 7 and int(customer_id[1:]) % 5 == 0
    )
    read = next(campaign_runs.candidates(vip, settings(4, 4)))
    assert "vip" in read.profile
    assert read.profile["first_name"] == "Li"  # carried in the batches: dispatch renders from it
    assert "loyalty_notes" not in read.profile


class ThrottledBatchGets:
    """DynamoDB under load: the first `times` BatchGetItem answers return half their keys as UnprocessedKeys
    (the other half read through a separate client, as DynamoDB would have answered them)."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.direct = boto3.client("dynamodb")
        # At ApiCalls' level of the event names: botocore calls handlers of a longer name first.
        clients.client("dynamodb").meta.events.register_first("before-send.dynamodb", self._answer)

    def _answer(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        if self.left <= 0 or not event_name.endswith(".BatchGetItem"):
            return None  # moto answers
        self.left -= 1
        request_items = json.loads(request.body)["RequestItems"]
        answered: dict[str, Any] = {"Responses": {}, "UnprocessedKeys": {}}
        for table, entry in request_items.items():
            keys = entry["Keys"]
            read = self.direct.batch_get_item(RequestItems={table: {**entry, "Keys": keys[len(keys) // 2 :]}})
            answered["Responses"][table] = read["Responses"][table]
            answered["UnprocessedKeys"][table] = {**entry, "Keys": keys[: len(keys) // 2]}
        return json_answer(request, answered)


def test_unprocessed_keys_are_read_again_until_every_profile_arrives(audience: dict[str, int]) -> None:
    calls = ApiCalls()
    throttled = ThrottledBatchGets(times=6)

    read = list(campaign_runs.candidates(definition(), settings(2, 4)))

    expected = sorted(customer_id for customer_id, decile in audience.items() if decile <= 7)
    assert [candidate.customer_id for candidate in read] == expected
    assert all("order_count" in candidate.activity for candidate in read)  # activity keys were retried too
    assert throttled.left == 0
    # 280 customers at 50 a call, plus the six calls that only got half of theirs
    assert calls.counts["BatchGetItem"] == -(-len(expected) // 50) + 6


def test_the_plan_is_the_same_with_one_segment_as_with_many(audience: dict[str, int]) -> None:
    # given the same audience read sequentially and with 8 segments, 8 calls at once
    one = campaign_runs.preview(definition(), settings(1, 1), NOW)
    many = campaign_runs.preview(definition(), settings(8, 8), NOW)

    # then every member has the same state, variant, offer and coupon code, in the same order, and so do the sends
    assert [member.row() for member in many.members] == [member.row() for member in one.members]
    assert many.sends() == one.sends()
    assert many.counters() == one.counters()
    states = Counter(member.state.value for member in one.members)
    assert states["holdout"] and states["duplicate_address"] and states["queued"]  # the plan exercises them


def test_a_run_with_segments_records_every_audience_member_once(
    audience: dict[str, int], queues: dict[str, str]
) -> None:
    trigger = CampaignTrigger(campaign_id=CAMPAIGN["campaign_id"], scheduled_time=NOW)
    campaign_control.store(definition(), settings(6, 8))

    outcome = campaign_runs.run_campaign(definition(), trigger, settings(6, 8))

    body = boto3.client("s3").get_object(Bucket=config.campaign_settings().data_bucket, Key=outcome.members_key)
    rows = list(csv.DictReader(io.StringIO(body["Body"].read().decode("utf-8"))))
    expected = sorted(customer_id for customer_id, decile in audience.items() if decile <= 7)
    assert [row["customer_id"] for row in rows] == expected
    assert outcome.audience_size == len(expected) == sum(outcome.members_by_state.values())


def test_a_failing_segment_fails_the_read_instead_of_losing_its_customers(audience: dict[str, int]) -> None:
    missing = settings(4, 4, scores_table="no-such-table")

    with pytest.raises(PermanentError, match=r"scores\.scan: ResourceNotFoundException"):
        list(campaign_runs.candidates(definition(), missing))
