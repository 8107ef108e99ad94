"""Backtest: score the customers known at a date with a built model, through the serving code path."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from cadence.scoring import load_model, score_profiles
from model_build.dataset import Feeds, build_profiles
from model_build.evaluate import Evaluation, evaluate
from model_build.export import read_model_dir
from model_build.labels import purchase_labels


@dataclass(frozen=True)
class Backtest:
    scores: pd.DataFrame
    """customer_id, score, decile, model_version, scored_at and, when the outcome is known, purchased."""
    evaluation: Evaluation | None
    """Metrics against purchases in [as_of, as_of + horizon), when the feeds cover that whole window."""


def run_backtest(model_dir: Path, feeds: Feeds, as_of: datetime, horizon_days: int | None = None) -> Backtest:
    """Score every customer known before as_of with the model in model_dir, as the score function would.

    Raises:
        ModelMismatchError: the model directory does not verify.
    """
    moment = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
    onnx_bytes, manifest = read_model_dir(model_dir)
    model = load_model(onnx_bytes, manifest)
    horizon = horizon_days or int(manifest.get("label", {}).get("horizon_days", 30))
    profiles = build_profiles(feeds, moment)
    results = score_profiles(profiles, model, moment)
    frame = pd.DataFrame(
        {
            "customer_id": [r.customer_id for r in results],
            "score": [r.score for r in results],
            "decile": [r.decile for r in results],
            "model_version": [r.model_version for r in results],
            "scored_at": [r.scored_at.isoformat() for r in results],
        }
    )
    evaluation = None
    # Only a fully observed window gives honest labels; a partial one would count late buyers as non-buyers.
    last_seen = feeds.orders["order_date"].max() if len(feeds.orders) else None
    if last_seen is not None and last_seen >= pd.Timestamp(moment + timedelta(days=horizon - 1)) and len(frame):
        labels = purchase_labels(feeds.orders, frame["customer_id"].tolist(), moment, horizon)
        frame["purchased"] = labels
        if 0 < labels.sum() < len(labels):
            evaluation = evaluate(labels, frame["score"].to_numpy())
    return Backtest(scores=frame, evaluation=evaluation)
