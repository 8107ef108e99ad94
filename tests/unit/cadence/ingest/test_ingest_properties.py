"""Properties of reading + validation for any generated file: nothing lost, nothing accepted that breaks the schema."""

import csv
import io
import json
import re

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.ingest.cleaning import Context
from cadence.ingest.exceptions import UnreadableFileError
from cadence.ingest.mapping import load_mapping
from cadence.ingest.readers import RawChunk, open_table
from cadence.ingest.schemas import CUSTOMERS, EVENTS, ORDERS, Feed, Kind
from cadence.ingest.validation import LINE, validate

MAPPING = load_mapping()
CONTEXT = Context(phone_region="CN", default_timezone="Asia/Shanghai")

# Values that are plausible for some column, wrong for others, or hostile to CSV.
plausible = st.sampled_from(
    [
        "",
        " ",
        "007",
        "a@example.com",
        " Alice@Example.COM ",
        "not-an-email",
        "138 0013 8000",
        "+1 415 555 2671",
        "12345",
        "2024-03-01",
        "2024/3/1 10:00",
        "2024-03-01T10:00:00+08:00",
        "1709258400",
        "31/12/2024",
        "1,234.50",
        "-3",
        "abc",
        "yes",
        "是",
        "CN",
        "Asia/Shanghai",
        "zh_CN",
        "visit",
        "Add To Cart",
        "=1+1",
        '"quoted"',
        "multi\nline",
        "a;b|c\td",
        "\ufffd",
    ]
)
value = st.one_of(plausible, st.text(max_size=12))
feeds = st.sampled_from([CUSTOMERS, ORDERS, EVENTS])


@st.composite
def files(draw: st.DrawFn) -> tuple[Feed, str, list[list[str]], int]:
    """A feed, a delimiter, rows of that feed's columns (some ragged), and the number of ragged rows."""
    feed = draw(feeds)
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = len(feed.names)
    rows = draw(st.lists(st.lists(value, min_size=width, max_size=width), max_size=25))
    ragged = draw(st.lists(st.integers(min_value=0, max_value=len(rows)), max_size=3, unique=True))
    for index in ragged:
        if index < len(rows):
            rows[index] = [*rows[index], "extra"]
    return feed, delimiter, rows, sum(1 for index in ragged if index < len(rows))


def read_all(feed: Feed, data: bytes, key: str) -> list[RawChunk]:
    reader = open_table(io.BytesIO(data), key=key, metadata={}, feed=feed, mapping=MAPPING, chunk_rows=7)
    return list(reader.chunks())


def as_text(frame: pd.DataFrame, feed: Feed) -> pd.DataFrame:
    """Accepted values written back as text, the way a later file would carry them."""
    text = frame[list(feed.names)].astype(object).copy()
    for column in feed.columns:
        if column.kind in {Kind.BOOL, Kind.CONSENT}:
            text[column.name] = text[column.name].map(lambda v: None if v is None else str(v).lower())
        elif column.kind in {Kind.DECIMAL, Kind.INT}:
            text[column.name] = text[column.name].map(lambda v: None if v is None else repr(v))
    return text.astype(object).where(text.notna(), None)


@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_every_csv_record_is_accepted_or_rejected_once_and_accepted_rows_are_clean(generated):
    feed, delimiter, rows, _ = generated
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(feed.names)
    writer.writerows(rows)

    chunks = read_all(feed, buffer.getvalue().encode("utf-8"), "incoming/x/file.csv")
    results = [validate(chunk, feed, CONTEXT) for chunk in chunks]

    accepted_lines = [line for result in results for line in result.accepted[LINE]]
    rejected_lines = [line for result in results for line in result.rejected[LINE]]
    assert len(accepted_lines) + len(rejected_lines) == len(rows)
    assert not set(accepted_lines) & set(rejected_lines)
    assert sum(sum(result.rejected_by_reason.values()) for result in results) == len(rejected_lines)
    for result in results:
        if result.accepted.empty:
            continue
        # Cleaning is idempotent on accepted rows: validating them again rejects and changes nothing.
        again = validate(RawChunk(0, as_text(result.accepted, feed), list(result.accepted[LINE])), feed, CONTEXT)
        assert again.rejected.empty
        assert again.accepted[list(feed.names)].equals(result.accepted[list(feed.names)])
        for name in feed.required:
            assert result.accepted[name].notna().all()
        if feed.any_of:
            assert result.accepted[list(feed.any_of)].notna().any(axis=1).all()


@settings(max_examples=30, deadline=None)
@given(
    feeds,
    st.lists(
        st.one_of(
            st.dictionaries(
                st.sampled_from(
                    [
                        "customer_id",
                        "email",
                        "phone",
                        "order_id",
                        "amount",
                        "order_date",
                        "event_type",
                        "event_time",
                        "other",
                    ]
                ),
                value,
                max_size=6,
            ),
            st.text(max_size=20),
        ),
        max_size=20,
    ),
)
def test_every_json_line_is_accepted_or_rejected_once(feed, lines):
    text = "\n".join(json.dumps(line) if isinstance(line, dict) else line for line in lines)
    # Universal newlines: \r, \n and \r\n all end a line.
    records = sum(1 for line in re.split(r"\r\n|\r|\n", text) if line.strip())

    if records == 0:
        with pytest.raises(UnreadableFileError):  # nothing but blank lines is an empty file
            read_all(feed, text.encode("utf-8"), "incoming/x/file.jsonl")
        return
    chunks = read_all(feed, text.encode("utf-8"), "incoming/x/file.jsonl")
    results = [validate(chunk, feed, CONTEXT) for chunk in chunks]

    assert sum(len(r.accepted) + len(r.rejected) for r in results) == records


@pytest.mark.parametrize("blank", ["\x85", "\u3000", " \u2028 ", "\x85\n\u3000\n"])
def test_json_lines_of_unicode_spaces_only_are_an_empty_file(blank):
    # Lines blank as text (str.strip) hold no record, even though the bytes are not ASCII whitespace.
    with pytest.raises(UnreadableFileError, match="empty_file"):
        read_all(CUSTOMERS, blank.encode("utf-8"), "incoming/customers/file.jsonl")


def test_a_json_line_between_unicode_blank_lines_is_read():
    line = json.dumps({"customer_id": "C1", "email": "a@example.com"})
    chunks = read_all(CUSTOMERS, f"\u3000\n{line}\n\x85\n".encode(), "incoming/customers/file.jsonl")

    assert [chunk.frame["customer_id"].tolist() for chunk in chunks] == [["C1"]]
    assert chunks[0].lines == [2]
