"""customer_writes: what a chunk's merged customers write is what resolving each against its stored profile,
one row at a time, writes (the rule resolve_customer and its tests define), new profiles included."""

import json
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.dal import batches
from cadence.ingest import merge
from cadence.ingest.schemas import CUSTOMERS
from cadence.ingest.validation import LINE

IDS = ["C1", "C2", "C3", "C4"]
TIMES = ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]
DEFAULT_UPDATED_AT = "2026-11-01T00:00:00Z"

rows = st.fixed_dictionaries(
    {"customer_id": st.sampled_from(IDS)},
    optional={
        "email": st.sampled_from(["a@b.co", "b@b.co", 'odd"quote@b.co']),
        "phone": st.sampled_from(["+8613800138000", "+14155552671"]),
        "first_name": st.sampled_from(["Zoë", "Li", "%s"]),
        "consent_email": st.booleans(),
        "consent_sms": st.booleans(),
        "updated_at": st.sampled_from(TIMES),
        "attr_tier": st.sampled_from(["gold", "silver"]),
    },
)
stored_profiles = st.dictionaries(
    st.sampled_from(IDS),
    st.fixed_dictionaries(
        {"updated_at": st.sampled_from(TIMES)},
        optional={
            "email": st.just("old@b.co"),
            "phone": st.just("+8613900139000"),
            "consent_email": st.booleans(),
            "consent_sms": st.booleans(),
            "email_updated_at": st.sampled_from(TIMES),
            "score": st.just(0.5),
        },
    ),
)


def accepted(chunk: list[dict[str, Any]]) -> pd.DataFrame:
    records = [{LINE: line, **row} for line, row in enumerate(chunk, start=2)]
    frame = pd.DataFrame(records, columns=[LINE, *CUSTOMERS.names, "attr_tier"], dtype=object)
    return frame.astype(object).where(frame.notna(), None)


def row_by_row(
    chunk: pd.DataFrame, stored: dict[str, dict[str, Any]], erased: set[str]
) -> tuple[list[dict[str, Any]], int, int]:
    """The loop ingest ran before customer_writes: resolve each upsert, blank an erased one's consent."""
    written, applied, skipped = [], 0, 0
    for upsert in merge.merge_customers(chunk, default_updated_at=DEFAULT_UPDATED_AT, extra_prefix="attr_").items:
        held = stored.get(upsert.customer_id)
        item, newer = merge.resolve_customer(upsert, held)
        if upsert.customer_id in erased:
            item |= {name: False for name in merge.CONSENT_COLUMNS if name in item}
        applied, skipped = applied + newer, skipped + (not newer)
        if item != held:
            written.append(item)
    return written, applied, skipped


def created_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    count = len(columns.get("customer_id", []))
    return [{name: values[row] for name, values in columns.items() if values[row] is not None} for row in range(count)]


@settings(max_examples=300)
@given(chunk=st.lists(rows, min_size=1, max_size=8), stored=stored_profiles, erased=st.sets(st.sampled_from(IDS)))
def test_customer_writes_write_what_resolving_each_row_writes(
    chunk: list[dict[str, Any]], stored: dict[str, dict[str, Any]], erased: set[str]
) -> None:
    frame = accepted(chunk)
    expected, applied, skipped = row_by_row(frame, stored, erased)

    merged = merge.merge_customer_frame(frame, default_updated_at=DEFAULT_UPDATED_AT, extra_prefix="attr_")
    writes = merge.customer_writes(merged, stored, erased=erased.__contains__)

    created = created_rows(writes.created)
    assert sorted(created + writes.updated, key=lambda item: item["customer_id"]) == sorted(
        expected, key=lambda item: item["customer_id"]
    )
    assert {item["customer_id"] for item in created}.isdisjoint(stored)
    assert (writes.applied, writes.skipped) == (applied, skipped)
    # And as sent: each new profile's JSON is what the row-by-row write sent for it (in whatever attribute order).
    texts = batches.plain_items_json(writes.created) if writes.created else []
    by_id = {item["customer_id"]: item for item in expected}
    assert [json.loads(text) for text in texts] == [
        json.loads(batches.plain_item_json(by_id[item["customer_id"]])) for item in created
    ]


def test_a_first_load_is_written_as_columns_with_the_stamps_a_merged_duplicate_needs() -> None:
    chunk = accepted(
        [
            {"customer_id": "C1", "email": "a@b.co", "updated_at": TIMES[0]},
            {"customer_id": "C1", "phone": "+8613800138000", "updated_at": TIMES[1]},
            {"customer_id": "C2", "consent_sms": True},
        ]
    )

    merged = merge.merge_customer_frame(chunk, default_updated_at=DEFAULT_UPDATED_AT)
    writes = merge.customer_writes(merged, {})

    assert writes.updated == []
    assert (writes.applied, writes.skipped, merged.duplicates_merged) == (2, 0, 1)
    assert created_rows(writes.created) == [
        # C1's email came with the older row: its channel keeps that row's time.
        {"customer_id": "C1", "email": "a@b.co", "phone": "+8613800138000", "updated_at": TIMES[1],
         "email_updated_at": TIMES[0]},
        {"customer_id": "C2", "consent_sms": True, "updated_at": DEFAULT_UPDATED_AT},
    ]  # fmt: skip
