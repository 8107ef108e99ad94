"""The `cadence` CLI run in-process (main(argv)) against moto; the stack is a CloudFormation stack with Outputs."""

import csv
import gzip
import json
import sys
import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from cadence import campaign_runs
from cadence.campaign_runs import batches_key
from cadence.campaigns.plan import Batch, Send
from cadence.dal import campaigns_table, contact_history, order_history, sends_table
from cadence.dal.sends_table import Outcome, SendStatus
from cadence.orders import OrderRecord
from cadence_cli.main import main
from infra import campaigns as infra_campaigns

ROOT = Path(__file__).resolve().parents[3]
COUPON = ROOT / "infra" / "campaigns" / "coupon.yaml"
STACK = "cadence-cli-test"
AT = "2026-12-01T10:00:00+00:00"


class _AnyTime:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other[:2] == "20" and "T" in other

    def __hash__(self) -> int:
        return 0


ANY_TIME = _AnyTime()


@pytest.fixture
def stack(tables: dict[str, str], queues: dict[str, str], data_bucket: str) -> dict[str, str]:
    """A tiny CloudFormation stack in moto whose Outputs name the test resources, as template.yaml's do."""
    boto3.client("scheduler").create_schedule_group(Name="cadence-cli-test-campaigns")
    outputs = {
        "ProfilesTableName": tables["ProfilesTable"],
        "ActivityTableName": tables["ActivityTable"],
        "ScoresTableName": tables["ScoresTable"],
        "CampaignsTableName": tables["CampaignsTable"],
        "DispatchQueueUrl": queues["DISPATCH_QUEUE_URL"],
        "SendsTableName": tables["SendsTable"],
        "DataBucketName": data_bucket,
        "CampaignCaps": '{"overall": {"max": 3, "days": 7}}',
        "CampaignScheduleGroupName": "cadence-cli-test-campaigns",
        "CampaignFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:campaign",
        "CampaignSchedulerRoleArn": "arn:aws:iam::123456789012:role/scheduler",
        "AsyncFailureQueueArn": "arn:aws:sqs:us-east-1:123456789012:async-failures",
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    return outputs


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["campaign", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def with_stack(*argv: str) -> tuple[str, ...]:
    return (*argv, "--stack-name", STACK)


def test_validate_exits_0_for_the_shipped_coupon_campaign(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(COUPON))

    assert code == 0
    assert "valid campaign loyal-winback-coupon" in out


def test_validate_exits_2_naming_the_field_when_the_audience_has_a_typo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(COUPON.read_text().replace("field: order_count", "field: order_cnt"))

    code, out, err = run(capsys, "validate", str(typo), "--json")

    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "audience.all[0].field" in lines[0]
    assert "order_count" in lines[0]  # the suggestion
    assert json.loads(out)["errors"][0]["field"] == "audience"


def test_validate_exits_2_with_one_line_per_problem_when_several_fields_are_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign_id: Not An Id\nname: x\nchannels: [sms]\nholdout_percent: 90\nsms: {text: hi}\n")

    code, _, err = run(capsys, "validate", str(bad))

    assert code == 2
    fields = sorted(line.split(":")[1].strip() for line in err.strip().splitlines())
    assert fields == ["campaign_id", "holdout_percent"]


def test_deploy_list_and_show_round_trip_with_the_last_runs_counters(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # given the coupon campaign deployed, and one finished run of it
    code, out, _ = run(capsys, *with_stack("deploy", str(COUPON)))
    assert code == 0
    assert "stored campaign loyal-winback-coupon: draft" in out
    table = stack["CampaignsTableName"]
    run_id = "loyal-winback-coupon@2026-11-30T02:00:00Z"
    campaigns_table.claim_run(table, "loyal-winback-coupon", run_id)
    summary = {
        "audience_size": 7,
        "members_by_state": {"queued": 5, "holdout": 2},
        "sends_by_channel": {"sms": 5},
        "sends_queued": 5,
    }
    campaigns_table.finish_run(table, "loyal-winback-coupon", run_id, summary)

    # when it is listed and shown
    _, listed, _ = run(capsys, *with_stack("list", "--json"))
    code, shown, _ = run(capsys, *with_stack("show", "loyal-winback-coupon", "--json"))
    _, table_text, _ = run(capsys, *with_stack("show", "loyal-winback-coupon"))

    # then both describe what was deployed, and the run with its counters (never its coupon secret)
    assert json.loads(listed)["campaigns"] == [
        {
            "campaign_id": "loyal-winback-coupon",
            "name": "Loyal customers who have not visited in 3 months",
            "state": "draft",
            "state_reason": None,
            "state_changed_at": ANY_TIME,
            "channels": ["sms"],
            "schedule": None,
        }
    ]
    assert code == 0
    document = json.loads(shown)
    assert document["campaign"]["state"] == "draft"
    assert document["campaign"]["offer"]["by"] == "decile"
    [stored_run] = document["runs"]
    assert stored_run["run_id"] == run_id
    assert stored_run["status"] == "FANNED_OUT"
    assert stored_run["audience_size"] == 7
    assert stored_run["members_by_state"] == {"queued": 5, "holdout": 2}
    assert stored_run["sends_by_channel"] == {"sms": 5}
    assert "coupon_secret" not in stored_run
    assert run_id in table_text
    assert "queued=5" in table_text


def test_show_lists_runs_newest_first_and_at_most_the_number_asked(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *with_stack("deploy", str(COUPON)))
    table = stack["CampaignsTableName"]
    for day in ("01", "03", "02"):
        campaigns_table.claim_run(table, "loyal-winback-coupon", f"loyal-winback-coupon@2026-11-{day}T02:00:00Z")
    # another campaign's run is not this one's
    campaigns_table.claim_run(table, "other", "other@2026-11-04T02:00:00Z")

    _, shown, _ = run(capsys, *with_stack("show", "loyal-winback-coupon", "--runs", "2", "--json"))

    assert [r["run_id"][-20:-10] for r in json.loads(shown)["runs"]] == ["2026-11-03", "2026-11-02"]


@pytest.fixture
def weekly(tmp_path: Path) -> Path:
    """The shipped coupon campaign with its own schedule: Mondays at 10:00 Shanghai time."""
    path = tmp_path / "weekly.yaml"
    schedule = "schedule: {cron: '0 10 ? * MON *', timezone: Asia/Shanghai}\n"
    path.write_text(COUPON.read_text(encoding="utf-8") + schedule, encoding="utf-8")
    return path


def own_schedule(stack: dict[str, str]) -> dict[str, object]:
    return boto3.client("scheduler").get_schedule(
        Name="loyal-winback-coupon", GroupName=stack["CampaignScheduleGroupName"]
    )


def test_deploy_gives_a_campaign_its_own_schedule_and_pause_resume_switch_it(
    stack: dict[str, str], weekly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = stack["CampaignsTableName"]
    code, out, _ = run(capsys, *with_stack("deploy", str(weekly), "--json"))
    assert (code, json.loads(out)) == (0, {"campaign_id": "loyal-winback-coupon", "state": "scheduled"})
    schedule = own_schedule(stack)
    assert schedule["ScheduleExpression"] == "cron(0 10 ? * MON *)"
    assert schedule["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == stack["CampaignFunctionArn"]
    assert json.loads(schedule["Target"]["Input"]) == {
        "campaign_id": "loyal-winback-coupon",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }

    code, out, _ = run(capsys, *with_stack("pause", "loyal-winback-coupon", "--json"))
    assert (code, json.loads(out)) == (0, {"campaign_id": "loyal-winback-coupon", "state": "paused"})
    assert own_schedule(stack)["State"] == "DISABLED"
    paused = campaigns_table.get_campaign(table, "loyal-winback-coupon")
    assert paused is not None
    assert paused.state.value == "paused"  # dispatch suppresses its queued sends

    code, _, _ = run(capsys, *with_stack("resume", "loyal-winback-coupon"))
    assert code == 0
    assert own_schedule(stack)["State"] == "ENABLED"
    stored = campaigns_table.get_campaign(table, "loyal-winback-coupon")
    assert stored is not None
    assert stored.state.value == "scheduled"
    assert stored.definition["offer"]["by"] == "decile"  # the definition is untouched


def test_deploy_again_replaces_the_schedule_and_without_one_removes_it(
    stack: dict[str, str], weekly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *with_stack("deploy", str(weekly)))
    weekly.write_text(weekly.read_text(encoding="utf-8").replace("MON", "FRI"), encoding="utf-8")
    run(capsys, *with_stack("deploy", str(weekly)))
    assert own_schedule(stack)["ScheduleExpression"] == "cron(0 10 ? * FRI *)"

    code, out, _ = run(capsys, *with_stack("deploy", str(COUPON)))

    assert (code, out.strip()) == (0, "stored campaign loyal-winback-coupon: draft")
    assert boto3.client("scheduler").list_schedules(GroupName=stack["CampaignScheduleGroupName"])["Schedules"] == []


def test_cancel_deletes_the_schedule_and_a_cancelled_campaign_cannot_be_stored_or_resumed(
    stack: dict[str, str], weekly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *with_stack("deploy", str(weekly)))

    code, out, _ = run(capsys, *with_stack("cancel", "loyal-winback-coupon"))

    assert (code, out.strip()) == (0, "campaign loyal-winback-coupon cancelled: cancelled")
    assert boto3.client("scheduler").list_schedules(GroupName=stack["CampaignScheduleGroupName"])["Schedules"] == []
    for argv in (("deploy", str(weekly)), ("resume", "loyal-winback-coupon"), ("cancel", "loyal-winback-coupon")):
        code, _, err = run(capsys, *with_stack(*argv))
        assert code == 2, argv
        assert err.startswith("refused: cannot ") and "cancelled campaign" in err, err


def test_a_draft_cannot_be_paused_and_the_refusal_says_why(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *with_stack("deploy", str(COUPON)))

    code, _, err = run(capsys, *with_stack("pause", "loyal-winback-coupon"))

    assert code == 2
    assert "refused: cannot pause a draft campaign: it is a draft (no schedule)" in err


def test_deploy_refuses_a_one_off_schedule_that_has_passed(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    past = tmp_path / "past.yaml"
    past.write_text(COUPON.read_text(encoding="utf-8") + "schedule: {at: '2020-01-01T10:00:00'}\n", encoding="utf-8")

    code, _, err = run(capsys, *with_stack("deploy", str(past)))

    assert code == 2
    assert "schedule.at 2020-01-01T10:00:00 has passed" in err
    assert campaigns_table.get_campaign(stack["CampaignsTableName"], "loyal-winback-coupon") is None


def test_pause_exits_2_and_stores_nothing_when_the_campaign_is_not_deployed(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *with_stack("pause", "no-such-campaign"))

    assert code == 2
    assert "no-such-campaign is not deployed" in err
    assert campaigns_table.get_campaign(stack["CampaignsTableName"], "no-such-campaign") is None


def put_customers(stack: dict[str, str]) -> None:
    """12 scored customers: 8 loyal and away (audience), of whom 2 without SMS consent; 4 outside the audience."""
    dynamodb = boto3.resource("dynamodb")
    profiles = dynamodb.Table(stack["ProfilesTableName"])
    activity = dynamodb.Table(stack["ActivityTableName"])
    scores = dynamodb.Table(stack["ScoresTableName"])
    for i in range(12):
        customer_id = f"C{i:03d}"
        in_audience = i < 8
        profiles.put_item(
            Item={
                "customer_id": customer_id,
                "first_name": "Ann",
                "phone": f"+86138{i:08d}",
                "consent_sms": i not in {6, 7},
            }
        )
        activity.put_item(
            Item={
                "customer_id": customer_id,
                "order_count": 5 if in_audience else 1,
                "last_visit_at": "2026-06-01T00:00:00+00:00",
            }
        )
        scores.put_item(
            Item={"customer_id": customer_id, "decile": i % 10 + 1, "score": Decimal("0.5"), "model_version": "m1"}
        )


def test_preview_counts_add_up_and_members_file_has_one_row_per_member_and_nothing_is_written(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put_customers(stack)
    members = tmp_path / "members.csv"

    code, out, _ = run(capsys, *with_stack("preview", str(COUPON), "--at", AT, "--members", str(members), "--json"))

    assert code == 0
    report = json.loads(out)
    assert report["considered"] == 12
    assert report["audience"] == 8
    assert sum(report["members_by_state"].values()) == 8
    assert report["members_by_state"]["no_consent"] == 2
    assert report["members_by_state"]["queued"] + report["members_by_state"]["holdout"] == 6
    assert sum(report["members_by_variant"].values()) == 8
    assert report["sends_by_channel"] == {"email": 0, "sms": report["members_by_state"]["queued"], "webhook": 0}
    assert len(report["sample_members"]) == 5
    with members.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["customer_id"] for row in rows) == [f"C{i:03d}" for i in range(8)]
    assert {row["state"] for row in rows} <= {"queued", "holdout", "no_consent"}
    # a preview claims no run, queues nothing and writes nothing to the bucket
    assert campaigns_table.list_runs(stack["CampaignsTableName"], "loyal-winback-coupon") == []
    sqs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack["DispatchQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert sqs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert boto3.client("s3").list_objects_v2(Bucket=stack["DataBucketName"])["KeyCount"] == 0


def test_preview_prints_counts_per_state_variant_and_channel(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    put_customers(stack)

    code, out, _ = run(capsys, *with_stack("preview", str(COUPON), "--at", AT))

    assert code == 0
    for heading in ("members by state", "members by variant", "sends by channel", "sample members"):
        assert heading in out
    assert "audience 8" in out


def test_run_now_creates_a_one_time_schedule_for_a_deployed_campaign(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *with_stack("deploy", str(COUPON)))

    code, out, _ = run(capsys, *with_stack("run-now", "loyal-winback-coupon", "--json"))

    assert code == 0
    name = json.loads(out)["schedule_name"]
    schedule = boto3.client("scheduler").get_schedule(Name=name, GroupName=stack["CampaignScheduleGroupName"])
    assert schedule["ScheduleExpression"].startswith("at(")
    assert json.loads(schedule["Target"]["Input"])["campaign_id"] == "loyal-winback-coupon"
    assert schedule["Target"]["Arn"] == stack["CampaignFunctionArn"]


def test_run_now_exits_2_when_the_campaign_is_not_deployed(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *with_stack("run-now", "no-such-campaign"))

    assert code == 2
    assert "not deployed" in err
    schedules = boto3.client("scheduler").list_schedules(GroupName=stack["CampaignScheduleGroupName"])
    assert schedules["Schedules"] == []


def test_commands_exit_1_naming_the_stack_when_it_does_not_exist(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "list", "--stack-name", "no-such-stack")

    assert code == 1
    assert "no-such-stack" in err


def test_outputs_file_replaces_cloudformation(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack))

    code, _, _ = run(capsys, "deploy", str(COUPON), "--stack-name", "no-such-stack", "--outputs-file", str(outputs))

    assert code == 0
    assert campaigns_table.get_campaign(stack["CampaignsTableName"], "loyal-winback-coupon") is not None


def test_infra_campaigns_still_delegates_to_the_cli(stack: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    definition = infra_campaigns.load_definition(COUPON)
    infra_campaigns.deploy(definition, infra_campaigns.stack_outputs(STACK))

    assert infra_campaigns.main(["validate", str(COUPON)]) == 0
    assert campaigns_table.get_campaign(stack["CampaignsTableName"], "loyal-winback-coupon") is not None


def test_pyproject_declares_the_console_script_and_packages_only_the_cli() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())

    assert project["project"]["scripts"] == {"cadence": "cadence_cli.main:main"}
    assert project["tool"]["setuptools"]["packages"] == ["cadence_cli"]


def test_the_console_script_is_installed_in_the_venv_running_the_tests() -> None:
    # `make venv` installs it (pip install -e .); a venv built some other way would fail here, as it should.
    script = Path(sys.executable).parent / "cadence"

    assert script.is_file()
    assert "cadence_cli.main" in script.read_text(encoding="utf-8")


def test_show_counts_each_runs_sends_by_outcome_and_retry_failed_queues_only_the_failed(
    stack: dict[str, str], queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # given a run that queued one batch of four, of which dispatch sent one, left one failed and one in doubt
    run(capsys, *with_stack("deploy", str(COUPON)))
    campaign_id, run_id = "loyal-winback-coupon", "loyal-winback-coupon@2026-11-30T02:00:00Z"
    campaigns_table.claim_run(stack["CampaignsTableName"], campaign_id, run_id)
    campaigns_table.finish_run(stack["CampaignsTableName"], campaign_id, run_id, {"sends_queued": 4})
    sends = tuple(Send(campaign_id, run_id, customer_id, "sms", coupon_code="K7") for customer_id in "ABCD")
    batch = Batch(campaign_id, run_id, "sms", "sms-20261130T0200Z-00000", datetime(2026, 11, 30, 2, tzinfo=UTC), sends)
    body = gzip.compress((json.dumps(batch.to_record()) + "\n").encode())
    boto3.client("s3").put_object(Bucket=stack["DataBucketName"], Key=batches_key(campaign_id, run_id), Body=body)
    table = stack["SendsTableName"]
    claim = sends_table.claim_batch(table, run_id, "sms", batch.batch_id, campaign_id, lease_seconds=60, sending=True)
    assert claim.token is not None
    outcomes = {"A": SendStatus.SENT, "B": SendStatus.FAILED, "C": SendStatus.IN_DOUBT}
    settled = {customer_id: Outcome(status) for customer_id, status in outcomes.items()}
    sends_table.settle(table, run_id, "sms", batch.batch_id, token=claim.token, outcomes=settled)

    # when the campaign is shown and the run's failed sends retried
    _, shown, _ = run(capsys, *with_stack("show", campaign_id, "--json"))
    code, retried, _ = run(capsys, *with_stack("retry-failed", run_id, "--json"))

    # then the outcomes add up to what was queued (D was never settled), and only B and D go back, with their codes
    [stored_run] = json.loads(shown)["runs"]
    assert stored_run["sends_by_outcome"] == {
        "sent": 1, "rejected": 0, "suppressed": 0, "failed": 1, "in_doubt": 1, "cancelled": 0, "held": 0,
        "unsettled": 1,
    }  # fmt: skip
    assert (code, json.loads(retried)) == (0, {"run_id": run_id, "sends_requeued": 2})
    [message] = boto3.client("sqs").receive_message(QueueUrl=queues["DISPATCH_QUEUE_URL"])["Messages"]
    requeued = json.loads(message["Body"])
    assert (requeued["batch_id"], requeued["sends"]) == (
        batch.batch_id,
        [{"customer_id": "B", "coupon_code": "K7"}, {"customer_id": "D", "coupon_code": "K7"}],
    )


def test_history_keeps_every_stored_version_with_who_stored_it_and_when(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the campaign stored, then stored again with another name
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(COUPON.read_text().replace("name: Loyal customers", "name: Renamed loyal customers"))
    assert run(capsys, *with_stack("deploy", str(COUPON)))[0] == 0
    assert run(capsys, *with_stack("deploy", str(renamed)))[0] == 0

    code, out, _ = run(capsys, *with_stack("history", "loyal-winback-coupon", "--json"))
    _, text, _ = run(capsys, *with_stack("history", "loyal-winback-coupon"))

    # then both versions are kept, oldest first, each with the caller's IAM principal (STS) and its time
    caller = boto3.client("sts").get_caller_identity()["Arn"]
    versions = json.loads(out)["versions"]
    assert code == 0
    assert [version["definition"]["name"] for version in versions] == [
        "Loyal customers who have not visited in 3 months",
        "Renamed loyal customers who have not visited in 3 months",
    ]
    assert [version["stored_by"] for version in versions] == [caller, caller]
    assert versions[0]["stored_at"] < versions[1]["stored_at"]
    assert "Renamed loyal customers" in text
    # and the current definition is the last version
    stored = campaigns_table.get_campaign(stack["CampaignsTableName"], "loyal-winback-coupon")
    assert stored is not None
    assert stored.definition["name"] == versions[-1]["definition"]["name"]


def test_history_of_a_campaign_never_stored_exits_2(stack: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *with_stack("history", "never-stored"))

    assert code == 2
    assert "no stored versions" in err


def _seed_finished_run(bucket: str, sends_table_name: str, run_id: str) -> None:
    """40 treated members (30 messaged), 40 in the holdout; half the treated bought in the window, a quarter of
    the holdout; one treated order used its coupon, one came after another campaign's later contact."""
    campaign_id = run_id.partition("@")[0]
    treated = [f"t{n:02d}" for n in range(40)]
    holdout = [f"h{n:02d}" for n in range(40)]
    rows = [
        {"customer_id": c, "state": "queued", "variant": "", "coupon_code": f"CODE{c.upper()}", "decile": n % 2 + 1}
        for n, c in enumerate(treated)
    ] + [{"customer_id": c, "state": "holdout", "variant": "", "coupon_code": "", "decile": n % 2 + 1}
         for n, c in enumerate(holdout)]  # fmt: skip
    rows.append({"customer_id": "r00", "state": "reentry_excluded", "variant": "", "coupon_code": "", "decile": 1})
    text = "customer_id,state,variant,coupon_code,decile\n" + "".join(
        f"{r['customer_id']},{r['state']},{r['variant']},{r['coupon_code']},{r['decile']}\n" for r in rows
    )
    boto3.client("s3").put_object(Bucket=bucket, Key=campaign_runs.members_key(campaign_id, run_id), Body=text)
    sends = tuple(Send(campaign_id, run_id, c, "sms") for c in treated)
    batch = "sms-20261123T1000Z-00000"
    claim = sends_table.claim_batch(sends_table_name, run_id, "sms", batch, campaign_id, lease_seconds=60, sending=True)
    assert claim.token is not None
    outcomes = {s.customer_id: Outcome(SendStatus.SENT if n < 30 else SendStatus.FAILED) for n, s in enumerate(sends)}
    sends_table.settle(sends_table_name, run_id, "sms", batch, token=claim.token, outcomes=outcomes)

    def at(days: float) -> str:
        return (datetime(2026, 11, 23, 10, tzinfo=UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    orders = [OrderRecord(f"o-{c}", c, at(1), 100.0) for c in treated[1:20] + holdout[:10]]
    orders += [
        OrderRecord("o-coupon", "t00", at(2), 50.0, coupon_code="CODET00"),
        OrderRecord("o-late", "t01", at(8), 10.0),  # after the 7-day window
        OrderRecord("o-touched", "t02", at(4), 10.0),  # after another campaign's contact on day 2
    ]
    order_history.put_chunk(bucket, "content", 0, orders)
    contact_history.put_run(bucket, "other", "other@2026-11-25T10:00:00Z", date(2026, 11, 25), [("t02", "sms")])


def test_report_compares_treated_and_holdout_and_writes_json_and_html(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a finished run, its sends in the ledger, orders after it and another campaign's later contact
    run_id = "winback@2026-11-23T10:00:00Z"
    _seed_finished_run(stack["DataBucketName"], stack["SendsTableName"], run_id)

    # when its report is made
    code, out, _ = run(capsys, *with_stack("report", run_id, "--json", "--open", "--out", str(tmp_path)))

    # then treated (all 40 assigned, reached or not) are compared with the 40 of the holdout
    assert code == 0
    report = json.loads(out)
    overall = report["overall"]
    assert (overall["treated"], overall["holdout"], overall["reached_share"]) == (40, 40, 0.75)
    assert (overall["conversion"]["treated_mean"], overall["conversion"]["holdout_mean"]) == (0.5, 0.25)
    assert overall["conversion"]["difference"] == pytest.approx(0.25)
    assert overall["conversion"]["low"] < 0.25 < overall["conversion"]["high"]
    assert overall["conversion_per_messaged"]["difference"] == pytest.approx(0.25 / 0.75)
    assert overall["revenue_per_customer"]["difference"] == pytest.approx((19 * 100 + 50 + 10) / 40 - 1000 / 40)
    assert overall["approximate"] is True  # 10 converters in the holdout
    assert report["attribution"] == {
        "orders": 20, "orders_by_coupon": 1, "orders_by_window": 19, "revenue": 1950.0, "customers": 20,
        "orders_to_later_touch": 1, "orders_with_other_code": 0,
    }  # fmt: skip
    assert [segment["segment"] for segment in report["by_decile"]] == [1, 2]
    assert sum(segment["treated"] for segment in report["by_decile"]) == 40
    assert report["window"] == {"days": 7, "start": "2026-11-23T10:00:00Z", "end": "2026-11-30T10:00:00Z",
                                "closed": True}  # fmt: skip
    # and both documents are in the bucket, the HTML also on disk
    s3 = boto3.client("s3")
    stored = json.loads(s3.get_object(Bucket=stack["DataBucketName"], Key=report["report_key"])["Body"].read())
    assert stored["overall"] == overall
    assert report["html_key"] == "reports/campaigns/winback/winback_2026-11-23T100000Z/report.html"
    html = Path(report["html_file"]).read_text()
    assert "<svg" in html and "<script" not in html
    assert "25.0 %" in html  # the headline difference


def test_report_prints_tables_and_honours_a_shorter_window(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = "winback@2026-11-23T10:00:00Z"
    _seed_finished_run(stack["DataBucketName"], stack["SendsTableName"], run_id)

    code, out, _ = run(capsys, *with_stack("report", run_id, "--window-days", "1", "--open", "--out", str(tmp_path)))

    assert code == 0
    assert "attribution window 1 days to 2026-11-24T10:00:00Z" in out
    assert "uplift: treated minus holdout" in out
    assert f"HTML report: {tmp_path.resolve()}" in out
    # the orders of day 1 fall just outside a one-day window [run, run + 1 day): no conversions on either side
    _, as_json, _ = run(capsys, *with_stack("report", run_id, "--window-days", "1", "--json"))
    conversion = json.loads(as_json)["overall"]["conversion"]
    assert (conversion["treated_mean"], conversion["holdout_mean"], conversion["p_value"]) == (0.0, 0.0, 1.0)


def test_report_exits_2_when_the_run_never_fanned_out(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *with_stack("report", "winback@2026-11-23T10:00:00Z"))

    assert code == 2
    assert "invalid" in err
