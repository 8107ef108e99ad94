"""The contact history: who each run planned to message, on which channel and day, as compact S3 objects.

One gzipped CSV (customer_id,channel) per run, written twice so both questions cost a few reads, never one
read per customer:

    contact-history/by-day/<YYYY-MM-DD>/<campaign_id>/<run>.csv.gz       frequency caps: every campaign, last D days
    contact-history/by-campaign/<campaign_id>/<YYYY-MM-DD>/<run>.csv.gz  re-entry: this campaign, ever or last D days

A run's record is keyed by its run id, so a re-planned run overwrites its own and readers can leave it out.
"""

import csv
import gzip
import io
from collections.abc import Iterable, Iterator
from datetime import date

from botocore.exceptions import ClientError

from cadence.dal import clients

PREFIX = "contact-history"

# (day, campaign_id, run key, customer_id, channel)
ContactRow = tuple[date, str, str, str, str]


def run_key(run_id: str) -> str:
    """A run id as an S3 key segment."""
    return run_id.replace(":", "").replace("@", "_")


def put_run(bucket: str, campaign_id: str, run_id: str, day: date, contacts: Iterable[tuple[str, str]]) -> None:
    """Record the run's (customer_id, channel) contacts for `day`."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["customer_id", "channel"])
    writer.writerows(contacts)
    body = gzip.compress(text.getvalue().encode("utf-8"))
    name = f"{run_key(run_id)}.csv.gz"
    for key in (
        f"{PREFIX}/by-day/{day.isoformat()}/{campaign_id}/{name}",
        f"{PREFIX}/by-campaign/{campaign_id}/{day.isoformat()}/{name}",
    ):
        try:
            clients.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv")
        except ClientError as exc:
            raise clients.translate(exc, "contact_history.put_run") from exc


def _keys(bucket: str, prefix: str) -> Iterator[str]:
    paginator = clients.client("s3").get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield str(entry["Key"])
    except ClientError as exc:
        raise clients.translate(exc, "contact_history.list") from exc


def _rows(bucket: str, key: str) -> Iterator[tuple[str, str]]:
    try:
        body = clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise clients.translate(exc, "contact_history.read") from exc
    reader = csv.reader(io.StringIO(gzip.decompress(body).decode("utf-8"), newline=""))
    next(reader, None)
    for row in reader:
        yield row[0], row[1]


def contacts_on(bucket: str, days: Iterable[date], *, except_run: str) -> Iterator[ContactRow]:
    """Every campaign's contacts on the given days, leaving out run `except_run`."""
    skip = f"{run_key(except_run)}.csv.gz"
    for day in days:
        for key in _keys(bucket, f"{PREFIX}/by-day/{day.isoformat()}/"):
            campaign_id, name = key.rsplit("/", 2)[-2:]
            if name != skip:
                for customer_id, channel in _rows(bucket, key):
                    yield day, campaign_id, name, customer_id, channel


def contacts_of_campaign(bucket: str, campaign_id: str, *, since: date | None, except_run: str) -> Iterator[ContactRow]:
    """The campaign's contacts since `since` (every one when None), leaving out run `except_run`."""
    skip = f"{run_key(except_run)}.csv.gz"
    for key in _keys(bucket, f"{PREFIX}/by-campaign/{campaign_id}/"):
        day_text, name = key.rsplit("/", 2)[-2:]
        day = date.fromisoformat(day_text)
        if name != skip and (since is None or day >= since):
            for customer_id, channel in _rows(bucket, key):
                yield day, campaign_id, name, customer_id, channel
