import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from cadence import config, score_requests
from cadence.dal import profile_ids
from cadence.errors import PermanentError
from functions.rescore import app as rescore_app
from functions.score import app as score_app
from model_build import synthetic
from model_build.dataset import feeds_from_synthetic
from model_build.train import build_model

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
DEPLOYED = os.environ["MODEL_VERSION"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real model of the deployed version, as the score function will load it."""
    out = tmp_path_factory.mktemp("model")
    feeds = feeds_from_synthetic(synthetic.generate(600, seed=5, as_of=AS_OF))
    build_model(feeds, AS_OF, 30, out, version=DEPLOYED, candidates=["logistic_regression"], with_report=False)
    return out


@pytest.fixture
def published(model_dir: Path, data_bucket: str, tables: dict[str, str]) -> Iterator[None]:
    s3 = boto3.client("s3")
    for name in ("model.onnx", "manifest.json"):
        s3.upload_file(str(model_dir / name), data_bucket, f"models/{DEPLOYED}/{name}")
    score_requests.loaded_model.cache_clear()
    yield
    score_requests.loaded_model.cache_clear()


@pytest.fixture
def batch_size(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A small batch size, so a few hundred customers make several messages."""
    monkeypatch.setenv("RESCORE_BATCH_SIZE", "7")
    config.rescore_settings.cache_clear()
    yield 7
    config.rescore_settings.cache_clear()


def put_profiles(tables: dict[str, str], versions: dict[str, str | None]) -> None:
    """Profiles, and for those with a version the score that version wrote."""
    dynamodb = boto3.resource("dynamodb")
    with (
        dynamodb.Table(tables["ProfilesTable"]).batch_writer() as writer,
        dynamodb.Table(tables["ScoresTable"]).batch_writer() as scores,
    ):
        for customer_id, version in versions.items():
            item: dict[str, Any] = {
                "customer_id": customer_id,
                "email": f"{customer_id}@example.com",
                "order_count": 2,
                "total_spend": 150,
                "last_order_at": "2026-05-20T10:00:00+00:00",
            }
            writer.put_item(Item=item)
            if version is not None:
                scores.put_item(
                    Item={"customer_id": customer_id, "model_version": version, "score": "0.5", "decile": 5}
                )


def mixed_profiles(count: int) -> dict[str, str | None]:
    """Customers never scored, scored by an older model and scored by the deployed one, in turn."""
    versions: list[str | None] = [None, "old-model", DEPLOYED]
    return {f"C{i:05d}": versions[i % 3] for i in range(count)}


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message body on the queue (deleted as read)."""
    sqs = boto3.client("sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return bodies


def as_sqs_event(load_event: Any, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    template = load_event("sqs_score")["Records"][0]
    return {"Records": [{**template, "messageId": f"m{i}", "body": json.dumps(b)} for i, b in enumerate(bodies)]}


def test_only_unscored_and_stale_customers_are_queued_when_a_new_model_is_deployed(
    tables: dict[str, str], queues: dict[str, str], lambda_context: Any
) -> None:
    profiles = mixed_profiles(300)
    put_profiles(tables, profiles)

    outcome = rescore_app.lambda_handler({}, lambda_context)

    bodies = drain(queues["SCORE_QUEUE_URL"])
    queued = [customer_id for body in bodies for customer_id in body["customer_ids"]]
    stale = {customer_id for customer_id, version in profiles.items() if version != DEPLOYED}
    assert len(queued) == len(set(queued)) == len(stale)
    assert set(queued) == stale
    assert all(body["reason"] == "rescore" for body in bodies)
    assert all(1 <= len(body["customer_ids"]) <= 100 for body in bodies)
    assert outcome == {
        "model_version": DEPLOYED,
        "profiles_scanned": 300,
        "customers_queued": 200,
        "messages_sent": len(bodies),
    }


def test_messages_hold_at_most_the_batch_size_with_nothing_lost_or_repeated_when_it_is_set(
    tables: dict[str, str], queues: dict[str, str], batch_size: int, lambda_context: Any
) -> None:
    profiles = {f"N{i:04d}": None for i in range(100)}
    put_profiles(tables, profiles)

    rescore_app.lambda_handler({"scheduled_time": "2026-11-23T03:00:00+08:00"}, lambda_context)

    bodies = drain(queues["SCORE_QUEUE_URL"])
    queued = [customer_id for body in bodies for customer_id in body["customer_ids"]]
    assert sorted(queued) == sorted(profiles)
    assert [len(body["customer_ids"]) for body in bodies].count(batch_size) == 100 // batch_size
    assert max(len(body["customer_ids"]) for body in bodies) == batch_size


def test_a_rerun_queues_nothing_when_the_score_function_has_scored_the_queue(
    tables: dict[str, str], queues: dict[str, str], published: None, load_event: Any, lambda_context: Any
) -> None:
    # given a stale table whose queued customers the real score function then scores
    put_profiles(tables, mixed_profiles(60))
    rescore_app.lambda_handler({}, lambda_context)
    bodies = drain(queues["SCORE_QUEUE_URL"])
    assert score_app.lambda_handler(as_sqs_event(load_event, bodies), lambda_context) == {"batchItemFailures": []}

    # when the schedule fires again
    outcome = rescore_app.lambda_handler({"scheduled_time": "2026-11-24T03:00:00+08:00"}, lambda_context)

    # then every customer carries the deployed version and nothing is queued
    assert drain(queues["SCORE_QUEUE_URL"]) == []
    assert outcome["customers_queued"] == outcome["messages_sent"] == 0
    assert {
        v.model_version for v in profile_ids.scan_model_versions(tables["ProfilesTable"], tables["ScoresTable"])
    } == {DEPLOYED}


def test_an_empty_table_queues_nothing(tables: dict[str, str], queues: dict[str, str], lambda_context: Any) -> None:
    outcome = rescore_app.lambda_handler(None, lambda_context)

    assert drain(queues["SCORE_QUEUE_URL"]) == []
    assert outcome["profiles_scanned"] == outcome["customers_queued"] == 0


def test_the_scan_reads_every_page_and_each_ids_version_when_pages_are_small(tables: dict[str, str]) -> None:
    put_profiles(tables, mixed_profiles(50))

    seen = list(profile_ids.scan_model_versions(tables["ProfilesTable"], tables["ScoresTable"], page_size=7))

    assert sorted(v.customer_id for v in seen) == sorted(mixed_profiles(50))
    assert {v.customer_id: v.model_version for v in seen} == mixed_profiles(50)


def test_a_missing_table_fails_the_invocation_so_the_async_retry_and_destination_see_it(
    queues: dict[str, str], lambda_context: Any
) -> None:
    with pytest.raises(PermanentError, match="ResourceNotFoundException"):
        rescore_app.lambda_handler({}, lambda_context)

    assert drain(queues["SCORE_QUEUE_URL"]) == []
