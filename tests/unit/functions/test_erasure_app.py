"""Erasure leaves no trace of the customer in any table or data-bucket prefix the template declares, keeps the
others' data, and a file re-importing the customer does not bring their consent back."""

import gzip
import json
import os
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest

from cadence import campaign_control, config, erasure
from cadence.campaigns import CampaignDefinition
from cadence.conversations import inbound
from cadence.dal import suppression_table
from cadence.ingest import service
from cadence.ingest.models import FileRef
from cadence.suppression import address_hash
from functions.campaign import app as campaign_app
from functions.erasure import app
from tests.conftest import load_template
from tests.unit.functions.test_risk_guard import deliver

ERASED, KEPT = "C1", "C10"  # C1's id is a prefix of C10's: erasing one must leave the other
EMAIL, PHONE = "gone.person@example.com", "+8613800138001"
CUSTOMERS = (
    "customer_id,email,phone,first_name,consent_email,consent_sms,updated_at\n"
    f"{ERASED},{EMAIL},13800138001,Gone,yes,yes,2026-01-01T00:00:00Z\n"
    f"{KEPT},kept@example.com,13800138010,Kept,yes,yes,2026-01-01T00:00:00Z\n"
    # a rejected row naming the erased customer (an invalid email): it lands in rejected/ with its values
    f"{ERASED},not-an-email {EMAIL},,Gone,yes,yes,2026-01-02T00:00:00Z\n"
)
ORDERS = (
    "order_id,customer_id,order_date,amount,currency,items,channel,coupon_code\n"
    f"O-1,{ERASED},2026-01-03T10:00:00Z,10.00,CNY,1,web,\n"
    f"O-2,{KEPT},2026-01-03T11:00:00Z,20.00,CNY,1,web,\n"
)
CAMPAIGN = {
    "campaign_id": "winback",
    "name": "Win back",
    "channels": ["email", "sms"],
    "holdout_percent": 0,
    "email": {"subject": "Hello {first_name}", "body": "We miss you"},
    "sms": {"text": "We miss you"},
}
# Data-bucket prefixes that hold no customer data: the model artefacts and the column mapping.
NOT_CUSTOMER_DATA = {"models/", "config/"}


def template_tables() -> set[str]:
    return {name for name, r in load_template()["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}


def template_prefixes() -> set[str]:
    """Every data-bucket prefix a function's policy names (what the system writes and reads there)."""
    text = json.dumps(load_template()["Resources"])
    return {f"{match}/" for match in re.findall(r"-data-\$\{AWS::AccountId\}-\$\{AWS::Region\}/([a-z0-9_-]+)/", text)}


def ingest(bucket: str, key: str, body: str) -> None:
    version = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())["VersionId"]
    settings = config.ingest_settings().model_copy(update={"ingest_write_workers": 1})
    service.ingest_files([FileRef(bucket, key, version)], settings=settings)


def traces(tables: dict[str, str], bucket: str, tokens: list[str]) -> list[str]:
    """Where any token still appears: table items (any attribute, name or value) and object versions."""
    pattern = re.compile("|".join(rf"(?<![\w@.+-]){re.escape(t)}(?![\w@.+-])" for t in tokens), re.IGNORECASE)
    found = []
    dynamodb = boto3.client("dynamodb")
    for logical_id, name in tables.items():
        for item in dynamodb.scan(TableName=name)["Items"]:
            text = json.dumps(item, default=repr)  # binary attributes (packed message ids) as their repr
            if pattern.search(text):
                found.append(f"{logical_id}: {text[:200]}")
    s3 = boto3.client("s3")
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        if pattern.search(text.decode("utf-8", errors="replace")):
            found.append(f"s3://{bucket}/{version['Key']} ({version['VersionId']})")
    return found


@pytest.fixture
def pipeline(
    tables: dict[str, str], queues: dict[str, str], data_bucket: str, ses_sender: str, release_settings: str,
    lambda_context: Any,
) -> str:  # fmt: skip
    """Two customers ingested (with a rejected row and orders), scored, sent a campaign run (ledger, members,
    batches, contact history). Returns the bucket."""
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=data_bucket, VersioningConfiguration={"Status": "Enabled"})
    ingest(data_bucket, "incoming/customers/crm.csv", CUSTOMERS)
    ingest(data_bucket, "incoming/orders/orders.csv", ORDERS)
    scores = boto3.resource("dynamodb").Table(tables["ScoresTable"])
    for customer_id in (ERASED, KEPT):
        scores.put_item(Item={"customer_id": customer_id, "decile": 1, "score": Decimal("0.9")})
    campaign_control.store(CampaignDefinition.model_validate(CAMPAIGN), config.campaign_settings())
    campaign_app.lambda_handler({"campaign_id": "winback", "scheduled_time": "2026-11-23T02:00:00Z"}, lambda_context)
    deliver(queues, lambda_context, 2)  # the email batch and the SMS batch
    # the customer texts back: the reply is on their timeline
    replies = config.ConversationSettings.model_validate(
        {key.lower(): value for key, value in os.environ.items()}
        | {"alarm_topic_arn": "arn:aws:sns:us-east-1:123456789012:alarms", "human_queue_url": queues["HUMAN_QUEUE_URL"]}
    )
    inbound.handle(inbound.Reply("sms", "in-1", PHONE, f"STOP, {EMAIL} too", datetime.now(UTC)), replies, None)
    return data_bucket


def test_the_template_declares_no_table_or_customer_prefix_erasure_does_not_know(tables: dict[str, str]) -> None:
    assert template_tables() == set(tables)
    assert template_prefixes() - NOT_CUSTOMER_DATA == set(erasure.CUSTOMER_PREFIXES)


def test_erasure_leaves_no_trace_of_the_customer_and_keeps_the_others(
    tables: dict[str, str], pipeline: str, lambda_context: Any
) -> None:
    tokens = [ERASED, EMAIL, PHONE]
    before = traces(tables, pipeline, tokens)
    # the customer is everywhere the system keeps data
    for where in ("ProfilesTable", "ActivityTable", "ScoresTable", "SendsTable", "ConversationsTable", "rejected/",
                  "campaign-runs/", "contact-history/", "order-history/", "incoming/"):  # fmt: skip
        assert any(where in trace for trace in before), where

    report = app.lambda_handler({"customer_id": ERASED}, lambda_context)

    assert traces(tables, pipeline, tokens) == []
    assert report["tables"]["profiles"] == 1
    assert report["tables"]["sends"] == 2
    assert report["objects_rewritten"]
    assert traces(tables, pipeline, [KEPT, "kept@example.com"])  # the other customer's data is all still there
    kept = boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": KEPT})["Item"]
    assert kept["consent_email"] is True


def test_a_file_re_importing_an_erased_customer_does_not_bring_their_consent_back(
    tables: dict[str, str], pipeline: str, lambda_context: Any
) -> None:
    app.lambda_handler({"customer_id": ERASED}, lambda_context)

    ingest(pipeline, "incoming/customers/old-export.csv", CUSTOMERS)

    profile = boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": ERASED})["Item"]
    assert (profile["consent_email"], profile["consent_sms"]) == (False, False)
    # and the planner leaves the addresses out whatever the profile says: they carry an erasure suppression
    listed = suppression_table.suppressed_addresses(os.environ["SUPPRESSION_TABLE"], ["email", "sms"])
    assert {("email", address_hash(EMAIL)), ("sms", address_hash(PHONE))} <= listed


def test_cadence_customer_erase_invokes_the_function_and_prints_what_it_removed(
    tables: dict[str, str], pipeline: str, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from cadence.dal import lambdas  # noqa: PLC0415
    from cadence_cli.main import main  # noqa: PLC0415

    invoked = []

    def invoke_in_process(function_name: str, payload: dict[str, Any]) -> Any:
        # moto's Lambda would need Docker to run it: the handler runs here, against the same moto resources
        invoked.append(function_name)
        return app.lambda_handler(payload, lambda_context)

    monkeypatch.setattr(lambdas, "invoke_sync", invoke_in_process)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"ErasureFunctionName": "cadence-test-erasure"}))

    code = main(["customer", "erase", ERASED, "--outputs-file", str(outputs), "--json"])

    assert code == 0
    assert invoked == ["cadence-test-erasure"]
    out = capsys.readouterr().out  # the handler's own log lines come first (one JSON object a line)
    printed = json.loads(out[out.rindex("\n{\n") + 1 :])
    assert printed["customer_id"] == ERASED
    assert printed["tables"]["profiles"] == 1
    assert any(key.startswith("rejected/") for key in printed["objects_rewritten"])
    assert traces(tables, pipeline, [ERASED, EMAIL, PHONE]) == []
