"""Turn a byte stream of CSV, JSON Lines or Parquet (optionally gzipped) into chunks of string columns.

Every value comes out as text (or None), so ids and phone numbers keep their leading zeros; cleaning
decides types later. Each chunk carries the source line of every row, and the records that could not
be split into fields at all, so the caller can account for every row it read.

How a file is recognised:
- gzip: a .gz/.gzip suffix or the gzip magic bytes.
- format: suffix (.csv .tsv .txt .psv -> CSV; .jsonl .ndjson .json -> JSON Lines; .parquet .pq -> Parquet),
  else the content (PAR1 magic -> Parquet, a leading '{' -> JSON Lines, anything else -> CSV).
- text encoding: S3 metadata ``x-amz-meta-encoding`` first, then an encoding suffix before the format
  (``customers.gbk.csv``), then a byte-order mark, else UTF-8. GBK and GB2312 decode as GB18030, their
  superset. A file that is not valid UTF-8 and declares nothing is refused, never guessed.
- CSV delimiter: the one of , ; TAB | that occurs most often in the header line (TAB for .tsv).

Limits (see `Limits`): the decompressed bytes of a file (a gzip bomb, or a Parquet spool larger than the
local disk) and the length of a JSON Lines line are capped; past a cap the file is unreadable, with a
reason, before anything of it is applied (the caller scans the whole file first, see `TableReader.scan`).
"""

import codecs
import csv
import gzip
import hashlib
import importlib
import io
import itertools
import json
import re
import sys
import tempfile
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any, BinaryIO, Protocol

import numpy as np
import pandas as pd

from cadence import collector
from cadence.errors import InvalidInputError
from cadence.ingest import csv_blocks, pinpoint
from cadence.ingest.exceptions import UnreadableFileError
from cadence.ingest.mapping import ColumnMapping, HeaderMap
from cadence.ingest.schemas import PINPOINT_ENDPOINTS, Feed

if csv_blocks.HAS_PYARROW:
    import pyarrow as pa

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
HEAD_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD_CHARS = 1024 * 1024

# Encodings a file may declare by suffix; any codec Python knows may be declared in metadata.
SUFFIX_ENCODINGS = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf16": "utf-16",
    "utf-16": "utf-16",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "big5hkscs": "big5hkscs",
    "sjis": "shift_jis",
    "shift_jis": "shift_jis",
    "eucjp": "euc_jp",
    "euc-jp": "euc_jp",
    "euckr": "euc_kr",
    "euc-kr": "euc_kr",
    "cp949": "cp949",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "iso-8859-1": "latin-1",
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
}
_SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030", "big5": "big5hkscs"}
# Encodings in which bytes below 0x80 are always those ASCII characters, one byte each, and so never
# U+FFFD (not UTF-16, where a lone trailing byte is one; not ISO-2022, where ASCII escapes switch sets).
_ASCII_SUPERSETS = frozenset({"ascii", "utf-8", "utf-8-sig", "gb18030", "big5hkscs", "iso8859-1", "cp1252"})

csv.field_size_limit(MAX_FIELD_CHARS)


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that make a file unreadable rather than let it exhaust time, memory or disk."""

    # Bytes after decompression (a Parquet file is spooled to /tmp whole, so this also bounds the spool).
    max_uncompressed_bytes: int = 4 * 1024**3
    # Characters in one JSON Lines line (a CSV field is capped at MAX_FIELD_CHARS by the csv module).
    max_line_chars: int = MAX_FIELD_CHARS


@dataclass(slots=True)
class Tally:
    """What a pass over a file has seen so far: records, physical lines (header included), multi-line records."""

    records: int = 0
    lines: int = 0
    multiline_records: int = 0


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


_FORMAT_SUFFIXES = {
    "csv": Format.CSV,
    "tsv": Format.CSV,
    "txt": Format.CSV,
    "psv": Format.CSV,
    "jsonl": Format.JSONL,
    "ndjson": Format.JSONL,
    "json": Format.JSONL,
    "parquet": Format.PARQUET,
    "pq": Format.PARQUET,
}


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record that could not be split into columns: its line, a reason code and its raw text."""

    line: int
    reason: str
    raw: str


@dataclass(slots=True)
class RawChunk:
    """Consecutive records of a file: parsed rows (canonical columns, text or None) and malformed ones."""

    index: int
    frame: pd.DataFrame
    lines: list[int]
    malformed: list[Malformed] = field(default_factory=list)
    # The reader saw every value: none holds a line break or U+FFFD (an undecodable byte), so validation need
    # not look for them. False whenever unknown.
    plain: bool = False

    @property
    def rows_read(self) -> int:
        return len(self.lines) + len(self.malformed)


@dataclass(frozen=True, slots=True)
class FileShape:
    format: Format
    compression: str | None
    encoding: str | None
    delimiter: str | None


class TableReader:
    """A file opened for reading: its shape, its header mapping and an iterator of chunks.

    `ignored_columns` grows while a JSON Lines file is read, as keys appear line by line; `tally` counts
    what the current pass has read (chunks read past included).
    """

    def __init__(self, shape: FileShape, header: HeaderMap, chunks: Callable[[int, Tally], Iterator[RawChunk]]) -> None:
        self.shape = shape
        self.header = header
        self.ignored_columns: set[str] = set(header.ignored)
        self.tally = Tally()
        self._chunks = chunks

    def chunks(self, start: int = 0) -> Iterator[RawChunk]:
        """Chunks in file order from chunk `start` on; earlier chunks are read past but not built.

        Raises:
            UnreadableFileError: the file turns out to be corrupt part-way (truncated gzip, broken CSV
                quoting) or breaks a limit.
        """
        self.tally = Tally()
        try:
            yield from self._chunks(start, self.tally)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UnreadableFileError("corrupt_gzip") from exc
        except csv.Error as exc:
            raise UnreadableFileError("csv_error") from exc

    def scan(self) -> Tally:
        """Read the whole file without building a row, so framing, gzip CRC and size are checked up front.

        Raises:
            UnreadableFileError: as `chunks`.
        """
        for _ in self.chunks(start=sys.maxsize):
            pass
        return self.tally


def open_table(
    stream: BinaryIO,
    *,
    key: str,
    metadata: Mapping[str, str],
    feed: Feed,
    mapping: ColumnMapping,
    chunk_rows: int,
    parquet_engine: str | None = None,
    limits: Limits | None = None,
) -> TableReader:
    """Recognise the file's compression, format, encoding and delimiter and map its header.

    `parquet_engine` is "fastparquet" (what the Lambda package ships) or "pyarrow"; by default the first
    one installed.

    Raises:
        UnreadableFileError: the file is empty, corrupt, of an undeclared encoding, lacks required columns
            or breaks a limit.
    """
    limits = limits or Limits()
    name = key.rsplit("/", 1)[-1].lower()
    head, stream = _read_head(stream)
    compression = None
    if name.endswith((".gz", ".gzip")) or head.startswith(GZIP_MAGIC):
        if not head.startswith(GZIP_MAGIC):
            raise UnreadableFileError("not_gzip")
        compression = "gzip"
        name = name.removesuffix(".gz").removesuffix(".gzip")
        capped = _Capped(gzip.GzipFile(fileobj=stream, mode="rb"), limits.max_uncompressed_bytes)
        try:
            head, stream = _read_head(capped)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UnreadableFileError("corrupt_gzip") from exc
    else:
        capped = _Capped(stream, limits.max_uncompressed_bytes)
        head, stream = _read_head(capped)
    if not head.strip():
        raise UnreadableFileError("empty_file")
    file_format = _format(name, head)
    if file_format is Format.PARQUET:
        engine = parquet_engine or parquet_engines()[0]
        return _parquet_reader(
            stream, compression=compression, feed=feed, mapping=mapping, chunk_rows=chunk_rows, engine=engine
        )
    encoding = _encoding(name, metadata, head)
    if file_format is Format.JSONL:
        # Universal newlines: JSON strings cannot hold a raw line break, so every line is a record.
        text = io.TextIOWrapper(stream, encoding=encoding, errors="replace")
        shape = FileShape(Format.JSONL, compression, encoding, None)
        return _jsonl_reader(
            text, shape=shape, feed=feed, mapping=mapping, chunk_rows=chunk_rows, max_line_chars=limits.max_line_chars
        )
    head_text = head.decode(encoding, errors="replace")
    delimiter = "\t" if name.endswith(".tsv") else sniff_delimiter(head_text)
    shape = FileShape(Format.CSV, compression, encoding, delimiter)
    in_ascii = (lambda: capped.ascii_so_far) if encoding in _ASCII_SUPERSETS else (lambda: False)
    return _csv_reader(stream, shape=shape, feed=feed, mapping=mapping, chunk_rows=chunk_rows, in_ascii=in_ascii)


def sniff_delimiter(head_text: str) -> str:
    """The candidate delimiter occurring most often outside quotes in the first line (',' on a tie or none)."""
    first_line = re.split(r"\r\n|\n|\r", head_text.lstrip("\ufeff"), maxsplit=1)[0]
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


# ---------- recognising the file ----------


class _Reads(Protocol):
    """What the wrappers below read from: any binary stream (S3 body, gzip, file)."""

    def read(self, size: int = -1, /) -> bytes: ...


class _Capped(io.RawIOBase):
    """`stream` that refuses to yield more than `limit` bytes: a gzip bomb stops at the cap, not at the disk."""

    def __init__(self, stream: _Reads, limit: int) -> None:
        self._stream = stream
        self._left = limit
        # Every byte read so far is ASCII: then text decoded by an ASCII superset holds no U+FFFD.
        self.ascii_so_far = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        self._left -= len(data)
        if self._left < 0:
            raise UnreadableFileError("too_large_uncompressed")
        if self.ascii_so_far and not data.isascii():
            self.ascii_so_far = False
        buffer[: len(data)] = data
        return len(data)


class HashingReader(io.RawIOBase):
    """A stream that keeps the MD5 of every byte read through it (the content id of a multipart upload)."""

    def __init__(self, stream: _Reads) -> None:
        self._stream = stream
        self.digest = hashlib.md5(usedforsecurity=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> str:
        """Read what is left and return the hex MD5 of the whole stream."""
        while self.read(1024 * 1024):
            pass
        return self.digest.hexdigest()


class _Chained(io.RawIOBase):
    """A readable stream of `head` followed by the rest of `rest`, so sniffing consumes nothing."""

    def __init__(self, head: bytes, rest: _Reads) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head.nbytes:
            size = min(len(buffer), self._head.nbytes)
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_head(stream: _Reads) -> tuple[bytes, BinaryIO]:
    parts: list[bytes] = []
    size = 0
    while size < HEAD_BYTES:
        data = stream.read(HEAD_BYTES - size)
        if not data:
            break
        parts.append(data)
        size += len(data)
    head = b"".join(parts)
    return head, io.BufferedReader(_Chained(head, stream), buffer_size=HEAD_BYTES)


def _format(name: str, head: bytes) -> Format:
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix in _FORMAT_SUFFIXES:
        return _FORMAT_SUFFIXES[suffix]
    if head.startswith(PARQUET_MAGIC):
        return Format.PARQUET
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return Format.JSONL
    return Format.CSV


def _encoding(name: str, metadata: Mapping[str, str], head: bytes) -> str:
    declared = metadata.get("encoding") or metadata.get("charset")
    if declared:
        try:
            encoding = codecs.lookup(declared.strip()).name
        except LookupError as exc:
            raise UnreadableFileError("unknown_encoding") from exc
        encoding = _SUPERSETS.get(encoding, encoding)
    else:
        parts = name.split(".")
        encoding = SUFFIX_ENCODINGS.get(parts[-2], "") if len(parts) >= 3 else ""
    if head.startswith(codecs.BOM_UTF8) and encoding in {"", "utf-8"}:
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and encoding in {"", "utf-16"}:
        encoding = "utf-16"
    encoding = encoding or "utf-8"
    try:
        # final=False: the head may end inside a multi-byte character.
        codecs.getincrementaldecoder(encoding)(errors="strict").decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise UnreadableFileError("undeclared_encoding" if not declared else "bad_encoding") from exc
    return encoding


def _check_header(feed: Feed, header: HeaderMap) -> None:
    present = set(header.columns.values())
    missing = [name for name in feed.required if name not in present]
    if feed.any_of and not present.intersection(feed.any_of):
        missing.append("|".join(feed.any_of))
    if missing:
        raise UnreadableFileError("missing_columns:" + ",".join(missing))


def _resolve(feed: Feed, mapping: ColumnMapping, header: list[str]) -> HeaderMap:
    try:
        resolved = mapping.resolve(feed, header)
    except InvalidInputError as exc:
        raise UnreadableFileError(str(exc)) from exc
    _check_header(feed, resolved)
    return resolved


@collector.paused()
def _frame(rows: list[Sequence[str | None]], feed: Feed, positions: dict[str, int]) -> pd.DataFrame:
    """Canonical columns as object dtype: pandas never guesses a type, so '007' stays '007'.

    A column the file lacks is all None. The records become one 2-D array (in C) and the canonical
    columns are taken from it in one step, not built column by column.
    """
    width = len(rows[0]) if rows else max(positions.values(), default=-1) + 1
    absent = width  # the index of an all-None column, appended if some canonical column is not in the file
    order = [positions.get(name, absent) for name in feed.names]
    table = np.empty((len(rows), width), dtype=object)
    if rows:
        table[:] = rows  # every record is `width` long; assigning skips np.array's search for nested sequences
    if absent in order:
        table = np.concatenate([table, np.full((len(rows), 1), None, dtype=object)], axis=1)
    return pd.DataFrame(table[:, order], columns=list(feed.names), dtype=object, copy=False)


def _arrow_frame(tables: list["pa.Table"], feed: Feed, positions: dict[str, int]) -> pd.DataFrame:
    """`_frame` of blocks pyarrow parsed: the canonical columns stay Arrow strings (pandas' ArrowDtype), which
    cleaning reads without a Python string per value (cadence.ingest.columns); a column the file lacks is None."""
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    columns: dict[str, Any] = {}
    for name in feed.names:
        if name in positions:
            columns[name] = pd.arrays.ArrowExtensionArray(table.column(str(positions[name])).combine_chunks())
        else:
            columns[name] = np.full(table.num_rows, None, dtype=object)
    return pd.DataFrame(columns, copy=False)


class _Chunker:
    """Groups records into chunks of `size`; chunks before `start` are counted, never built."""

    def __init__(self, feed: Feed, positions: dict[str, int], size: int, start: int) -> None:
        self._feed, self._positions, self._size, self._start = feed, positions, size, start
        self.index = 0
        self._count = 0
        self._rows: list[Sequence[str | None]] = []
        # Blocks parsed by pyarrow (csv_blocks): always before any record of `_rows`, which csv.reader read on.
        self._tables: list[pa.Table] = []
        self._lines: list[int] = []
        self._malformed: list[Malformed] = []
        self._plain = True

    @property
    def skipping(self) -> bool:
        return self.index < self._start

    def row(self, line: int, values: Sequence[str | None]) -> RawChunk | None:
        # Once per record: `skipping` and `skip` written out, as each call costs more than the work.
        if self.index >= self._start:
            self._rows.append(values)
            self._lines.append(line)
            self._plain = False
        self._count += 1
        return self._emit() if self._count >= self._size else None

    def rows(
        self, lines: Sequence[int], records: Sequence[Sequence[str | None]], *, plain: bool = False
    ) -> Iterator[RawChunk]:
        """`row` for each record in order, taken a chunk's room at a time; yields the chunks they fill.

        `plain`: no value holds a line break or U+FFFD (see RawChunk.plain).
        """
        taken = 0
        while taken < len(records):
            part = slice(taken, taken + self._size - self._count)
            kept = records[part]
            if self.index >= self._start:
                self._rows.extend(kept)
                self._lines.extend(lines[part])
                self._plain = self._plain and plain
            self._count += len(kept)
            taken += len(kept)
            if self._count >= self._size and (chunk := self._emit()) is not None:
                yield chunk

    def table(self, lines: range, table: "pa.Table", *, plain: bool) -> Iterator[RawChunk]:
        """`rows` of a block pyarrow parsed (a string column per field, named by position)."""
        taken = 0
        while taken < table.num_rows:
            part = table.slice(taken, self._size - self._count)
            if self.index >= self._start:
                self._tables.append(part)
                self._lines.extend(lines[taken : taken + part.num_rows])
                self._plain = self._plain and plain
            self._count += part.num_rows
            taken += part.num_rows
            if self._count >= self._size and (chunk := self._emit()) is not None:
                yield chunk

    def malformed(self, record: Malformed) -> RawChunk | None:
        if not self.skipping:
            self._malformed.append(record)
        return self.skip()

    def skip(self) -> RawChunk | None:
        """Count one record without keeping it (a record of a chunk before `start`)."""
        self._count += 1
        return self._emit() if self._count >= self._size else None

    def last(self) -> RawChunk | None:
        """The final partial chunk, or the one empty chunk of a file without records."""
        return self._emit() if self._count or self.index == 0 else None

    def _emit(self) -> RawChunk | None:
        chunk = None
        if not self.skipping:
            if not self._tables:
                frame = _frame(self._rows, self._feed, self._positions)
            elif not self._rows:
                frame = _arrow_frame(self._tables, self._feed, self._positions)
            else:  # the chunk in which csv.reader took over: all of it as Python strings
                parsed = _arrow_frame(self._tables, self._feed, self._positions).astype(object)
                frame = pd.concat([parsed, _frame(self._rows, self._feed, self._positions)], ignore_index=True)
            held = bool(self._rows or self._tables)
            chunk = RawChunk(self.index, frame, self._lines, self._malformed, plain=self._plain and held)
        self.index, self._count = self.index + 1, 0
        self._rows, self._tables, self._lines, self._malformed, self._plain = [], [], [], [], True
        return chunk


# ---------- CSV ----------


def _csv_reader(
    stream: BinaryIO,
    *,
    shape: FileShape,
    feed: Feed,
    mapping: ColumnMapping,
    chunk_rows: int,
    in_ascii: Callable[[], bool],
) -> TableReader:
    """CSV records: blocks of simple lines parsed by pyarrow while the file's lines are simple
    (cadence.ingest.csv_blocks), csv.reader from the first block that is not (or for the whole file).

    `in_ascii()`: every byte of the file read so far is ASCII, in an encoding where that means plain text.
    """
    encoding, delimiter = shape.encoding or "utf-8", shape.delimiter or ","
    header, blocks, reader = _csv_header(stream, encoding, delimiter)
    resolved = _resolve(feed, mapping, header)
    positions = {canonical: header.index(source) for source, canonical in resolved.columns.items()}
    width = len(header)

    def chunks(start: int, tally: Tally) -> Iterator[RawChunk]:
        chunker = _Chunker(feed, positions, chunk_rows, start)
        records, offset = reader, 0
        tally.lines = 1 if blocks is not None else reader.line_num
        if blocks is not None:
            records, offset = yield from _block_chunks(
                blocks, chunker, tally, encoding=encoding, delimiter=delimiter, width=width
            )
        if records is None:
            if (last := chunker.last()) is not None:
                yield last
            return
        parse = _RecordsParse(
            chunker, tally, records, offset=offset, width=width, delimiter=delimiter, in_ascii=in_ascii
        )
        while ready := parse.until_chunk():
            yield from ready

    return TableReader(shape, resolved, chunks)


def _block_chunks(
    blocks: csv_blocks.Blocks, chunker: _Chunker, tally: Tally, *, encoding: str, delimiter: str, width: int
) -> Generator[RawChunk, None, tuple[Any, int]]:
    """The chunks the blocks fill while they are simple; returns csv.reader over the rest of the file from the
    first block that is not (None: the file ended) and the lines read before it."""
    for block in blocks:
        table = csv_blocks.simple_records(
            block, encoding=encoding, delimiter=delimiter, width=width, max_field_chars=MAX_FIELD_CHARS
        )
        if table is None:
            # The BOM went with the header: the rest is plain UTF-8 (or ASCII).
            rest_encoding = "ascii" if encoding == "ascii" else "utf-8"
            return _records(_rest_of(blocks, block), rest_encoding, delimiter), tally.lines
        lines = range(tally.lines + 1, tally.lines + table.num_rows + 1)
        tally.records, tally.lines = tally.records + table.num_rows, tally.lines + table.num_rows
        yield from chunker.table(lines, table, plain=csv_blocks.REPLACEMENT_CHARACTER not in block)
    return None, tally.lines


def _rest_of(blocks: csv_blocks.Blocks, block: bytes) -> BinaryIO:
    """The file from `block` (one the blocks gave) on, as a stream."""
    head, stream = blocks.rest(block)
    return io.BufferedReader(_Chained(head, stream))


def _csv_header(stream: BinaryIO, encoding: str, delimiter: str) -> tuple[list[str], "csv_blocks.Blocks | None", Any]:
    """The header, then either the blocks after it (its line was simple, see csv_blocks) or csv.reader after it.

    Raises:
        UnreadableFileError: no header, or csv.reader could not split it.
    """
    if csv_blocks.HAS_PYARROW and encoding in csv_blocks.ENCODINGS:
        blocks = csv_blocks.Blocks(stream)
        try:
            first = next(blocks, b"")
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UnreadableFileError("corrupt_gzip") from exc
        simple = csv_blocks.simple_header(first, encoding=encoding, delimiter=delimiter)
        if simple is not None:
            header, rest = simple
            blocks.push_back(rest)
            return header, blocks, None
        stream = _rest_of(blocks, first)
    reader = _records(stream, encoding, delimiter)
    try:
        found = next((row for row in reader if row), None)
    except csv.Error as exc:
        raise UnreadableFileError("csv_error") from exc
    if found is None:
        raise UnreadableFileError("empty_file")
    return found, None, reader


class _RecordsParse:
    """csv.reader's records into the chunker, a batch at a time. `offset`: the file's lines read before the
    records began (their reader's line_num counts from there)."""

    def __init__(
        self,
        chunker: _Chunker,
        tally: Tally,
        records: Any,
        *,
        offset: int,
        width: int,
        delimiter: str,
        in_ascii: Callable[[], bool],
    ) -> None:
        self._chunker, self._tally, self._records, self._offset = chunker, tally, records, offset
        self._width, self._delimiter, self._in_ascii = width, delimiter, in_ascii

    # The collector stays off from a chunk's first record to the chunk: its records are thousands of lists
    # that live until then, and every collection in between would walk them all again.
    @collector.paused()
    def until_chunk(self) -> list[RawChunk]:
        """Records read a batch at a time until at least one chunk is complete; none once the file is done."""
        chunker, tally, width = self._chunker, self._tally, self._width
        ready: list[RawChunk] = []
        while not ready:
            batch = list(itertools.islice(self._records, _CSV_BATCH))
            if not batch:
                last = chunker.last()
                return [last] if last is not None else []
            # From csv.reader (C) a batch at a time; a batch of one-line, well-formed records (nearly every
            # batch) goes to the chunker whole, the rest record by record.
            before, tally.lines = tally.lines, self._offset + self._records.line_num
            if tally.lines - before == len(batch) and all(len(record) == width for record in batch):
                tally.records += len(batch)
                # One line each: no value holds a line break. No U+FFFD: the bytes so far were all ASCII (read
                # before their text, so the batch's bytes are among them), else one search of the batch's text.
                plain = self._in_ascii() or "\ufffd" not in "\x00".join(itertools.chain.from_iterable(batch))
                ready.extend(chunker.rows(range(before + 1, tally.lines + 1), batch, plain=plain))
                continue
            # A record takes one line plus the line breaks inside its quoted values (a blank line: one line).
            spans = [1 + sum(_line_breaks(value) for value in record) for record in batch]
            starts = itertools.accumulate(spans[:-1], initial=before + 1)
            for line, span, record in zip(starts, spans, batch, strict=True):
                if not record:
                    continue  # a blank line is not a record
                tally.records += 1
                if span > 1:
                    tally.multiline_records += 1
                if len(record) != width:
                    malformed = Malformed(line, "wrong_field_count", self._delimiter.join(record))
                    chunk = chunker.malformed(malformed)
                else:
                    chunk = chunker.row(line, record)  # csv.reader makes a new list per record
                if chunk is not None:
                    ready.append(chunk)
        return ready


def _records(stream: BinaryIO, encoding: str, delimiter: str) -> Any:
    """csv.reader over the stream's text. errors="replace": a stray undecodable byte marks its row (rejected
    as invalid_encoding), not the file."""
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    return csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)


# Records csv.reader hands over at a time: enough that the per-batch work vanishes, few enough to stay small.
_CSV_BATCH = 4096


def _line_breaks(value: str) -> int:
    """The line breaks inside a (quoted) value, as the text's reader split lines: \r\n, \r or \n."""
    return value.count("\n") + value.count("\r") - value.count("\r\n") if "\n" in value or "\r" in value else 0


# ---------- JSON Lines ----------


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _jsonl_reader(
    text: io.TextIOWrapper,
    *,
    shape: FileShape,
    feed: Feed,
    mapping: ColumnMapping,
    chunk_rows: int,
    max_line_chars: int,
) -> TableReader:
    # JSON Lines has no header: keys map line by line, and a missing required key rejects that row.
    positions = {name: i for i, name in enumerate(feed.names)}
    ignored: set[str] = set()
    canonical_of: dict[str, str | None] = {}

    def canonical(key: str) -> str | None:
        if key not in canonical_of:
            canonical_of[key] = mapping.canonical(feed, key)
            if canonical_of[key] is None:
                ignored.add(key)
        return canonical_of[key]

    def parse(number: int, line: str) -> list[str | None] | Malformed:
        try:
            value = json.loads(line)
        except ValueError:
            return Malformed(number, "malformed_json", line)
        if not isinstance(value, dict):
            return Malformed(number, "not_an_object", line)
        if feed is PINPOINT_ENDPOINTS:
            value = pinpoint.endpoint_columns(value)
        row: list[str | None] = [None] * len(positions)
        for key, item in value.items():
            name = canonical(str(key))
            if name is not None and row[positions[name]] is None:
                row[positions[name]] = _json_text(item)
        return row

    def lines() -> Iterator[str]:
        # readline with a limit: one endless line must not be read into memory whole.
        while line := text.readline(max_line_chars + 1):
            if len(line) > max_line_chars and not line.endswith("\n"):
                raise UnreadableFileError("line_too_long")
            yield line

    def chunks(start: int, tally: Tally) -> Iterator[RawChunk]:
        chunker = _Chunker(feed, positions, chunk_rows, start)
        for number, line in enumerate(lines(), 1):
            tally.lines = number
            stripped = line.strip()
            if not stripped:
                continue
            tally.records += 1
            if chunker.skipping:
                chunk = chunker.skip()
            else:
                parsed = parse(number, stripped)
                chunk = chunker.malformed(parsed) if isinstance(parsed, Malformed) else chunker.row(number, parsed)
            if chunk is not None:
                yield chunk
        if not tally.records:
            # Lines of Unicode spaces only (U+0085, U+3000, ...): blank as lines, so no record at all.
            raise UnreadableFileError("empty_file")
        if (chunk := chunker.last()) is not None:
            yield chunk

    reader = TableReader(shape, HeaderMap(columns={name: name for name in feed.names}, ignored=()), chunks)
    reader.ignored_columns = ignored  # the same set, filled while chunks are read
    return reader


# ---------- Parquet ----------


def _parquet_text(series: pd.Series) -> pd.Series:
    """One Parquet column as text: times in ISO form, whole floats without '.0', booleans as true/false."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dtype, "tz", None) is not None:
            text = series.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            text = series.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return text.astype(object).where(series.notna(), None)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.map(lambda v: None if pd.isna(v) else ("true" if v else "false")).astype(object)
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype(object).where(series.notna(), None).map(lambda v: None if v is None else str(int(v)))
    if pd.api.types.is_float_dtype(series.dtype):
        return series.map(_float_text).astype(object)
    return series.map(_object_text).astype(object)


def _float_text(value: float) -> str | None:
    if pd.isna(value):
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _object_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        return _float_text(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return _json_text(value)


def parquet_engines() -> list[str]:
    """Installed Parquet engines, fastparquet first: it fits Lambda's size limit beside pandas, pyarrow does not."""
    found = []
    for name in ("fastparquet", "pyarrow"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        found.append(name)
    if not found:
        raise UnreadableFileError("parquet_unsupported")
    return found


_PARQUET_DATE = 6  # parquet-format ConvertedType.DATE


class _ParquetSource:
    """Row groups of a spooled Parquet file as pandas frames, through fastparquet or pyarrow."""

    def __init__(self, spool: IO[bytes], engine: str) -> None:
        self.engine = engine
        if engine == "fastparquet":
            import fastparquet  # noqa: PLC0415 - only Parquet files pay for importing an engine

            self._file: Any = fastparquet.ParquetFile(spool)
            self.columns: list[str] = list(self._file.columns)
            # fastparquet under pandas 3 hands DATE columns back as integer nanoseconds; note them to convert.
            self._dates = {
                name for name in self.columns if self._file.schema.schema_element(name).converted_type == _PARQUET_DATE
            }
        else:
            import pyarrow.parquet  # noqa: PLC0415 - only Parquet files pay for importing an engine

            self._file = pyarrow.parquet.ParquetFile(spool)
            self.columns = list(self._file.schema_arrow.names)

    def frames(self, columns: list[str], rows: int) -> Iterator[pd.DataFrame]:
        if self.engine == "fastparquet":
            for group in self._file.iter_row_groups(columns=columns):
                for name in self._dates.intersection(columns):
                    if not pd.api.types.is_datetime64_any_dtype(group[name].dtype):
                        group[name] = pd.to_datetime(group[name], unit="ns").dt.date
                for start in range(0, len(group), rows):
                    yield group.iloc[start : start + rows].reset_index(drop=True)
        else:
            for batch in self._file.iter_batches(batch_size=rows, columns=columns):
                yield batch.to_pandas()


def _parquet_reader(
    stream: BinaryIO, *, compression: str | None, feed: Feed, mapping: ColumnMapping, chunk_rows: int, engine: str
) -> TableReader:
    # Parquet needs random access to its footer: spool the (decompressed) bytes to local disk first,
    # which bounds memory by one row group rather than the file.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the last chunk is read
    try:
        # The stream is capped (Limits.max_uncompressed_bytes, sized below the function's /tmp).
        while data := stream.read(1024 * 1024):
            spool.write(data)
    except OSError as exc:
        spool.close()
        raise UnreadableFileError("spool_failed") from exc
    except UnreadableFileError:
        spool.close()
        raise
    spool.seek(0)
    try:
        source = _ParquetSource(spool, engine)
    except Exception as exc:  # each engine raises its own types for a corrupt footer; all mean the same
        spool.close()
        raise UnreadableFileError("corrupt_parquet") from exc
    resolved = _resolve(feed, mapping, source.columns)
    shape = FileShape(Format.PARQUET, compression, None, None)

    def chunks(start: int, tally: Tally) -> Iterator[RawChunk]:
        index = 0
        line = 1
        try:
            for part in source.frames(list(resolved.columns), chunk_rows):
                tally.records += len(part)
                tally.lines = tally.records
                if index < start:
                    index, line = index + 1, line + len(part)
                    continue
                data = {resolved.columns[name]: _parquet_text(part[name]) for name in resolved.columns}
                frame = pd.DataFrame(data, columns=list(feed.names), dtype=object)
                frame = frame.where(frame.notna(), None)
                yield RawChunk(index, frame, list(range(line, line + len(part))))
                line += len(part)
                index += 1
            if index == 0 and start == 0:
                yield RawChunk(0, pd.DataFrame(columns=list(feed.names), dtype=object), [])
        finally:
            spool.close()

    return TableReader(shape, resolved, chunks)
