"""One event type normaliser for training and serving: cadence.event_types, used by model_build (and ingest)."""

from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadence.event_types import ENGAGEMENT_ATTRIBUTES, EVENT_TYPE_ALIASES, is_valid_event_type, normalise_event_type
from cadence.ingest.cleaning import Context, clean_event_type
from model_build.dataset import build_profiles, prepare_feeds

CUTOFF = datetime(2025, 5, 1, tzinfo=UTC)
RAW_TYPES = [
    *EVENT_TYPE_ALIASES,
    *ENGAGEMENT_ATTRIBUTES,
    "Page View",
    "page-view",
    " PAGE_VIEW ",
    "EMAIL-OPEN",
    "Email  Click",
    " clicked\t",
    "\uff56\uff49\uff53\uff49\uff54",  # full-width "visit"
    "add to cart",
    "Add-To-Cart",
    "purchase",
    "9lives",
    "page.view",
    "",
    "   ",
    "x" * 65,
]
# Event type text as feeds carry it: names, separators, case, digits, punctuation and the odd full-width letter.
FULL_WIDTH_VISIT = "\uff56\uff49\uff53\uff49\uff54"  # as some CN exports write it
raw_type = st.text(alphabet=st.sampled_from(f"abcdefgijklmnoprstuvwxyzAEGIOPV_- \t.09{FULL_WIDTH_VISIT}"), max_size=20)
raw_type |= st.sampled_from(RAW_TYPES)


def trained_event_types(raw: list[str]) -> list[str | None]:
    """The event type model_build keeps for each raw value (None: the row is dropped)."""
    events = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(len(raw))],
            "event_type": raw,
            "event_time": ["2025-04-01T00:00:00+00:00"] * len(raw),
        }
    )
    orders = pd.DataFrame({"customer_id": [], "order_date": [], "amount": []}, dtype=str)
    kept = prepare_feeds(orders, events=events).events
    assert kept is not None
    by_customer = dict(zip(kept["customer_id"], kept["event_type"], strict=True))
    return [by_customer.get(f"C{i}") for i in range(len(raw))]


def served_event_types(raw: list[str]) -> list[str | None]:
    """What this module says a feed's event type is (None: not a valid type, so ingest rejects the row)."""
    names = [normalise_event_type(value) for value in raw]
    return [name if is_valid_event_type(name) else None for name in names]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Page View", "visit"),
        ("page-view", "visit"),
        ("PAGEVIEW", "visit"),
        ("EMAIL-OPEN", "open"),
        (" clicked\t", "click"),
        ("\uff56\uff49\uff53\uff49\uff54", "visit"),
        ("add to cart", "add_to_cart"),
        ("purchase", "purchase"),
    ],
)
def test_aliases_and_spellings_become_our_names_when_normalised(raw: str, expected: str) -> None:
    assert normalise_event_type(raw) == expected
    assert is_valid_event_type(expected)


@pytest.mark.parametrize("raw", ["", "   ", "page.view", "9lives", "x" * 65, "访问"])
def test_a_name_outside_the_pattern_is_invalid_when_normalised(raw: str) -> None:
    assert not is_valid_event_type(normalise_event_type(raw))


def test_every_alias_points_at_a_valid_name_that_is_no_alias_itself() -> None:
    for alias, name in EVENT_TYPE_ALIASES.items():
        assert is_valid_event_type(alias)
        assert is_valid_event_type(name)
        assert name not in EVENT_TYPE_ALIASES


@given(st.lists(raw_type, min_size=1, max_size=30))
def test_model_build_keeps_exactly_the_types_this_module_names(raw: list[str]) -> None:
    assert trained_event_types(raw) == served_event_types(raw)


@given(raw_type)
def test_a_valid_normalised_name_is_a_fixed_point(raw: str) -> None:
    name = normalise_event_type(raw)
    if is_valid_event_type(name):
        assert normalise_event_type(name) == name


@given(st.lists(raw_type, min_size=1, max_size=30))
def test_ingest_cleans_event_types_as_this_module_does(raw: list[str]) -> None:
    cleaned = clean_event_type(pd.Series(raw, dtype=object), Context())

    assert [None if pd.isna(value) else value for value in cleaned.values] == served_event_types(raw)


def test_an_aliased_engagement_event_sets_the_same_profile_attribute_as_its_name_in_training() -> None:
    events = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "event_type": ["Page View", "email_open", "Email-Click"],
            "event_time": ["2025-04-01T00:00:00+00:00"] * 3,
        }
    )
    orders = pd.DataFrame({"customer_id": [], "order_date": [], "amount": []}, dtype=str)

    profiles = {p["customer_id"]: p for p in build_profiles(prepare_feeds(orders, events=events), CUTOFF)}

    assert profiles["A"]["last_visit_at"] == "2025-04-01T00:00:00+00:00"
    assert profiles["B"]["last_open_at"] == "2025-04-01T00:00:00+00:00"
    assert profiles["C"]["last_click_at"] == "2025-04-01T00:00:00+00:00"
