"""The ingest benchmark's own arithmetic and data: every generated row is accounted for, figures add up."""

from pathlib import Path

import pandas as pd

from infra.bench_ingest import REJECT_EVERY, api_call_figures, generate_customers, measure_cleaning


def test_generated_customers_are_cleaned_with_one_reject_per_hundred(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    generate_customers(path, 1_000, block=300)

    cleaning = measure_cleaning(path, 1_000)

    assert len(pd.read_csv(path, dtype=str)) == 1_000
    assert (cleaning["rows"], cleaning["rows_rejected"]) == (1_000, 1_000 // REJECT_EVERY)
    assert cleaning["rows_accepted"] == cleaning["customers_merged"] == 990
    assert cleaning["rows_per_s"] > 0


def test_api_calls_are_reported_per_thousand_rows_beside_the_minimum() -> None:
    run = {
        "report": {"rows_read": 2_000},
        "api_calls": {"dynamodb.BatchWriteItem": 80, "dynamodb.BatchGetItem": 20, "s3.GetObject": 1},
    }

    figures = api_call_figures(run, minimum_writes=2_000)

    assert figures["dynamodb_per_1000_rows"] == 50.0
    assert figures["dynamodb_minimum_per_1000_rows"] == 40.0
    assert figures["all_per_1000_rows"] == 50.5
    assert figures["dynamodb_vs_minimum"] == 1.25
