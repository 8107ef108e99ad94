"""Scoring with the exported propensity model: verify an artefact, score profiles in one batch, assign deciles.

No boto3 here: ``cadence.dal.models.load_artifacts`` fetches the bytes and the manifest, ``load_model``
checks them. onnxruntime is imported only when a model is loaded, so modules that merely use
``ScoreResult`` or ``assign_deciles`` work in functions without the model layer.
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from cadence.errors import InvalidInputError, ModelMismatchError
from cadence.features import FEATURE_NAMES, build_feature_matrix
from cadence.model_artifacts import inference_session, manifest_version, verify_sha256

if TYPE_CHECKING:
    import onnxruntime

DECILE_COUNT: Final = 10
PROBABILITY_OUTPUT: Final = "probabilities"


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """One customer's propensity: decile 1 holds the customers most likely to buy."""

    customer_id: str
    score: float
    decile: int
    model_version: str
    scored_at: datetime


class ScoringModel:
    """A verified model: one onnxruntime session plus the decile cut points learned with it."""

    def __init__(self, session: "onnxruntime.InferenceSession", version: str, decile_thresholds: Sequence[float]):
        self._session = session
        self._input_name = session.get_inputs()[0].name
        self._version = version
        self._thresholds = np.asarray(decile_thresholds, dtype=np.float64)

    @property
    def version(self) -> str:
        return self._version

    @property
    def decile_thresholds(self) -> tuple[float, ...]:
        return tuple(float(value) for value in self._thresholds)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row, from one onnxruntime call.

        Raises:
            InvalidInputError: the matrix is not 2-D with one column per feature.
        """
        if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
            raise InvalidInputError(f"feature matrix has shape {matrix.shape}, expected (n, {len(FEATURE_NAMES)})")
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        features = np.ascontiguousarray(matrix, dtype=np.float32)
        (probabilities,) = self._session.run([PROBABILITY_OUTPUT], {self._input_name: features})
        return np.asarray(probabilities, dtype=np.float64)[:, 1]

    def deciles(self, scores: np.ndarray) -> np.ndarray:
        """Decile 1..10 of each score against this model's training cut points."""
        return assign_deciles(scores, self._thresholds)


def assign_deciles(scores: np.ndarray, thresholds: np.ndarray | Sequence[float]) -> np.ndarray:
    """Decile of each score given 9 descending cut points: 1 when score >= thresholds[0], 10 below thresholds[8]."""
    ascending = np.asarray(thresholds, dtype=np.float64)[::-1]
    # Cut points above a score push it one decile down; a score equal to a cut point belongs to the upper decile.
    above = len(ascending) - np.searchsorted(ascending, np.asarray(scores, dtype=np.float64), side="right")
    return (above + 1).astype(np.int64)


def load_model(model_bytes: bytes, manifest: Mapping[str, Any]) -> ScoringModel:
    """Verify model bytes against their manifest and the feature spec, then build one inference session.

    Raises:
        ModelMismatchError: the hash, feature names, decile thresholds or ONNX signature do not match.
    """
    verify_sha256(model_bytes, manifest)
    names = manifest.get("feature_names")
    if not isinstance(names, list | tuple) or tuple(names) != FEATURE_NAMES:
        raise ModelMismatchError("manifest feature_names differ from cadence.features.FEATURE_NAMES")
    version = manifest_version(manifest)
    thresholds = _decile_thresholds(manifest.get("decile_thresholds"))
    return ScoringModel(_session(model_bytes), version, thresholds)


def score_profiles(profiles: Sequence[Mapping[str, Any]], model: ScoringModel, as_of: datetime) -> list[ScoreResult]:
    """Score profiles as of a moment in one model call; results keep the input order.

    Raises:
        InvalidInputError: a profile has no customer_id.
    """
    customer_ids = [profile.get("customer_id") for profile in profiles]
    if any(not isinstance(customer_id, str) or not customer_id for customer_id in customer_ids):
        raise InvalidInputError("every profile to score needs a customer_id")
    scores = model.predict(build_feature_matrix(profiles, as_of))
    deciles = model.deciles(scores)
    return [
        ScoreResult(
            customer_id=str(customer_id),
            score=float(score),
            decile=int(decile),
            model_version=model.version,
            scored_at=as_of,
        )
        for customer_id, score, decile in zip(customer_ids, scores, deciles, strict=True)
    ]


def _decile_thresholds(value: Any) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != DECILE_COUNT - 1:
        raise ModelMismatchError(f"manifest needs {DECILE_COUNT - 1} decile_thresholds")
    if not all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
        raise ModelMismatchError("decile_thresholds must be numbers")
    thresholds = [float(item) for item in value]
    if not all(math.isfinite(item) for item in thresholds) or any(
        upper < lower for upper, lower in itertools.pairwise(thresholds)
    ):
        raise ModelMismatchError("decile_thresholds must be finite and descending")
    return thresholds


def _session(model_bytes: bytes) -> "onnxruntime.InferenceSession":
    session = inference_session(model_bytes)
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or inputs[0].shape[-1] != len(FEATURE_NAMES):
        raise ModelMismatchError(f"model must take one float tensor of {len(FEATURE_NAMES)} features")
    if PROBABILITY_OUTPUT not in {output.name for output in session.get_outputs()}:
        raise ModelMismatchError(f"model has no {PROBABILITY_OUTPUT!r} output (export with zipmap=False)")
    return session
