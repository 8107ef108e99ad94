"""merge_customers: each upsert holds exactly its row's present values, whatever the columns are called."""

import pandas as pd

from cadence.ingest.merge import merge_customers
from cadence.ingest.schemas import CUSTOMERS
from cadence.ingest.validation import LINE

ODD_NAMES = ["attr_it's", 'attr_say "hi"', "attr_back\\slash", "attr_{brace}: v0", "attr_new\nline"]


def accepted(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[LINE, *CUSTOMERS.names, *ODD_NAMES], dtype=object)
    return frame.astype(object).where(frame.notna(), None)


def test_fields_are_the_present_values_of_the_row_under_their_own_names() -> None:
    rows = [
        {LINE: 2, "customer_id": "C1", "email": "a@b.co", "updated_at": "2026-01-01T00:00:00Z",
         **{name: f"value {i}" for i, name in enumerate(ODD_NAMES)}},
        {LINE: 3, "customer_id": "C2", "phone": "+8613800138000", "updated_at": "2026-01-02T00:00:00Z",
         ODD_NAMES[0]: "only this"},
    ]  # fmt: skip

    merged = merge_customers(accepted(rows), default_updated_at="2026-11-01T00:00:00Z", extra_prefix="attr_")

    first, second = merged.items
    assert first.fields == {"email": "a@b.co", **{name: f"value {i}" for i, name in enumerate(ODD_NAMES)}}
    assert second.fields == {"phone": "+8613800138000", ODD_NAMES[0]: "only this"}
    assert (first.channel_updated_at, second.channel_updated_at) == (
        {"email": "2026-01-01T00:00:00Z"},
        {"sms": "2026-01-02T00:00:00Z"},
    )


def test_a_column_present_in_every_row_and_one_present_in_some_fill_the_same_dicts() -> None:
    rows = [
        {LINE: line, "customer_id": f"C{line}", "email": f"u{line}@b.co", "city": "Xi'an" if line % 2 else None}
        for line in range(2, 8)
    ]

    merged = merge_customers(accepted(rows), default_updated_at="2026-11-01T00:00:00Z")

    assert [upsert.fields for upsert in merged.items] == [
        {"email": f"u{line}@b.co", **({"city": "Xi'an"} if line % 2 else {})} for line in range(2, 8)
    ]
    assert {upsert.updated_at for upsert in merged.items} == {"2026-11-01T00:00:00Z"}
    assert not any(upsert.updated_at_carried for upsert in merged.items)
