"""Metrics of a propensity model on labelled rows: ranking (ROC/PR AUC), lift and gains by decile, calibration."""

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from cadence.scoring import DECILE_COUNT

CALIBRATION_BINS: Final = 10


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one model on one labelled set; ``as_dict`` is what the manifest stores."""

    rows: int
    positives: int
    base_rate: float
    roc_auc: float
    pr_auc: float
    brier: float
    top_decile_lift: float
    lift_by_decile: list[float]
    cumulative_gains_by_decile: list[float]
    calibration: list[dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(labels: np.ndarray, scores: np.ndarray) -> Evaluation:
    """Every metric the model card reports.

    Raises:
        ValueError: the labels hold a single class (AUC is undefined).
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise ValueError("evaluation needs both positive and negative labels")
    lift, gains = decile_lift_and_gains(y, p)
    return Evaluation(
        rows=len(y),
        positives=int(y.sum()),
        base_rate=float(y.mean()),
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        brier=float(brier_score_loss(y, p)),
        top_decile_lift=lift[0],
        lift_by_decile=lift,
        cumulative_gains_by_decile=gains,
        calibration=calibration_table(y, p),
    )


def decile_lift_and_gains(labels: np.ndarray, scores: np.ndarray) -> tuple[list[float], list[float]]:
    """Lift of each score decile (1 = highest scores) and the share of all positives in deciles 1..k.

    Rows are ranked by score, ties broken by position so the split is deterministic; deciles are equal-size
    slices of that ranking (np.array_split), which keeps them meaningful when a tree model repeats scores.
    """
    y = np.asarray(labels, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    base_rate = y.mean()
    total = y.sum()
    lift, gains, captured = [], [], 0.0
    for chunk in np.array_split(y[order], DECILE_COUNT):
        rate = chunk.mean() if len(chunk) else 0.0
        captured += chunk.sum()
        lift.append(float(rate / base_rate) if base_rate > 0 else 0.0)
        gains.append(float(captured / total) if total > 0 else 0.0)
    return lift, gains


def calibration_table(labels: np.ndarray, scores: np.ndarray) -> list[dict[str, float]]:
    """Mean predicted vs observed rate in equal-count score bins (empty bins left out)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    table = []
    for chunk in np.array_split(order, CALIBRATION_BINS):
        if len(chunk):
            table.append(
                {"mean_predicted": float(p[chunk].mean()), "observed_rate": float(y[chunk].mean()), "rows": len(chunk)}
            )
    return table


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates along the ROC curve, for charts."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return fpr, tpr


def decile_thresholds(scores: np.ndarray) -> list[float]:
    """The 9 descending cut points that split training scores into deciles (quantiles 0.9 .. 0.1)."""
    quantiles = np.linspace(0.9, 0.1, DECILE_COUNT - 1)
    return [float(value) for value in np.quantile(np.asarray(scores, dtype=np.float64), quantiles)]
