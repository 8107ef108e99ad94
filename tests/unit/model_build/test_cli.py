"""The command line end to end on small feeds: generate, train (with report), score (backtest), publish."""

import json
from datetime import datetime

import boto3
import pandas as pd
import pytest

from cadence.dal.models import load_artifacts
from cadence.scoring import load_model
from model_build.cli import main, parse_date


@pytest.fixture(scope="module")
def feeds_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("feeds")
    assert main(["generate", "--customers", "400", "--seed", "3", "--as-of", "2025-06-01", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def model_dir(feeds_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    code = main(
        [
            "train",
            *("--orders", str(feeds_dir / "orders.csv")),
            *("--customers", str(feeds_dir / "customers.csv")),
            *("--events", str(feeds_dir / "events.csv")),
            *("--as-of", "2025-05-02", "--horizon-days", "30", "--out", str(out)),
        ]
    )
    assert code == 0
    return out


def test_generate_writes_the_three_feeds_with_their_headers(feeds_dir):
    assert sorted(p.name for p in feeds_dir.iterdir()) == ["customers.csv", "events.csv", "orders.csv"]
    assert (feeds_dir / "orders.csv").read_text().splitlines()[0] == (
        "order_id,customer_id,order_date,amount,currency,items,channel,coupon_code"
    )


def test_train_writes_model_manifest_report_and_charts(model_dir):
    names = sorted(p.name for p in model_dir.iterdir())
    manifest = json.loads((model_dir / "manifest.json").read_text())
    report = (model_dir / "report.html").read_text()

    assert names == ["calibration.png", "gains.png", "manifest.json", "model.onnx", "report.html", "roc.png"]
    assert manifest["version"].startswith("20250502-")
    assert manifest["label"]["as_of"] == "2025-05-02T00:00:00+00:00"
    assert report.count("data:image/png;base64,") == 3
    assert manifest["sha256"] in report
    for chart in ("roc.png", "gains.png", "calibration.png"):
        assert (model_dir / chart).read_bytes().startswith(b"\x89PNG")


def test_score_backtests_the_model_on_the_month_it_never_saw(feeds_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "scores.csv"

    code = main(
        [
            "score",
            *("--model", str(model_dir)),
            *("--orders", str(feeds_dir / "orders.csv")),
            *("--customers", str(feeds_dir / "customers.csv")),
            *("--events", str(feeds_dir / "events.csv")),
            *("--as-of", "2025-05-02", "--out", str(out)),
        ]
    )

    scores = pd.read_csv(out, dtype={"customer_id": str})
    assert code == 0
    assert list(scores.columns) == ["customer_id", "score", "decile", "model_version", "scored_at", "purchased"]
    assert scores["customer_id"].is_unique and scores["decile"].between(1, 10).all()
    top, rest = scores[scores["decile"] <= 2], scores[scores["decile"] > 2]
    assert top["purchased"].mean() > rest["purchased"].mean()
    assert "backtest: roc_auc=" in capsys.readouterr().out


def test_score_without_the_outcome_window_writes_scores_only(feeds_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "scores.csv"

    code = main(
        [
            *("score", "--model", str(model_dir), "--orders", str(feeds_dir / "orders.csv")),
            *("--as-of", "2025-06-01", "--out", str(out)),
        ]
    )

    assert code == 0
    assert "purchased" not in pd.read_csv(out).columns
    assert "no outcome metrics" in capsys.readouterr().out


def test_publish_uploads_a_model_the_score_function_can_load(model_dir, data_bucket):
    assert main(["publish", "--model", str(model_dir), "--bucket", data_bucket]) == 0

    version = json.loads((model_dir / "manifest.json").read_text())["version"]
    assert load_model(*load_artifacts(data_bucket, version)).version == version
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=data_bucket)["Contents"]]
    assert sorted(keys) == [f"models/{version}/manifest.json", f"models/{version}/model.onnx"]


def test_train_reports_a_feed_without_required_columns_and_exits_nonzero(tmp_path, capsys):
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_id\nO1,a\n")

    code = main(["train", "--orders", str(orders), "--as-of", "2025-06-01", "--out", str(tmp_path / "m")])

    assert code == 1
    assert "order_date" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_dates_are_midnight_utc():
    assert parse_date("2025-06-01") == datetime.fromisoformat("2025-06-01T00:00:00+00:00")
    assert parse_date("2025-06-01T08:00:00+08:00") == datetime.fromisoformat("2025-06-01T00:00:00+00:00")
