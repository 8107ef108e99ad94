"""ONNX export of a fitted pipeline, the parity guard, and writing the model directory.

The whole sklearn Pipeline (scaler included) is converted, so onnxruntime sees the raw float32 features
from ``cadence.features``. Parity is checked through ``cadence.scoring.load_model``, the exact code the
score function runs, not through a second onnxruntime setup of our own.
"""

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

from cadence.errors import CadenceError
from cadence.features import FEATURE_NAMES
from cadence.scoring import DECILE_COUNT, ScoringModel, load_model

INPUT_NAME: Final = "features"
DEFAULT_TOLERANCE: Final = 1e-4
# Pinned so an upgrade of skl2onnx cannot silently emit operators an older onnxruntime lacks.
TARGET_OPSET: Final = {"": 17, "ai.onnx.ml": 3}
MODEL_FILE: Final = "model.onnx"
MANIFEST_FILE: Final = "manifest.json"


class ParityError(CadenceError):
    """onnxruntime and sklearn disagree beyond the tolerance: the export must not be published."""


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    tolerance: float
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance, "rows": self.rows}


def to_onnx_bytes(pipeline: Pipeline, version: str) -> bytes:
    """The fitted pipeline as ONNX: one float32 input of FEATURE_NAMES columns, a 'probabilities' tensor out."""
    return convert_pipeline(
        pipeline,
        (INPUT_NAME, FloatTensorType([None, len(FEATURE_NAMES)])),
        {"feature_names": ",".join(FEATURE_NAMES), "model_version": version},
    )


def convert_pipeline(pipeline: Pipeline, initial_type: tuple[str, Any], props: Mapping[str, str]) -> bytes:
    """Any fitted pipeline of ours as ONNX bytes: one input, probabilities without a ZipMap, the pinned opsets."""
    model = convert_sklearn(
        pipeline, initial_types=[initial_type], options={"zipmap": False}, target_opset=TARGET_OPSET
    )
    onnx.helper.set_model_props(model, dict(props))
    model.producer_name = "cadence.model_build"
    # skl2onnx names the graph with a random uuid: a fixed name makes the same fit export to the same bytes (sha256).
    model.graph.name = type(pipeline.steps[-1][1]).__name__
    return bytes(model.SerializeToString())


def provisional_model(onnx_bytes: bytes, version: str) -> ScoringModel:
    """Load the export through the serving code before its manifest exists (deciles not yet known)."""
    manifest = {
        "version": version,
        "sha256": sha256(onnx_bytes),
        "feature_names": list(FEATURE_NAMES),
        "decile_thresholds": [0.0] * (DECILE_COUNT - 1),
    }
    return load_model(onnx_bytes, manifest)


def check_parity(pipeline: Pipeline, onnx_bytes: bytes, features: np.ndarray, tolerance: float) -> Parity:
    """Compare sklearn and onnxruntime probabilities on the given rows.

    Raises:
        ValueError: the tolerance is not a positive number or there are no rows to compare.
        ParityError: the largest absolute difference exceeds the tolerance (or is not a number).
        ModelMismatchError: onnxruntime cannot load the export.
    """
    check_tolerance(tolerance)
    if len(features) == 0:
        raise ValueError("parity needs at least one row")
    rows = np.asarray(features, dtype=np.float32)
    expected = pipeline.predict_proba(rows)[:, 1]
    actual = provisional_model(onnx_bytes, "parity-check").predict(rows)
    return compare(expected, actual, tolerance)


def check_tolerance(tolerance: float) -> None:
    """Checked before any work, so a meaningless tolerance fails fast. Raises: ValueError."""
    if not np.isfinite(tolerance) or tolerance <= 0:
        raise ValueError("tolerance must be a positive number")


def compare(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> Parity:
    """The parity guard itself: sklearn's probabilities against onnxruntime's for the same rows, any shape.

    Raises:
        ValueError: the tolerance is not a positive number, there are no rows, or the shapes differ.
        ParityError: the largest absolute difference exceeds the tolerance (or is not a number).
    """
    check_tolerance(tolerance)
    if len(expected) == 0:
        raise ValueError("parity needs at least one row")
    if np.shape(expected) != np.shape(actual):
        raise ValueError(f"sklearn gave shape {np.shape(expected)}, onnxruntime {np.shape(actual)}")
    max_abs_diff = float(np.max(np.abs(np.asarray(expected, dtype=np.float64) - actual)))
    if not max_abs_diff <= tolerance:
        raise ParityError(f"sklearn and onnxruntime differ by {max_abs_diff:.3g} > tolerance {tolerance:.3g}")
    return Parity(max_abs_diff=max_abs_diff, tolerance=tolerance, rows=len(expected))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def estimator_params(pipeline: Pipeline) -> dict[str, Any]:
    """The final estimator's scalar parameters, for the manifest (objects such as callables are left out)."""
    estimator = pipeline.steps[-1][1]
    return {
        key: value
        for key, value in estimator.get_params(deep=False).items()
        if isinstance(value, str | int | float | bool) or value is None
    }


def environment() -> dict[str, str]:
    """The versions that produced an export, for the manifest: a parity failure after an upgrade starts here."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def write_model_dir(out_dir: Path, onnx_bytes: bytes, manifest: Mapping[str, Any], extras: Mapping[str, bytes]) -> None:
    """Write model.onnx, extras (report, charts), then manifest.json, each file replaced atomically.

    The manifest goes last: a reader between two writes sees an old manifest whose hash rejects the new model.
    """
    if manifest.get("sha256") != sha256(onnx_bytes):
        raise ValueError("manifest sha256 does not describe these model bytes")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(out_dir / MODEL_FILE, onnx_bytes)
    for name, content in extras.items():
        _write_atomic(out_dir / name, content)
    _write_atomic(out_dir / MANIFEST_FILE, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())


def read_model_dir(model_dir: Path) -> tuple[bytes, dict[str, Any]]:
    """model.onnx bytes and the parsed manifest of a model directory."""
    return (model_dir / MODEL_FILE).read_bytes(), json.loads((model_dir / MANIFEST_FILE).read_text())


def _write_atomic(path: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        # mkstemp creates owner-only files; artefacts are meant to be read by others (CI, the demo).
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
