"""The ingest CPU benchmark: its worker pushes every accepted row to a stubbed DynamoDB, figures add up."""

import math
from pathlib import Path

import pytest

from infra.bench_ingest import REJECT_EVERY, generate_customers
from infra.bench_ingest_cpu import LAYER, ROOT, compare, modelled_aws_seconds, run_worker


@pytest.mark.parametrize("mode", ["cleaning", "to_request"])
def test_the_worker_accounts_for_every_row_and_writes_each_accepted_customer(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "customers.csv"
    generate_customers(path, 1_000, block=400)

    figures = run_worker(ROOT / LAYER, mode, path, 1_000, "test")

    accepted = 1_000 - 1_000 // REJECT_EVERY
    assert (figures["rows"], figures["rows_accepted"]) == (1_000, accepted)
    if mode == "to_request":
        # every accepted customer is new: one BatchGetItem per 100, one BatchWriteItem per 25, all answered
        assert figures["items_written"] == accepted
        assert figures["dynamodb_requests"] == {
            "BatchGetItem": math.ceil(accepted / 100),
            "BatchWriteItem": math.ceil(accepted / 25),
        }
        assert figures["request_mb"] > 0
    else:
        assert figures["items_written"] == 0
        assert figures["dynamodb_requests"] == {}
    assert figures["us_per_row"] > 0
    assert figures["cpu_us_per_row"] > 0
    assert figures["peak_mb"] > 0


def test_the_speed_up_is_the_baselines_time_over_this_trees() -> None:
    current = {"us_per_row": 8.0, "cpu_us_per_row": 7.0, "rows_per_s": 125_000, "peak_mb": 300.0, "rows_accepted": 990}
    baseline = {
        "us_per_row": 92.0,
        "cpu_us_per_row": 70.0,
        "rows_per_s": 10_870,
        "peak_mb": 350.0,
        "rows_accepted": 990,
    }

    row = compare(current, baseline)

    assert row["speedup_vs_naive"] == 11.5
    assert row["cpu_speedup_vs_naive"] == 10.0
    assert (row["baseline_us_per_row"], row["baseline_peak_mb"], row["same_rows_accepted"]) == (92.0, 350.0, True)


def test_modelled_time_adds_the_writes_at_the_tables_capacity_to_the_cpu_time() -> None:
    assert modelled_aws_seconds(cpu_seconds=30.0, items=990_000, write_units_per_s=4_000) == 277.5
