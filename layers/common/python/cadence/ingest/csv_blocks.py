"""CSV read a block of whole lines at a time by pyarrow (C++), for the blocks where that gives exactly what
`csv.reader` gives.

Why: csv.reader makes a Python string of every value (13 a row for customers) and cleaning then hashes and
walks them all; pyarrow parses a block into contiguous string arrays in a quarter of the time, and cleaning
works on those (cadence.ingest.columns), so only the values it keeps become Python strings.

Exact by construction: a block is taken only when it is *simple*, and there the two parsers cannot differ:
no quote character (so no quoted value, no line break or delimiter inside a value), no NUL, line ends \\n or
\\r\\n only, no blank line, text that decodes strictly (what the text reader would decode without a
replacement), every line with the header's number of fields and no field longer than csv's field limit.
Anything else (`simple_records` returns None) is left to csv.reader, which from that block on reads the
rest of the file (readers._csv_reader), so every reason a record is rejected for stays csv.reader's.
"""

import importlib.util
from collections.abc import Iterator
from typing import Protocol

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
if HAS_PYARROW:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

BLOCK_BYTES = 4 * 1024 * 1024
FIRST_BYTES = 64 * 1024
# Encodings whose text is the UTF-8 pyarrow reads (ASCII is a subset; a BOM is dropped with the header).
ENCODINGS = frozenset({"utf-8", "utf-8-sig", "ascii"})
REPLACEMENT_CHARACTER = "\ufffd".encode()


class _Reads(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Blocks:
    """A byte stream as blocks of whole lines (each ends with \\n but the file's last, which may not)."""

    def __init__(self, stream: _Reads) -> None:
        # The first block is small: it is read when the file is opened, for the header.
        self._stream, self._block_bytes, self._next_bytes = stream, BLOCK_BYTES, FIRST_BYTES
        self._carry = b""
        self._pending = b""

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._pending:
            block, self._pending = self._pending, b""
            return block
        while True:
            data = self._stream.read(self._next_bytes)
            self._next_bytes = self._block_bytes
            if not data:
                block, self._carry = self._carry, b""
                if not block:
                    raise StopIteration
                return block
            buffer = self._carry + data if self._carry else data
            cut = buffer.rfind(b"\n") + 1
            if cut:
                self._carry = buffer[cut:]
                return buffer[:cut]
            self._carry = buffer  # a line longer than a block: read on until it ends

    def push_back(self, data: bytes) -> None:
        """Give `data` (the rest of a block this gave) again, before anything else."""
        self._pending = data

    def rest(self, block: bytes) -> tuple[bytes, _Reads]:
        """What follows: `block` (one this gave) and the bytes read past it, then the stream still unread."""
        return block + self._carry, self._stream


def simple_header(block: bytes, *, encoding: str, delimiter: str) -> tuple[list[str], bytes] | None:
    """The header's fields and the rest of the block, when the first line is simple (see the module docstring)."""
    if encoding == "utf-8-sig":
        block = block.removeprefix(b"\xef\xbb\xbf")
    end = block.find(b"\n")
    line, rest = (block, b"") if end < 0 else (block[:end], block[end + 1 :])
    line = line.removesuffix(b"\r")
    if not line or b'"' in line or b"\r" in line or b"\x00" in line:
        return None
    return (line.decode("utf-8").split(delimiter), rest) if _decodes_strictly(line, encoding) else None


def simple_records(
    block: bytes, *, encoding: str, delimiter: str, width: int, max_field_chars: int
) -> "pa.Table | None":
    """The block's records as a table of `width` string columns named "0", "1", ..., or None when the block is
    not simple (see the module docstring) and csv.reader must read it."""
    if not block or b'"' in block or b"\x00" in block or b"\n\n" in block or block.startswith((b"\n", b"\r")):
        return None
    carriage_returns = block.count(b"\r")
    if carriage_returns and (carriage_returns != block.count(b"\r\n") or b"\n\r\n" in block):
        return None
    if not _decodes_strictly(block, encoding):
        return None
    names = [str(position) for position in range(width)]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(block),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=len(block) + 1),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException:  # a line of another width: csv.reader names it
        return None
    if table.num_rows and max(pc.max(pc.binary_length(column)).as_py() for column in table.columns) > max_field_chars:
        return None  # csv.reader refuses the file for it (a byte count over the limit may still be fewer chars)
    return table


def _decodes_strictly(data: bytes, encoding: str) -> bool:
    """The text reader decodes `data` without a replacement (so pyarrow's text is the same)."""
    if data.isascii():
        return True
    if encoding == "ascii":
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
