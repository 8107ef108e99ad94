"""Training on an out-of-time split, model selection, and the whole build: fit, export, parity, model card.

With ``as_of`` the last moment of known history and ``h`` the horizon:

* candidates are fitted on the snapshot at ``as_of - 2h`` (labels from ``[as_of - 2h, as_of - h)``) and
  evaluated on the snapshot at ``as_of - h`` (labels from ``[as_of - h, as_of)``): later customers, later
  purchases, no overlap of label windows;
* the best candidate by PR AUC (then ROC AUC) is refitted with the same settings on the ``as_of - h``
  snapshot, the most recent one with complete labels, and that refit is what ships. The card's metrics
  are those of the recipe one horizon earlier, the honest estimate of how the refit will do.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from cadence.errors import InvalidInputError
from cadence.features import FEATURE_NAMES, FEATURE_SPEC
from model_build import export
from model_build.dataset import Feeds, Snapshot, build_snapshot
from model_build.evaluate import Evaluation, decile_thresholds, evaluate
from model_build.report import render_report

MIN_ROWS: Final = 20
MIN_PER_CLASS: Final = 5


class TrainingDataError(InvalidInputError):
    """The history cannot support training (too short, too few rows, or a single class)."""


def _logistic_regression(seed: int) -> Pipeline:
    # Scaling lives inside the pipeline, so it ships inside the ONNX graph.
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=1.0, max_iter=2000, random_state=seed)),
        ]
    )


def _gradient_boosting(seed: int) -> Pipeline:
    # sklearn's GradientBoosting, not HistGradientBoosting: skl2onnx 1.20 cannot convert the latter
    # from sklearn 1.9 (boolean missing-value attributes rejected by onnx.helper.make_node).
    return Pipeline(
        [
            (
                "model",
                GradientBoostingClassifier(
                    n_estimators=120,
                    max_depth=3,
                    learning_rate=0.05,
                    subsample=0.8,
                    min_samples_leaf=20,
                    random_state=seed,
                ),
            )
        ]
    )


CANDIDATES: Final[dict[str, Callable[[int], Pipeline]]] = {
    "logistic_regression": _logistic_regression,
    "gradient_boosting": _gradient_boosting,
}


@dataclass(frozen=True)
class CandidateResult:
    name: str
    evaluation: Evaluation
    scores: np.ndarray
    """Scores of the candidate (fitted at the earlier cutoff) on the evaluation snapshot."""


@dataclass(frozen=True)
class TrainingRun:
    as_of: datetime
    horizon_days: int
    earlier: Snapshot
    latest: Snapshot
    candidates: dict[str, CandidateResult]
    chosen: str
    pipeline: Pipeline
    """The chosen candidate refitted on the latest snapshot: the model that ships."""

    @property
    def chosen_result(self) -> CandidateResult:
        return self.candidates[self.chosen]


@dataclass(frozen=True)
class BuiltModel:
    manifest: dict[str, Any]
    run: TrainingRun
    onnx_bytes: bytes


def select_best(candidates: dict[str, CandidateResult]) -> str:
    """The candidate with the highest PR AUC, ROC AUC breaking ties, then the name (deterministic)."""
    return max(candidates.values(), key=lambda c: (c.evaluation.pr_auc, c.evaluation.roc_auc, c.name)).name


def train(
    feeds: Feeds,
    as_of: datetime,
    horizon_days: int,
    *,
    seed: int = 0,
    candidates: Sequence[str] = tuple(CANDIDATES),
    progress: bool = False,
) -> TrainingRun:
    """Fit every candidate at the earlier cutoff, evaluate at the later one, refit the best at the later one.

    Raises:
        TrainingDataError: a snapshot has too few rows or a single class.
        ValueError: an unknown candidate name.
    """
    unknown = [name for name in candidates if name not in CANDIDATES]
    if unknown or not candidates:
        raise ValueError(f"unknown candidates {unknown}; choose from {sorted(CANDIDATES)}")
    moment = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
    horizon = timedelta(days=horizon_days)
    earlier = build_snapshot(feeds, moment - 2 * horizon, horizon_days)
    earlier_labels = _checked_labels(earlier, "earlier (training)")
    latest = build_snapshot(feeds, moment - horizon, horizon_days)
    latest_labels = _checked_labels(latest, "latest (evaluation)")

    results: dict[str, CandidateResult] = {}
    for name in tqdm(candidates, desc="fitting candidates", unit="model", disable=not progress):
        pipeline = CANDIDATES[name](seed).fit(earlier.features, earlier_labels)
        scores = pipeline.predict_proba(latest.features)[:, 1]
        results[name] = CandidateResult(name=name, evaluation=evaluate(latest_labels, scores), scores=scores)
    chosen = select_best(results)
    final = CANDIDATES[chosen](seed).fit(latest.features, latest_labels)
    return TrainingRun(
        as_of=moment,
        horizon_days=horizon_days,
        earlier=earlier,
        latest=latest,
        candidates=results,
        chosen=chosen,
        pipeline=final,
    )


def build_model(
    feeds: Feeds,
    as_of: datetime,
    horizon_days: int,
    out_dir: Path,
    *,
    version: str,
    tolerance: float = export.DEFAULT_TOLERANCE,
    seed: int = 0,
    candidates: Sequence[str] = tuple(CANDIDATES),
    with_report: bool = True,
    progress: bool = False,
) -> BuiltModel:
    """Train, export to ONNX, check parity, then write model.onnx, manifest.json and the report into out_dir.

    Nothing is written unless parity holds.

    Raises:
        TrainingDataError: the history cannot support training.
        ParityError: onnxruntime disagrees with sklearn beyond the tolerance.
    """
    run = train(feeds, as_of, horizon_days, seed=seed, candidates=candidates, progress=progress)
    onnx_bytes = export.to_onnx_bytes(run.pipeline, version)
    # Held-out rows for the shipped model: the earlier snapshot, which it was not fitted on.
    parity = export.check_parity(run.pipeline, onnx_bytes, run.earlier.features, tolerance)
    # Deciles come from the ONNX scores of the training rows, the numbers serving will compare against.
    training_scores = export.provisional_model(onnx_bytes, version).predict(run.latest.features)
    manifest = _manifest(
        run,
        feeds=feeds,
        version=version,
        onnx_bytes=onnx_bytes,
        parity=parity,
        thresholds=decile_thresholds(training_scores),
    )
    extras = render_report(run, manifest) if with_report else {}
    export.write_model_dir(out_dir, onnx_bytes, manifest, extras)
    return BuiltModel(manifest=manifest, run=run, onnx_bytes=onnx_bytes)


def _checked_labels(snapshot: Snapshot, role: str) -> np.ndarray:
    labels = snapshot.labels
    cutoff = snapshot.cutoff.date().isoformat()
    if labels is None or len(labels) < MIN_ROWS:
        raise TrainingDataError(
            f"{role} snapshot at {cutoff} has {len(snapshot.customer_ids)} customers; need {MIN_ROWS}"
        )
    positives = int(labels.sum())
    if min(positives, len(labels) - positives) < MIN_PER_CLASS:
        raise TrainingDataError(
            f"{role} snapshot at {cutoff} has {positives} buyers of {len(labels)}; need {MIN_PER_CLASS} of each class"
        )
    return labels


def _manifest(
    run: TrainingRun,
    *,
    feeds: Feeds,
    version: str,
    onnx_bytes: bytes,
    parity: export.Parity,
    thresholds: list[float],
) -> dict[str, Any]:
    chosen = run.chosen_result
    return {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "feature_names": list(FEATURE_NAMES),
        "feature_spec": [{"name": s.name, "dtype": s.dtype, "meaning": s.meaning} for s in FEATURE_SPEC],
        "sha256": export.sha256(onnx_bytes),
        "onnx": {"input": export.INPUT_NAME, "output": "probabilities", "opset": export.TARGET_OPSET},
        "training_data": {
            "fingerprint": feeds.fingerprint(),
            "feed_rows": feeds.row_counts(),
            "training_rows": len(run.latest.customer_ids),
            "training_positives": run.latest.positives,
        },
        "label": {
            "definition": "1 when the customer has at least one order in [cutoff, cutoff + horizon_days), else 0",
            "horizon_days": run.horizon_days,
            "as_of": run.as_of.isoformat(),
            "training_cutoff": run.latest.cutoff.isoformat(),
            "evaluation": {
                "fitted_at_cutoff": run.earlier.cutoff.isoformat(),
                "evaluated_at_cutoff": run.latest.cutoff.isoformat(),
                "note": "metrics are the chosen recipe fitted one horizon earlier and scored on later customers "
                "and purchases; the shipped model is the same recipe refitted at training_cutoff",
            },
        },
        "estimator": {"name": run.chosen, "params": export.estimator_params(run.pipeline)},
        "selection": "highest pr_auc, then roc_auc, on the evaluation snapshot",
        "candidates": {name: result.evaluation.as_dict() for name, result in run.candidates.items()},
        "metrics": chosen.evaluation.as_dict(),
        "decile_thresholds": thresholds,
        "parity": parity.as_dict(),
        "environment": export.environment(),
    }
