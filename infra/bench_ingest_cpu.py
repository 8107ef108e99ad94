"""`make bench` section "ingest-cpu": ingest's CPU per row from file bytes to the DynamoDB request, no AWS.

A generated customers file (INGEST_CPU_BENCH_ROWS, default 1,000,000; see bench_ingest.generate_customers) is
put through two paths, each by this tree's code and by the baseline (the layer package at
INGEST_CPU_BASELINE_REV, default the commit issue 13 started from), each run in a fresh process:

1. cleaning: read + clean + merge (what `make bench`'s ingest section called cleaning alone);
2. to the request: the same, then the stored profiles read (BatchGetItem) and merged, and the items written
   (BatchWriteItem), through a real botocore client whose HTTP send is answered at once by a stub, so every
   request is built, serialised and signed but DynamoDB's service time is left out.

Figures: µs per row and rows/s of each, the speed-up over the baseline measured in the same run, peak memory
(max RSS of the process), and the modelled time for the file on AWS: the CPU time plus the writes at the
profile table's write capacity (PAY_PER_REQUEST: a new on-demand table takes 4,000 write units a second,
INGEST_CPU_BENCH_WCU overrides), one unit per item under 1 KB.
"""

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from infra.bench_ingest import CUSTOMERS_KEY, WORK_DIR, default_rows, generate_customers

ROOT = Path(__file__).resolve().parent.parent
LAYER = Path("layers/common/python")
BASELINE_REV = "6ddb60628860c503dc1fcef164bbff2a8fb54341"  # main when issue 13 started
ON_DEMAND_START_WCU = 4_000
TABLE = "bench-profiles"
MODES = ("cleaning", "to_request")


def checkout_layer(rev: str, into: Path) -> Path:
    """The layer package as it was at `rev`, extracted (git archive) under `into`."""
    target = into / rev
    if not (target / "cadence").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = target / "layer.tar"
        with archive.open("wb") as out:
            subprocess.run(["git", "archive", rev, str(LAYER / "cadence")], cwd=ROOT, stdout=out, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
    return target / LAYER


def run_worker(layer: Path, mode: str, path: Path, rows: int, label: str) -> dict[str, Any]:
    """One measurement in a fresh process that imports `cadence` from `layer` only."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{layer}{os.pathsep}{ROOT}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    command = [sys.executable, "-m", "infra.bench_ingest_cpu", "--worker", mode, "--file", str(path)]
    command += ["--rows", str(rows), "--label", label]
    # PYTHONPATH comes before the venv's .pth entries (which name a checkout's layer), so `layer` wins.
    # The progress bar goes to stderr, passed through; the figures come back as the last line of stdout.
    done = subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ---------- the worker (runs in its own process) ----------


def _stub_dynamodb(counts: Counter[str]) -> None:
    """Answer every DynamoDB request of the container's client at once, as DynamoDB would when all succeed.

    The answers are made once, before the clock starts: what the stub costs is not the path to the request."""
    from botocore.awsrequest import AWSResponse  # noqa: PLC0415

    from cadence.dal import clients  # noqa: PLC0415

    class Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any) -> Any:
            yield self.body

    def answer(body: dict[str, Any]) -> AWSResponse:
        response = AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 200, {}, Raw(json.dumps(body).encode()))
        _ = response.content  # read once: every caller then reads the same bytes
        return response

    answers = {"BatchGetItem": answer({"Responses": {TABLE: []}})}
    nothing = answer({})

    def send(request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target", "")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        counts[operation] += 1
        counts["request_bytes"] += len(request.body or b"")
        return answers.get(operation, nothing)

    # botocore's client and cadence.dal.dynamodb_wire both emit this client's before-send for every request.
    clients.client("dynamodb").meta.events.register("before-send.dynamodb", send)


def _work(mode: str, path: Path, rows: int, label: str) -> dict[str, Any]:
    from cadence.ingest import merge  # noqa: PLC0415 - the layer under test comes from PYTHONPATH
    from cadence.ingest.cleaning import Context  # noqa: PLC0415
    from cadence.ingest.mapping import load_mapping  # noqa: PLC0415
    from cadence.ingest.readers import open_table  # noqa: PLC0415
    from cadence.ingest.schemas import CUSTOMERS  # noqa: PLC0415
    from cadence.ingest.validation import validate  # noqa: PLC0415

    try:
        from cadence.collector import paused  # noqa: PLC0415
    except ImportError:  # the baseline holds no collector off
        paused = contextlib.nullcontext
    counts: Counter[str] = Counter()
    if mode == "to_request":
        from cadence.dal import profiles_table  # noqa: PLC0415

        _stub_dynamodb(counts)
    context = Context("CN", "UTC")
    read = accepted = written = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    with path.open("rb") as stream, tqdm(total=rows, desc=f"{label} {mode}", unit="row", unit_scale=True) as bar:
        reader = open_table(
            stream, key=CUSTOMERS_KEY, metadata={}, feed=CUSTOMERS, mapping=load_mapping([]), chunk_rows=50_000
        )
        for chunk in reader.chunks():
            validated = validate(chunk, CUSTOMERS, context)
            if hasattr(merge, "customer_writes"):  # as the service writes customers since customer_writes
                # As the service merges since validation tells which rows hold each column.
                present = {"present": validated.present} if hasattr(validated, "present") else {}
                merged = merge.merge_customer_frame(
                    validated.accepted, default_updated_at="2026-11-01T00:00:00Z", **present
                )
                if mode == "to_request":
                    stored = profiles_table.read_for_merge(TABLE, merged.customer_ids)
                    writes = merge.customer_writes(merged, stored)
                    profiles_table.put_many(TABLE, writes.updated)
                    profiles_table.put_columns(TABLE, writes.created)
                    written += len(writes.updated) + writes.created_count
            else:  # the baseline's layer: upserts resolved one at a time, as its service did
                customers = merge.merge_customers(validated.accepted, default_updated_at="2026-11-01T00:00:00Z")
                if mode == "to_request":
                    stored = profiles_table.read_for_merge(TABLE, [c.customer_id for c in customers.items])
                    with paused():  # as the service's merge loop
                        items = [merge.resolve_customer(c, stored.get(c.customer_id))[0] for c in customers.items]
                    profiles_table.put_many(TABLE, items)
                    written += len(items)
            read += chunk.rows_read
            accepted += len(validated.accepted)
            bar.update(chunk.rows_read)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "rows": read,
        "rows_accepted": accepted,
        "items_written": written,
        "seconds": round(seconds, 2),
        "us_per_row": round(seconds / read * 1e6, 2),
        "rows_per_s": round(read / seconds),
        # CPU time of the process (all threads): what a shared machine's other work does not inflate.
        "cpu_us_per_row": round(cpu_seconds / read * 1e6, 2),
        # Linux reports KiB.
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dynamodb_requests": {name: count for name, count in counts.items() if name != "request_bytes"},
        "request_mb": round(counts["request_bytes"] / 1e6, 1),
    }


# ---------- the section ----------


def modelled_aws_seconds(cpu_seconds: float, items: int, write_units_per_s: int) -> float:
    """CPU time plus the writes at the table's write capacity (one unit per item under 1 KB): ingest
    cleans a chunk, then writes it, so the two add up rather than overlap."""
    return round(cpu_seconds + items / write_units_per_s, 1)


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """A mode's figures beside the baseline's, with the speed-up (baseline time / this tree's time)."""
    return {
        **current,
        "baseline_us_per_row": baseline["us_per_row"],
        "baseline_rows_per_s": baseline["rows_per_s"],
        "baseline_peak_mb": baseline["peak_mb"],
        "speedup_vs_naive": round(baseline["us_per_row"] / current["us_per_row"], 2),
        "baseline_cpu_us_per_row": baseline["cpu_us_per_row"],
        "cpu_speedup_vs_naive": round(baseline["cpu_us_per_row"] / current["cpu_us_per_row"], 2),
        "same_rows_accepted": current["rows_accepted"] == baseline["rows_accepted"],
    }


def bench_ingest_cpu(rows: int | None = None, baseline_rev: str | None = None) -> dict[str, Any]:
    """Both paths by this tree and by the baseline; prints and returns the figures."""
    rows = rows or default_rows("INGEST_CPU_BENCH_ROWS", 1_000_000)
    baseline_rev = baseline_rev or os.environ.get("INGEST_CPU_BASELINE_REV", BASELINE_REV)
    write_units = default_rows("INGEST_CPU_BENCH_WCU", ON_DEMAND_START_WCU)
    path = WORK_DIR / f"customers-{rows}.csv"
    if not path.exists():
        print(f"\ngenerating {rows:,} customers into {path}", flush=True)
        generate_customers(path, rows)
    layers = {"current": ROOT / LAYER, "baseline": checkout_layer(baseline_rev, WORK_DIR / "baseline")}
    runs = {
        (label, mode): run_worker(layer, mode, path, rows, label) for mode in MODES for label, layer in layers.items()
    }
    result: dict[str, Any] = {"rows_in_file": rows, "baseline_rev": baseline_rev}
    for mode in MODES:
        result[mode] = compare(runs[("current", mode)], runs[("baseline", mode)])
    request = result["to_request"]
    result["modelled_aws"] = {
        "write_units_per_s": write_units,
        "seconds": modelled_aws_seconds(request["seconds"], request["items_written"], write_units),
        "baseline_seconds": modelled_aws_seconds(
            runs[("baseline", "to_request")]["seconds"], request["items_written"], write_units
        ),
        "write_bound_seconds": round(request["items_written"] / write_units, 1),
    }
    _print(result)
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"\ningest CPU of {result['rows_in_file']:,} customer rows (no AWS; baseline {result['baseline_rev'][:10]})")
    for mode, title in (("cleaning", "cleaning (read+clean+merge)"), ("to_request", "to the DynamoDB request")):
        row = result[mode]
        print(
            f"  {title}: {row['us_per_row']} µs/row ({row['rows_per_s']:,} rows/s), baseline"
            f" {row['baseline_us_per_row']} µs/row: x{row['speedup_vs_naive']} (CPU {row['cpu_us_per_row']} µs/row"
            f" against {row['baseline_cpu_us_per_row']}: x{row['cpu_speedup_vs_naive']}); peak {row['peak_mb']} MB"
            f" (baseline {row['baseline_peak_mb']} MB)"
        )
    modelled = result["modelled_aws"]
    print(
        f"  modelled on AWS at {modelled['write_units_per_s']:,} WCU/s: {modelled['seconds']} s"
        f" (writes alone {modelled['write_bound_seconds']} s; baseline {modelled['baseline_seconds']} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench_ingest_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=MODES, help="measure one mode in this process (used by the section)")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--label", default="current")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_work(args.worker, args.file, args.rows, args.label)))
    else:
        print(json.dumps(bench_ingest_cpu(args.rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
