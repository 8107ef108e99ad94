"""Ingest one dropped file end to end: read, validate, write profiles, queue scoring, report.

Accounting: every record read is accepted or rejected (rows_read = rows_accepted + rows_rejected);
rejected rows land in rejected/<key>.csv with line and reason, and the report in
reports/ingest/<key>.json. A file that cannot be read at all is moved to rejected/<key>, reported,
and raised as UnreadableFileError (an InvalidInputError) so the async retry and on-failure
destination see it. Every write is safe to repeat, so a redelivered event changes nothing twice.

Writes, per chunk: customers are read from the profiles table (BatchGetItem, 100 keys a call), merged with
what is stored (merge.customer_writes; new customers a column at a time) and written back whole
(BatchWriteItem, 25 a call). Orders and events are summed per customer (vectorised) over the whole file
(merge.ActivityTotals) and, once the file has been read, merged into the activity table's items (read 100,
written 25 a call, under the activity lease), each item noting the file's batch id, its content md5, with the
counts it took. The sums of a file are the same however it was split, so every run of it (a redelivery, a part
re-run after a crash, a duplicated event splitting elsewhere) carries the same sums under the same id, and a
customer's item takes them once.
Their customers are queued for scoring after the writes.

Nothing is applied before the whole file has been read once (`_verify`): a truncated gzip, broken
framing or a file past a limit is quarantined with nothing of it written, so a fixed upload counts once.

Large files: chunks are processed while the invocation has time; when less than the reserve (plus the
slowest chunk so far) is left, the rest is handed to a new invocation as a continuation. Its event is
small (the file, the next chunk index, a state key); the report, the order ids / event keys counted and
the activity totals so far sit in S3 under the state key, so de-duplication spans the parts and the event never
nears Lambda's 256 KB async limit. The continuation reads past the finished chunks without building
them and goes on. Applying the totals of a large file goes slice by slice the same way: a continuation
with `flush_from` set reads nothing and applies the totals from that slice on. The report lists each part,
and the last part merges the parts' rejected rows.
Everything written about a file sits under its version (see OutputKeys), so two versions of one key
never touch each other's outputs.
"""

import math
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from cadence.config import IngestSettings
from cadence.dal import activity_table, ingest_ledger, order_history, profiles_table, queues, suppression_table, uploads
from cadence.errors import InvalidInputError
from cadence.ingest import merge, pinpoint
from cadence.ingest.cleaning import Context
from cadence.ingest.exceptions import UnreadableFileError
from cadence.ingest.mapping import ColumnMapping, load_mapping
from cadence.ingest.models import ActivityDelta, FileRef, ObjectInfo
from cadence.ingest.readers import HashingReader, Limits, TableReader, open_table
from cadence.ingest.report import IngestReport, OutputKeys, Part, RejectSink, file_tag
from cadence.ingest.schemas import ORDERS, PINPOINT_ENDPOINTS, PROFILE_FEEDS, Feed, feed_for_key
from cadence.ingest.validation import Validated, validate
from cadence.observability import logger, metrics
from cadence.suppression import customer_hash

# The key of an event that continues a file another invocation started.
CONTINUATION = "ingest_continuation"
_TOTALS = "activity-totals.csv.gz"


def _forever() -> float:
    return math.inf


@dataclass(frozen=True, slots=True)
class Invocation:
    """What the running invocation offers: seconds left, and how to start another one with a payload."""

    time_left: Callable[[], float] = _forever
    hand_off: Callable[[Mapping[str, Any]], None] | None = None


@dataclass(slots=True)
class _FileState:
    """What every chunk of one file needs besides its rows."""

    info: ObjectInfo
    content_id: str
    # The content was counted in full before (same bytes under any key): add nothing to the activity table.
    counted_before: bool
    seen: merge.SeenKeys = field(default_factory=merge.SeenKeys)
    # Orders / events: the file's per-customer sums so far, applied once the whole file is read.
    totals: merge.ActivityTotals = field(default_factory=merge.ActivityTotals)


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a continuation picks a file up."""

    ref: FileRef
    file_id: str
    content_id: str
    start_chunk: int
    part: int
    # Chunk indexes only mean the same thing at the same chunk size, whatever the settings say by now.
    chunk_rows: int
    # Where the report so far and the keys counted so far were written (see OutputKeys.hand_off_state).
    state_key: str = ""
    # Continuations written before the state moved to S3 carry the report inline.
    report: dict[str, Any] = field(default_factory=dict)
    # The file is read; its activity totals are applied from this delta on (-1: still reading).
    flush_from: int = -1

    def to_event(self) -> dict[str, Any]:
        ref = {"bucket": self.ref.bucket, "key": self.ref.key, "version_id": self.ref.version_id}
        return {
            CONTINUATION: {
                "file": ref,
                "file_id": self.file_id,
                "content_id": self.content_id,
                "start_chunk": self.start_chunk,
                "part": self.part,
                "chunk_rows": self.chunk_rows,
                "state_key": self.state_key,
                "flush_from": self.flush_from,
            }
        }

    @classmethod
    def from_event(cls, payload: Mapping[str, Any]) -> "Resume":
        """Raises: InvalidInputError: the payload is not a continuation we wrote."""
        try:
            ref = payload["file"]
            return cls(
                ref=FileRef(bucket=str(ref["bucket"]), key=str(ref["key"]), version_id=ref.get("version_id")),
                file_id=str(payload["file_id"]),
                content_id=str(payload.get("content_id", "")),
                start_chunk=int(payload["start_chunk"]),
                part=int(payload["part"]),
                chunk_rows=int(payload["chunk_rows"]),
                state_key=str(payload.get("state_key", "")),
                report=dict(payload.get("report", {})),
                flush_from=int(payload.get("flush_from", -1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError("malformed ingest continuation") from exc


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_column_mapping(settings: IngestSettings) -> ColumnMapping:
    """The shipped mapping, extended by the JSON object at INGEST_MAPPING_KEY when one is configured."""
    key = settings.ingest_mapping_key
    return load_mapping([uploads.read_json(settings.data_bucket, key)] if key else [])


def _check(settings: IngestSettings) -> None:
    try:
        zoneinfo.ZoneInfo(settings.default_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError("DEFAULT_TIMEZONE is not an IANA time zone") from exc


def ingest_files(
    files: Iterable[FileRef], *, settings: IngestSettings, invocation: Invocation | None = None
) -> list[dict[str, Any]]:
    """Ingest each file; unreadable ones are accounted for, and raised together after the rest are done.

    Raises:
        InvalidInputError: at least one file could not be read (each is reported and moved aside).
    """
    _check(settings)
    mapping = load_column_mapping(settings)
    summaries: list[dict[str, Any]] = []
    unreadable: list[str] = []
    for ref in files:
        try:
            report = ingest_file(ref, settings=settings, mapping=mapping, invocation=invocation or Invocation())
            summaries.append(report.summary())
        except UnreadableFileError:
            unreadable.append(ref.key)
    if unreadable:
        raise InvalidInputError(f"unreadable files moved to rejected/: {', '.join(unreadable)}")
    return summaries


def continue_file(
    payload: Mapping[str, Any], *, settings: IngestSettings, invocation: Invocation | None = None
) -> dict[str, Any]:
    """Go on with a file an earlier invocation handed off (the payload of its CONTINUATION event).

    Raises:
        InvalidInputError: the payload is malformed, or the file became unreadable part-way.
    """
    _check(settings)
    resume = Resume.from_event(payload)
    report = ingest_file(
        resume.ref,
        settings=settings,
        mapping=load_column_mapping(settings),
        invocation=invocation or Invocation(),
        resume=resume,
    )
    return report.summary()


def ingest_file(
    ref: FileRef,
    *,
    settings: IngestSettings,
    mapping: ColumnMapping,
    invocation: Invocation,
    resume: Resume | None = None,
) -> IngestReport:
    """Ingest one file (or its remaining chunks) and write its report; see the module docstring.

    Raises:
        UnreadableFileError: the file cannot be read; it was moved aside and reported first.
        TransientError: a dependency kept failing; a retry repeats the file harmlessly.
        InvalidInputError: a continuation's hand-off state is gone while the file is unfinished.
    """
    feed = feed_for_key(ref.key)
    if ref.key.endswith("/"):
        # The console's "create folder" uploads an empty object named like a prefix.
        return IngestReport(source_key=ref.key, feed="", bucket=ref.bucket, status="skipped", reason="folder_marker")
    started = time.monotonic()
    info, body = uploads.open_object(ref)
    pinned = FileRef(ref.bucket, ref.key, info.version_id or ref.version_id)
    keys = OutputKeys(ref.key, file_tag(info.version_id, info.etag))
    file_id = resume.file_id if resume else f"{ref.key}@{info.version_id or info.etag}"
    with ExitStack() as streams:
        streams.enter_context(body)
        loaded = _load_hand_off(settings, resume, file_id) if resume else None
        if _finished_elsewhere(settings, file_id, loaded[0].rejected_parts if loaded else []):
            return IngestReport(
                source_key=ref.key, feed=feed.name if feed else "", bucket=ref.bucket, status="already_ingested"
            )
        report = _start_report(ref, feed, info, resume, loaded[0] if loaded else None)
        sink = RejectSink(feed) if feed else None
        try:
            if feed is None or sink is None:
                raise UnreadableFileError("unknown_feed")
            if resume is None:
                content_id = _verify(
                    body, ref=ref, info=info, feed=feed, mapping=mapping, settings=settings, report=report
                )
                body = streams.enter_context(uploads.open_object(pinned)[1])
            else:
                # A continuation written before content ids existed has none: hash the pinned version again.
                content_id = resume.content_id or uploads.content_id(ref, info)
            counted = feed not in PROFILE_FEEDS and (
                ingest_ledger.counted_content(settings.ingest_ledger_table, content_id) is not None
            )
            state = _FileState(info, content_id, counted, *(loaded[1:] if loaded else ()))
            next_chunk, flush_from = _read_then_flush(
                body, ref=ref, feed=feed, mapping=mapping, report=report, sink=sink, settings=settings, state=state,
                invocation=invocation, resume=resume,
            )  # fmt: skip
        except UnreadableFileError as exc:
            report.status, report.reason = "unreadable", exc.reason
            _finish(report, sink, started, settings, keys)
            uploads.move_aside(ref, keys.quarantine)
            report.quarantined_key = keys.quarantine
            uploads.put_json(ref.bucket, keys.report, report.to_dict())
            metrics.add_metric(name="FilesUnreadable", unit="Count", value=1)
            logger.warning("file unreadable", extra={"source_key": ref.key, "reason": exc.reason})
            raise
    if next_chunk is not None and invocation.hand_off is not None:
        return _hand_off(
            ref,
            keys=keys,
            file_id=file_id,
            state=state,
            report=report,
            sink=sink,
            started=started,
            settings=settings,
            hand_off=invocation.hand_off,
            next_chunk=next_chunk,
            flush_from=flush_from,
        )
    if _finished_elsewhere(settings, file_id, report.rejected_parts):
        report.status = "already_ingested"
        return report
    _finish(report, sink, started, settings, keys)
    uploads.put_json(ref.bucket, keys.report, report.to_dict())
    # Markers last: a failure before them leaves the file to a retry, which the batch ids keep harmless.
    if not state.counted_before:
        ingest_ledger.mark_content_counted(
            settings.ingest_ledger_table, state.content_id, ref.key, ttl_days=settings.ingest_ledger_ttl_days
        )
    ingest_ledger.mark_file_finished(
        settings.ingest_ledger_table, file_id, report.summary(), ttl_days=settings.ingest_ledger_ttl_days
    )
    _drop_hand_off_states(settings, keys, report)
    metrics.add_metric(name="FilesIngested", unit="Count", value=1)
    logger.info("file ingested", extra=report.summary())
    return report


def _read_then_flush(
    body: Any,
    *,
    ref: FileRef,
    feed: Feed,
    mapping: ColumnMapping,
    report: IngestReport,
    sink: RejectSink,
    settings: IngestSettings,
    state: _FileState,
    invocation: Invocation,
    resume: Resume | None,
) -> tuple[int | None, int]:
    """Read this part's chunks, then apply the activity totals once all are read; returns where to continue.

    (chunk to continue from or None when the file is done, activity delta to continue applying from or -1).
    """
    flush_from = resume.flush_from if resume else -1
    if flush_from < 0:
        next_chunk = _read_and_apply(
            body, ref=ref, feed=feed, mapping=mapping, report=report, sink=sink, settings=settings, state=state,
            invocation=invocation, resume=resume,
        )  # fmt: skip
        if next_chunk is not None:
            return next_chunk, -1
    flush_next = _flush_activity(
        report=report, settings=settings, state=state, invocation=invocation, start=max(flush_from, 0)
    )
    if flush_next is None:
        return None, -1
    # Every chunk is read: the continuation starts past the last one and only applies totals.
    return report.parts[-1].first_chunk + report.parts[-1].chunks, flush_next


def _read_and_apply(
    body: Any,
    *,
    ref: FileRef,
    feed: Feed,
    mapping: ColumnMapping,
    report: IngestReport,
    sink: RejectSink,
    settings: IngestSettings,
    state: _FileState,
    invocation: Invocation,
    resume: Resume | None,
) -> int | None:
    """Read the file's chunks from where this part starts and apply them; returns the chunk to continue from."""
    chunk_rows = resume.chunk_rows if resume else settings.ingest_chunk_rows
    reader = open_table(
        body, key=ref.key, metadata=state.info.metadata, feed=feed, mapping=mapping, chunk_rows=chunk_rows,
        limits=_limits(settings),
    )  # fmt: skip
    _describe(report, reader)
    report.chunk_rows = chunk_rows
    next_chunk = _run_chunks(
        reader, feed=feed, report=report, sink=sink, settings=settings, state=state, invocation=invocation,
        start=resume.start_chunk if resume else 0,
    )  # fmt: skip
    report.ignore(reader.ignored_columns)
    return next_chunk


def _limits(settings: IngestSettings) -> Limits:
    return Limits(
        max_uncompressed_bytes=settings.ingest_max_uncompressed_bytes, max_line_chars=settings.ingest_max_line_chars
    )


def _verify(
    body: Any,
    *,
    ref: FileRef,
    info: ObjectInfo,
    feed: Feed,
    mapping: ColumnMapping,
    settings: IngestSettings,
    report: IngestReport,
) -> str:
    """Read the whole file once, building nothing, before any of it is applied; returns its content id.

    A file that breaks part-way (truncated gzip, CRC or size mismatch, broken framing, a limit) would
    otherwise keep the chunks applied before the break, and its fixed upload (other bytes, other batch
    ids) would count them again. The pass also counts physical lines and takes the MD5 a multipart
    upload's ETag does not give.

    Raises:
        UnreadableFileError: the file cannot be read to its end.
    """
    hashing = HashingReader(body)
    reader = open_table(
        hashing,  # type: ignore[arg-type]
        key=ref.key,
        metadata=info.metadata,
        feed=feed,
        mapping=mapping,
        chunk_rows=settings.ingest_chunk_rows,
        limits=_limits(settings),
    )
    tally = reader.scan()
    report.lines_read, report.multiline_records = tally.lines, tally.multiline_records
    digest = hashing.drain()
    return uploads.plain_md5(info) or digest


def _start_report(
    ref: FileRef, feed: Feed | None, info: ObjectInfo, resume: Resume | None, carried: IngestReport | None
) -> IngestReport:
    if resume is not None and carried is not None:
        carried.status = "ok"
        carried.parts.append(Part(part=resume.part, first_chunk=resume.start_chunk, flush_from=resume.flush_from))
        return carried
    return IngestReport(
        source_key=ref.key,
        feed=feed.name if feed else "",
        bucket=ref.bucket,
        version_id=info.version_id,
        etag=info.etag,
        started_at=_now(),
        parts=[Part(part=1, first_chunk=0)],
    )


def _load_hand_off(
    settings: IngestSettings, resume: Resume, file_id: str
) -> tuple[IngestReport, merge.SeenKeys, merge.ActivityTotals] | None:
    """The report, the keys counted and the activity totals so far, as the previous part left them.

    None if the file was finished since.

    Raises:
        InvalidInputError: the state is gone although the file is not finished.
    """
    if not resume.state_key:
        return IngestReport.from_dict(resume.report), merge.SeenKeys(), merge.ActivityTotals()
    try:
        report = IngestReport.from_dict(uploads.read_json(settings.data_bucket, f"{resume.state_key}/report.json"))
        seen = merge.SeenKeys.from_bytes(uploads.read_bytes(settings.data_bucket, f"{resume.state_key}/seen.bin"))
        totals = _load_totals(settings, resume)
    except InvalidInputError:
        if ingest_ledger.finished_file(settings.ingest_ledger_table, file_id) is not None:
            return None  # a duplicate continuation of a file another run finished (and tidied)
        raise
    return report, seen, totals


def _load_totals(settings: IngestSettings, resume: Resume) -> merge.ActivityTotals:
    """The totals a part handed on; a continuation from before per-file totals had none (its chunks were applied)."""
    try:
        return merge.ActivityTotals.from_bytes(
            uploads.read_bytes(settings.data_bucket, f"{resume.state_key}/{_TOTALS}")
        )
    except InvalidInputError:
        if resume.flush_from >= 0:
            raise
        return merge.ActivityTotals()


def _run_chunks(
    reader: TableReader,
    *,
    feed: Feed,
    report: IngestReport,
    sink: RejectSink,
    settings: IngestSettings,
    state: _FileState,
    invocation: Invocation,
    start: int,
) -> int | None:
    """Process chunks from `start` while time allows; returns the chunk to continue from, or None when done."""
    context = Context(settings.default_phone_region, settings.default_timezone)
    slowest = 0.0
    for processed, chunk in enumerate(reader.chunks(start=start)):
        # Always make progress (one chunk at least), then stop while the slowest chunk still fits.
        if processed and invocation.time_left() < settings.ingest_reserve_seconds + 1.5 * slowest:
            return chunk.index
        began = time.monotonic()
        validated = validate(chunk, feed, context)
        _apply(validated, feed=feed, report=report, settings=settings, state=state, chunk_index=chunk.index)
        sink.write(validated.rejected)
        slowest = max(slowest, time.monotonic() - began)
        logger.info(
            "chunk ingested",
            extra={"source_key": report.source_key, "chunk": chunk.index, "rows_read": report.rows_read},
        )
    return None


def _hand_off(
    ref: FileRef,
    *,
    keys: OutputKeys,
    file_id: str,
    state: _FileState,
    report: IngestReport,
    sink: RejectSink | None,
    started: float,
    settings: IngestSettings,
    hand_off: Callable[[Mapping[str, Any]], None],
    next_chunk: int,
    flush_from: int = -1,
) -> IngestReport:
    part = report.parts[-1].part
    if _finished_elsewhere(settings, file_id, report.rejected_parts):
        report.status = "already_ingested"
        return report
    if sink is not None and sink.rows:
        # Rows are only rejected while reading, so a part that read chunks ends before a flush-only part starts.
        key = keys.rejected_part(report.parts[-1].first_chunk, next_chunk)
        uploads.put_file(settings.data_bucket, key, sink.finish(), "text/csv; charset=utf-8")
        report.rejected_parts.append(key)
    report.status = "in_progress"
    report.parts[-1].duration_s = round(time.monotonic() - started, 3)
    report.duration_s = round(sum(p.duration_s for p in report.parts), 3)
    uploads.put_json(ref.bucket, keys.report, report.to_dict())
    state_key = keys.hand_off_state(next_chunk, flush_from)
    uploads.put_json(settings.data_bucket, f"{state_key}/report.json", report.to_dict())
    uploads.put_bytes(settings.data_bucket, f"{state_key}/seen.bin", state.seen.to_bytes())
    uploads.put_bytes(settings.data_bucket, f"{state_key}/{_TOTALS}", state.totals.to_bytes())
    resume = Resume(
        ref, file_id, state.content_id, next_chunk, part + 1, report.chunk_rows, state_key, flush_from=flush_from
    )
    hand_off(resume.to_event())
    metrics.add_metric(name="FilesSplit", unit="Count", value=1)
    logger.info("file continues in a new invocation", extra={**report.summary(), "next_chunk": next_chunk})
    return report


def _drop_hand_off_states(settings: IngestSettings, keys: OutputKeys, report: IngestReport) -> None:
    for part in report.parts[1:]:
        state_key = keys.hand_off_state(part.first_chunk, part.flush_from)
        for name in ("report.json", "seen.bin", _TOTALS):
            uploads.delete(settings.data_bucket, f"{state_key}/{name}")


def _finished_elsewhere(settings: IngestSettings, file_id: str, own_parts: Sequence[str]) -> bool:
    """Whether another run of this file (a duplicated S3 event) finished it; if so, drop this run's part files.

    Such a run's writes were harmless repeats; only its report must not replace the finished one.
    """
    if ingest_ledger.finished_file(settings.ingest_ledger_table, file_id) is None:
        return False
    for key in own_parts:
        uploads.delete(settings.data_bucket, key)
    logger.info("file already ingested", extra={"file_id": file_id, "parts_dropped": len(own_parts)})
    metrics.add_metric(name="FilesAlreadyIngested", unit="Count", value=1)
    return True


def _describe(report: IngestReport, reader: TableReader) -> None:
    report.format = reader.shape.format.value
    report.compression = reader.shape.compression
    report.encoding = reader.shape.encoding
    report.delimiter = reader.shape.delimiter
    report.column_map = dict(reader.header.columns)


def _apply(
    validated: Validated,
    *,
    feed: Feed,
    report: IngestReport,
    settings: IngestSettings,
    state: _FileState,
    chunk_index: int,
) -> None:
    """Write one chunk's accepted rows and queue their customers for scoring."""
    report.add(validated)
    accepted = validated.accepted
    metrics.add_metric(name="RowsRead", unit="Count", value=len(accepted) + len(validated.rejected))
    metrics.add_metric(name="RowsAccepted", unit="Count", value=len(accepted))
    metrics.add_metric(name="RowsRejected", unit="Count", value=len(validated.rejected))
    if accepted.empty:
        return
    if feed is PINPOINT_ENDPOINTS:
        # A user's endpoints merge like the rows of one customer; customer_id is the Pinpoint user id.
        context = Context(settings.default_phone_region, settings.default_timezone)
        report.values_coerced = dict(Counter(report.values_coerced) + pinpoint.unreadable_consent(accepted))
        accepted = pinpoint.to_customers(accepted, context)
        customer_ids = _write_customers(
            accepted, report=report, settings=settings, info=state.info, extra_prefix=pinpoint.ATTRIBUTE_PREFIX
        )
    elif feed in PROFILE_FEEDS:
        customer_ids = _write_customers(
            accepted, report=report, settings=settings, info=state.info, present=validated.present
        )
    else:
        if feed is ORDERS:
            orders = merge.new_orders(accepted, state.seen)
            state.totals.add(merge.order_summary(orders))
            # Written also for content counted before: the same keys, so a repeat only rewrites the same objects.
            order_history.put_chunk(settings.data_bucket, state.content_id, chunk_index, merge.order_records(orders))
            report.duplicates_merged += len(accepted) - len(orders)
        else:
            events = merge.new_events(accepted, state.seen)
            state.totals.add(merge.event_summary(events))
            report.duplicates_merged += len(accepted) - len(events)
        return  # applied and queued for scoring once the file is read (_flush_activity)
    report.customers_queued += len(customer_ids)
    # After the writes, so scoring reads what is now stored.
    report.score_messages += _queue_scoring(customer_ids, settings=settings, source_key=report.source_key)


def _flush_activity(
    *,
    report: IngestReport,
    settings: IngestSettings,
    state: _FileState,
    invocation: Invocation,
    start: int,
) -> int | None:
    """Apply the file's activity totals slice by slice while time allows; returns the slice to continue from.

    Every customer's item notes the file's batch id with its counts, so a slice applied twice (a crash, a
    duplicated continuation) adds nothing twice. Each slice is read, merged and written under the activity
    lease (see cadence.dal.activity_table). Customers are queued for scoring after their slice is written.
    The first slice always goes, like the first chunk: the chunk loop left the reserve plus half its slowest
    chunk, and a slice writes at most as many customers (ingest_chunk_rows) as a chunk could.
    """
    deltas = state.totals.deltas()
    size = settings.ingest_chunk_rows
    slowest = 0.0
    for processed, begin in enumerate(range(start, len(deltas), size)):
        if processed and invocation.time_left() < settings.ingest_reserve_seconds + 1.5 * slowest:
            return begin
        began = time.monotonic()
        part = deltas[begin : begin + size]
        if state.counted_before:
            report.writes_skipped += sum(delta.records for delta in part)
        else:
            part = _apply_activity(part, report=report, settings=settings, state=state, invocation=invocation)
        customer_ids = [delta.customer_id for delta in part]
        report.customers_queued += len(customer_ids)
        report.score_messages += _queue_scoring(customer_ids, settings=settings, source_key=report.source_key)
        slowest = max(slowest, time.monotonic() - began)
    return None


def _apply_activity(
    part: Sequence[ActivityDelta],
    *,
    report: IngestReport,
    settings: IngestSettings,
    state: _FileState,
    invocation: Invocation,
) -> list[ActivityDelta]:
    """Apply one slice under the activity lease; returns its deltas but those of customers erased since the upload.

    Raises:
        TransientError: another writer held the activity lease for as long as this invocation could wait.
    """
    wait = max(1.0, min(activity_table.LEASE_SECONDS, invocation.time_left() - settings.ingest_reserve_seconds))
    lease = ingest_ledger.held_lease(
        settings.ingest_ledger_table, activity_table.LEASE, seconds=activity_table.LEASE_SECONDS, wait_seconds=wait
    )
    with lease:
        # Read under the lease: erasure notes its tombstone before it takes the lease to delete, so an erasure whose
        # tombstone this misses deletes after these writes.
        erased = suppression_table.erasures(settings.suppression_table)
        uploaded = datetime.fromisoformat(state.info.last_modified)
        # A file uploaded before a customer's erasure is what the erasure removed, however late it is applied.
        kept = [
            delta
            for delta in part
            if (erased_at := erased.get(customer_hash(delta.customer_id))) is None or erased_at < uploaded
        ]
        outcome = activity_table.apply_deltas(
            settings.activity_table, kept, batch_id=state.content_id, workers=settings.ingest_write_workers
        )
    dropped = sum(delta.records for delta in part) - sum(delta.records for delta in kept)
    report.writes_applied += outcome.applied
    report.writes_skipped += outcome.skipped + dropped
    if dropped:
        metrics.add_metric(name="ActivityOfErasedCustomersDropped", unit="Count", value=dropped)
    return kept


def _write_customers(
    accepted: pd.DataFrame,
    *,
    report: IngestReport,
    settings: IngestSettings,
    info: ObjectInfo,
    extra_prefix: str | None = None,
    present: Mapping[str, np.ndarray] | None = None,
) -> list[str]:
    """Merge the chunk's customers with their stored profiles and write back the ones that change
    (`present`: validation's, which rows of `accepted` hold each column); returns the customers, each once, in
    the order the chunk first names them.

    BatchWriteItem replaces whole items and takes no condition, so the stored items are read first
    (consistently) and the latest-updated_at-wins rule is applied here; every stored attribute the rows do
    not set is carried over. Scores live in their own table, so ingest is the only writer of these items
    (concurrent customers files take turns through a lease); a score attribute an item still holds from
    before that split could be lost to a concurrent write, which heals: the customer is re-scored next.
    """
    customers = merge.merge_customer_frame(
        accepted, default_updated_at=info.last_modified, extra_prefix=extra_prefix, present=present
    )
    report.duplicates_merged += customers.duplicates_merged
    # Another customers file's read-merge-write between ours would put its rows over ours unmerged.
    with _customers_lease(settings):
        stored = profiles_table.read_for_merge(settings.profiles_table, customers.customer_ids)
        # Erased customers a file brings back come without consent (their addresses stay suppressed, too).
        erased = suppression_table.tombstones(settings.suppression_table)
        writes = merge.customer_writes(
            customers, stored, erased=(lambda customer_id: customer_hash(customer_id) in erased) if erased else None
        )
        report.writes_applied += writes.applied
        report.writes_skipped += writes.skipped
        # Before the profiles: a chunk cut off between the two writes still finds the stored yes when retried.
        withdrawn = merge.withdrawals(
            stored, writes.updated, source=f"ingest:{report.source_key}", at=datetime.now(UTC)
        )
        if withdrawn:
            suppression_table.add(settings.suppression_table, withdrawn, workers=settings.ingest_write_workers)
            metrics.add_metric(name="ConsentWithdrawn", unit="Count", value=len(withdrawn))
        profiles_table.put_many(settings.profiles_table, writes.updated, workers=settings.ingest_write_workers)
        profiles_table.put_columns(settings.profiles_table, writes.created, workers=settings.ingest_write_workers)
    return customers.customer_ids


def _customers_lease(settings: IngestSettings) -> AbstractContextManager[None]:
    """The customers write lease for the block, waiting at most the lease's length for another holder.

    Raises:
        TransientError: another invocation held the lease all along (the async retry tries again).
    """
    seconds = settings.ingest_customers_lease_seconds
    return ingest_ledger.held_lease(settings.ingest_ledger_table, "customers", seconds=seconds, wait_seconds=seconds)


def _queue_scoring(customer_ids: Sequence[str], *, settings: IngestSettings, source_key: str) -> int:
    """Every customer a chunk touched, SCORE_BATCH_SIZE ids a message (scoring is idempotent, so repeats are fine)."""
    bodies = [
        {"customer_ids": batch, "reason": "ingest", "source_key": source_key}
        for batch in queues.chunked(customer_ids, settings.score_batch_size)
    ]
    sent = queues.send_json_batches(settings.score_queue_url, bodies)
    metrics.add_metric(name="ScoreRequestsQueued", unit="Count", value=sent)
    return sent


def _finish(
    report: IngestReport, sink: RejectSink | None, started: float, settings: IngestSettings, keys: OutputKeys
) -> None:
    """Write the rejected rows (merging earlier parts' files) and close the report's timing."""
    if report.rejected_parts or (sink is not None and sink.rows):
        parts = [uploads.open_object(FileRef(settings.data_bucket, key))[1] for key in report.rejected_parts]
        merged = RejectSink.merge(parts, sink)
        uploads.put_file(settings.data_bucket, keys.rejected_rows, merged, "text/csv; charset=utf-8")
        for key in report.rejected_parts:
            uploads.delete(settings.data_bucket, key)
        report.rejected_parts = []
        report.rejected_key = keys.rejected_rows
    report.finished_at = _now()
    if report.parts:
        report.parts[-1].duration_s = round(time.monotonic() - started, 3)
    report.duration_s = round(sum(p.duration_s for p in report.parts), 3)
