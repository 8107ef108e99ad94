"""The reply intent model: verify a published artefact, classify a batch of replies in one onnxruntime call.

The whole text pipeline (character 1-3-gram TF-IDF, then a multinomial logistic regression) is inside the ONNX
graph, which takes one string per reply. Only ``prepared`` runs before it, here, and model_build trains on the same
function: ONNX has no NFKC or casefold, and onnxruntime's n-grams disagree with sklearn's across runs of whitespace.

No boto3 here beyond ``cadence.dal.models.load_artifacts``; onnxruntime is imported only when a model is loaded.
"""

from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from cadence.conversations.intents import Classified, Intent
from cadence.conversations.keywords import normalised
from cadence.dal import models
from cadence.errors import ModelMismatchError
from cadence.model_artifacts import inference_session, manifest_version, verify_sha256
from cadence.observability import logger

if TYPE_CHECKING:
    import onnxruntime

MODEL_KIND: Final = "intent"
"""The manifest ``kind`` of an intent model; a propensity model's manifest has none."""
INTENT_CLASSES: Final = tuple(intent.value for intent in Intent)
"""The probability columns, in order: the Intent values in declaration order."""
TEXT_INPUT: Final = "text"
PROBABILITY_OUTPUT: Final = "probabilities"
_INTENTS: Final = tuple(Intent)


def prepared(text: str) -> str:
    """A reply as the model sees it, in training and serving: normalised, whitespace runs as one space.

    Lone surrogates (a broken emoji from a JSON escape) become "?", as onnxruntime takes only valid UTF-8.
    """
    valid = normalised(text).encode("utf-8", "replace").decode("utf-8")
    return " ".join(valid.split())


class IntentModel:
    """A verified intent model: one onnxruntime session and the confidence below which a person reads the reply."""

    def __init__(self, session: "onnxruntime.InferenceSession", version: str, confidence_threshold: float):
        self._session = session
        self._input_name = session.get_inputs()[0].name
        self._version = version
        self._confidence_threshold = confidence_threshold

    @property
    def version(self) -> str:
        return self._version

    @property
    def confidence_threshold(self) -> float:
        """Replies classified with less confidence than this go to a person (chosen on held-out replies)."""
        return self._confidence_threshold

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """One row per reply, one column per INTENT_CLASSES entry, from one onnxruntime call."""
        if not texts:
            return np.empty((0, len(INTENT_CLASSES)), dtype=np.float64)
        batch = np.array([prepared(text) for text in texts], dtype=object).reshape(-1, 1)
        (probabilities,) = self._session.run([PROBABILITY_OUTPUT], {self._input_name: batch})
        return np.asarray(probabilities, dtype=np.float64)

    def classify(self, texts: Sequence[str]) -> list[Classified]:
        """The most likely intent of each reply and its probability, in input order."""
        probabilities = self.probabilities(texts)
        best = np.argmax(probabilities, axis=1)
        return [
            Classified(intent=_INTENTS[column], confidence=float(row[column]))
            for row, column in zip(probabilities, best, strict=True)
        ]


def load_intent_model(model_bytes: bytes, manifest: Mapping[str, Any]) -> IntentModel:
    """Verify model bytes against their manifest and the Intent classes, then build one inference session.

    Raises:
        ModelMismatchError: the kind, hash, version, classes, threshold or ONNX signature do not match.
    """
    if manifest.get("kind") != MODEL_KIND:
        raise ModelMismatchError(f"manifest kind is {manifest.get('kind')!r}, not {MODEL_KIND!r}")
    verify_sha256(model_bytes, manifest)
    version = manifest_version(manifest)
    classes = manifest.get("classes")
    if not isinstance(classes, list | tuple) or tuple(classes) != INTENT_CLASSES:
        raise ModelMismatchError("manifest classes differ from cadence.conversations.intents.Intent")
    threshold = manifest.get("confidence_threshold")
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0:
        raise ModelMismatchError("manifest confidence_threshold must be a number in [0, 1]")
    return IntentModel(_session(model_bytes), version, float(threshold))


@cache
def loaded_intent_model(bucket: str, version: str) -> IntentModel:
    """The intent model the template names, fetched and verified once per container."""
    model_bytes, manifest = models.load_artifacts(bucket, version)
    model = load_intent_model(model_bytes, manifest)
    logger.info("intent model loaded", extra={"model_version": model.version})
    return model


def _session(model_bytes: bytes) -> "onnxruntime.InferenceSession":
    session = inference_session(model_bytes)
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(string)":
        raise ModelMismatchError("intent model must take one string tensor")
    outputs = {output.name: output for output in session.get_outputs()}
    if PROBABILITY_OUTPUT not in outputs:
        raise ModelMismatchError(f"intent model has no {PROBABILITY_OUTPUT!r} output (export with zipmap=False)")
    if outputs[PROBABILITY_OUTPUT].shape[-1] != len(INTENT_CLASSES):
        raise ModelMismatchError(f"intent model must output {len(INTENT_CLASSES)} probabilities per reply")
    return session
