import csv
import io
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from cadence import campaign_control, config
from cadence.campaigns import CampaignDefinition
from cadence.campaigns.lifecycle import State
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
def scored_customers(tables: dict[str, str], data_bucket: str) -> list[str]:
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
                    "phone": f"+86138{i:08d}",
                    "consent_email": True,
                    "consent_sms": True,
                }
            )
            scores.put_item(
                Item={"customer_id": customer_id, "decile": i % 10 + 1, "score": Decimal("0.5"), "model_version": "m1"}
            )
    return ids


def queued_batches(queues: dict[str, str]) -> list[dict[str, Any]]:
    """Every message on the dispatch queue (one batch of sends each), consumed."""
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


def queued_sends(queues: dict[str, str]) -> list[dict[str, str]]:
    """The queued sends, one dict per send with its batch's run, campaign and channel."""
    return [
        {**{key: batch[key] for key in ("campaign_id", "run_id", "channel")}, **send}
        for batch in queued_batches(queues)
        for send in batch["sends"]
    ]


def store(campaign: dict[str, Any]) -> State:
    """Store a campaign as `cadence campaign deploy` does."""
    return campaign_control.store(CampaignDefinition.model_validate(campaign), config.campaign_settings())


def test_an_invalid_stored_campaign_is_failed_with_the_reason_and_queues_nothing(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    # given a campaign whose stored definition no longer validates (sms is a channel with no message)
    broken = {**CAMPAIGN, "campaign_id": "broken", "sms": None}
    campaigns_table.put_definition(tables["CampaignsTable"], "broken", broken, State.SCHEDULED)

    # when its schedule fires: the invocation fails (Lambda retries it, then the on-failure queue holds it)
    with pytest.raises(InvalidInputError, match="stored campaign broken is invalid"):
        fire("broken", "2026-11-23T10:00:00Z", lambda_context)

    # then the campaign is failed with the reason, and queued nothing
    stored = campaigns_table.get_campaign(tables["CampaignsTable"], "broken")
    assert stored is not None
    assert stored.state is State.FAILED
    assert "stored campaign broken is invalid" in (stored.state_reason or "")
    assert queued_sends(queues) == []


def test_a_campaign_run_fans_its_audience_out_once(
    tables: dict[str, str],
    data_bucket: str,
    queues: dict[str, str],
    scored_customers: list[str],
    load_event: Any,
    lambda_context: Any,
) -> None:
    store(CAMPAIGN)
    event = {**load_event("schedule"), "campaign_id": "winback"}  # as its own schedule invokes it

    result = app.lambda_handler(event, lambda_context)
    repeat = app.lambda_handler(event, lambda_context)

    (run,) = result["runs"]
    assert run["run_id"] == "winback@2026-11-23T10:00:00Z"
    assert run["audience_size"] == 100  # deciles 1..5 of 200
    assert run["holdout_size"] > 0
    assert run["sends_by_channel"] == {"email": 100 - run["holdout_size"], "sms": 100 - run["holdout_size"]}
    batches = queued_batches(queues)
    sends = [{"campaign_id": b["campaign_id"], "channel": b["channel"], **send} for b in batches for send in b["sends"]]
    assert len(sends) == run["sends_queued"] == 2 * (100 - run["holdout_size"])
    assert {send["campaign_id"] for send in sends} == {"winback"}
    # one message per batch of at most 50 sends of one channel, each send in exactly one
    assert all(1 <= len(batch["sends"]) <= 50 for batch in batches)
    assert len(batches) == 2 * -(-len(sends) // 2 // 50)
    assert len({(send["channel"], send["customer_id"]) for send in sends}) == len(sends)
    assert repeat["runs"][0]["status"] == "duplicate"
    stored_run = campaigns_table.get_run(tables["CampaignsTable"], "winback", run["run_id"])
    assert stored_run is not None
    assert stored_run["status"] == "FANNED_OUT"
    assert stored_run["holdout_size"] == run["holdout_size"]
    # every member is recorded with one state, the holdout included, and the states add up
    assert sum(run["members_by_state"].values()) == run["audience_size"]
    assert run["members_by_state"] == {"queued": 100 - run["holdout_size"], "holdout": run["holdout_size"]}
    members_csv = boto3.client("s3").get_object(Bucket=data_bucket, Key=run["members_key"])["Body"].read().decode()
    members = list(csv.DictReader(io.StringIO(members_csv)))
    assert len(members) == 100
    assert sum(member["state"] == "holdout" for member in members) == run["holdout_size"]
    # each member's decile and score as the run read them (holdout too): what uplift per decile is measured on
    assert {member["decile"] for member in members} == {"1", "2", "3", "4", "5"}
    assert all(float(member["score"]) > 0 for member in members)


def test_a_named_campaign_runs_when_its_own_schedule_fires(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    store(CAMPAIGN)

    result = app.lambda_handler({"campaign_id": "winback", "scheduled_time": "2026-11-23T11:00:00Z"}, lambda_context)

    assert result["runs"][0]["sends_queued"] == len(queued_sends(queues)) > 0


def test_a_named_campaign_queues_nothing_when_it_is_paused(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    # given a campaign stored paused (`active: false`), though a firing already on its way still arrives
    assert store({**CAMPAIGN, "active": False}) is State.PAUSED

    result = app.lambda_handler({"campaign_id": "winback", "scheduled_time": "2026-11-23T11:00:00Z"}, lambda_context)

    assert [(run["campaign_id"], run["status"], run["sends_queued"]) for run in result["runs"]] == [
        ("winback", "paused", 0)
    ]
    assert queued_sends(queues) == []
    assert campaigns_table.get_run(tables["CampaignsTable"], "winback", result["runs"][0]["run_id"]) is None


def test_an_unknown_campaign_is_an_error(tables: dict[str, str], queues: dict[str, str], lambda_context: Any) -> None:
    with pytest.raises(InvalidInputError, match="campaign nope is not defined"):
        app.lambda_handler({"campaign_id": "nope", "scheduled_time": "2026-11-23T11:00:00Z"}, lambda_context)


def test_an_event_without_a_scheduled_time_is_rejected(tables: dict[str, str], lambda_context: Any) -> None:
    with pytest.raises(ValidationError):
        app.lambda_handler({"campaign_id": "winback"}, lambda_context)


def fire(campaign_id: str, scheduled_time: str, lambda_context: Any) -> dict[str, Any]:
    """The campaign's own schedule firing at `scheduled_time`; returns the run's outcome."""
    return app.lambda_handler({"campaign_id": campaign_id, "scheduled_time": scheduled_time}, lambda_context)["runs"][0]


def test_a_recurring_campaign_never_reaches_a_customer_twice_inside_its_reentry_window(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    # given a campaign a customer may receive once a week, firing every day
    weekly = {**CAMPAIGN, "reentry": {"days": 7}}
    store(weekly)

    first = fire("winback", "2026-11-23T10:00:00Z", lambda_context)
    second = fire("winback", "2026-11-24T10:00:00Z", lambda_context)
    week_later = fire("winback", "2026-11-30T10:00:00Z", lambda_context)

    # then the next day reaches nobody again, and a week later the same customers may hear from it again
    treated = first["members_by_state"]["queued"]
    assert treated > 0
    assert second["sends_queued"] == 0
    assert second["members_by_state"] == {"reentry_excluded": treated, "holdout": first["holdout_size"]}
    assert week_later["members_by_state"] == first["members_by_state"]
    sends = queued_sends(queues)
    per_customer = Counter((send["customer_id"], send["channel"]) for send in sends)
    assert max(per_customer.values()) == 2  # the first run and the one a week later, never the day between


def test_a_campaign_sent_once_only_is_not_sent_again_by_a_later_run(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    store(CAMPAIGN)  # reentry: once

    first = fire("winback", "2026-11-23T10:00:00Z", lambda_context)
    months_later = fire("winback", "2027-03-01T10:00:00Z", lambda_context)

    assert first["sends_queued"] > 0
    assert months_later["sends_queued"] == 0


def test_frequency_caps_hold_across_two_campaigns(
    tables: dict[str, str], queues: dict[str, str], scored_customers: list[str], lambda_context: Any
) -> None:
    # given campaign A messaged its audience yesterday, and campaign B allows one message a week in all
    store(CAMPAIGN)
    capped = {
        **CAMPAIGN,
        "campaign_id": "spring",
        "holdout_percent": 0,
        "caps": {"overall": {"max": 1, "days": 7}},
    }
    store(capped)
    first = fire("winback", "2026-11-23T10:00:00Z", lambda_context)

    second = fire("spring", "2026-11-24T10:00:00Z", lambda_context)

    # then B reaches only the customers A held out, and caps the ones A messaged
    assert second["members_by_state"] == {
        "queued": first["holdout_size"],
        "capped": first["members_by_state"]["queued"],
    }
    assert second["sends_by_channel"] == {"email": first["holdout_size"]}  # one message each: email comes first


def test_quiet_hours_defer_the_sends_to_their_end_and_never_drop_them(
    tables: dict[str, str],
    queues: dict[str, str],
    scored_customers: list[str],
    release_settings: str,
    lambda_context: Any,
) -> None:
    # given a campaign with quiet hours 21:00-08:00 for customers in Shanghai, fired at 23:00 their time
    quiet = {**CAMPAIGN, "default_timezone": "Asia/Shanghai", "quiet_hours": {"start": "21:00", "end": "08:00"}}
    store(quiet)

    run = fire("winback", "2026-11-23T15:00:00Z", lambda_context)

    # then nothing leaves now; every send waits for one schedule at 08:00 Shanghai (00:00 UTC)
    treated = 100 - run["holdout_size"]
    assert (run["sends_queued"], run["sends_deferred"], run["releases"]) == (0, 2 * treated, 1)
    assert run["members_by_state"] == {"deferred": treated, "holdout": run["holdout_size"]}
    assert queued_sends(queues) == []
    scheduler = boto3.client("scheduler")
    (listed,) = scheduler.list_schedules(GroupName=release_settings)["Schedules"]
    schedule = scheduler.get_schedule(Name=listed["Name"], GroupName=release_settings)
    assert schedule["ScheduleExpression"] == "at(2026-11-24T00:00:00)"
    assert schedule["ActionAfterCompletion"] == "DELETE"

    # when the schedule fires (twice: Scheduler delivers at least once)
    event = json.loads(schedule["Target"]["Input"])
    first = app.lambda_handler(event, lambda_context)
    app.lambda_handler(event, lambda_context)

    # then every deferred send is queued; the repeat is left to the send ledger
    assert first == {"released": 2 * treated}
    sends = queued_sends(queues)
    assert len(sends) == 4 * treated
    assert len({(send["customer_id"], send["channel"]) for send in sends}) == 2 * treated


def stored_state(tables: dict[str, str], campaign_id: str = "winback") -> State:
    stored = campaigns_table.get_campaign(tables["CampaignsTable"], campaign_id)
    assert stored is not None
    return stored.state


def test_a_one_off_campaign_completes_after_its_firing_and_a_late_redelivery_starts_nothing(
    tables: dict[str, str],
    queues: dict[str, str],
    scored_customers: list[str],
    release_settings: str,
    lambda_context: Any,
) -> None:
    assert store({**CAMPAIGN, "schedule": {"at": "2030-01-01T10:00:00"}}) is State.SCHEDULED

    run = fire("winback", "2030-01-01T10:00:00Z", lambda_context)

    assert run["sends_queued"] == len(queued_sends(queues)) > 0
    assert stored_state(tables) is State.COMPLETED
    assert fire("winback", "2030-01-01T10:00:00Z", lambda_context)["status"] == "completed"
    assert queued_sends(queues) == []


def test_a_recurring_campaign_rests_between_firings_and_completes_after_the_last_before_its_end(
    tables: dict[str, str],
    queues: dict[str, str],
    scored_customers: list[str],
    release_settings: str,
    lambda_context: Any,
) -> None:
    daily = {**CAMPAIGN, "reentry": {"days": 1}, "schedule": {"cron": "0 10 * * ? *", "end": "2030-01-03T12:00:00Z"}}
    store(daily)

    fire("winback", "2030-01-02T10:00:00Z", lambda_context)
    assert stored_state(tables) is State.SCHEDULED
    fire("winback", "2030-01-03T10:00:00Z", lambda_context)
    assert stored_state(tables) is State.COMPLETED


def test_a_paused_campaigns_firing_queues_nothing_and_after_resume_the_next_one_runs(
    tables: dict[str, str],
    queues: dict[str, str],
    scored_customers: list[str],
    release_settings: str,
    lambda_context: Any,
) -> None:
    settings = config.campaign_settings()
    store({**CAMPAIGN, "schedule": {"cron": "0 10 * * ? *"}})
    campaign_control.pause("winback", settings)

    paused = fire("winback", "2030-01-02T10:00:00Z", lambda_context)

    assert (paused["status"], paused["sends_queued"], queued_sends(queues)) == ("paused", 0, [])
    assert campaigns_table.get_run(tables["CampaignsTable"], "winback", paused["run_id"]) is None
    campaign_control.resume("winback", settings)
    resumed = fire("winback", "2030-01-03T10:00:00Z", lambda_context)
    assert resumed["sends_queued"] == len(queued_sends(queues)) > 0
    assert stored_state(tables) is State.SCHEDULED


def test_a_move_from_a_state_read_before_another_move_is_refused(tables: dict[str, str]) -> None:
    store(CAMPAIGN)
    read = campaigns_table.get_campaign(tables["CampaignsTable"], "winback")
    assert read is not None
    campaigns_table.move(tables["CampaignsTable"], "winback", read.stored_state, State.RUNNING)

    with pytest.raises(campaigns_table.ConcurrentChangeError):
        campaigns_table.move(tables["CampaignsTable"], "winback", read.stored_state, State.CANCELLED)
    assert stored_state(tables) is State.RUNNING


def test_a_run_planned_again_after_a_crash_queues_the_batches_its_first_attempt_cut(
    tables: dict[str, str],
    data_bucket: str,
    queues: dict[str, str],
    scored_customers: list[str],
    load_event: Any,
    lambda_context: Any,
) -> None:
    # given a run that queued its batches and died before recording that it had fanned out
    store(CAMPAIGN)
    event = {**load_event("schedule"), "campaign_id": "winback"}
    app.lambda_handler(event, lambda_context)
    first = queued_batches(queues)
    run_key = {"campaign_id": "winback", "record_key": "RUN#winback@2026-11-23T10:00:00Z"}
    boto3.resource("dynamodb").Table(tables["CampaignsTable"]).update_item(
        Key=run_key, UpdateExpression="SET #s = :planning", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":planning": "PLANNING"},
    )  # fmt: skip
    # and the first customer of the first batch withdrew consent meanwhile (a fresh cut would shift every batch)
    boto3.resource("dynamodb").Table(tables["ProfilesTable"]).update_item(
        Key={"customer_id": first[0]["sends"][0]["customer_id"]},
        UpdateExpression="SET consent_email = :no, consent_sms = :no",
        ExpressionAttributeValues={":no": False},
    )

    # when the retried firing plans the run again
    app.lambda_handler(event, lambda_context)

    # then it queues exactly the batches of the first attempt (dispatch suppresses the withdrawn customer)
    assert queued_batches(queues) == first
