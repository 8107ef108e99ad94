"""Checks every published ONNX model gets before it serves, whatever it predicts (propensity, reply intent).

A model version's bytes and manifest come from ``cadence.dal.models.load_artifacts``; these helpers verify that the
bytes are the ones the manifest describes and turn them into one onnxruntime session. onnxruntime is imported only
inside ``inference_session``, so importing this module costs nothing in functions that never load a model.
"""

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cadence.errors import ModelMismatchError

if TYPE_CHECKING:
    import onnxruntime


def verify_sha256(model_bytes: bytes, manifest: Mapping[str, Any]) -> None:
    """Refuse bytes whose sha256 is not the manifest's (a partial upload, a model from another version).

    Raises:
        ModelMismatchError: the manifest has no sha256 or a different one.
    """
    expected_hash = manifest.get("sha256")
    actual_hash = hashlib.sha256(model_bytes).hexdigest()
    if not isinstance(expected_hash, str) or expected_hash.lower() != actual_hash:
        raise ModelMismatchError(f"model sha256 {actual_hash} does not match the manifest")


def manifest_version(manifest: Mapping[str, Any]) -> str:
    """The manifest's model version, the id scores and replies are stamped with.

    Raises:
        ModelMismatchError: the manifest has no version.
    """
    version = manifest.get("version")
    if not isinstance(version, str) or not version:
        raise ModelMismatchError("manifest has no version")
    return version


def inference_session(model_bytes: bytes) -> "onnxruntime.InferenceSession":
    """One CPU inference session for the bytes; the caller checks the signature it expects.

    Raises:
        ModelMismatchError: onnxruntime cannot load the bytes.
    """
    # Imported here, not at module level: functions without the model layer import this module too.
    import onnxruntime  # noqa: PLC0415
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors  # noqa: PLC0415

    load_errors = (
        ort_errors.InvalidProtobuf,
        ort_errors.InvalidGraph,
        ort_errors.InvalidArgument,
        ort_errors.Fail,
        ort_errors.NotImplemented,
        ort_errors.RuntimeException,
    )
    try:
        return onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    except load_errors as exc:
        raise ModelMismatchError(f"onnxruntime cannot load the model: {type(exc).__name__}") from exc
