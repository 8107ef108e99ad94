"""File shapes upstream systems send: delimiters, encodings, quoting, compression, Parquet, broken files."""

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cadence.errors import InvalidInputError
from cadence.ingest import service
from cadence.ingest.mapping import load_mapping
from cadence.ingest.models import FileRef
from cadence.ingest.readers import open_table, parquet_engines
from cadence.ingest.schemas import CUSTOMERS


def test_semicolon_bom_crlf_and_quoted_newlines_keep_line_numbers(stack, ingest):
    body = (
        "\ufeffcustomer_id;event_type;event_time;attributes\r\n"
        '1;visit;2024-03-01T10:00:00Z;"{""note"": ""multi\r\nline; with quotes""}"\r\n'
        "2;visit;not a time;\r\n"
    ).encode()
    report = ingest("incoming/events/semi.csv", body)

    assert (report["delimiter"], report["encoding"]) == (";", "utf-8-sig")
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (2, 1, 1)
    assert (report["lines_read"], report["multiline_records"]) == (4, 1)
    assert stack.activity("1")["event_count"] == 1
    # The second record starts on physical line 4, after the two-line quoted field.
    assert [row["line"] for row in stack.rejected("incoming/events/semi.csv")] == ["4"]


@pytest.mark.parametrize(
    ("key", "body", "delimiter"),
    [
        ("incoming/customers/tabs.tsv", "customer_id\temail\n1\ta@example.com\n", "\t"),
        ("incoming/customers/tabs.txt", "customer_id\temail\n1\ta@example.com\n", "\t"),
        ("incoming/customers/pipes.csv", "customer_id|email\n1|a@example.com\n", "|"),
    ],
)
def test_delimiter_is_sniffed_from_the_header(stack, ingest, key, body, delimiter):
    report = ingest(key, body)

    assert report["delimiter"] == delimiter
    assert report["rows_accepted"] == 1


GBK_CSV = "客户编号,手机号,名,城市\n001,13800138000,张三,上海\n".encode("gbk")


def test_gbk_file_is_read_when_metadata_declares_it(stack, ingest):
    report = ingest("incoming/customers/crm.csv", GBK_CSV, metadata={"encoding": "gbk"})

    assert report["encoding"] == "gb18030"
    assert report["column_map"] == {"客户编号": "customer_id", "手机号": "phone", "名": "first_name", "城市": "city"}
    profile = stack.profile("001")
    assert (profile["phone"], profile["first_name"], profile["city"]) == ("+8613800138000", "张三", "上海")


def test_gbk_file_is_read_when_suffix_declares_it(stack, ingest):
    report = ingest("incoming/customers/crm.gbk.csv", GBK_CSV)

    assert report["rows_accepted"] == 1
    assert stack.profile("001")["city"] == "上海"


def test_undeclared_legacy_encoding_is_refused_not_guessed(stack):
    key = "incoming/customers/crm.csv"
    version = stack.put(key, GBK_CSV)

    with pytest.raises(InvalidInputError):
        service.ingest_files([FileRef(stack.bucket, key, version)], settings=stack.settings)

    report = stack.report(key, version)
    assert report["reason"] == "undeclared_encoding"
    assert stack.read(report["quarantined_key"]) == GBK_CSV


def test_utf16_with_bom_is_read(stack, ingest):
    report = ingest("incoming/customers/excel.txt", "customer_id\temail\n1\ta@example.com\n".encode("utf-16"))

    assert (report["encoding"], report["delimiter"], report["rows_accepted"]) == ("utf-16", "\t", 1)


def test_undecodable_bytes_after_the_head_reject_only_their_row(stack, ingest):
    # Rows without a contact are rejected cheaply: the point is the bad byte far past the sniffed head.
    filler = "".join(f"{i},,padding padding padding\n" for i in range(3000)).encode()
    body = b"customer_id,email,city\n" + filler + b"1,a@example.com,x\n2,\xff\xfe@example.com,y\n"
    assert len(body) > 64 * 1024

    report = ingest("incoming/customers/big.csv", body)

    assert (report["rows_read"], report["rows_accepted"]) == (3002, 1)
    assert report["rejected_by_reason"] == {"missing:email|phone": 3000, "invalid_encoding": 1}
    assert stack.rejected("incoming/customers/big.csv")[-1]["line"] == "3003"


def test_rows_with_wrong_field_count_are_rejected_with_raw_text(stack, ingest):
    report = ingest("incoming/customers/ragged.csv", "customer_id,email\n1,a@example.com\n2,b@example.com,extra\n3\n")

    assert report["rejected_by_reason"] == {"wrong_field_count": 2}
    rejected = stack.rejected("incoming/customers/ragged.csv")
    assert [(row["line"], row["raw"]) for row in rejected] == [("3", "2,b@example.com,extra"), ("4", "3")]


def test_header_only_file_reads_zero_rows(stack, ingest):
    report = ingest("incoming/orders/none.csv", "order_id,customer_id,order_date,amount\n")

    assert (report["status"], report["rows_read"], report["rejected_key"]) == ("ok", 0, None)


def test_ids_and_phones_keep_leading_zeros(stack, ingest):
    ingest("incoming/customers/zeros.csv", "customer_id,phone\n000123,013800138000\n")

    assert stack.profile("000123")["phone"] == "+8613800138000"


def test_json_lines_values_of_any_json_type_become_text(stack, ingest):
    line = {"order_id": 1, "customer_id": 7, "order_date": "2024-01-01", "amount": 12.5, "items": 3.0}
    report = ingest("incoming/orders/o.ndjson", json.dumps(line) + "\n")

    assert report["rows_accepted"] == 1
    profile = stack.activity("7")
    assert (profile["order_count"], profile["total_spend"]) == (1, 12.5)


@pytest.mark.parametrize(
    ("key", "body", "reason"),
    [
        (
            "incoming/customers/cut.csv.gz",
            gzip.compress(b"customer_id,email\n" + b"1,a@example.com\n" * 5000)[:-40],
            "corrupt_gzip",
        ),
        ("incoming/customers/fake.csv.gz", b"customer_id,email\n1,a@example.com\n", "not_gzip"),
        ("incoming/customers/broken.parquet", b"PAR1 not really parquet", "corrupt_parquet"),
        (
            "incoming/customers/twice.csv",
            "customer_id,email,Email Address\n1,a@example.com,b@example.com\n",
            "duplicate_column:email",
        ),
        ("incoming/customers/x.csv", "customer_id,email\n1,a@example.com\n", "unknown_encoding"),
    ],
)
def test_unreadable_files_are_reported_with_their_reason(stack, key, body, reason):
    metadata = {"encoding": "no-such-codec"} if reason == "unknown_encoding" else {}
    version = stack.put(key, body, metadata)

    with pytest.raises(InvalidInputError):
        service.ingest_files([FileRef(stack.bucket, key, version)], settings=stack.settings)

    report = stack.report(key, version)
    assert (report["status"], report["reason"]) == ("unreadable", reason)
    assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"]
    assert stack.exists(report["quarantined_key"])


def parquet_bytes(frame: pd.DataFrame, engine: str) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine=engine, index=False)
    return buffer.getvalue()


CUSTOMER_FRAME = pd.DataFrame(
    {
        "Customer ID": ["007", "008"],
        "email": ["a@example.com", None],
        "phone": ["13800138000", "bad"],
        "consent_email": [True, False],
        "signup_date": pd.to_datetime(["2024-03-01", "2024-03-02"]).date,
        "updated_at": pd.to_datetime(["2024-03-01T10:00:00+08:00", "2024-03-02T00:00:00Z"], utc=True),
    }
)


@pytest.mark.parametrize("engine", ["fastparquet", "pyarrow"])
def test_parquet_reads_through_either_engine(engine):
    if engine not in parquet_engines():
        pytest.skip(f"{engine} is not installed")
    reader = open_table(
        io.BytesIO(parquet_bytes(CUSTOMER_FRAME, "pyarrow")),
        key="incoming/customers/c.parquet",
        metadata={},
        feed=CUSTOMERS,
        mapping=load_mapping(),
        chunk_rows=1,
        parquet_engine=engine,
    )

    chunks = list(reader.chunks())

    assert [chunk.lines for chunk in chunks] == [[1], [2]]
    first = chunks[0].frame.iloc[0]
    assert (first["customer_id"], first["phone"], first["consent_email"]) == ("007", "13800138000", "true")
    assert first["signup_date"] == "2024-03-01"
    assert first["updated_at"].startswith("2024-03-01T02:00:00")


def test_gzipped_parquet_becomes_profiles(stack, ingest):
    report = ingest("incoming/customers/c.parquet.gz", gzip.compress(parquet_bytes(CUSTOMER_FRAME, "pyarrow")))

    assert (report["format"], report["compression"]) == ("parquet", "gzip")
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (2, 1, 1)
    assert report["rejected_by_reason"] == {"invalid:phone": 1}
    profile = stack.profile("007")
    assert (profile["signup_date"], profile["updated_at"], profile["consent_email"]) == (
        "2024-03-01",
        "2024-03-01T02:00:00Z",
        True,
    )


def test_column_names_map_through_the_shipped_aliases(stack, ingest):
    report = ingest(
        "incoming/customers/export.csv",
        "Customer ID,Email Address,手机号,Favourite Colour\n1,A@Example.com,13800138000,blue\n",
    )

    assert report["column_map"] == {"Customer ID": "customer_id", "Email Address": "email", "手机号": "phone"}
    assert report["ignored_columns"] == ["Favourite Colour"]
    assert stack.profile("1")["email"] == "a@example.com"


def test_mapping_override_in_the_bucket_adds_aliases_without_code_changes(stack, ingest):
    stack.put("config/ingest/mapping.json", json.dumps({"customers": {"email": ["E-Mail Adresse"]}}))

    report = ingest(
        "incoming/customers/de.csv",
        "customer_id,E-Mail Adresse\n1,a@example.com\n",
        ingest_mapping_key="config/ingest/mapping.json",
    )

    assert report["column_map"]["E-Mail Adresse"] == "email"
    assert stack.profile("1")["email"] == "a@example.com"


def test_formulas_in_rejected_rows_cannot_run_in_a_spreadsheet(stack, ingest):
    body = 'customer_id,email,first_name,city\n1,"=HYPERLINK(""http://x"")",+1+1,@SUM(A1)\n2,-2+3,\tTab,=1\n'
    ingest("incoming/customers/evil.csv", body)

    rows = stack.rejected("incoming/customers/evil.csv")
    cells = [value for row in rows for value in row.values() if value]
    assert not [cell for cell in cells if cell[0] in "=+-@\t\r"]
    assert rows[0]["email"] == '\'=HYPERLINK("http://x")'
    assert (rows[0]["first_name"], rows[0]["city"]) == ("'+1+1", "'@SUM(A1)")


def test_csv_and_parquet_read_without_pyarrow_as_in_the_lambda_package(tmp_path):
    # The function ships fastparquet, not pyarrow (size): prove the readers never need pyarrow.
    (tmp_path / "c.parquet").write_bytes(parquet_bytes(CUSTOMER_FRAME, "pyarrow"))
    script = (
        "import sys, io\n"
        "sys.modules['pyarrow'] = None\n"
        "from cadence.ingest.readers import open_table, parquet_engines\n"
        "from cadence.ingest.mapping import load_mapping\n"
        "from cadence.ingest.schemas import CUSTOMERS\n"
        "assert parquet_engines() == ['fastparquet'], parquet_engines()\n"
        f"data = open({str(tmp_path / 'c.parquet')!r}, 'rb').read()\n"
        "for key, body in [('c.parquet', data), ('c.csv', b'customer_id,email\\n007,a@example.com\\n')]:\n"
        "    reader = open_table(\n"
        "        io.BytesIO(body), key=key, metadata={}, feed=CUSTOMERS, mapping=load_mapping(), chunk_rows=5\n"
        "    )\n"
        "    print(key, [c.frame['customer_id'].tolist() for c in reader.chunks()])\n"
    )
    if "fastparquet" not in parquet_engines():
        pytest.skip("fastparquet is not installed")

    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(service.__file__).resolve().parents[2])},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["c.parquet [['007', '008']]", "c.csv [['007']]"]
