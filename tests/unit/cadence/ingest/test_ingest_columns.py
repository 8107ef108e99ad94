"""cadence.ingest.columns gives exactly the reference cleaners' results, with and without its native shapes."""

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.ingest.cleaning import CLEANERS, Cleaned, Context
from cadence.ingest.columns import clean_column, contains
from cadence.ingest.schemas import Kind

# Canonical shapes the native code takes, the same shapes just off (padded, upper-case, impossible days,
# non-ASCII look-alikes, +86 numbers, too long) and values only the reference cleaner can read.
SEEDS = [
    "C00000042",
    " C00000042 ",
    "a@example.com",
    "Alice@Example.COM",
    "İnfo@example.com",
    "a@example.c",
    "13800138000",
    "8613800138000",
    "+8613800138000",
    "+860138001380",
    "+14155552671",
    "4155552671",
    "+1 415 555 2671",
    "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10",
    "\u0661\u0663\u0668\u0660\u0660\u0661\u0663\u0668\u0660\u0660\u0660",
    "2024-03-01T10:00:00Z",
    "2024-02-30T10:00:00Z",
    "2024-03-01T24:00:00Z",
    "1899-12-31T23:59:59Z",
    "2024-03-01",
    "2024-3-1",
    "2101-01-01",
    "1709258400",
    "1,234.50",
    "12.34567",
    "-0",
    "007",
    "\u0661\u0662",
    "Li Wei",
    "Li  Wei",
    "x" * 257,
    "x" * 129,
    '{"a": 1}',
    "a\x7fb",
    "\u3000Shanghai",
    "yes",
    "N/A",
    "",
    " ",
]
alphabet = st.sampled_from("0123456789+-. @aAzZ:T_\u3000\u0130\u0661\uff11\n")
values = st.lists(st.one_of(st.none(), st.sampled_from(SEEDS), st.text(alphabet=alphabet, max_size=16)), max_size=40)


def as_lists(cleaned: Cleaned) -> tuple[list[object], list[bool], list[bool] | None]:
    coerced = None if cleaned.coerced is None else cleaned.coerced.tolist()
    return cleaned.values.tolist(), cleaned.invalid.tolist(), coerced


@pytest.mark.parametrize("native", [True, False], ids=["native", "reference-only"])
@pytest.mark.parametrize("region", ["CN", "US", "DE"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=values, repeats=st.integers(min_value=1, max_value=3))
def test_clean_column_equals_the_reference_cleaner_for_every_kind(
    rows: list[str | None], repeats: int, region: str, native: bool
) -> None:
    # Repeating the rows makes a column of few distinct values, which takes the distinct-value path.
    series = pd.Series(rows * repeats, index=pd.RangeIndex(5, 5 + len(rows) * repeats), dtype=object)
    context = Context(phone_region=region, default_timezone="Asia/Shanghai")
    for kind in Kind:
        expected = CLEANERS[kind](series, context)
        got = clean_column(kind, series, context, native=native)
        assert as_lists(got) == as_lists(expected), kind
        assert got.values.index.equals(series.index)


@pytest.mark.parametrize("native", [True, False], ids=["native", "reference-only"])
@pytest.mark.parametrize("region", ["CN", "US", "DE"])
def test_a_column_of_every_seed_at_once_equals_the_reference_cleaner(region: str, native: bool) -> None:
    # Every shape and every way off it in one column: the native shapes and the reference cleaner share it.
    series = pd.Series([*SEEDS, None], index=pd.RangeIndex(3, 4 + len(SEEDS)), dtype=object)
    context = Context(phone_region=region, default_timezone="Asia/Shanghai")
    for kind in Kind:
        assert as_lists(clean_column(kind, series, context, native=native)) == as_lists(CLEANERS[kind](series, context))


@pytest.mark.parametrize("native", [True, False], ids=["native", "reference-only"])
def test_contains_finds_line_breaks_and_replacement_characters_in_any_value(native: bool) -> None:
    series = pd.Series(["a\nb", "a\rb", "ab", None, "\ufffd", "\u2028"], index=range(3, 9), dtype=object)

    found = contains(series, {"line_break": "[\r\n]", "garbled": "\ufffd"}, native=native)

    assert found["line_break"].tolist() == [True, True, False, False, False, False]
    assert found["garbled"].tolist() == [False, False, False, False, True, False]
    assert found["line_break"].index.equals(series.index)


@pytest.mark.parametrize("native", [True, False], ids=["native", "reference-only"])
def test_values_seen_in_earlier_chunks_clean_as_the_reference_does_in_each_context(native: bool) -> None:
    # The same few strings chunk after chunk (as a file's countries and consent words come), in two contexts.
    few = pd.Series(["4155552671", "13800138000", "yes", " DE ", "Asia/Shanghai", None] * 4, dtype=object)
    for _ in range(2):
        for region in ("CN", "US"):
            context = Context(phone_region=region, default_timezone="Asia/Shanghai")
            for kind in Kind:
                expected = CLEANERS[kind](few, context)
                assert as_lists(clean_column(kind, few, context, native=native)) == as_lists(expected), kind


def test_more_distinct_values_than_are_remembered_still_clean_as_the_reference_does() -> None:
    context = Context()
    zones = ["Asia/Shanghai", "Europe/Berlin", "Mars/Olympus", "UTC", "America/New_York"]
    for chunk in range(90):  # 90 chunks of 50 strings never seen before: more than clean_column keeps
        series = pd.Series([f"{zone} {chunk}.{n}" for n in range(10) for zone in zones] + zones, dtype=object)
        expected = CLEANERS[Kind.TIMEZONE](series, context)
        assert as_lists(clean_column(Kind.TIMEZONE, series, context)) == as_lists(expected)


def as_arrow(series: pd.Series) -> pd.Series:
    """The column as the CSV reader gives it: Arrow strings (pandas' ArrowDtype)."""
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(series.tolist(), type=pa.string())), index=series.index)


@pytest.mark.parametrize("region", ["CN", "US"])
@settings(max_examples=40, deadline=None)
@given(rows=values, repeats=st.integers(min_value=1, max_value=3))
def test_a_column_of_arrow_strings_equals_the_reference_cleaner(rows: list[str | None], repeats: int, region: str):
    series = pd.Series(rows * repeats, index=pd.RangeIndex(5, 5 + len(rows) * repeats), dtype=object)
    context = Context(phone_region=region, default_timezone="Asia/Shanghai")
    for kind in Kind:
        got = clean_column(kind, as_arrow(series), context)
        assert as_lists(got) == as_lists(CLEANERS[kind](series, context)), kind
        assert got.present is not None
        assert got.present.tolist() == got.values.notna().tolist()


def test_a_column_distinct_at_its_head_and_repetitive_after_it_equals_the_reference_cleaner():
    # Ids and emails all different for the first rows (cleaned value by value), then blanks, seeds and
    # invalid values many times over (cleaned by distinct value among what the shapes leave).
    head = [f"C{n:08d}" if n % 2 else f"user{n}@Example.com" for n in range(1_500)]
    series = pd.Series(head + ["", " ", "not an id\x7f", *SEEDS] * 200, dtype=object)
    context = Context()
    for kind in (Kind.ID, Kind.EMAIL, Kind.PHONE, Kind.TEXT, Kind.DATETIME):
        got = clean_column(kind, as_arrow(series), context)
        assert as_lists(got) == as_lists(CLEANERS[kind](series, context)), kind
        assert got.present.tolist() == got.values.notna().tolist()
