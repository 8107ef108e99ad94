"""The whole pipeline on the local stack: files in, scored profiles, a campaign fired, each send once.

Every test uses its own customer ids, file keys and campaign ids, so they share one stack in any order.
"""

import gzip
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cadence import feedback_tags
from cadence.campaigns import CampaignDefinition, run_id_for
from cadence.campaigns.lifecycle import State
from cadence.dal import campaigns_table
from cadence.ingest import schemas
from infra import campaigns
from infra.ingest_reports import latest_report
from infra.local_stack import LocalStack
from model_build.cli import main as model_build_main

CSV_COLUMNS = list(schemas.CUSTOMERS.names)


def wait_for(predicate: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition never held")
        time.sleep(0.1)
    return result


@pytest.fixture(scope="session")
def published_model(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small demo model, trained once per session and published under the version the stack loads."""
    model_dir = tmp_path_factory.mktemp("model")
    data_dir = tmp_path_factory.mktemp("data")
    version = local_stack.deployment.parameters["ModelVersion"]
    args = ["demo-model", "--out", str(model_dir), "--data-dir", str(data_dir), "--customers", "600"]
    assert model_build_main([*args, "--version", version]) == 0
    assert local_stack.publish_model(model_dir) == version
    return json.loads((model_dir / "manifest.json").read_text())


def customers_frame(prefix: str, count: int) -> pd.DataFrame:
    rows = [
        {
            "customer_id": f"{prefix}-{i:03d}",
            "email": f"  Person.{i}@Example.COM ",
            "phone": f"138 0013 {i:04d}",
            "first_name": "Li",
            "last_name": "Wei",
            "country": "CN",
            "city": "Hangzhou",
            "timezone": "Asia/Shanghai",
            "language": "zh",
            "signup_date": "2024-03-01",
            "consent_email": "true",
            "consent_sms": "true",
            "updated_at": "2026-11-01T08:00:00+08:00",
        }
        for i in range(count)
    ]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def orders_frame(prefix: str, count: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "order_id": f"{prefix}-O{i:03d}",
                "customer_id": f"{prefix}-{i % count:03d}",
                "order_date": "2026-11-10",
                "amount": "1,299.00",
                "currency": "CNY",
                "items": 2,
                "channel": "web",
            }
            for i in range(count * 2)
        ]
    )


def drop(stack: LocalStack, frame: pd.DataFrame, key: str, tmp_path: Path) -> dict[str, Any]:
    """Upload a CSV as an upstream system would, wait for the pipeline to settle, return the ingest report."""
    path = tmp_path / Path(key).name
    frame.to_csv(path, index=False)
    bucket = stack.outputs["DataBucketName"]
    stack.client("s3").upload_file(str(path), bucket, key)
    stack.wait_idle(timeout=120)
    return latest_report(stack.client("s3"), bucket, key)


def profile(stack: LocalStack, customer_id: str, table: str = "ProfilesTableName") -> dict[str, Any]:
    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs[table], Key={"customer_id": {"S": customer_id}}, ConsistentRead=True
    )
    return item.get("Item", {})


def test_a_dropped_customers_file_becomes_scored_profiles(
    local_stack: LocalStack, published_model: dict[str, Any], tmp_path: Path
) -> None:
    prefix = f"P{uuid.uuid4().hex[:6]}"
    customers = customers_frame(prefix, 20)
    customers.loc[len(customers)] = [f"{prefix}-bad", "not-an-email", "", *["x"] * 10]  # no usable contact

    report = drop(local_stack, customers, f"incoming/customers/{prefix} export.csv", tmp_path)
    orders_report = drop(local_stack, orders_frame(prefix, 20), f"incoming/orders/{prefix}.csv", tmp_path)

    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (21, 20, 1)
    assert orders_report["rows_accepted"] == 40
    first = profile(local_stack, f"{prefix}-000")
    assert first["email"]["S"] == "person.0@example.com"
    assert first["phone"]["S"] == "+8613800130000"
    assert int(profile(local_stack, f"{prefix}-000", "ActivityTableName")["order_count"]["N"]) == 2
    score = profile(local_stack, f"{prefix}-000", "ScoresTableName")
    assert score["model_version"]["S"] == published_model["version"]
    assert 0.0 <= float(score["score"]["N"]) <= 1.0
    assert 1 <= int(score["decile"]["N"]) <= 10
    assert profile(local_stack, f"{prefix}-bad") == {}


def test_a_dropped_pinpoint_export_becomes_one_profile_per_user(
    local_stack: LocalStack, published_model: dict[str, Any]
) -> None:
    # given the shipped example export with its user ids made unique, gzipped as CreateExportJob writes it
    prefix = f"PP{uuid.uuid4().hex[:6]}"
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "pinpoint-endpoints.jsonl"
    endpoints = [json.loads(line) for line in example.read_text().splitlines()]
    for endpoint in endpoints:
        endpoint["User"]["UserId"] = f"{prefix}-{endpoint['User']['UserId']}"
    body = gzip.compress("".join(json.dumps(e) + "\n" for e in endpoints).encode("utf-8"))
    bucket, key = local_stack.outputs["DataBucketName"], f"incoming/pinpoint-endpoints/{prefix}/export-0001.gz"

    local_stack.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    local_stack.wait_idle(timeout=120)

    report = latest_report(local_stack.client("s3"), bucket, key)
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (6, 6, 0)
    ana = profile(local_stack, f"{prefix}-user-1002")
    assert (ana["email"]["S"], ana["consent_email"]["BOOL"], ana["consent_sms"]["BOOL"]) == (
        "ana.silva@example.com",
        False,
        True,
    )
    assert (
        profile(local_stack, f"{prefix}-user-1002", "ScoresTableName")["model_version"]["S"]
        == published_model["version"]
    )


def test_a_fired_campaign_sends_each_message_once(
    local_stack: LocalStack, published_model: dict[str, Any], tmp_path: Path
) -> None:
    prefix = f"C{uuid.uuid4().hex[:6]}"
    drop(local_stack, customers_frame(prefix, 30), f"incoming/customers/{prefix}.csv", tmp_path)
    campaign_id = f"it-{prefix.lower()}"
    definition = CampaignDefinition.model_validate(
        {
            "campaign_id": campaign_id,
            "name": "integration",
            # An inactive campaign sends nothing, even fired by hand (the stack-wide cron does not fire during tests).
            "active": True,
            "channels": ["email", "sms"],
            "audience": {"max_decile": 10},
            "holdout_percent": 10,
            "email": {"subject": "Hi {first_name}", "body": "Hello"},
            "sms": {"text": "Hello {first_name}"},
        }
    )
    outputs = local_stack.outputs
    emails_before, sms_before = len(local_stack.sent_emails()), len(local_stack.sent_sms())

    campaigns.deploy(definition, outputs)
    campaigns.run_now(campaign_id, outputs)
    run = wait_for(lambda: fanned_out_run(local_stack, campaign_id))
    local_stack.wait_idle(timeout=120)

    batches = ledger_for_run(local_stack, run["run_id"]["S"])
    outcomes = [
        (b["channel"]["S"], o["M"]["s"]["S"], o["M"].get("r", {}).get("S"))
        for b in batches
        for o in b["recipients"]["M"].values()
    ]
    sent = [(channel, status) for channel, status, _ in outcomes if status == "SENT"]
    # the audience is the whole shared stack's: a number abroad (the Pinpoint example's +1 206) is refused for SMS
    abroad = [o for o in outcomes if o == ("sms", "REJECTED", "sms_country_not_allowed")]
    assert len(sent) + len(abroad) == int(run["sends_queued"]["N"]) > 0
    assert sent
    assert len(local_stack.sent_emails()) - emails_before == sum(channel == "email" for channel, _ in sent)
    assert len(local_stack.sent_sms()) - sms_before == sum(channel == "sms" for channel, _ in sent)
    # and the run completed from dispatch, its final counters adding up to what it queued
    [completed] = [item for item in _runs(local_stack, campaign_id) if item["run_id"] == run["run_id"]]
    assert completed["status"]["S"] == "COMPLETED"
    assert int(completed["final_counters"]["M"]["sent"]["N"]) == len(sent)

    # when the same batch is delivered again (a retrying producer mints a new message id)
    again = batches[0]
    message = {
        "campaign_id": campaign_id,
        "run_id": run["run_id"]["S"],
        "channel": again["channel"]["S"],
        "batch_id": again["batch_id"]["S"],
        "sends": [{"customer_id": customer_id} for customer_id in again["recipients"]["M"]],
    }
    local_stack.client("sqs").send_message(QueueUrl=outputs["DispatchQueueUrl"], MessageBody=json.dumps(message))
    local_stack.wait_idle(timeout=60)

    # then nothing more is sent
    assert len(local_stack.sent_emails()) + len(local_stack.sent_sms()) - emails_before - sms_before == len(sent)

    # and the one-click link a sent email carries answers a mail provider's real RFC 8058 POST
    by_customer = {feedback_tags.from_tag(m.tags[feedback_tags.TAG_CUSTOMER]): m for m in local_stack.ses_shim.messages}
    customer_id, message = next((c, m) for c, m in by_customer.items() if c.startswith(prefix))
    link = message.headers["List-Unsubscribe"].strip("<>")
    assert link.startswith(outputs["UnsubscribeUrl"]), (link, outputs["UnsubscribeUrl"])
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = urllib.request.Request(  # noqa: S310 - the local stack's http URL
        link,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(one_click, timeout=30) as response:  # noqa: S310
        assert response.status == 200
    assert profile(local_stack, customer_id)["consent_email"] == {"BOOL": False}


def test_a_large_audience_is_split_across_invocations_and_every_member_is_accounted_for(
    local_stack: LocalStack, published_model: dict[str, Any], tmp_path: Path
) -> None:
    # given more scored customers than one segment holds (the session's stack splits runs every few dozen)
    segment_size = int(local_stack.deployment.parameters["AudienceSegmentSize"])
    prefix = f"S{uuid.uuid4().hex[:6]}"
    drop(local_stack, customers_frame(prefix, 60), f"incoming/customers/{prefix}.csv", tmp_path)
    outputs = local_stack.outputs
    scored = local_stack.client("dynamodb").scan(TableName=outputs["ScoresTableName"], Select="COUNT")["Count"]
    campaign_id = f"it-{prefix.lower()}"
    definition = CampaignDefinition.model_validate(
        {
            "campaign_id": campaign_id,
            "name": "split",
            "channels": ["email"],
            "audience": {"max_decile": 10},
            "holdout_percent": 10,
            "email": {"subject": "Hi {first_name}", "body": "Hello"},
        }
    )
    before = len(local_stack.invocations("CampaignFunction"))

    # when it is fired
    campaigns.deploy(definition, outputs)
    campaigns.run_now(campaign_id, outputs)
    run = wait_for(lambda: fanned_out_run(local_stack, campaign_id), timeout=120)
    local_stack.wait_idle(timeout=120)

    # then the firing, one invocation per segment and one finisher planned it, each once and without a failure
    total = int(run["segments_total"]["N"])
    assert total == -(-scored // segment_size) >= 3
    assert sorted(int(n) for n in run["segments_done"]["NS"]) == list(range(total))
    later = local_stack.invocations("CampaignFunction")[before:]
    assert [record.ok for record in later] == [True] * (1 + total + 1)
    # every scored customer was considered once, every member is in one state, each send went out once
    assert int(run["considered"]["N"]) == scored
    states = {name: int(count["N"]) for name, count in run["members_by_state"]["M"].items()}
    assert sum(states.values()) == int(run["audience_size"]["N"]) == scored
    members = local_stack.client("s3").get_object(Bucket=outputs["DataBucketName"], Key=run["members_key"]["S"])
    rows = members["Body"].read().decode("utf-8").splitlines()[1:]
    assert len(rows) == len({row.split(",")[0] for row in rows}) == scored
    batches = ledger_for_run(local_stack, run["run_id"]["S"])
    sent = [o["M"]["s"]["S"] for b in batches for o in b["recipients"]["M"].values()]
    assert sent.count("SENT") == int(run["sends_queued"]["N"]) == states["queued"]
    assert wait_for(lambda: campaign_state(outputs["CampaignsTableName"], campaign_id, State.DRAFT))


def test_a_campaign_runs_on_its_own_schedule_and_an_invalid_one_fails_alone(local_stack: LocalStack) -> None:
    # given a one-off campaign stored with its own schedule a few seconds from now, and one whose stored
    # definition no longer validates
    prefix = f"f{uuid.uuid4().hex[:6]}"
    table = local_stack.outputs["CampaignsTableName"]
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    good = {
        "campaign_id": f"{prefix}-good",
        "name": "own schedule",
        "channels": ["email"],
        "audience": {"max_decile": 1},
        "email": {"subject": "Hi", "body": "Hello"},
        "schedule": {"at": at.isoformat()},
    }
    broken = {**good, "campaign_id": f"{prefix}-broken", "email": None}
    del broken["schedule"]
    campaigns.deploy(CampaignDefinition.model_validate(good), local_stack.outputs)
    campaigns_table.put_definition(table, broken["campaign_id"], broken, State.DRAFT)
    schedule = local_stack.client("scheduler").get_schedule(
        Name=good["campaign_id"], GroupName=local_stack.outputs["CampaignScheduleGroupName"]
    )
    assert (schedule["State"], schedule["ScheduleExpression"]) == ("ENABLED", f"at({at:%Y-%m-%dT%H:%M:%S})")
    before = len(local_stack.invocations("CampaignFunction"))

    # when its schedule fires, and the broken one is fired by hand
    campaigns.run_now(broken["campaign_id"], local_stack.outputs)
    run = wait_for(lambda: fanned_out_run(local_stack, good["campaign_id"]))
    local_stack.wait_idle(timeout=120)

    # then the good run fanned out for the scheduled time and the one-off campaign completed;
    # the broken one failed alone (first try and two retries) and is marked failed
    assert run["run_id"]["S"] == run_id_for(good["campaign_id"], at)
    assert wait_for(lambda: campaign_state(table, good["campaign_id"], State.COMPLETED))
    later = local_stack.invocations("CampaignFunction")[before:]
    failed = [record for record in later if not record.ok]
    assert [record.error_type for record in failed] == ["InvalidInputError"] * 3
    assert fanned_out_run(local_stack, broken["campaign_id"]) is None
    assert campaign_state(table, broken["campaign_id"], State.FAILED)
    failures = (
        local_stack.client("sqs")
        .receive_message(QueueUrl=local_stack.outputs["AsyncFailureQueueUrl"], MaxNumberOfMessages=10)
        .get("Messages", [])
    )
    assert broken["campaign_id"] in [json.loads(m["Body"])["requestPayload"]["campaign_id"] for m in failures]


def campaign_state(table: str, campaign_id: str, state: State) -> bool:
    stored = campaigns_table.get_campaign(table, campaign_id)
    return stored is not None and stored.state is state


def _runs(stack: LocalStack, campaign_id: str) -> list[dict[str, Any]]:
    return stack.client("dynamodb").query(
        TableName=stack.outputs["CampaignsTableName"],
        KeyConditionExpression="campaign_id = :c AND begins_with(record_key, :run)",
        ExpressionAttributeValues={":c": {"S": campaign_id}, ":run": {"S": "RUN#"}},
        ConsistentRead=True,
    )["Items"]


def fanned_out_run(stack: LocalStack, campaign_id: str) -> dict[str, Any] | None:
    items = _runs(stack, campaign_id)
    # Dispatch may complete a small run before the test looks.
    return next((item for item in items if item["status"]["S"] in {"FANNED_OUT", "COMPLETED"}), None)


def ledger_for_run(stack: LocalStack, run_id: str) -> list[dict[str, Any]]:
    """The run's batch items in the send ledger (raw DynamoDB JSON), each with its sends' outcomes."""
    items = []
    for page in (
        stack.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=stack.outputs["SendsTableName"],
            KeyConditionExpression="customer_id = :run",
            ExpressionAttributeValues={":run": {"S": f"BATCH#{run_id}"}},
        )
    ):
        items += page["Items"]
    return items
