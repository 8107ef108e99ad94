"""`make bench`: measurements the team tracks, printed as a table and written to build/bench.json.

Sections (each can be chosen with --only):
  sizes     unzipped size of every function with its layers, from `sam build`, against Lambda's 250 MB
  pipeline  the demo pipeline on a fresh local stack: time and AWS API calls per stage
  ingest    a generated customers file (INGEST_BENCH_ROWS, 1,000,000) cleaned alone and ingested on a local stack
  ingest-cpu  the same file's CPU per row (INGEST_CPU_BENCH_ROWS, 1,000,000) for cleaning and up to the DynamoDB
            request (a stubbed client, no local stack), beside the code issue 13 started from (bench_ingest_cpu)
  scoring   onnxruntime vs scikit-learn rows/s by batch size and per customer, score cold start, sizes (bench_scoring)
  activity  an orders file's DynamoDB calls and units per 1,000 rows in the activity table (ACTIVITY_BENCH_ORDERS,
            20,000), this tree's design beside the one issue 13 started from, in moto's mock_aws (bench_activity)
  audience  a campaign audience (AUDIENCE_BENCH_CUSTOMERS, 100,000) read and planned, parallel vs one segment
  dispatch  email recipients (DISPATCH_BENCH_RECIPIENTS, 5,000) sent at the SESv2 shim's rate (DISPATCH_BENCH_RATE,
            100/s): recipients/s against the rate, API calls per 1,000 recipients, cost per 1M (bench_dispatch)
  chaos     the dispatch chaos run (CHAOS_BENCH_RECIPIENTS, 20,000) on a local stack: SES throttling beyond its rate,
            10% of its calls failing, dispatch workers killed mid-batch; ledger, SES and counters checked (infra.chaos)

Speed is reported beside a baseline measured in the same run, never as an absolute threshold.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from infra.bench_activity import bench_activity
from infra.bench_audience import bench_audience
from infra.bench_dispatch import bench_dispatch
from infra.bench_ingest import bench_ingest
from infra.bench_ingest_cpu import bench_ingest_cpu
from infra.bench_scoring import bench_scoring
from infra.chaos import bench_chaos

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"
LAMBDA_UNZIPPED_LIMIT_MB = 250.0


def directory_size_mb(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 1_000_000


def sam_build() -> float:
    """Run `sam build` and return how long it took."""
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "sam"), "build", "--template-file", "template.yaml"],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        # sam looks for python3.13 on PATH: the venv's interpreter is one.
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    return time.perf_counter() - started


def function_sizes(build_dir: Path = BUILD_DIR) -> list[dict[str, Any]]:
    """Each function's unzipped size with the layers it uses (Globals' layers included), in MB."""
    built = yaml_parse((build_dir / "template.yaml").read_text())
    resources = built["Resources"]
    global_layers = built.get("Globals", {}).get("Function", {}).get("Layers", [])
    rows = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        layers = [layer["Ref"] for layer in [*global_layers, *resource["Properties"].get("Layers", [])]]
        code_mb = directory_size_mb(build_dir / resource["Properties"]["CodeUri"])
        layer_mb = {layer: directory_size_mb(build_dir / layer) for layer in layers}
        total = code_mb + sum(layer_mb.values())
        rows.append(
            {
                "function": logical_id,
                "code_mb": round(code_mb, 1),
                "layers_mb": {name: round(size, 1) for name, size in layer_mb.items()},
                "unzipped_mb": round(total, 1),
                "limit_mb": LAMBDA_UNZIPPED_LIMIT_MB,
                "share_of_limit": round(total / LAMBDA_UNZIPPED_LIMIT_MB, 3),
            }
        )
    return rows


def bench_sizes() -> dict[str, Any]:
    build_seconds = sam_build()
    rows = function_sizes()
    print(f"\nfunction sizes after sam build ({build_seconds:.0f} s), unzipped, against Lambda's 250 MB")
    print(f"  {'function':<18} {'code MB':>8} {'layers MB':>10} {'total MB':>9} {'of limit':>9}")
    for row in rows:
        layers = sum(row["layers_mb"].values())
        print(
            f"  {row['function']:<18} {row['code_mb']:>8.1f} {layers:>10.1f} {row['unzipped_mb']:>9.1f}"
            f" {row['share_of_limit']:>8.0%}"
        )
    return {"sam_build_s": round(build_seconds, 1), "functions": rows}


def bench_pipeline() -> dict[str, Any]:
    from infra.demo import run_demo  # noqa: PLC0415 - the local stack loads only for this section

    summary = run_demo(customers=2000, build_dir=ROOT / "build" / "bench")
    print(f"\ndemo pipeline end to end: {summary['duration_s']} s")
    return summary


SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "sizes": bench_sizes,
    "pipeline": bench_pipeline,
    "scoring": bench_scoring,
    "ingest": bench_ingest,
    "ingest-cpu": bench_ingest_cpu,
    "activity": bench_activity,
    "audience": bench_audience,
    "dispatch": bench_dispatch,
    "chaos": bench_chaos,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    args = parser.parse_args(argv)
    results = {name: SECTIONS[name]() for name in args.only}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
