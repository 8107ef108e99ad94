"""docs/ingest-contract.md and its example files stay true to the code."""

from pathlib import Path

import pytest

from cadence.ingest.schemas import FEEDS

DOCS = Path(__file__).resolve().parents[4] / "docs"


@pytest.mark.parametrize("feed", FEEDS, ids=lambda feed: feed.name)
def test_contract_table_lists_every_column_as_declared(feed):
    text = (DOCS / "ingest-contract.md").read_text()

    for column in feed.columns:
        row = f"| `{column.name}` | {column.kind.value} | {'yes' if column.required else 'no'} | {column.description} |"
        assert row in text


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("customers.csv", "incoming/customers/example.csv"),
        ("orders.csv", "incoming/orders/example.csv"),
        ("events.jsonl", "incoming/events/example.jsonl"),
        ("pinpoint-endpoints.jsonl", "incoming/pinpoint-endpoints/example.jsonl"),
    ],
)
def test_example_files_are_accepted_whole(stack, ingest, name, key):
    report = ingest(key, (DOCS / "examples" / name).read_bytes())

    assert report["status"] == "ok"
    assert report["rows_read"] > 0
    assert (report["rows_rejected"], report["values_cleared"]) == (0, {})
