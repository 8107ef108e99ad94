"""`make demo`: the whole pipeline on a fresh local stack, summarised on screen and in build/demo-report.json.

Stages: build the model on generated data -> start the local stack (template.yaml deployed into moto)
-> publish the model -> drop customers, orders and events files under incoming/ -> wait for profiles
and scores -> store and fire one campaign (email + SMS) -> wait for the sends -> drop the orders of the week
after it, generated with a known effect (messaged members buy more) -> the campaign's report, whose uplift
interval must cover that effect -> two customers text back (End User Messaging's SNS message): a question that the
reply model routes to the human queue, and a STOP that turns SMS consent off and is confirmed once -> summarise.
The exit status is 0 only when every stage did its work (every count in the summary above zero).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.ingest_reports import latest_report
from infra.local_stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
DEMO_CAMPAIGN = ROOT / "infra" / "campaigns" / "winback.yaml"
COUPON_CAMPAIGN = ROOT / "infra" / "campaigns" / "coupon.yaml"
FEEDS = ("customers", "orders", "events")
REPLY_MODEL_VERSION = "intent-1"
STAGES = ("IngestFunction", "ScoreFunction", "CampaignFunction", "DispatchFunction", "ConversationsFunction")
# What the two customers text back to the demo campaign's SMS.
QUESTION, STOP = "我的订单什么时候到\uff1f能帮我查一下吗", "退订"


def stage_activity(stack: LocalStack, function_logical_id: str) -> dict[str, Any]:
    """What one function did during the run: invocations, errors, time busy, AWS API calls by operation."""
    records = stack.invocations(function_logical_id)
    calls: Counter[str] = Counter()
    for record in records:
        calls.update(record.api_calls)
    return {
        "invocations": len(records),
        "errors": sum(not record.ok for record in records),
        "busy_s": round(sum(record.duration_ms for record in records) / 1000, 2),
        "api_calls": sum(calls.values()),
        "api_calls_by_operation": dict(calls.most_common()),
    }


def stage(message: str) -> Callable[[], None]:
    """Print a stage as it starts and, when the returned callable is called, how long it took."""
    started = time.perf_counter()
    print(f"  {message} ...", flush=True)

    def done() -> None:
        print(f"    done in {time.perf_counter() - started:.1f} s", flush=True)

    return done


def build_model(model_dir: Path, data_dir: Path, customers: int) -> dict[str, Any]:
    """Generate demo data with a known signal and train, evaluate and export the model on it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "model_build",
            "demo-model",
            "--out",
            str(model_dir),
            "--data-dir",
            str(data_dir),
            "--customers",
            str(customers),
        ],
        check=True,
        cwd=ROOT,
    )
    return json.loads((model_dir / "manifest.json").read_text())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until the predicate holds; raise TimeoutError naming what never happened."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def scan_all(stack: LocalStack, table: str) -> list[dict[str, Any]]:
    dynamodb = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return items


def ingest_reports(stack: LocalStack, bucket: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    s3 = stack.client("s3")
    return {key: latest_report(s3, bucket, key) for key in keys}


def measure_uplift(stack: LocalStack, outputs: dict[str, str], run_id: str, build_dir: Path) -> dict[str, Any]:
    """Drop the orders of the run's attribution window, generated with a known effect from its members and sends,
    then make its report with `cadence campaign report RUN --open` and return what it measured against the truth."""
    # Imported here: spawned workers import this module, so pandas and the CLI load only when the demo runs.
    import pandas as pd  # noqa: PLC0415

    from cadence import campaign_report  # noqa: PLC0415
    from cadence.campaign_runs import members_key  # noqa: PLC0415
    from cadence.dal import contact_history, sends_table  # noqa: PLC0415
    from cadence_cli.main import main as cadence  # noqa: PLC0415
    from model_build.synthetic import CampaignEffect, campaign_orders  # noqa: PLC0415

    done = stage("dropping the week's orders after the demo campaign (known effect) and making its report")
    bucket, campaign_id = outputs["DataBucketName"], run_id.partition("@")[0]
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=bucket, Key=members_key(campaign_id, run_id))["Body"]
    members = pd.read_csv(body, dtype=str, keep_default_na=False)
    messaged = {
        customer_id
        for batch in sends_table.run_batches(outputs["SendsTableName"], run_id).values()
        for customer_id, outcome in batch.outcomes.items()
        if outcome.status is sends_table.SendStatus.SENT
    }
    effect = CampaignEffect()
    orders = campaign_orders(members, messaged, campaign_report.run_time(run_id), effect, seed=11)
    path = build_dir / "demo-data" / "campaign-orders.csv"
    orders.to_csv(path, index=False)
    s3.upload_file(str(path), bucket, "incoming/orders/demo-campaign-orders.csv")
    stack.wait_idle(timeout=600)

    outputs_file = build_dir / "demo-outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    out = build_dir / "reports"
    code = cadence(["campaign", "report", run_id, "--outputs-file", str(outputs_file), "--open", "--out", str(out)])
    key = f"{campaign_report.report_prefix(campaign_id, run_id)}/report.json"
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    done()
    overall = report["overall"]
    # The effect of being in the campaign is the lift on those it reached, times the share it reached.
    expected_itt = effect.lift * overall["reached_share"]
    return {
        "exit_code": code,
        "orders_dropped": len(orders),
        "known_lift_per_messaged": effect.lift,
        "base_conversion": effect.base,
        "reached_share": overall["reached_share"],
        "treated": overall["treated"],
        "holdout": overall["holdout"],
        "conversion": overall["conversion"],
        "conversion_per_messaged": overall["conversion_per_messaged"],
        "expected_conversion_difference": round(expected_itt, 6),
        "covers_known_effect": _covers(overall["conversion_per_messaged"], effect.lift)
        and _covers(overall["conversion"], expected_itt),
        "attribution": report["attribution"],
        "report_key": key,
        "html_file": str((out / f"{contact_history.run_key(run_id)}.html").resolve()),
    }


def build_reply_model(out: Path) -> dict[str, Any]:
    """The reply intent model, trained on the labelled replies the project ships."""
    from model_build.intent import DEFAULT_DATA, build_intent_model  # noqa: PLC0415 - only the demo trains it

    build_intent_model(DEFAULT_DATA, out, version=REPLY_MODEL_VERSION)
    return json.loads((out / "manifest.json").read_text())


def build_models(
    model_dir: Path, data_dir: Path, reply_model_dir: Path, customers: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The propensity model on generated customers and the reply model on the shipped replies (their manifests)."""
    done = stage(f"building the model on {customers:,} generated customers")
    manifest = build_model(model_dir, data_dir, customers)
    done()
    done = stage("building the reply intent model on the shipped labelled replies")
    reply_manifest = build_reply_model(reply_model_dir)
    done()
    return manifest, reply_manifest


def converse(stack: LocalStack, outputs: dict[str, str], run_id: str) -> dict[str, Any]:
    """Two customers who got the campaign's SMS reply to it, as End User Messaging publishes replies to the
    template's topic: one asks about an order, one texts STOP. Returns what became of each."""
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415

    from cadence.dal.sends_table import Outcome, SendStatus  # noqa: PLC0415

    done = stage("two customers text back: a question about an order, and 退订 (STOP)")
    ledger = scan_all(stack, outputs["SendsTableName"])
    deserializer = TypeDeserializer()
    sent = [
        (customer_id, outcome.message_id)
        for item in ledger
        if item["channel"]["S"] == "sms" and item["customer_id"]["S"].endswith(run_id)
        for customer_id, stored in sorted(item.get("recipients", {"M": {}})["M"].items())
        if (outcome := Outcome.from_attribute(deserializer.deserialize(stored))).status is SendStatus.SENT
        and outcome.message_id
    ]
    (asking, asked_id), (stopping, stopped_id) = sent[:2]
    table = outputs["ProfilesTableName"]
    dynamodb = stack.client("dynamodb")

    def phone(customer_id: str) -> str:
        return str(dynamodb.get_item(TableName=table, Key={"customer_id": {"S": customer_id}})["Item"]["phone"]["S"])

    sms_before = len(stack.sent_sms())
    for customer_id, body, in_reply_to in ((asking, QUESTION, asked_id), (stopping, STOP, stopped_id)):
        message = {
            "originationNumber": phone(customer_id),
            "destinationNumber": "+12125550101",
            "messageKeyword": "KEYWORD_123456789012",
            "messageBody": body,
            "inboundMessageId": f"demo-{customer_id}",
            "previousPublishedMessageId": in_reply_to,
        }
        stack.client("sns").publish(
            TopicArn=outputs["InboundSmsTopicArn"], Message=json.dumps(message, ensure_ascii=False)
        )
    stack.wait_idle(timeout=120)
    done()
    queued = stack.client("sqs").receive_message(QueueUrl=outputs["HumanQueueUrl"], MaxNumberOfMessages=10)
    routed = [json.loads(message["Body"]) for message in queued.get("Messages", [])]
    stopped = dynamodb.get_item(TableName=table, Key={"customer_id": {"S": stopping}})["Item"]
    campaign_id = run_id.partition("@")[0]
    run = dynamodb.get_item(
        TableName=outputs["CampaignsTableName"],
        Key={"campaign_id": {"S": campaign_id}, "record_key": {"S": f"RUN#{run_id}"}},
    ).get("Item", {})
    return {
        "routed_to_a_person": [
            {key: body.get(key) for key in ("customer_id", "campaign_id", "intent", "confidence", "reason")}
            for body in routed
        ],
        "asking_customer": asking,
        "stopping_customer": stopping,
        "stopping_customer_consent_sms": stopped["consent_sms"]["BOOL"],
        "answers_sent": [sms["message"] for sms in stack.sent_sms()[sms_before:]],
        "run_reply_counts": {
            key.removeprefix("feedback_"): int(value["N"])
            for key, value in run.items()
            if key in {"feedback_reply", f"feedback_opt_out_{STOP}", "feedback_routed"}
        },
    }


def _covers(estimate: dict[str, Any], value: float) -> bool:
    return estimate["low"] is not None and estimate["low"] <= value <= estimate["high"]


def run_demo(customers: int, build_dir: Path) -> dict[str, Any]:
    """Run every stage and return the summary."""
    started = time.perf_counter()
    model_dir, data_dir = build_dir / "model", build_dir / "demo-data"
    manifest, reply_manifest = build_models(model_dir, data_dir, build_dir / "intent-model", customers)

    done = stage("starting the local stack (moto + template.yaml)")
    with LocalStack(
        port=0, parameters={"ModelVersion": manifest["version"], "IntentModelVersion": REPLY_MODEL_VERSION}
    ) as stack:
        done()
        # The campaign CLI and the DAL build their own boto3 clients: point them at the stack.
        os.environ.update(stack.client_environment())
        outputs = stack.outputs
        bucket = outputs["DataBucketName"]
        s3 = stack.client("s3")
        print(f"    endpoint {stack.endpoint_url}, bucket {bucket}", flush=True)

        done = stage(f"publishing model {manifest['version']}")
        stack.publish_model(model_dir)
        stack.publish_model(build_dir / "intent-model")
        done()

        done = stage("dropping customers, orders and events files under incoming/")
        dropped = []
        for feed in FEEDS:
            key = f"incoming/{feed}/demo-{feed}.csv"
            s3.upload_file(str(data_dir / f"{feed}.csv"), bucket, key)
            dropped.append(key)
            # Each feed lands before the next, as an upstream export would; scoring follows both.
            stack.wait_idle(timeout=600)
        done()

        reports = ingest_reports(stack, bucket, dropped)
        profiles = scan_all(stack, outputs["ProfilesTableName"])
        scored = scan_all(stack, outputs["ScoresTableName"])

        def fire(path: Path) -> dict[str, Any]:
            """Store the campaign, fire it once now, wait for its run to fan out and its sends to settle."""
            from infra import campaigns  # noqa: PLC0415 - spawned workers import this module: keep it light

            definition = campaigns.load_definition(path)
            campaigns.deploy(definition, outputs)
            campaigns.run_now(definition.campaign_id, outputs)

            def finished_run() -> dict[str, Any] | None:
                return next(
                    (
                        item
                        for item in scan_all(stack, outputs["CampaignsTableName"])
                        if item["campaign_id"]["S"] == definition.campaign_id
                        and item["record_key"]["S"].startswith("RUN#")
                        and item["status"]["S"] in {"FANNED_OUT", "COMPLETED"}
                    ),
                    None,
                )

            wait_for(lambda: finished_run() is not None, timeout=120, what=f"{definition.campaign_id} to fan out")
            stack.wait_idle(timeout=600)
            return finished_run() or {}

        done = stage("storing and firing the demo campaign")
        run = fire(DEMO_CAMPAIGN)
        done()
        done = stage("storing and firing the coupon campaign (orders >= 3, no visit in 90 days)")
        coupon_run = fire(COUPON_CAMPAIGN)
        done()
        uplift = measure_uplift(stack, outputs, run["run_id"]["S"], build_dir)
        ledger = scan_all(stack, outputs["SendsTableName"])
        # One item per batch, each send's outcome in its recipients map.
        sends = [
            (item["channel"]["S"], outcome["M"]["s"]["S"])
            for item in ledger
            for outcome in item.get("recipients", {"M": {}})["M"].values()
        ]
        sent_by_channel = Counter(channel for channel, status in sends if status == "SENT")
        outcomes = Counter(status for _, status in sends)
        provider_counts = {"email": len(stack.sent_emails()), "sms": len(stack.sent_sms())}
        conversations = converse(stack, outputs, run["run_id"]["S"])
        stages = {name: stage_activity(stack, name) for name in STAGES}

    feed_summary = {
        key: {name: report[name] for name in ("rows_read", "rows_accepted", "rows_rejected")}
        for key, report in reports.items()
    }
    return {
        "rows_accepted": sum(report["rows_accepted"] for report in reports.values()),
        "rows_rejected": sum(report["rows_rejected"] for report in reports.values()),
        "files": feed_summary,
        "profiles": len(profiles),
        "customers_scored": len(scored),
        "model_version": manifest["version"],
        "model_auc": manifest["metrics"]["roc_auc"],
        "campaign_run_id": run["run_id"]["S"],
        "audience_size": int(run["audience_size"]["N"]),
        "holdout_size": int(run["holdout_size"]["N"]),
        "campaign_run_status": run["status"]["S"],
        "campaign_run_queued": int(run["sends_queued"]["N"]) + int(run.get("sends_deferred", {"N": "0"})["N"]),
        "campaign_run_final": {k: int(v["N"]) for k, v in run.get("final_counters", {"M": {}})["M"].items()},
        "coupon_campaign": {
            "audience_size": int(coupon_run["audience_size"]["N"]),
            "members_by_state": {k: int(v["N"]) for k, v in coupon_run["members_by_state"]["M"].items()},
            "sends_queued": int(coupon_run["sends_queued"]["N"]),
        },
        "messages_sent": dict(sent_by_channel),
        "send_outcomes": dict(outcomes),
        "uplift": uplift,
        "provider_accepted": provider_counts,
        "reply_model": {
            "version": reply_manifest["version"],
            "macro_f1": reply_manifest["metrics"]["macro_f1"],
            "confidence_threshold": reply_manifest["confidence_threshold"],
        },
        "conversations": conversations,
        "stages": stages,
        "duration_s": round(time.perf_counter() - started, 1),
    }


def failed_checks(summary: dict[str, Any]) -> list[str]:
    """What a successful demo must show; an empty list means every stage did its work."""
    checks = {
        "rows were accepted": summary["rows_accepted"] > 0,
        "bad rows were rejected": summary["rows_rejected"] > 0,
        "customers were scored": summary["customers_scored"] > 0,
        "emails were sent": summary["messages_sent"].get("email", 0) > 0,
        "SMS were sent": summary["messages_sent"].get("sms", 0) > 0,
        "a holdout was kept": summary["holdout_size"] > 0,
        "every coupon audience member has one state": sum(summary["coupon_campaign"]["members_by_state"].values())
        == summary["coupon_campaign"]["audience_size"],
        "the model has an AUC": summary["model_auc"] > 0,
        "the campaign run completed, its final counters adding up to what it queued": summary["campaign_run_status"]
        == "COMPLETED"
        and sum(summary["campaign_run_final"].values()) == summary["campaign_run_queued"],
        "the campaign report's 95 % interval covers the known effect": summary["uplift"]["exit_code"] == 0
        and summary["uplift"]["covers_known_effect"],
        "a customer's question reached the human queue with its intent": [
            (routed["customer_id"], routed["reason"]) for routed in summary["conversations"]["routed_to_a_person"]
        ]
        == [(summary["conversations"]["asking_customer"], "intent")],
        "a STOP turned SMS consent off and was confirmed once": summary["conversations"][
            "stopping_customer_consent_sms"
        ]
        is False
        and len(summary["conversations"]["answers_sent"]) == 1,
        "SES and SNS saw every send": summary["provider_accepted"]
        == {"email": summary["messages_sent"].get("email", 0), "sms": summary["messages_sent"].get("sms", 0)},
    }
    return [name for name, ok in checks.items() if not ok]


def print_summary(summary: dict[str, Any]) -> None:
    rows = [
        ("rows accepted", f"{summary['rows_accepted']:,}"),
        ("rows rejected (quarantined)", f"{summary['rows_rejected']:,}"),
        ("profiles", f"{summary['profiles']:,}"),
        ("customers scored", f"{summary['customers_scored']:,}"),
        ("model", f"{summary['model_version']} (ROC AUC {summary['model_auc']:.3f})"),
        ("campaign audience", f"{summary['audience_size']:,}"),
        ("holdout", f"{summary['holdout_size']:,}"),
        (
            "campaign run",
            f"{summary['campaign_run_status']}: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(summary["campaign_run_final"].items()) if v),
        ),
        (
            "coupon campaign",
            f"audience {summary['coupon_campaign']['audience_size']:,}: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(summary["coupon_campaign"]["members_by_state"].items())),
        ),
        ("emails sent", f"{summary['messages_sent'].get('email', 0):,}"),
        ("SMS sent", f"{summary['messages_sent'].get('sms', 0):,}"),
        ("send outcomes", ", ".join(f"{k} {v:,}" for k, v in sorted(summary["send_outcomes"].items()))),
        ("uplift (conversion)", _uplift_text(summary["uplift"])),
        ("campaign report", summary["uplift"]["html_file"]),
        ("reply model", _reply_model_text(summary["reply_model"])),
        ("replies", _conversations_text(summary["conversations"])),
        ("total time", f"{summary['duration_s']} s"),
    ]
    width = max(len(label) for label, _ in rows)
    print("\ncadence demo summary")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print(f"\n  {'stage':<22} {'invocations':>11} {'errors':>7} {'busy s':>8} {'API calls':>10}")
    for name, activity in summary["stages"].items():
        print(
            f"  {name:<22} {activity['invocations']:>11} {activity['errors']:>7}"
            f" {activity['busy_s']:>8.1f} {activity['api_calls']:>10}"
        )


def _uplift_text(uplift: dict[str, Any]) -> str:
    def points(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:+.1f} pts"

    itt, messaged = uplift["conversion"], uplift["conversion_per_messaged"]
    return (
        f"{points(itt['difference'])} [{points(itt['low'])}, {points(itt['high'])}] for the treated "
        f"(expected {points(uplift['expected_conversion_difference'])}); per messaged customer "
        f"{points(messaged['difference'])} [{points(messaged['low'])}, {points(messaged['high'])}], "
        f"known {points(uplift['known_lift_per_messaged'])}"
    )


def _reply_model_text(model: dict[str, Any]) -> str:
    return f"{model['version']} (macro F1 {model['macro_f1']:.2f}, threshold {model['confidence_threshold']:.2f})"


def _conversations_text(conversations: dict[str, Any]) -> str:
    routed = ", ".join(
        f"{r['customer_id']} -> a person ({r['intent']} {float(r['confidence'] or 0):.2f})"
        for r in conversations["routed_to_a_person"]
    )
    consent = "yes" if conversations["stopping_customer_consent_sms"] else "no"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(conversations["run_reply_counts"].items()))
    return (
        f"{routed}; {conversations['stopping_customer']} STOP -> SMS consent {consent}, "
        f"{len(conversations['answers_sent'])} confirmation; on the run: {counts}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "demo-report.json")
    parser.add_argument("--customers", type=int, default=2000, help="how many customers to generate")
    args = parser.parse_args(argv)
    print("cadence demo")
    summary = run_demo(args.customers, args.report.parent)
    failures = failed_checks(summary)
    summary["failed_checks"] = failures
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    print(f"\nreport written to {args.report}")
    if failures:
        print("DEMO FAILED: " + "; ".join(f"no evidence that {name}" for name in failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
