"""Reading ingest reports from outside: the report of the latest upload of a key (demo, bench, tests)."""

import json
from typing import Any

from cadence.ingest.report import report_folder


def latest_report(s3: Any, bucket: str, source_key: str) -> dict[str, Any]:
    """The report of the most recent upload of `source_key` (each upload has its own, under its version).

    Raises:
        LookupError: no upload of the key has a report yet.
    """
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=report_folder(source_key)).get("Contents", [])
    if not listed:
        raise LookupError(f"no ingest report for {source_key}")
    newest = max(listed, key=lambda entry: entry["LastModified"])
    return json.loads(s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read())
