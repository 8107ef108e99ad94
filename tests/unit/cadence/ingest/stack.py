"""The AWS resources ingest touches, created in moto as template.yaml declares them, plus readers for outcomes."""

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

from cadence.config import IngestSettings
from cadence.dal import clients
from cadence.dal.items import from_item
from tests.conftest import create_table_from_template

ROOT = Path(__file__).resolve().parents[4]
LEDGER_TABLE = "test-ingest-ledger"


@cache
def _template() -> dict[str, Any]:
    return yaml_parse((ROOT / "template.yaml").read_text())


def template_resource(logical_id: str) -> dict[str, Any]:
    return _template()["Resources"][logical_id]


def create_table(logical_id: str, name: str) -> None:
    create_table_from_template(clients.client("dynamodb"), logical_id, name)


def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: TypeDeserializer().deserialize(value) for key, value in item.items()}


@dataclass
class IngestStack:
    """Bucket (versioned, as declared), profiles, activity and ledger tables and the score queue, all in moto."""

    bucket: str
    queue_url: str
    settings: IngestSettings
    _seen_messages: list[dict[str, Any]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        # The DAL's cached clients: building one costs ~0.1 s, so tests and code share one per service.
        return clients.client(service)

    def wipe(self) -> None:
        """Empty the bucket, the tables and the queue, so each test starts from nothing."""
        s3 = self.client("s3")
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                s3.delete_object(Bucket=self.bucket, Key=entry["Key"], VersionId=entry["VersionId"])
        dynamodb = self.client("dynamodb")
        tables = (
            (self.settings.profiles_table, "customer_id"),
            (self.settings.activity_table, "customer_id"),
            (LEDGER_TABLE, "record_key"),
        )
        for table, key in tables:
            for item in dynamodb.scan(TableName=table, ProjectionExpression="#k", ExpressionAttributeNames={"#k": key})[
                "Items"
            ]:
                dynamodb.delete_item(TableName=table, Key=item)
        suppression = os.environ["SUPPRESSION_TABLE"]
        for item in dynamodb.scan(TableName=suppression, ProjectionExpression="pk, sk")["Items"]:
            dynamodb.delete_item(TableName=suppression, Key=item)
        self.score_messages()  # drains the queue (PurgeQueue allows one call a minute)
        self._seen_messages.clear()

    @classmethod
    def create(cls, **overrides: Any) -> "IngestStack":
        bucket = os.environ["DATA_BUCKET"]
        s3 = clients.client("s3")
        s3.create_bucket(Bucket=bucket)
        versioning = template_resource("DataBucket")["Properties"]["VersioningConfiguration"]
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning["Status"]})
        create_table("ProfilesTable", os.environ["PROFILES_TABLE"])
        create_table("ActivityTable", os.environ["ACTIVITY_TABLE"])
        create_table("IngestLedgerTable", LEDGER_TABLE)
        create_table("SuppressionTable", os.environ["SUPPRESSION_TABLE"])
        queue_url = clients.client("sqs").create_queue(QueueName=os.environ["SCORE_QUEUE_URL"].rsplit("/", 1)[-1])[
            "QueueUrl"
        ]
        settings = IngestSettings(
            profiles_table=os.environ["PROFILES_TABLE"],
            activity_table=os.environ["ACTIVITY_TABLE"],
            data_bucket=bucket,
            score_queue_url=queue_url,
            ingest_ledger_table=LEDGER_TABLE,
            suppression_table=os.environ["SUPPRESSION_TABLE"],
            # moto's in-process DynamoDB is not thread-safe.
            ingest_write_workers=1,
            **overrides,
        )
        return cls(bucket=bucket, queue_url=queue_url, settings=settings)

    # ---------- inputs ----------

    def put(self, key: str, body: bytes | str, metadata: dict[str, str] | None = None) -> str | None:
        """Upload a file; returns its version id."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        response = self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data, Metadata=metadata or {})
        return response.get("VersionId")

    # ---------- outcomes ----------

    def keys(self, prefix: str) -> list[str]:
        response = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]

    def exists(self, key: str) -> bool:
        response = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=key)
        return any(item["Key"] == key for item in response.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def version_tag(self, source_key: str, version: str | None) -> str:
        """The folder ingest writes one upload's outputs under: its version id (the only one, when None)."""
        if version is not None:
            return version
        tags = [key.removesuffix(".json").rsplit("/", 1)[-1] for key in self.keys(f"reports/ingest/{source_key}/")]
        assert len(tags) == 1, f"expected one report for {source_key}, found {tags}"
        return tags[0]

    def report(self, source_key: str, version: str | None = None) -> dict[str, Any]:
        return json.loads(self.read(f"reports/ingest/{source_key}/{self.version_tag(source_key, version)}.json"))

    def rejected(self, source_key: str, version: str | None = None) -> list[dict[str, str]]:
        tag = self.version_tag(source_key, version)
        text = self.read(f"rejected/{source_key}/{tag}/rejected-rows.csv").decode("utf-8-sig")
        return list(csv.DictReader(io.StringIO(text, newline="")))

    def profile(self, customer_id: str) -> dict[str, Any] | None:
        item = (
            boto3.resource("dynamodb")
            .Table(self.settings.profiles_table)
            .get_item(Key={"customer_id": customer_id}, ConsistentRead=True)
        )
        return from_item(item["Item"]) if "Item" in item else None

    def activity(self, customer_id: str) -> dict[str, Any] | None:
        """A customer's order and event aggregates, without the table's bookkeeping (applied batch ids)."""
        item = (
            boto3.resource("dynamodb")
            .Table(self.settings.activity_table)
            .get_item(Key={"customer_id": customer_id}, ConsistentRead=True)
        )
        if "Item" not in item:
            return None
        return {k: v for k, v in from_item(item["Item"]).items() if not k.startswith("applied_batches_")}

    def profiles(self) -> dict[str, dict[str, Any]]:
        items = self.client("dynamodb").scan(TableName=self.settings.profiles_table)["Items"]
        return {item["customer_id"]["S"]: from_item(_deserialize(item)) for item in items}

    def score_messages(self) -> list[dict[str, Any]]:
        """Every message received so far (drained from the queue and remembered)."""
        sqs = self.client("sqs")
        while True:
            response = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return list(self._seen_messages)
            for message in messages:
                self._seen_messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def queued_customer_ids(self) -> list[str]:
        return [cid for body in self.score_messages() for cid in body["customer_ids"]]


@contextmanager
def moto_stack() -> Iterator[IngestStack]:
    """One moto account with ingest's resources for a whole test module; tests call wipe() in between.

    Creating clients and tables costs about a second, so a module pays it once rather than every test.
    """
    clients.client.cache_clear()
    clients.table.cache_clear()
    with mock_aws():
        yield IngestStack.create()
    clients.client.cache_clear()
    clients.table.cache_clear()
