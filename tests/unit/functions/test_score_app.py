import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from cadence import score_requests
from functions.score import app
from model_build import synthetic
from model_build.dataset import feeds_from_synthetic
from model_build.train import build_model

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (small) model built and exported by model_build, as the score function will meet it."""
    out = tmp_path_factory.mktemp("model")
    feeds = feeds_from_synthetic(synthetic.generate(600, seed=3, as_of=AS_OF))
    build_model(feeds, AS_OF, 30, out, version="test-model", candidates=["logistic_regression"], with_report=False)
    return out


@pytest.fixture
def published(model_dir: Path, data_bucket: str, tables: dict[str, str]) -> Iterator[dict[str, Any]]:
    s3 = boto3.client("s3")
    for name in ("model.onnx", "manifest.json"):
        s3.upload_file(str(model_dir / name), data_bucket, f"models/test-model/{name}")
    score_requests.loaded_model.cache_clear()  # a container per test: the model loads from this test's bucket
    yield json.loads((model_dir / "manifest.json").read_text())
    score_requests.loaded_model.cache_clear()


def put_profiles(tables: dict[str, str], count: int) -> list[str]:
    """Profiles as ingest writes them: customer columns in ProfilesTable, order aggregates in ActivityTable."""
    profiles = boto3.resource("dynamodb").Table(tables["ProfilesTable"])
    activity = boto3.resource("dynamodb").Table(tables["ActivityTable"])
    ids = []
    for i in range(count):
        customer_id = f"S{uuid.uuid4().hex[:8]}"
        ids.append(customer_id)
        profiles.put_item(
            Item={
                "customer_id": customer_id,
                "email": f"{customer_id}@example.com",
                "consent_email": True,
                "signup_date": "2025-01-01",
            }
        )
        activity.put_item(
            Item={
                "customer_id": customer_id,
                "order_count": i,
                "total_spend": i * 100,
                "last_order_at": "2026-05-20T10:00:00+00:00",
                "applied_batches_0": {"f:0"},
            }
        )
    return ids


def score_event(load_event: Any, *batches: list[str]) -> dict[str, Any]:
    template = load_event("sqs_score")["Records"][0]
    return {
        "Records": [
            {**template, "messageId": str(uuid.uuid4()), "body": json.dumps({"customer_ids": ids, "reason": "test"})}
            for ids in batches
        ]
    }


def item(tables: dict[str, str], customer_id: str, table: str = "ProfilesTable") -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(tables[table]).get_item(Key={"customer_id": customer_id}).get("Item", {})


def score(tables: dict[str, str], customer_id: str) -> dict[str, Any]:
    return item(tables, customer_id, "ScoresTable")


def test_scores_are_written_beside_the_profile_without_touching_it(
    tables: dict[str, str], published: dict[str, Any], load_event: Any, lambda_context: Any
) -> None:
    ids = put_profiles(tables, 12)

    response = app.lambda_handler(score_event(load_event, ids[:6], ids[6:]), lambda_context)

    assert response == {"batchItemFailures": []}
    for customer_id in ids:
        scored = score(tables, customer_id)
        assert 0 <= float(scored["score"]) <= 1
        assert 1 <= int(scored["decile"]) <= 10
        assert scored["model_version"] == published["version"] == "test-model"
        profile = item(tables, customer_id)
        assert profile["email"] == f"{customer_id}@example.com"
        assert "score" not in profile  # the profile is ingest's: scores live beside it
    # Customers differ only in their activity: the scores tell it was read beside the profile.
    assert float(score(tables, ids[-1])["score"]) != float(score(tables, ids[0])["score"])


def test_a_redelivered_message_changes_nothing_but_the_score_time(
    tables: dict[str, str], published: dict[str, Any], load_event: Any, lambda_context: Any
) -> None:
    ids = put_profiles(tables, 3)
    app.lambda_handler(score_event(load_event, ids), lambda_context)
    first = score(tables, ids[0])
    # meanwhile ingest updates the profile
    boto3.resource("dynamodb").Table(tables["ProfilesTable"]).update_item(
        Key={"customer_id": ids[0]},
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": "new@example.com"},
    )

    app.lambda_handler(score_event(load_event, ids), lambda_context)

    again = score(tables, ids[0])
    assert item(tables, ids[0])["email"] == "new@example.com"
    assert {k: v for k, v in again.items() if k != "scored_at"} == {k: v for k, v in first.items() if k != "scored_at"}


def test_activity_without_a_profile_is_not_scored(
    tables: dict[str, str], published: dict[str, Any], load_event: Any, lambda_context: Any
) -> None:
    boto3.resource("dynamodb").Table(tables["ActivityTable"]).put_item(
        Item={"customer_id": "orders-only", "order_count": 3}
    )

    response = app.lambda_handler(score_event(load_event, ["orders-only"]), lambda_context)

    assert response == {"batchItemFailures": []}
    assert score(tables, "orders-only") == {}


def test_more_customers_than_one_batch_get_call_holds_are_all_scored(
    tables: dict[str, str], published: dict[str, Any], load_event: Any, lambda_context: Any
) -> None:
    ids = put_profiles(tables, 120)  # 50 customers a call: a profile and an activity key each

    response = app.lambda_handler(score_event(load_event, ids), lambda_context)

    assert response == {"batchItemFailures": []}
    assert all("score" in score(tables, customer_id) for customer_id in ids)


def test_an_unknown_customer_gets_no_profile_and_no_score(
    tables: dict[str, str], published: dict[str, Any], load_event: Any, lambda_context: Any
) -> None:
    known = put_profiles(tables, 1)

    response = app.lambda_handler(score_event(load_event, [*known, "never-ingested"]), lambda_context)

    assert response == {"batchItemFailures": []}
    assert item(tables, "never-ingested") == score(tables, "never-ingested") == {}
    assert "score" in score(tables, known[0])


def test_a_model_whose_manifest_does_not_match_fails_every_record(
    tables: dict[str, str], published: dict[str, Any], data_bucket: str, load_event: Any, lambda_context: Any
) -> None:
    tampered = {**published, "sha256": "0" * 64}
    boto3.client("s3").put_object(
        Bucket=data_bucket, Key="models/test-model/manifest.json", Body=json.dumps(tampered).encode()
    )
    ids = put_profiles(tables, 2)

    with pytest.raises(BatchProcessingError, match="All records failed"):
        app.lambda_handler(score_event(load_event, ids), lambda_context)

    assert score(tables, ids[0]) == {}
