"""The per-file report and the rejected-rows CSV, both written beside the data for upstream teams.

The CSV is meant to be opened in a spreadsheet, so any cell that starts like a formula (=, +, -, @,
TAB, CR) is prefixed with an apostrophe: nothing in a rejected file can run as a formula.
"""

import csv
import io
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import pandas as pd

from cadence.ingest.schemas import Feed
from cadence.ingest.validation import Validated, rejected_columns

FORMULA_START = r"^[=+\-@\t\r]"


# A report lists at most this many ignored column names (a JSON Lines file may invent a key per line).
IGNORED_COLUMNS_LISTED = 100


def report_folder(source_key: str) -> str:
    """The prefix under which every upload of `source_key` gets its report."""
    return f"reports/ingest/{source_key}/"


def file_tag(version_id: str | None, etag: str) -> str:
    """What tells two uploads under one key apart: the S3 version id, or the ETag in an unversioned bucket."""
    return version_id if version_id and version_id != "null" else etag


@dataclass(frozen=True, slots=True)
class OutputKeys:
    """Where ingest writes about one version of one file: a folder per version, so two uploads under one key
    (a fix uploaded while the first still runs) never share a report, a rejected-rows file or a part."""

    source_key: str
    tag: str

    @property
    def report(self) -> str:
        return f"{report_folder(self.source_key)}{self.tag}.json"

    @property
    def _rejected(self) -> str:
        return f"rejected/{self.source_key}/{self.tag}"

    @property
    def rejected_rows(self) -> str:
        return f"{self._rejected}/rejected-rows.csv"

    @property
    def quarantine(self) -> str:
        """The unreadable file itself, under its own name."""
        return f"{self._rejected}/{self.source_key.rsplit('/', 1)[-1]}"

    def rejected_part(self, first_chunk: int, next_chunk: int) -> str:
        """Named by the chunks it covers: two runs of one file (a duplicated S3 event) never share a part's key."""
        return f"{self._rejected}/part-{first_chunk:06d}-{next_chunk - 1:06d}.csv"

    def hand_off_state(self, next_chunk: int, flush_from: int = -1) -> str:
        """What a continuation needs beyond its small event: the report, keys counted and activity totals so far.

        A continuation that only applies the totals (flush_from >= 0) starts past the last chunk, so the delta it
        starts from tells it apart from the others.
        """
        flushing = f"-flush-{flush_from:09d}" if flush_from >= 0 else ""
        return f"ingest-state/{self.source_key}/{self.tag}/from-chunk-{next_chunk:06d}{flushing}"


@dataclass(slots=True)
class Part:
    """What one invocation did with one range of a file (a file too big for one invocation has several)."""

    part: int
    first_chunk: int
    chunks: int = 0
    rows_read: int = 0
    duration_s: float = 0.0
    # A part that only applied the file's activity totals, from this delta on (-1: it read chunks).
    flush_from: int = -1


@dataclass(slots=True)
class IngestReport:
    source_key: str
    feed: str
    bucket: str
    version_id: str | None = None
    etag: str | None = None
    status: str = "ok"
    reason: str | None = None
    format: str | None = None
    compression: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    # Physical lines (CSV: header and blank lines included), beside records: a quote left open swallows
    # lines into one record, and the gap shows it. Parquet: rows.
    lines_read: int = 0
    multiline_records: int = 0
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    values_cleared: dict[str, int] = field(default_factory=dict)
    values_coerced: dict[str, int] = field(default_factory=dict)
    duplicates_merged: int = 0
    writes_applied: int = 0
    writes_skipped: int = 0
    customers_queued: int = 0
    score_messages: int = 0
    column_map: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    ignored_columns_truncated: bool = False
    rejected_key: str | None = None
    # Rejected rows of earlier parts of a split file, merged into rejected_key by the last part.
    rejected_parts: list[str] = field(default_factory=list)
    quarantined_key: str | None = None
    chunk_rows: int = 0
    parts: list[Part] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0

    def add(self, validated: Validated) -> None:
        accepted, rejected = len(validated.accepted), len(validated.rejected)
        self.rows_read += accepted + rejected
        self.rows_accepted += accepted
        self.rows_rejected += rejected
        self.rejected_by_reason = dict(Counter(self.rejected_by_reason) + validated.rejected_by_reason)
        self.values_cleared = dict(Counter(self.values_cleared) + validated.values_cleared)
        self.values_coerced = dict(Counter(self.values_coerced) + validated.values_coerced)
        if self.parts:
            self.parts[-1].rows_read += accepted + rejected
            self.parts[-1].chunks += 1

    def ignore(self, columns: set[str]) -> None:
        """Note columns nobody maps: at most IGNORED_COLUMNS_LISTED names, and whether there were more."""
        names = sorted(set(self.ignored_columns) | columns)
        self.ignored_columns = names[:IGNORED_COLUMNS_LISTED]
        self.ignored_columns_truncated = self.ignored_columns_truncated or len(names) > IGNORED_COLUMNS_LISTED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IngestReport":
        values = dict(data)
        values["parts"] = [Part(**part) for part in values.get("parts", [])]
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """Ids and counts only: what the handler returns and logs."""
        return {
            "source_key": self.source_key,
            "status": self.status,
            "reason": self.reason,
            "lines_read": self.lines_read,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "parts": len(self.parts),
        }


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix every text cell that a spreadsheet would evaluate with an apostrophe."""
    safe = frame.copy()
    for name in safe.columns:
        column = safe[name]
        is_text = column.map(lambda value: isinstance(value, str)).astype(bool)
        if not is_text.any():
            continue
        risky = is_text & column.where(is_text, "").astype(str).str.contains(FORMULA_START, regex=True)
        safe[name] = column.where(~risky, "'" + column.where(risky, "").astype(str)).astype(object)
    return safe


class RejectSink:
    """Rejected rows spooled to local disk (bounded memory) as UTF-8 CSV with a BOM, so Excel shows 中文."""

    def __init__(self, feed: Feed) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self._text = io.TextIOWrapper(self._file, encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._text)
        self._writer.writerow(rejected_columns(feed))
        self.rows = 0

    def write(self, rejected: pd.DataFrame) -> None:
        if rejected.empty:
            return
        safe = neutralise_formulas(rejected.astype(object))
        self._writer.writerows(safe.where(safe.notna(), None).itertuples(index=False, name=None))
        self.rows += len(rejected)

    def finish(self) -> IO[bytes]:
        """The CSV bytes, rewound; the sink can no longer be written."""
        self._text.flush()
        binary = self._text.detach()
        binary.seek(0)
        return binary

    @staticmethod
    def merge(parts: Sequence[IO[bytes]], last: "RejectSink | None") -> IO[bytes]:
        """Earlier parts' CSVs (each closed here) followed by this part's rows, under one header."""
        merged: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        sources = [*parts, *([last.finish()] if last is not None else [])]
        for index, source in enumerate(sources):
            with source:
                if index:
                    source.readline()  # every part starts with the same BOM and header line
                while data := source.read(1024 * 1024):
                    merged.write(data)
        merged.seek(0)
        return merged
