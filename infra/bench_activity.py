"""`make bench` section "activity": what an orders file costs in the activity table, old design beside new.

    python -m infra.bench --only activity        # ACTIVITY_BENCH_ORDERS sets the rows (default 20,000)

Two generated orders files (bench_ingest.generate_orders: N rows over N/4 customers, about 4 orders a customer,
as the ingest section's) are ingested one after the other through `cadence.ingest.service.ingest_files`: the
first into an empty activity table, the second for the same customers (their stored first/last times beaten).
Each design runs in a fresh process under moto's in-process `mock_aws` (no local stack): the old one is the layer
at ACTIVITY_BENCH_BASELINE_REV (default the commit issue 13's orders work started from: one conditional
UpdateItem per customer, a second one when a stored time is beaten), the new one this tree's (read-merge-write
under the activity lease: BatchGetItem 100 keys, BatchWriteItem 25 items).

Counted in that process, by operation, per 1,000 order rows: every DynamoDB call the activity path made (calls
on the activity table, the activity lease's PutItem/DeleteItem in the ingest ledger, the tombstone Queries of the
suppression table), `calls_per_1k_rows`. Units are modelled, not measured (moto reports no real capacity):
DynamoDB bills each item written (an UpdateItem, one whose condition failed included, or a BatchWriteItem item)
one write unit per 1 KB of the item, and each item a strongly consistent read asks for one read unit per 4 KB
(an absent item included); a lease write is one write unit, a tombstone Query one read unit. The largest
activity item of the run (`max_item_bytes`) sets the rounding: below 1 KB, one unit an item.
"""

import argparse
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from infra.bench_ingest import ORDERS_KEY, WORK_DIR, default_rows, generate_orders
from infra.bench_ingest_cpu import checkout_layer

ROOT = Path(__file__).resolve().parent.parent
BASELINE_REV = os.environ.get("ACTIVITY_BENCH_BASELINE_REV", "fe155675ae7339f17e0cf457cae0115a54937335")
SCENARIOS = ("first_file", "second_file_same_customers")
TABLES = {
    "ProfilesTable": "bench-profiles",
    "ActivityTable": "bench-activity",
    "IngestLedgerTable": "bench-ingest-ledger",
    "SuppressionTable": "bench-suppression",
}
_LEASE_KEY = "lease#activity"


def bench_activity(orders: int | None = None) -> dict[str, Any]:
    """Generate the two files, run each design in its own process, and print the figures side by side."""
    orders = orders or default_rows("ACTIVITY_BENCH_ORDERS", 20_000)
    files = []
    for seed, scenario in zip((11, 12), SCENARIOS, strict=True):
        path = WORK_DIR / f"activity-{scenario}-{orders}.csv"
        if not path.exists():
            generate_orders(path, orders, customers=max(orders // 4, 1), seed=seed)
        files.append(path)
    designs = {
        "old_update_item_per_customer": checkout_layer(BASELINE_REV, WORK_DIR / "baseline"),
        "new_read_merge_write": ROOT / "layers" / "common" / "python",
    }
    result: dict[str, Any] = {
        "rows_per_file": orders,
        "baseline_rev": BASELINE_REV,
        "measured_with": "moto mock_aws in process; calls counted per operation, units modelled (see module doc)",
    }
    for design, layer in designs.items():
        result[design] = _run_worker(layer, files)
    for scenario in SCENARIOS:
        old, new = (result[design][scenario] for design in designs)
        result[f"calls_ratio_old_to_new_{scenario}"] = round(old["calls_per_1k_rows"] / new["calls_per_1k_rows"], 1)
    _print(result, list(designs))
    return result


def _run_worker(layer: Path, files: list[Path]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{layer}{os.pathsep}{ROOT}"}
    env.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    env.pop("AWS_ENDPOINT_URL", None)
    command = [sys.executable, "-m", "infra.bench_activity", "--worker", *map(str, files)]
    # PYTHONPATH comes before the venv's .pth entries (which name a checkout's layer), so `layer` wins.
    done = subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ---------- the worker (runs in its own process, under mock_aws) ----------


class _Calls:
    """The activity path's DynamoDB calls, and the items they wrote and read, by operation."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_written = 0
        self.items_read = 0
        self.lease_writes = 0
        self.tombstone_queries = 0

    def count(self, operation: str, params: dict[str, Any]) -> None:
        table = params.get("TableName")
        if operation in {"UpdateItem", "PutItem", "DeleteItem", "GetItem"} and table == TABLES["ActivityTable"]:
            self.calls[operation] += 1
            self.items_written += operation != "GetItem"
            self.items_read += operation == "GetItem"
        elif operation in {"PutItem", "DeleteItem"} and table == TABLES["IngestLedgerTable"]:
            key = (params.get("Item") or params.get("Key") or {}).get("record_key")
            if key in (_LEASE_KEY, {"S": _LEASE_KEY}):
                self.calls[f"{operation} (lease)"] += 1
                self.lease_writes += 1
        elif operation == "Query" and table == TABLES["SuppressionTable"]:
            self.calls["Query (tombstones)"] += 1
            self.tombstone_queries += 1
        elif operation in {"BatchGetItem", "BatchWriteItem"}:
            requests = params["RequestItems"]
            body = getattr(requests, "body", None)  # an encoded request (cadence.dal.clients.EncodedRequestItems)
            requests = json.loads(body)["RequestItems"] if body else requests
            entry = requests.get(TABLES["ActivityTable"])
            if entry is None:
                return
            self.calls[operation] += 1
            if operation == "BatchGetItem":
                self.items_read += len(entry["Keys"])
            else:
                self.items_written += len(entry)


def _work(files: list[str]) -> dict[str, Any]:
    import boto3  # noqa: PLC0415 - the layer under test comes from PYTHONPATH, set up by the parent
    import botocore.client  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415
    from samtranslator.yaml_helper import yaml_parse  # noqa: PLC0415

    from infra.bench_dispatch import _item_bytes  # noqa: PLC0415
    from infra.sam_deploy import create_table_like  # noqa: PLC0415

    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    env = {"DATA_BUCKET": "bench-data", "SCORE_QUEUE_URL": "", "POWERTOOLS_METRICS_NAMESPACE": "bench"}
    os.environ.update({**env, "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_TRACE_DISABLED": "true"})
    counters: list[_Calls] = []  # the running scenario's last
    original = botocore.client.BaseClient._make_api_call

    def counted(client: Any, operation: str, params: Any) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            counters[-1].count(operation, params)
        return original(client, operation, params)

    try:  # this tree sends the batch calls itself (cadence.dal.dynamodb_wire); the baseline through botocore
        from cadence.dal import dynamodb_wire  # noqa: PLC0415
    except ImportError:
        dynamodb_wire = None
    original_wire_call = dynamodb_wire.call if dynamodb_wire else None

    def counted_wire_call(operation: str, request: dict[str, Any] | str, **kwargs: Any) -> Any:
        # The low-level request (or its JSON text): RequestItems of the same shape.
        counters[-1].count(operation, json.loads(request) if isinstance(request, str) else request)
        return original_wire_call(operation, request, **kwargs)  # type: ignore[misc]

    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        for logical_id, name in TABLES.items():
            create_table_like(dynamodb, resources[logical_id]["Properties"], name)
        boto3.client("s3").create_bucket(Bucket=env["DATA_BUCKET"])
        queue_url = boto3.client("sqs").create_queue(QueueName="bench-score")["QueueUrl"]
        from cadence.config import IngestSettings  # noqa: PLC0415
        from cadence.ingest import service  # noqa: PLC0415
        from cadence.ingest.models import FileRef  # noqa: PLC0415

        settings = IngestSettings(
            profiles_table=TABLES["ProfilesTable"],
            activity_table=TABLES["ActivityTable"],
            ingest_ledger_table=TABLES["IngestLedgerTable"],
            suppression_table=TABLES["SuppressionTable"],
            data_bucket=env["DATA_BUCKET"],
            score_queue_url=queue_url,
            ingest_write_workers=1,  # moto's in-process DynamoDB is not thread-safe; calls do not depend on it
        )
        figures: dict[str, Any] = {}
        for scenario, path in zip(SCENARIOS, files, strict=True):
            key = ORDERS_KEY.replace(".csv", f"-{scenario}.csv")
            version = boto3.client("s3").put_object(Bucket=env["DATA_BUCKET"], Key=key, Body=Path(path).read_bytes())
            counters.append(_Calls())
            botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
            if dynamodb_wire:
                dynamodb_wire.call = counted_wire_call
            try:
                (summary,) = service.ingest_files(
                    [FileRef(env["DATA_BUCKET"], key, version.get("VersionId"))], settings=settings
                )
            finally:
                botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
                if dynamodb_wire:
                    dynamodb_wire.call = original_wire_call  # type: ignore[assignment]
            items = boto3.resource("dynamodb").Table(TABLES["ActivityTable"]).scan()["Items"]
            largest = max(map(_item_bytes, items))
            figures[scenario] = _figures(counters[-1], summary["rows_accepted"], len(items), largest)
    return figures


def _figures(counter: _Calls, rows: int, customers: int, max_item_bytes: int) -> dict[str, Any]:
    per_1k = 1000 / max(rows, 1)
    wcu = counter.items_written * math.ceil(max_item_bytes / 1024) + counter.lease_writes
    rcu = counter.items_read * math.ceil(max_item_bytes / 4096) + counter.tombstone_queries
    return {
        "rows": rows,
        "customers_in_table": customers,
        "calls_by_operation": dict(sorted(counter.calls.items())),
        "calls_per_1k_rows": round(sum(counter.calls.values()) * per_1k, 1),
        "items_written_per_1k_rows": round(counter.items_written * per_1k, 1),
        "wcu_per_1k_rows": round(wcu * per_1k, 1),
        "rcu_per_1k_rows": round(rcu * per_1k, 1),
        "max_item_bytes": max_item_bytes,
    }


def _print(result: dict[str, Any], designs: list[str]) -> None:
    print(f"\nactivity table per 1,000 order rows ({result['rows_per_file']:,} rows a file; {result['measured_with']})")
    print(f"  {'design':<30} {'file':<28} {'calls':>7} {'WCU':>7} {'RCU':>7}  by operation")
    for design in designs:
        for scenario in SCENARIOS:
            row = result[design][scenario]
            print(
                f"  {design:<30} {scenario:<28} {row['calls_per_1k_rows']:>7} {row['wcu_per_1k_rows']:>7}"
                f" {row['rcu_per_1k_rows']:>7}  {row['calls_by_operation']}"
            )
    for scenario in SCENARIOS:
        print(f"  calls old / new, {scenario}: x{result[f'calls_ratio_old_to_new_{scenario}']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m infra.bench_activity")
    parser.add_argument("--worker", nargs=len(SCENARIOS), metavar="ORDERS_CSV", required=True)
    print(json.dumps(_work(parser.parse_args().worker)))
