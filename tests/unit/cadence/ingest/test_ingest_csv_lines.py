"""A long CSV file read in batches: every record keeps its physical line, across batch and chunk boundaries,
with multi-line records, blank lines and malformed records anywhere."""

import dataclasses
import io

import pandas as pd
import pytest

from cadence.ingest.cleaning import Context
from cadence.ingest.mapping import load_mapping
from cadence.ingest.readers import RawChunk, TableReader, open_table
from cadence.ingest.schemas import CUSTOMERS
from cadence.ingest.validation import validate

RECORDS = 10_000
CONTEXT = Context("CN", "UTC")
MULTILINE = {4095: "Li\nWei", 5000: "Li\r\nWei", 9001: "a\rb\nc"}  # one at the end of the first batch
BLANK_BEFORE = {4096, 7000}
MALFORMED = {4097, 8000}


def physical_lines(text: str) -> int:
    """Lines as a text reader splits them: at \r\n, \r or \n."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def long_file() -> tuple[bytes, dict[str, int], dict[int, str]]:
    """The file, the line each good record starts on (by customer id) and each malformed record's line."""
    written = "customer_id,email,first_name\n"
    starts: dict[str, int] = {}
    malformed: dict[int, str] = {}
    for i in range(RECORDS):
        if i in BLANK_BEFORE:
            written += "\n"
        line_number = physical_lines(written) + 1
        if i in MALFORMED:
            malformed[line_number] = f"C{i},u{i}@example.com,Li,extra"
            written += malformed[line_number] + "\n"
            continue
        starts[f"C{i}"] = line_number
        written += f'C{i},u{i}@example.com,"{MULTILINE.get(i, "Li")}"\n'
    return written.encode(), starts, malformed


@pytest.mark.parametrize("chunk_rows", [1_000, 3_001, 50_000])
def test_each_record_keeps_its_line_across_batches_and_chunks(chunk_rows: int) -> None:
    body, starts, malformed = long_file()
    reader = open_table(
        io.BytesIO(body), key="incoming/customers/long.csv", metadata={}, feed=CUSTOMERS,
        mapping=load_mapping([]), chunk_rows=chunk_rows,
    )  # fmt: skip

    chunks = list(reader.chunks())

    read = {cid: line for chunk in chunks for cid, line in zip(chunk.frame["customer_id"], chunk.lines, strict=True)}
    assert read == starts
    assert {bad.line: bad.raw for chunk in chunks for bad in chunk.malformed} == malformed
    assert [chunk.rows_read for chunk in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    names = {
        cid: name
        for chunk in chunks
        for cid, name in zip(chunk.frame["customer_id"], chunk.frame["first_name"], strict=True)
    }
    assert names["C5000"] == "Li\r\nWei"
    assert names["C9001"] == "a\rb\nc"
    tally = reader.tally
    assert (tally.records, tally.multiline_records) == (RECORDS, len(MULTILINE))
    assert tally.lines == physical_lines(body.decode())


def test_a_later_part_starts_at_its_chunk_with_the_same_lines() -> None:
    body, starts, _ = long_file()

    def reader() -> TableReader:
        return open_table(
            io.BytesIO(body), key="incoming/customers/long.csv", metadata={}, feed=CUSTOMERS,
            mapping=load_mapping([]), chunk_rows=3_001,
        )  # fmt: skip

    every = list(reader().chunks())
    later = list(reader().chunks(start=2))

    assert [chunk.index for chunk in later] == [chunk.index for chunk in every[2:]]
    assert [chunk.lines for chunk in later] == [chunk.lines for chunk in every[2:]]
    assert later[0].lines[0] == starts[f"C{2 * 3_001}"]  # malformed records count, blank lines do not


def read_chunks(body: bytes, chunk_rows: int = 3_001) -> list[RawChunk]:
    return list(
        open_table(
            io.BytesIO(body), key="incoming/customers/c.csv", metadata={}, feed=CUSTOMERS,
            mapping=load_mapping([]), chunk_rows=chunk_rows,
        ).chunks()
    )  # fmt: skip


def clean_file(records: int = RECORDS, *, name_of: dict[int, bytes] | None = None) -> bytes:
    """One-line records after the header, each first name as `name_of` says (a bare Li by default)."""
    rows = (b"C%d,u%d@example.com,%s\n" % (i, i, (name_of or {}).get(i, b"Li")) for i in range(records))
    return b"customer_id,email,first_name\n" + b"".join(rows)


def test_a_chunk_is_plain_only_when_no_value_can_hold_a_line_break_or_an_undecodable_byte() -> None:
    # 3,001 rows a chunk, 4,096 records a batch: record 9,001 is in the third chunk and the third batch
    multiline = clean_file(name_of={9001: b'"Li\nWei"'})
    garbled = clean_file(name_of={9001: b"L\xffi"})  # past the head, which must decode

    assert [chunk.plain for chunk in read_chunks(clean_file())] == [True, True, True, True]
    assert [chunk.plain for chunk in read_chunks(multiline)] == [True, True, False, False]
    assert [chunk.plain for chunk in read_chunks(garbled)] == [True, True, False, False]


@pytest.mark.parametrize("chunk_rows", [1_000, 3_001])
def test_validation_of_a_plain_chunk_is_what_the_full_checks_give(chunk_rows: int) -> None:
    body = clean_file(name_of={9001: b'"Li\nWei"', 9002: b"L\xffi", 9003: b'"Li\rWei"'})
    chunks = read_chunks(body, chunk_rows) + read_chunks(clean_file(), chunk_rows)
    assert any(chunk.plain for chunk in chunks)

    for chunk in chunks:
        fast = validate(chunk, CUSTOMERS, CONTEXT)
        full = validate(dataclasses.replace(chunk, plain=False), CUSTOMERS, CONTEXT)
        pd.testing.assert_frame_equal(fast.accepted, full.accepted)
        pd.testing.assert_frame_equal(fast.rejected, full.rejected)
        assert fast.rejected_by_reason == full.rejected_by_reason
    rejected = {reason for chunk in chunks for reason in validate(chunk, CUSTOMERS, CONTEXT).rejected_by_reason}
    assert rejected == {"line_break:first_name", "invalid_encoding"}


def test_a_file_of_ascii_bytes_in_utf16_still_has_its_undecodable_last_byte_found() -> None:
    # Every byte below 0x80, yet a lone last byte of UTF-16 decodes to U+FFFD: ASCII bytes say nothing there.
    body = "customer_id,email,first_name\nC1,u1@example.com,Li\nC2,u2@example.com,Li".encode("utf-16-le") + b"i"
    reader = open_table(
        io.BytesIO(body), key="incoming/customers/c.csv", metadata={"encoding": "utf-16-le"}, feed=CUSTOMERS,
        mapping=load_mapping([]), chunk_rows=10,
    )  # fmt: skip

    (chunk,) = list(reader.chunks())
    validated = validate(chunk, CUSTOMERS, CONTEXT)

    assert validated.accepted["customer_id"].tolist() == ["C1"]
    assert validated.rejected[["customer_id", "reason"]].values.tolist() == [["C2", "invalid_encoding"]]


def test_an_ascii_file_with_one_undecodable_byte_far_into_it_has_that_row_rejected() -> None:
    body = clean_file(20_000, name_of={19_000: b"L\x80i"})

    chunks = read_chunks(body, 3_001)
    rejected = [validate(chunk, CUSTOMERS, CONTEXT).rejected for chunk in chunks]

    found = pd.concat(rejected)
    assert found[["customer_id", "reason"]].values.tolist() == [["C19000", "invalid_encoding"]]
