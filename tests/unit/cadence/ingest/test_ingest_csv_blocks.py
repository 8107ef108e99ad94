"""CSV blocks parsed by pyarrow give exactly what csv.reader gives: the same records, lines, malformed records,
tallies and validation, whether a file is simple throughout, turns not simple part-way, or never is."""

import gzip
import io

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.ingest import csv_blocks, merge
from cadence.ingest.cleaning import Context
from cadence.ingest.exceptions import UnreadableFileError
from cadence.ingest.mapping import load_mapping
from cadence.ingest.readers import RawChunk, TableReader, open_table
from cadence.ingest.schemas import CUSTOMERS
from cadence.ingest.validation import validate

MAPPING = load_mapping()
CONTEXT = Context(phone_region="CN", default_timezone="Asia/Shanghai")
HEADER = ["customer_id", "email", "phone", "first_name", "country", "consent_email", "updated_at"]
KEY = "incoming/customers/file.csv"
NOW = "2026-12-01T00:00:00Z"

simple_value = st.sampled_from(
    [
        "",
        " ",
        "C1",
        "C2",
        "007",
        "a@example.com",
        " Alice@Example.COM ",
        "not-an-email",
        "13800138000",
        "+14155552671",
        "138 0013 8000",
        "李",
        "Zoë",
        "CN",
        "uk",
        "yes",
        "是",
        "maybe",
        "2026-11-01T08:00:00Z",
        "2024/3/1 10:00",
        "\ufffd",
    ]
)
hostile_value = st.sampled_from(['"quoted"', 'half"quote', "multi\nline", "cr\rhere", "nul\x00", ""])


@st.composite
def files(draw: st.DrawFn) -> bytes:
    """A customers file: mostly simple lines, and now and then what only csv.reader may read."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [delimiter.join(HEADER)]
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        trouble = draw(st.sampled_from(["none"] * 12 + ["value", "blank", "ragged"]))
        values = draw(st.lists(simple_value, min_size=len(HEADER), max_size=len(HEADER)))
        if trouble == "value":
            values[draw(st.integers(0, len(HEADER) - 1))] = draw(hostile_value)
        elif trouble == "ragged":
            values.append("extra")
        lines.append("" if trouble == "blank" else delimiter.join(values))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    data = text.encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(len(lines[0]) + 2, max(len(lines[0]) + 2, len(data))))
        data = data[:cut] + b"\xff" + data[cut:]  # an undecodable byte: that row's invalid_encoding
    return data


def read(data: bytes, chunk_rows: int, *, start: int = 0) -> tuple[list[RawChunk], TableReader]:
    reader = open_table(io.BytesIO(data), key=KEY, metadata={}, feed=CUSTOMERS, mapping=MAPPING, chunk_rows=chunk_rows)
    return list(reader.chunks(start)), reader


def by_csv_reader(monkeypatch: pytest.MonkeyPatch, data: bytes, chunk_rows: int, **kwargs: int):
    with monkeypatch.context() as patch:
        patch.setattr(csv_blocks, "HAS_PYARROW", False)
        return read(data, chunk_rows, **kwargs)


def by_blocks(monkeypatch: pytest.MonkeyPatch, data: bytes, chunk_rows: int, block_bytes: int, **kwargs: int):
    with monkeypatch.context() as patch:
        patch.setattr(csv_blocks, "BLOCK_BYTES", block_bytes)
        patch.setattr(csv_blocks, "FIRST_BYTES", block_bytes)
        return read(data, chunk_rows, **kwargs)


def comparable(chunk: RawChunk) -> tuple:
    """What a chunk holds, with its values as Python objects (Arrow strings become str). Not `plain`: a hint,
    which csv.reader's batches give more coarsely (see truly_plain)."""
    values = chunk.frame.astype(object).to_numpy().tolist()
    return chunk.index, values, list(chunk.lines), chunk.malformed


def truly_plain(chunk: RawChunk) -> bool:
    """A chunk said to be plain holds no line break and no U+FFFD."""
    values = [value for row in chunk.frame.astype(object).to_numpy().tolist() for value in row if value is not None]
    return not chunk.plain or not any(mark in value for value in values for mark in ("\r", "\n", "\ufffd"))


def rows(frame: pd.DataFrame) -> list[list[object]]:
    """The frame's rows, NaN as None (no two NaN are equal)."""
    return frame.astype(object).where(frame.notna(), None).to_numpy().tolist()


def validated(chunk: RawChunk) -> tuple:
    result = validate(chunk, CUSTOMERS, CONTEXT)
    return (
        rows(result.accepted),
        rows(result.rejected),
        result.rejected_by_reason,
        result.values_cleared,
        result.values_coerced,
    )


def is_arrow(chunk: RawChunk) -> bool:
    return isinstance(chunk.frame["customer_id"].dtype, pd.ArrowDtype)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=files(), chunk_rows=st.integers(3, 12), block_bytes=st.sampled_from([16, 64, 200, 4096]))
def test_blocks_read_every_file_as_csv_reader_does(monkeypatch, data, chunk_rows, block_bytes):
    try:
        expected, expected_reader = by_csv_reader(monkeypatch, data, chunk_rows)
    except UnreadableFileError as exc:
        with pytest.raises(UnreadableFileError, match=str(exc)):
            by_blocks(monkeypatch, data, chunk_rows, block_bytes)
        return
    got, got_reader = by_blocks(monkeypatch, data, chunk_rows, block_bytes)
    assert [comparable(chunk) for chunk in got] == [comparable(chunk) for chunk in expected]
    assert got_reader.tally == expected_reader.tally
    assert all(truly_plain(chunk) for chunk in got)
    assert [validated(chunk) for chunk in got] == [validated(chunk) for chunk in expected]


def simple_file(rows: int, newline: str = "\n") -> bytes:
    lines = [",".join(HEADER)]
    lines += [f"C{i},u{i}@example.com,,Li,CN,yes,2026-11-01T08:00:00Z" for i in range(rows)]
    return (newline.join(lines) + newline).encode()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_simple_file_is_read_by_blocks_into_arrow_columns_with_its_lines(monkeypatch, newline):
    data = simple_file(1_000, newline)
    got, reader = by_blocks(monkeypatch, data, 300, 1_000)
    expected, _ = by_csv_reader(monkeypatch, data, 300)
    assert all(is_arrow(chunk) for chunk in got)
    assert [len(chunk.lines) for chunk in got] == [300, 300, 300, 100]
    assert got[1].lines[0] == 302  # the header is line 1
    assert [comparable(chunk) for chunk in got] == [comparable(chunk) for chunk in expected]
    assert (reader.tally.records, reader.tally.lines) == (1_000, 1_001)


def test_csv_reader_reads_on_from_the_first_block_that_is_not_simple(monkeypatch):
    lines = simple_file(1_000).decode().splitlines()
    lines[700] = 'C699,"u699@example.com",,"Li\nWei",CN,yes,2026-11-01T08:00:00Z'  # quoted, two lines
    data = ("\n".join(lines) + "\n").encode()
    got, reader = by_blocks(monkeypatch, data, 300, 2_000)
    expected, expected_reader = by_csv_reader(monkeypatch, data, 300)
    assert [is_arrow(chunk) for chunk in got] == [True, True, False, False]  # the third chunk starts in blocks
    assert [comparable(chunk) for chunk in got] == [comparable(chunk) for chunk in expected]
    assert got[3].lines[-1] == 1_002  # the record after the two-line one is a line later
    assert reader.tally == expected_reader.tally
    assert reader.tally.multiline_records == 1


def test_a_later_part_reads_its_chunks_by_blocks_as_the_whole_file_does(monkeypatch):
    data = simple_file(1_000)
    whole, _ = by_blocks(monkeypatch, data, 300, 1_000)
    later, reader = by_blocks(monkeypatch, data, 300, 1_000, start=2)
    assert [comparable(chunk) for chunk in later] == [comparable(chunk) for chunk in whole[2:]]
    assert reader.tally.records == 1_000


def test_a_file_of_a_header_only_gives_one_empty_chunk(monkeypatch):
    got, _ = by_blocks(monkeypatch, (",".join(HEADER) + "\n").encode(), 300, 1_000)
    expected, _ = by_csv_reader(monkeypatch, (",".join(HEADER) + "\n").encode(), 300)
    assert [comparable(chunk) for chunk in got] == [comparable(chunk) for chunk in expected]
    assert [len(chunk.lines) for chunk in got] == [0]


def test_a_gzip_file_cut_short_in_its_first_block_is_corrupt_gzip_at_opening():
    whole = gzip.compress(simple_file(500))  # 29 KB of text, all in the block read at opening
    data = whole[: len(whole) // 2]
    with pytest.raises(UnreadableFileError, match="corrupt_gzip"):
        open_table(io.BytesIO(data), key=KEY + ".gz", metadata={}, feed=CUSTOMERS, mapping=MAPPING, chunk_rows=10)


@pytest.mark.parametrize(
    "block",
    [
        b'a,"b",c\n',  # a quote
        b"a,b,c\n\nd,e,f\n",  # a blank line
        b"\na,b,c\n",  # a blank line where the block starts
        b"a,b\rc,d\n",  # a lone carriage return ends a line for csv.reader
        b"a,b,c\r\n\r\nd,e,f\r\n",  # a blank line between CRLF line ends
        b"a,b,c\nd,e\n",  # a line of another width
        b"a,\x00,c\n",  # NUL
        b"a,\xff,c\n",  # not UTF-8: the text reader replaces it
        b"a,bbbbbbbbbbb,c\n",  # a field over the limit
    ],
)
def test_a_block_that_is_not_simple_is_left_to_csv_reader(block):
    assert csv_blocks.simple_records(block, encoding="utf-8", delimiter=",", width=3, max_field_chars=10) is None


def test_a_simple_block_is_every_line_split_at_the_delimiter():
    table = csv_blocks.simple_records(
        "a, b ,é\r\n,,\nx;y,z,\n".encode(), encoding="utf-8", delimiter=",", width=3, max_field_chars=10
    )
    assert table is not None
    assert table.to_pylist() == [
        {"0": "a", "1": " b ", "2": "é"},
        {"0": "", "1": "", "2": ""},
        {"0": "x;y", "1": "z", "2": ""},
    ]


def test_ascii_text_takes_no_byte_above_127():
    block = "a,é\n".encode()
    assert csv_blocks.simple_records(block, encoding="ascii", delimiter=",", width=2, max_field_chars=9) is None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=files(), chunk_rows=st.integers(3, 12), by_blocks_too=st.booleans())
def test_what_validation_says_each_row_holds_is_what_the_rows_hold_and_merges_alike(
    monkeypatch, data, chunk_rows, by_blocks_too
):
    """Validation's `present` (from cleaning's distinct values) is every accepted column's notna(), and the
    customers merged and written with it are those merged and written without it."""
    try:
        if by_blocks_too:
            chunks, _ = by_blocks(monkeypatch, data, chunk_rows, 64)
        else:
            chunks, _ = by_csv_reader(monkeypatch, data, chunk_rows)
    except UnreadableFileError:
        return
    for chunk in chunks:
        result = validate(chunk, CUSTOMERS, CONTEXT)
        assert set(result.present) == set(CUSTOMERS.names)
        for name, held in result.present.items():
            assert held.tolist() == result.accepted[name].notna().tolist(), name
        if result.accepted.empty:
            continue
        told = merge.merge_customer_frame(result.accepted, default_updated_at=NOW, present=result.present)
        looked = merge.merge_customer_frame(result.accepted, default_updated_at=NOW)
        assert merge.customer_writes(told, {}) == merge.customer_writes(looked, {})
