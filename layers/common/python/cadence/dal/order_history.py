"""The order history: every accepted order, cleaned, as compact S3 objects that attribution reads by month.

The activity table keeps per-customer sums only, and the dropped files stay in their source format (CSV,
JSON Lines, Parquet, any column names), so ingest also writes what it accepted, one gzipped CSV per file
content, chunk and order month:

    order-history/by-month/<YYYY-MM>/<content id>-<chunk>.csv.gz

Keyed by the file's content and chunk, a redelivered or re-uploaded file overwrites its own objects; a report
reads the months its window covers (one List plus a read per object, never one read per customer).
"""

import csv
import gzip
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.orders import OrderRecord

PREFIX = "order-history/by-month"
_COLUMNS = ("order_id", "customer_id", "order_date", "amount", "currency", "coupon_code")


def chunk_key(month: str, content_id: str, chunk_index: int) -> str:
    return f"{PREFIX}/{month}/{content_id}-{chunk_index:06d}.csv.gz"


def put_chunk(bucket: str, content_id: str, chunk_index: int, orders: Iterable[OrderRecord]) -> int:
    """Write one chunk's orders, one object per order month; returns how many objects were written."""
    by_month: dict[str, list[OrderRecord]] = defaultdict(list)
    for order in orders:
        by_month[order.month].append(order)
    s3 = clients.client("s3")
    for month, rows in by_month.items():
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(_COLUMNS)
        writer.writerows(
            (o.order_id, o.customer_id, o.order_date, repr(o.amount), o.currency, o.coupon_code) for o in rows
        )
        body = gzip.compress(text.getvalue().encode("utf-8"), mtime=0)
        try:
            s3.put_object(
                Bucket=bucket, Key=chunk_key(month, content_id, chunk_index), Body=body, ContentType="text/csv"
            )
        except ClientError as exc:
            raise clients.translate(exc, "order_history.put_chunk") from exc
    return len(by_month)


def _months(start: str, end: str) -> list[str]:
    """'YYYY-MM' of every month from the one holding `start` to the one holding `end` (ISO times)."""
    year, month = int(start[:4]), int(start[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= end[:7]:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def orders_between(bucket: str, start: str, end: str) -> Iterator[OrderRecord]:
    """Every order with start <= order_date < end (ISO-8601 UTC); an order id held twice comes once."""
    s3 = clients.client("s3")
    seen: set[str] = set()
    try:
        for month in _months(start, end):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/{month}/"):
                for entry in page.get("Contents", []):
                    body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                    for row in csv.DictReader(io.StringIO(gzip.decompress(body).decode("utf-8"), newline="")):
                        if start <= row["order_date"] < end and row["order_id"] not in seen:
                            seen.add(row["order_id"])
                            yield OrderRecord(
                                order_id=row["order_id"],
                                customer_id=row["customer_id"],
                                order_date=row["order_date"],
                                amount=float(row["amount"]),
                                currency=row["currency"],
                                coupon_code=row["coupon_code"],
                            )
    except ClientError as exc:
        raise clients.translate(exc, "order_history.orders_between") from exc
