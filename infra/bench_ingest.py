"""`make bench` section "ingest": a generated customers file of N rows (default 1,000,000), measured twice.

1. cleaning alone: read + clean + merge in this process, no AWS (rows/s);
2. end to end on a fresh local stack: upload, ingest (with its self-continuation when the 15-minute budget
   runs short), every row accounted for in the report (rows/s, parts, peak memory of the ingest worker);
   the score function is paused so the figure is ingest's own;
3. AWS API calls per 1,000 rows, counted inside the ingest worker by the local runtime (every botocore call
   of every invocation the file caused, continuations included) and reported beside the minimum: every
   accepted customer written by BatchWriteItem, 25 a call. An orders file (default 20,000 rows) goes through
   the same stack for the orders path's figure.

Rows are set with --ingest-rows / --ingest-orders-rows or INGEST_BENCH_ROWS / INGEST_BENCH_ORDERS.
"""

import math
import os
import re
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from boto3.s3.transfer import TransferConfig
from tqdm import tqdm

from infra.ingest_reports import latest_report

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = ROOT / "build" / "bench" / "ingest"
CUSTOMERS_KEY = "incoming/customers/bench-customers.csv"
ORDERS_KEY = "incoming/orders/bench-orders.csv"
DYNAMODB_WRITE_BATCH = 25
REJECT_EVERY = 100  # one row in a hundred has no usable contact and is rejected
_MAX_MEMORY = re.compile(r"Max Memory Used: (\d+) MB")
_CHUNK_LINE = re.compile(r'"message":"chunk ingested".*?"source_key":"([^"]+)".*?"rows_read":(\d+)')


def default_rows(name: str, fallback: int) -> int:
    return int(os.environ.get(name, fallback))


# ---------- data ----------


def generate_customers(path: Path, rows: int, *, seed: int = 7, block: int = 200_000) -> None:
    """A customers CSV of `rows` rows, written block by block; every REJECT_EVERY-th row has no usable contact."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        for start in range(0, rows, block):
            ids = np.arange(start, min(start + block, rows))
            size = len(ids)
            bad = ids % REJECT_EVERY == REJECT_EVERY - 1
            email = pd.Series([f"user{i}@example.com" for i in ids]).where(~bad, "not-an-email")
            has_phone = rng.random(size) < 0.6
            phone = pd.Series([f"138{n:08d}" for n in rng.integers(0, 10**8, size)]).where(has_phone & ~bad, "")
            signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000, size), unit="D")
            frame = pd.DataFrame(
                {
                    "customer_id": [f"C{i:08d}" for i in ids],
                    "email": email,
                    "phone": phone,
                    "first_name": rng.choice(["Li", "Wang", "Zhang", "Liu", "Chen"], size),
                    "last_name": rng.choice(["Wei", "Fang", "Min", "Jing", "Lei"], size),
                    "country": rng.choice(["CN", "US", "SG"], size),
                    "city": rng.choice(["Shanghai", "Hangzhou", "Beijing", "Shenzhen"], size),
                    "timezone": "Asia/Shanghai",
                    "language": "zh-CN",
                    "signup_date": signup.strftime("%Y-%m-%d"),
                    "consent_email": rng.choice(["true", "false"], size),
                    "consent_sms": rng.choice(["yes", "no"], size),
                    "updated_at": "2026-11-01T08:00:00Z",
                }
            )
            frame.to_csv(out, index=False, header=start == 0)


def generate_orders(path: Path, rows: int, customers: int, *, seed: int = 11) -> None:
    """An orders CSV of `rows` orders spread over the first `customers` customers."""
    rng = np.random.default_rng(seed)
    owners = rng.integers(0, customers, rows)
    frame = pd.DataFrame(
        {
            "order_id": [f"O{i:09d}" for i in range(rows)],
            "customer_id": [f"C{i:08d}" for i in owners],
            "order_date": (
                pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 600 * 86400, rows), unit="s")
            ).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": np.round(rng.gamma(2.0, 150.0, rows), 2),
            "currency": "CNY",
            "items": rng.integers(1, 5, rows),
            "channel": rng.choice(["web", "app"], rows),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


# ---------- 1. cleaning alone ----------


def measure_cleaning(path: Path, rows: int) -> dict[str, Any]:
    """Read + clean + merge the file in this process, chunk by chunk, as the ingest function does."""
    from cadence.config import IngestSettings  # noqa: PLC0415 - loads pandas-heavy modules only for this section
    from cadence.ingest import merge  # noqa: PLC0415
    from cadence.ingest.cleaning import Context  # noqa: PLC0415
    from cadence.ingest.mapping import load_mapping  # noqa: PLC0415
    from cadence.ingest.readers import open_table  # noqa: PLC0415
    from cadence.ingest.schemas import CUSTOMERS  # noqa: PLC0415
    from cadence.ingest.validation import validate  # noqa: PLC0415

    context = Context("CN", "UTC")
    chunk_rows = IngestSettings.model_fields["ingest_chunk_rows"].default  # what the function uses
    accepted = rejected = merged = 0
    started = time.perf_counter()
    with path.open("rb") as stream, tqdm(total=rows, desc="cleaning", unit="row", unit_scale=True) as progress:
        reader = open_table(
            stream, key=CUSTOMERS_KEY, metadata={}, feed=CUSTOMERS, mapping=load_mapping([]), chunk_rows=chunk_rows
        )
        for chunk in reader.chunks():
            validated = validate(chunk, CUSTOMERS, context)
            merged += len(merge.merge_customers(validated.accepted, default_updated_at="2026-11-01T00:00:00Z").items)
            accepted += len(validated.accepted)
            rejected += len(validated.rejected)
            progress.update(chunk.rows_read)
    seconds = time.perf_counter() - started
    # The pass ingest makes over the whole file before applying any of it (framing, CRC, limits).
    verify_started = time.perf_counter()
    with path.open("rb") as stream:
        open_table(
            stream, key=CUSTOMERS_KEY, metadata={}, feed=CUSTOMERS, mapping=load_mapping([]), chunk_rows=chunk_rows
        ).scan()
    verify_seconds = time.perf_counter() - verify_started
    return {
        "rows": accepted + rejected,
        "rows_accepted": accepted,
        "rows_rejected": rejected,
        "customers_merged": merged,
        "seconds": round(seconds, 1),
        "rows_per_s": round((accepted + rejected) / seconds),
        "verify_pass_seconds": round(verify_seconds, 1),
        "verify_pass_rows_per_s": round((accepted + rejected) / verify_seconds),
        "verify_pass_vs_cleaning_ratio": round(verify_seconds / seconds, 3),
        "peak_rss_mb_of_this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def measure_activity_calls(path: Path, rows: int) -> dict[str, Any]:
    """Activity-table UpdateItem calls per 1,000 order rows: one per customer and chunk (before) vs one per
    customer and file (merge.ActivityTotals, what ingest does now), counted on the same cleaned chunks."""
    from cadence.config import IngestSettings  # noqa: PLC0415 - loads pandas-heavy modules only for this section
    from cadence.ingest import merge  # noqa: PLC0415
    from cadence.ingest.cleaning import Context  # noqa: PLC0415
    from cadence.ingest.mapping import load_mapping  # noqa: PLC0415
    from cadence.ingest.readers import open_table  # noqa: PLC0415
    from cadence.ingest.schemas import ORDERS  # noqa: PLC0415
    from cadence.ingest.validation import validate  # noqa: PLC0415

    chunk_rows = IngestSettings.model_fields["ingest_chunk_rows"].default
    seen, totals = merge.SeenKeys(), merge.ActivityTotals()
    per_chunk = chunks = 0
    with path.open("rb") as stream:
        reader = open_table(
            stream, key=ORDERS_KEY, metadata={}, feed=ORDERS, mapping=load_mapping([]), chunk_rows=chunk_rows
        )
        for chunk in reader.chunks():
            summary = merge.order_summary(
                merge.new_orders(validate(chunk, ORDERS, Context("CN", "UTC")).accepted, seen)
            )
            per_chunk += len(summary)
            totals.add(summary)
            chunks += 1
    per_file = len(totals.deltas())
    return {
        "rows": rows,
        "chunks": chunks,
        "activity_calls_per_1k_rows_before": round(per_chunk * 1000 / rows, 1),
        "activity_calls_per_1k_rows_after": round(per_file * 1000 / rows, 1),
        "activity_calls_speedup_vs_per_chunk": round(per_chunk / per_file, 2) if per_file else None,
    }


# ---------- 2. end to end on the local stack ----------


def _follow_progress(log_path: Path, key: str, offset: int, progress: Any) -> int:
    """Advance `progress` to the rows_read of the ingest worker's latest "chunk ingested" line for `key`."""
    with log_path.open("rb") as log:
        log.seek(offset)
        data = log.read()
    complete = data.rfind(b"\n") + 1
    for match in _CHUNK_LINE.finditer(data[:complete].decode("utf-8", "replace")):
        if match.group(1) == key:
            progress.update(int(match.group(2)) - progress.n)
    return offset + complete


def ingest_on_stack(stack: Any, path: Path, key: str, rows: int, timeout: float) -> dict[str, Any]:
    """Upload one file and wait for the stack to go idle: the report, invocations and wall time from upload on."""
    bucket = stack.outputs["DataBucketName"]
    s3 = stack.client("s3")
    invocations_before = len(stack.invocations("IngestFunction"))
    log_path = stack.log_path("IngestFunction")
    offset = log_path.stat().st_size if log_path.exists() else 0
    started = time.perf_counter()
    # One PUT: moto notifies a multipart upload twice (ObjectCreated:Put and :CompleteMultipartUpload), and a
    # second run of the file, harmless as it is, would halve the figure.
    s3.upload_file(str(path), bucket, key, Config=TransferConfig(multipart_threshold=5 * 1024**3))
    with tqdm(total=rows, desc=f"ingest {Path(key).name}", unit="row", unit_scale=True) as progress:
        deadline = time.monotonic() + timeout
        while True:
            offset = _follow_progress(log_path, key, offset, progress)
            try:
                stack.wait_idle(timeout=2)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
        _follow_progress(log_path, key, offset, progress)
    seconds = time.perf_counter() - started
    report = latest_report(s3, bucket, key)
    invocations = stack.invocations("IngestFunction")[invocations_before:]
    calls: Counter[str] = Counter()
    for invocation in invocations:
        calls.update(invocation.api_calls)
    return {
        "report": report,
        "seconds": seconds,
        "invocations": len(invocations),
        "errors": sum(not invocation.ok for invocation in invocations),
        "api_calls": dict(calls),
    }


def api_call_figures(run: dict[str, Any], minimum_writes: int) -> dict[str, Any]:
    """API calls per 1,000 rows read, all and DynamoDB only, beside DynamoDB's minimum for the same rows."""
    calls = run["api_calls"]
    rows = max(run["report"]["rows_read"], 1)
    dynamodb = sum(count for operation, count in calls.items() if operation.startswith("dynamodb."))
    minimum = math.ceil(minimum_writes / DYNAMODB_WRITE_BATCH)
    return {
        "by_operation": dict(sorted(calls.items())),
        "all_per_1000_rows": round(sum(calls.values()) * 1000 / rows, 1),
        "dynamodb_per_1000_rows": round(dynamodb * 1000 / rows, 1),
        "dynamodb_minimum_per_1000_rows": round(minimum * 1000 / rows, 1),
        "dynamodb_vs_minimum": round(dynamodb / minimum, 2) if minimum else None,
    }


def peak_memory_mb(log_path: Path) -> int:
    """The highest Max Memory Used of the worker's REPORT lines (the worker's own VmHWM)."""
    return max((int(m) for m in _MAX_MEMORY.findall(log_path.read_text(errors="replace"))), default=0)


def summarise(run: dict[str, Any], rows: int) -> dict[str, Any]:
    report = run["report"]
    return {
        "rows_in_file": rows,
        "status": report["status"],
        "rows_read": report["rows_read"],
        "rows_accepted": report["rows_accepted"],
        "rows_rejected": report["rows_rejected"],
        "every_row_accounted_for": report["rows_read"] == rows == report["rows_accepted"] + report["rows_rejected"],
        "parts": [
            {k: part[k] for k in ("part", "first_chunk", "chunks", "rows_read", "duration_s")}
            for part in report["parts"]
        ],
        "invocations": run["invocations"],
        "invocation_errors": run["errors"],
        "function_seconds": report["duration_s"],
        "wall_seconds": round(run["seconds"], 1),
        "rows_per_s": round(rows / run["seconds"]),
    }


def bench_ingest(rows: int | None = None, orders: int | None = None) -> dict[str, Any]:
    """Generate, clean, ingest on a local stack, and print the figures."""
    from infra.local_stack import LocalStack  # noqa: PLC0415 - the local stack loads only for this section

    rows = rows or default_rows("INGEST_BENCH_ROWS", 1_000_000)
    orders = orders or default_rows("INGEST_BENCH_ORDERS", 20_000)
    customers_path = WORK_DIR / f"customers-{rows}.csv"
    orders_path = WORK_DIR / f"orders-{orders}.csv"
    if not customers_path.exists():
        print(f"\ngenerating {rows:,} customers into {customers_path}", flush=True)
        generate_customers(customers_path, rows)
    if not orders_path.exists():
        generate_orders(orders_path, orders, customers=max(orders // 4, 1))

    cleaning = measure_cleaning(customers_path, rows)
    activity_calls = measure_activity_calls(orders_path, orders)
    # The score function is paused: its queue fills up and is dropped with the stack, so the figures are ingest's.
    with LocalStack(port=0, work_dir=WORK_DIR / "local-stack", paused_functions=("ScoreFunction",)) as stack:
        customers_run = ingest_on_stack(stack, customers_path, CUSTOMERS_KEY, rows, timeout=4 * 3600)
        orders_run = ingest_on_stack(stack, orders_path, ORDERS_KEY, orders, timeout=3600)
        memory = peak_memory_mb(stack.log_path("IngestFunction"))

    result = {
        "cleaning": cleaning,
        "orders_activity_calls": activity_calls,
        "customers_end_to_end": {
            **summarise(customers_run, rows),
            "api_calls": api_call_figures(customers_run, customers_run["report"]["rows_accepted"]),
        },
        # The orders path cannot reach rows/25: it is one conditional UpdateItem per customer and file
        # (atomic ADDs; no batch API takes conditions), so its figure is shown against the same yardstick.
        "orders_end_to_end": {
            **summarise(orders_run, orders),
            "distinct_customers": orders // 4,
            "api_calls": api_call_figures(orders_run, orders_run["report"]["rows_accepted"]),
        },
        "ingest_worker_peak_memory_mb": memory,
    }
    _print(result)
    return result


def _print(result: dict[str, Any]) -> None:
    cleaning, customers, orders = result["cleaning"], result["customers_end_to_end"], result["orders_end_to_end"]
    print(f"\ningest of {customers['rows_in_file']:,} customer rows")
    print(f"  cleaning alone (read+clean+merge, no AWS): {cleaning['rows_per_s']:,} rows/s ({cleaning['seconds']} s)")
    print(
        f"  verify pass before applying (read to the end, nothing built): {cleaning['verify_pass_rows_per_s']:,}"
        f" rows/s, x{cleaning['verify_pass_vs_cleaning_ratio']} of the cleaning time"
    )
    print(
        f"  end to end on the local stack: {customers['rows_per_s']:,} rows/s ({customers['wall_seconds']} s wall,"
        f" {len(customers['parts'])} part(s)), status {customers['status']}"
    )
    print(
        f"  rows read {customers['rows_read']:,} = accepted {customers['rows_accepted']:,}"
        f" + rejected {customers['rows_rejected']:,}: {customers['every_row_accounted_for']}"
    )
    print(f"  ingest worker peak memory: {result['ingest_worker_peak_memory_mb']} MB")
    activity = result["orders_activity_calls"]
    print(
        f"  orders ({activity['rows']:,} rows, {activity['chunks']} chunk(s)): activity UpdateItem per 1,000 rows"
        f" {activity['activity_calls_per_1k_rows_before']} per customer and chunk ->"
        f" {activity['activity_calls_per_1k_rows_after']} per customer and file,"
        f" x{activity['activity_calls_speedup_vs_per_chunk']}"
    )
    for name, run in (("customers", customers), ("orders", orders)):
        calls = run["api_calls"]
        print(
            f"  {name}: AWS API calls per 1,000 rows {calls['all_per_1000_rows']} (DynamoDB"
            f" {calls['dynamodb_per_1000_rows']}, minimum {calls['dynamodb_minimum_per_1000_rows']},"
            f" x{calls['dynamodb_vs_minimum']})"
        )
    print(f"  orders end to end: {orders['rows_per_s']:,} rows/s ({orders['wall_seconds']} s)")
