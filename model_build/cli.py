"""Argument parsing and the six commands; each command is a thin call into the package."""

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cadence.errors import CadenceError
from model_build import synthetic
from model_build.backtest import run_backtest
from model_build.dataset import feeds_from_synthetic, read_feeds
from model_build.export import DEFAULT_TOLERANCE
from model_build.intent import DEFAULT_DATA, DEFAULT_VERSION, build_intent_model
from model_build.publish import publish
from model_build.train import CANDIDATES, BuiltModel, build_model

DEMO_SEED = 42
DEMO_VERSION = "demo-1"


def parse_date(value: str) -> datetime:
    """An ISO date or date-time; a date means midnight UTC, a naive time is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date: {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.handler(args)
    except (CadenceError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _generate(args: argparse.Namespace) -> None:
    data = synthetic.generate(args.customers, args.seed, args.as_of, progress=True)
    paths = synthetic.write_feeds(data, args.out)
    print(f"wrote {len(data.customers)} customers ({len(data.bad_rows)} deliberately bad), {len(data.orders)} orders,")
    print(f"{len(data.events)} events as of {data.as_of.date()} into {', '.join(str(p) for p in paths.values())}")


def _train(args: argparse.Namespace) -> None:
    feeds = read_feeds(args.orders, args.customers, args.events)
    version = args.version or f"{args.as_of:%Y%m%d}-{feeds.fingerprint()[:8]}"
    built = build_model(
        feeds,
        args.as_of,
        args.horizon_days,
        args.out,
        version=version,
        tolerance=args.tolerance,
        seed=args.seed,
        candidates=args.candidates,
        with_report=not args.no_report,
        progress=True,
    )
    _print_summary(built, args.out)


def _demo_model(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    as_of = today()
    data = synthetic.generate(args.customers, DEMO_SEED, as_of, progress=True)
    synthetic.write_feeds(data, args.data_dir)
    built = build_model(
        feeds_from_synthetic(data), as_of, 30, args.out, version=args.version, seed=DEMO_SEED, progress=True
    )
    _print_summary(built, args.out)
    print(f"demo data in {args.data_dir}; took {time.perf_counter() - started:.1f}s")


def _score(args: argparse.Namespace) -> None:
    feeds = read_feeds(args.orders, args.customers, args.events)
    result = run_backtest(args.model, feeds, args.as_of, args.horizon_days)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.scores.to_csv(args.out, index=False)
    print(f"scored {len(result.scores)} customers as of {args.as_of.date()} into {args.out}")
    if result.evaluation is not None:
        e = result.evaluation
        print(f"backtest: roc_auc={e.roc_auc:.3f} pr_auc={e.pr_auc:.3f} top_decile_lift={e.top_decile_lift:.2f}")
    else:
        print("backtest: the feeds do not cover the whole horizon after as_of, so no outcome metrics")


def _intent(args: argparse.Namespace) -> None:
    manifest = build_intent_model(
        args.data, args.out, version=args.version, tolerance=args.tolerance, seed=args.seed
    ).manifest
    metrics = manifest["metrics"]
    held_out = manifest["training_data"]["held_out_rows"]
    print(f"{'intent':<16} precision  recall  held-out replies ({held_out})")
    for name, scores in metrics["per_class"].items():
        print(f"{name:<16} {scores['precision']:>9.3f} {scores['recall']:>7.3f} {scores['support']:>5}")
    threshold = manifest["threshold"]
    print(
        f"model {manifest['version']} macro F1={metrics['macro_f1']:.3f} accuracy={metrics['accuracy']:.3f} "
        f"confidence threshold={manifest['confidence_threshold']:.3f} (handles {threshold['coverage']:.0%} "
        f"of held-out replies) parity max diff={manifest['parity']['max_abs_diff']:.2e} -> {args.out}"
    )


def _publish(args: argparse.Namespace) -> None:
    keys = publish(args.model, args.bucket, endpoint_url=args.endpoint_url)
    print("uploaded " + ", ".join(f"s3://{args.bucket}/{key}" for key in keys))


def _print_summary(built: BuiltModel, out: Path) -> None:
    manifest = built.manifest
    for name, metrics in manifest["candidates"].items():
        marker = "*" if name == manifest["estimator"]["name"] else " "
        print(
            f"{marker} {name:<20} roc_auc={metrics['roc_auc']:.3f} pr_auc={metrics['pr_auc']:.3f} "
            f"top_decile_lift={metrics['top_decile_lift']:.2f}"
        )
    metrics = manifest["metrics"]
    print(
        f"model {manifest['version']} ({manifest['estimator']['name']}) AUC={metrics['roc_auc']:.3f} "
        f"PR AUC={metrics['pr_auc']:.3f} top-decile lift={metrics['top_decile_lift']:.2f} "
        f"parity max diff={manifest['parity']['max_abs_diff']:.2e} -> {out}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model_build",
        description="Build, check, backtest and publish the cadence propensity and reply intent models.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write synthetic customers/orders/events CSVs")
    generate.add_argument("--customers", type=int, default=5000)
    generate.add_argument("--seed", type=int, default=DEMO_SEED)
    generate.add_argument("--as-of", type=parse_date, default=today(), help="end of the history (default: today)")
    generate.add_argument("--out", type=Path, required=True)
    generate.set_defaults(handler=_generate)

    train = commands.add_parser("train", help="train, compare, export and check a model from feed CSVs")
    _add_feed_arguments(train)
    train.add_argument("--horizon-days", type=int, default=30)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--version", help="model version (default: <as-of>-<data fingerprint>)")
    train.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="max sklearn/ONNX difference")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES), default=list(CANDIDATES))
    train.add_argument("--no-report", action="store_true", help="skip report.html and the charts")
    train.set_defaults(handler=_train)

    score = commands.add_parser("score", help="backtest: score the customers known at --as-of with a model dir")
    score.add_argument("--model", type=Path, required=True)
    _add_feed_arguments(score)
    score.add_argument("--horizon-days", type=int, help="outcome window (default: the model's label horizon)")
    score.add_argument("--out", type=Path, required=True)
    score.set_defaults(handler=_score)

    demo = commands.add_parser("demo-model", help="generate demo data and train the demo model on it")
    demo.add_argument("--out", type=Path, default=Path("build/model"))
    demo.add_argument("--customers", type=int, default=5000)
    demo.add_argument("--data-dir", type=Path, default=Path("build/demo-data"))
    demo.add_argument("--version", default=DEMO_VERSION)
    demo.set_defaults(handler=_demo_model)

    intent = commands.add_parser("intent", help="train, export and check the reply intent model from labelled replies")
    intent.add_argument("--data", type=Path, default=DEFAULT_DATA, help="text,intent CSV (default: the shipped sample)")
    intent.add_argument("--out", type=Path, required=True)
    intent.add_argument("--version", default=DEFAULT_VERSION)
    intent.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="max sklearn/ONNX difference")
    intent.add_argument("--seed", type=int, default=0, help="seeds the held-out split and the estimator")
    intent.set_defaults(handler=_intent)

    publish = commands.add_parser("publish", help="upload model.onnx and manifest.json to s3://B/models/<version>/")
    publish.add_argument("--model", type=Path, required=True)
    publish.add_argument("--bucket", required=True)
    publish.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:4566 for the local stack")
    publish.set_defaults(handler=_publish)
    return parser


def _add_feed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orders", type=Path, required=True)
    parser.add_argument("--customers", type=Path)
    parser.add_argument("--events", type=Path)
    parser.add_argument("--as-of", type=parse_date, required=True, help="ISO date; history ends here")
