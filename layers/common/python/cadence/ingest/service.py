"""Ingest one dropped file end to end: read, validate, write profiles, queue scoring, report.

Accounting: every record read is accepted or rejected (rows_read = rows_accepted + rows_rejected);
rejected rows land in rejected/<key>.csv with line and reason, and the report in
reports/ingest/<key>.json. A file that cannot be read at all is moved to rejected/<key>, reported,
and raised as UnreadableFileError (an InvalidInputError) so the async retry and on-failure
destination see it. Every write is safe to repeat, so a redelivered event changes nothing twice.
"""

import time
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from cadence.config import IngestSettings
from cadence.dal import ingest_ledger, profiles_table, queues, uploads
from cadence.errors import InvalidInputError
from cadence.ingest import merge
from cadence.ingest.cleaning import Context
from cadence.ingest.exceptions import UnreadableFileError
from cadence.ingest.mapping import ColumnMapping, load_mapping
from cadence.ingest.models import FileRef, ObjectInfo, WriteOutcome
from cadence.ingest.readers import TableReader, open_table
from cadence.ingest.report import (
    IngestReport,
    Part,
    RejectSink,
    quarantine_key,
    rejected_key,
    report_key,
)
from cadence.ingest.schemas import CUSTOMERS, ORDERS, Feed, feed_for_key
from cadence.ingest.validation import Validated, validate
from cadence.observability import logger, metrics

TimeLeft = Callable[[], float]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_column_mapping(settings: IngestSettings) -> ColumnMapping:
    """The shipped mapping, extended by the JSON object at INGEST_MAPPING_KEY when one is configured."""
    overrides = (
        [uploads.read_json(settings.data_bucket, settings.ingest_mapping_key)] if settings.ingest_mapping_key else []
    )
    return load_mapping(overrides)


def ingest_files(
    files: Iterable[FileRef], *, settings: IngestSettings, time_left: TimeLeft | None = None
) -> list[dict]:
    """Ingest each file; unreadable ones are accounted for, and raised together after the rest are done.

    Raises:
        InvalidInputError: at least one file could not be read (each is reported and moved aside).
    """
    try:
        zoneinfo.ZoneInfo(settings.default_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInputError("DEFAULT_TIMEZONE is not an IANA time zone") from exc
    mapping = load_column_mapping(settings)
    summaries: list[dict] = []
    unreadable: list[str] = []
    for ref in files:
        try:
            summaries.append(ingest_file(ref, settings=settings, mapping=mapping, time_left=time_left).summary())
        except UnreadableFileError:
            unreadable.append(ref.key)
    if unreadable:
        raise InvalidInputError(f"unreadable files moved to rejected/: {', '.join(unreadable)}")
    return summaries


def ingest_file(
    ref: FileRef, *, settings: IngestSettings, mapping: ColumnMapping, time_left: TimeLeft | None = None
) -> IngestReport:
    """Ingest one file and write its report; see the module docstring.

    Raises:
        UnreadableFileError: the file cannot be read; it was moved aside and reported first.
        TransientError: a dependency kept failing; a retry repeats the file harmlessly.
    """
    del time_left  # splitting large files across invocations arrives in a later change
    feed = feed_for_key(ref.key)
    if ref.key.endswith("/"):
        # The console's "create folder" uploads an empty object named like a prefix.
        return IngestReport(source_key=ref.key, feed="", bucket=ref.bucket, status="skipped", reason="folder_marker")
    started = time.monotonic()
    info, body = uploads.open_object(ref)
    file_id = f"{ref.key}@{info.version_id or info.etag}"
    with body:
        finished = ingest_ledger.finished_file(settings.ingest_ledger_table, file_id)
        if finished is not None:
            logger.info("file already ingested", extra={"source_key": ref.key, "file_id": file_id})
            metrics.add_metric(name="FilesAlreadyIngested", unit="Count", value=1)
            return IngestReport(
                source_key=ref.key, feed=feed.name if feed else "", bucket=ref.bucket, status="already_ingested"
            )
        report = IngestReport(
            source_key=ref.key,
            feed=feed.name if feed else "",
            bucket=ref.bucket,
            version_id=info.version_id,
            etag=info.etag,
            started_at=_now(),
            parts=[Part(part=1, first_chunk=0)],
        )
        sink = RejectSink(feed) if feed else None
        try:
            if feed is None or sink is None:
                raise UnreadableFileError("unknown_feed")
            reader = open_table(
                body,
                key=ref.key,
                metadata=info.metadata,
                feed=feed,
                mapping=mapping,
                chunk_rows=settings.ingest_chunk_rows,
            )
            _describe(report, reader)
            for chunk in reader.chunks():
                validated = validate(chunk, feed, Context(settings.default_phone_region, settings.default_timezone))
                _apply(validated, feed=feed, report=report, settings=settings, info=info)
                sink.write(validated.rejected)
            report.ignored_columns = sorted(reader.ignored_columns)
        except UnreadableFileError as exc:
            report.status, report.reason = "unreadable", exc.reason
            _finish(report, sink, started, settings)
            uploads.move_aside(ref, quarantine_key(ref.key))
            report.quarantined_key = quarantine_key(ref.key)
            uploads.put_json(ref.bucket, report_key(ref.key), report.to_dict())
            metrics.add_metric(name="FilesUnreadable", unit="Count", value=1)
            logger.warning("file unreadable", extra={"source_key": ref.key, "reason": exc.reason})
            raise
    _finish(report, sink, started, settings)
    uploads.put_json(ref.bucket, report_key(ref.key), report.to_dict())
    ingest_ledger.mark_file_finished(
        settings.ingest_ledger_table, file_id, report.summary(), ttl_days=settings.ingest_ledger_ttl_days
    )
    metrics.add_metric(name="FilesIngested", unit="Count", value=1)
    logger.info("file ingested", extra=report.summary())
    return report


def _describe(report: IngestReport, reader: TableReader) -> None:
    report.format = reader.shape.format.value
    report.compression = reader.shape.compression
    report.encoding = reader.shape.encoding
    report.delimiter = reader.shape.delimiter
    report.column_map = dict(reader.header.columns)


def _apply(
    validated: Validated, *, feed: Feed, report: IngestReport, settings: IngestSettings, info: ObjectInfo
) -> None:
    """Write one chunk's accepted rows and queue their customers for scoring."""
    report.add(validated)
    accepted = validated.accepted
    metrics.add_metric(name="RowsRead", unit="Count", value=len(accepted) + len(validated.rejected))
    metrics.add_metric(name="RowsAccepted", unit="Count", value=len(accepted))
    metrics.add_metric(name="RowsRejected", unit="Count", value=len(validated.rejected))
    if accepted.empty:
        return
    outcome: WriteOutcome
    if feed is CUSTOMERS:
        customers = merge.merge_customers(accepted, default_updated_at=info.last_modified)
        report.duplicates_merged += customers.duplicates_merged
        outcome = profiles_table.upsert_customers(settings.profiles_table, customers.items)
    else:
        deltas = merge.order_deltas(accepted) if feed is ORDERS else merge.event_deltas(accepted)
        report.duplicates_merged += deltas.duplicates_merged
        outcome = profiles_table.apply_deltas(
            settings.profiles_table,
            settings.ingest_ledger_table,
            deltas.items,
            expires_at=int(time.time()) + settings.ingest_ledger_ttl_days * 86400,
            source_key=report.source_key,
        )
    report.writes_applied += outcome.applied
    report.writes_skipped += outcome.skipped
    customer_ids = list(dict.fromkeys(str(cid) for cid in accepted["customer_id"]))
    report.customers_queued += len(customer_ids)
    report.score_messages += _queue_scoring(customer_ids, settings=settings, source_key=report.source_key)


def _queue_scoring(customer_ids: Sequence[str], *, settings: IngestSettings, source_key: str) -> int:
    """Every customer a chunk touched, SCORE_BATCH_SIZE ids a message (scoring is idempotent, so repeats are fine)."""
    bodies = [
        {"customer_ids": batch, "reason": "ingest", "source_key": source_key}
        for batch in queues.chunked(customer_ids, settings.score_batch_size)
    ]
    sent = queues.send_json_batches(settings.score_queue_url, bodies)
    metrics.add_metric(name="ScoreRequestsQueued", unit="Count", value=sent)
    return sent


def _finish(report: IngestReport, sink: RejectSink | None, started: float, settings: IngestSettings) -> None:
    if sink is not None and sink.rows:
        uploads.put_file(
            settings.data_bucket, rejected_key(report.source_key), sink.finish(), "text/csv; charset=utf-8"
        )
        report.rejected_key = rejected_key(report.source_key)
    report.finished_at = _now()
    report.duration_s = round(time.monotonic() - started, 3)
    if report.parts:
        report.parts[-1].duration_s = report.duration_s
