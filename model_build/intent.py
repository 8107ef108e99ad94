"""The reply intent model: read the labelled replies, fit on a stratified split, evaluate, export, check parity.

Features are character 1-3-grams (TF-IDF), which need no tokenizer for Chinese and shrug off typos, over replies
passed through ``cadence.conversations.intent_model.prepared``, the function serving applies too. The model that
ships is the one fitted on the training split: its held-out metrics, its confidence threshold and the parity rows
all describe exactly the model routing will use (with a few hundred replies, a refit on everything would leave the
threshold uncalibrated for a gain too small to measure).

Converter limits found with skl2onnx 1.20 / onnxruntime 1.32, each verified by the parity guard:

* ``analyzer="char"`` converts, ``"char_wb"`` does not;
* ``lowercase=True`` adds a StringNormalizer that needs an en_US.UTF-8 locale Lambda lacks (and casefold is done
  by ``prepared`` anyway), so ``lowercase=False``;
* ``sublinear_tf=True`` gives repeated n-grams other weights in onnxruntime than in sklearn, so it stays off;
* n-grams over runs of whitespace differ, so ``prepared`` collapses them to one space.
"""

import csv
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from cadence.conversations.intent_model import (
    INTENT_CLASSES,
    MODEL_KIND,
    PROBABILITY_OUTPUT,
    TEXT_INPUT,
    IntentModel,
    load_intent_model,
    prepared,
)
from cadence.errors import InvalidInputError
from model_build import export

DEFAULT_DATA: Final = Path(__file__).parent / "data" / "intent_replies.csv"
DEFAULT_VERSION: Final = "intent-1"
HELD_OUT_SHARE: Final = 0.2
TARGET_PRECISION: Final = 0.9
"""Of the replies handled without a person, at least this share must get the right intent (on held-out replies)."""
MIN_PER_CLASS: Final = 10
# Strings no labelled reply resembles, checked for parity besides the held-out rows: onnxruntime's tokenizer and
# n-gram operators must agree with sklearn on empty input, lone emoji, odd whitespace and very long text too.
ODD_REPLIES: Final = (
    "",
    "   ",
    "\U0001f600\U0001f600\U0001f600",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "a\t\tb\n\nc",
    "\ud83d broken emoji",
    "\uff33\uff21\uff36\uff25\uff12\uff10",
    "订单" * 400 + " where is my order " * 100,
)


class IntentDataError(InvalidInputError):
    """The labelled replies cannot be trained on: a bad header, an unknown intent, too few replies of a class."""


@dataclass(frozen=True)
class Replies:
    texts: tuple[str, ...]
    labels: np.ndarray
    """Index of each reply's intent in INTENT_CLASSES (the probability column order)."""
    sha256: str


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}


@dataclass(frozen=True)
class Threshold:
    """The confidence from which replies are handled without a person, and what that buys on held-out replies."""

    confidence: float
    precision: float | None
    """None when no reply is handled without a person."""
    coverage: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_precision": TARGET_PRECISION,
            "precision_at_threshold": self.precision,
            "coverage": self.coverage,
            "rule": "the lowest held-out confidence t such that, for every threshold >= t, the replies with "
            "confidence >= it are classified right at least target_precision of the time",
        }


@dataclass(frozen=True)
class IntentEvaluation:
    per_class: dict[str, ClassMetrics]
    macro_f1: float
    accuracy: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_class": {name: metrics.as_dict() for name, metrics in self.per_class.items()},
            "macro_f1": self.macro_f1,
            "accuracy": self.accuracy,
        }


@dataclass(frozen=True)
class IntentRun:
    pipeline: Pipeline
    train_texts: tuple[str, ...]
    held_out_texts: tuple[str, ...]
    held_out_labels: np.ndarray
    evaluation: IntentEvaluation


@dataclass(frozen=True)
class BuiltIntentModel:
    manifest: dict[str, Any]
    run: IntentRun
    onnx_bytes: bytes


def read_replies(path: Path) -> Replies:
    """The labelled replies of a ``text,intent`` CSV (read as text: a reply "NA" or "null" stays a reply).

    Raises:
        IntentDataError: the header is not text,intent, a row has another number of fields or an unknown intent.
        FileNotFoundError: there is no such file.
    """
    content = path.read_bytes()
    rows = list(csv.reader(content.decode("utf-8").splitlines()))
    if not rows or rows[0] != ["text", "intent"]:
        raise IntentDataError(f"{path.name}: the header must be text,intent")
    texts: list[str] = []
    labels: list[int] = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise IntentDataError(f"{path.name} line {number}: expected 2 fields, found {len(row)}")
        if row[1] not in INTENT_CLASSES:
            raise IntentDataError(f"{path.name} line {number}: unknown intent {row[1]!r}")
        texts.append(row[0])
        labels.append(INTENT_CLASSES.index(row[1]))
    return Replies(texts=tuple(texts), labels=np.asarray(labels, dtype=np.int64), sha256=export.sha256(content))


def make_pipeline(seed: int) -> Pipeline:
    """TF-IDF over character 1-3-grams, then a multinomial logistic regression (the lbfgs default)."""
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False, sublinear_tf=False)),
            ("model", LogisticRegression(C=10.0, max_iter=2000, random_state=seed)),
        ]
    )


def train_intent(replies: Replies, *, seed: int = 0) -> IntentRun:
    """Fit on a seeded stratified 80% of the replies and evaluate on the other 20%.

    Raises:
        IntentDataError: an intent has fewer than MIN_PER_CLASS replies.
    """
    counts = Counter(int(label) for label in replies.labels)
    scarce = [name for index, name in enumerate(INTENT_CLASSES) if counts[index] < MIN_PER_CLASS]
    if scarce:
        raise IntentDataError(f"need {MIN_PER_CLASS} replies of each intent; too few of {scarce}")
    texts = [prepared(text) for text in replies.texts]
    train_texts, held_out_texts, train_labels, held_out_labels = train_test_split(
        texts, replies.labels, test_size=HELD_OUT_SHARE, stratify=replies.labels, random_state=seed
    )
    pipeline = make_pipeline(seed).fit(train_texts, train_labels)
    predicted = pipeline.predict(held_out_texts)
    return IntentRun(
        pipeline=pipeline,
        train_texts=tuple(train_texts),
        held_out_texts=tuple(held_out_texts),
        held_out_labels=np.asarray(held_out_labels),
        evaluation=evaluate_intents(np.asarray(held_out_labels), predicted),
    )


def evaluate_intents(labels: np.ndarray, predicted: np.ndarray) -> IntentEvaluation:
    """Per-intent precision, recall and F1, macro F1 and accuracy (an intent never predicted has precision 0)."""
    columns = list(range(len(INTENT_CLASSES)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=columns, zero_division=0)
    return IntentEvaluation(
        per_class={
            name: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, name in enumerate(INTENT_CLASSES)
        },
        macro_f1=float(f1_score(labels, predicted, labels=columns, average="macro", zero_division=0)),
        accuracy=float(accuracy_score(labels, predicted)),
    )


def choose_threshold(labels: np.ndarray, probabilities: np.ndarray, target: float = TARGET_PRECISION) -> Threshold:
    """The lowest confidence from which every higher threshold keeps the precision of auto-handled replies >= target.

    Precision is not monotonic in the threshold; requiring it at every higher cut as well keeps one lucky reply
    from lowering the threshold. When even the most confident reply is wrong, the threshold is 1.0: a person reads
    every reply.
    """
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    order = np.argsort(-confidence, kind="stable")
    # Precision of "handle every reply at least this confident", from the most confident down.
    precision = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    good = precision >= target
    # The longest prefix (most confident first) in which every cut is good.
    prefix = len(good) if good.all() else int(np.argmin(good))
    # Ties: a cut inside a run of equal confidences cannot be served; keep only cuts after a whole run.
    while 0 < prefix < len(order) and confidence[order[prefix]] == confidence[order[prefix - 1]]:
        prefix -= 1
    if prefix == 0:
        return Threshold(confidence=1.0, precision=None, coverage=0.0)
    return Threshold(
        confidence=float(confidence[order[prefix - 1]]),
        precision=float(precision[prefix - 1]),
        coverage=prefix / len(order),
    )


def to_onnx_bytes(pipeline: Pipeline, version: str) -> bytes:
    """The whole text pipeline as ONNX: one string per reply in, a (n, 5) 'probabilities' tensor out."""
    with warnings.catch_warnings():
        # skl2onnx warns that char n-grams "may not work"; the parity guard checks that they do.
        warnings.filterwarnings("ignore", message="The conversion of CountVectorizer may not work")
        return export.convert_pipeline(
            pipeline,
            (TEXT_INPUT, StringTensorType([None, 1])),
            {"classes": ",".join(INTENT_CLASSES), "model_version": version, "kind": MODEL_KIND},
        )


def provisional_intent_model(onnx_bytes: bytes, version: str) -> IntentModel:
    """Load the export through the serving code before its manifest exists (threshold not yet known)."""
    manifest = {
        "kind": MODEL_KIND,
        "version": version,
        "sha256": export.sha256(onnx_bytes),
        "classes": list(INTENT_CLASSES),
        "confidence_threshold": 1.0,
    }
    return load_intent_model(onnx_bytes, manifest)


def check_intent_parity(pipeline: Pipeline, onnx_bytes: bytes, texts: Sequence[str], tolerance: float) -> export.Parity:
    """sklearn's and onnxruntime's probabilities (all five columns) on the replies, each prepared as serving does.

    Raises:
        ValueError: the tolerance is not a positive number or there are no replies.
        ParityError: the largest absolute difference exceeds the tolerance.
        ModelMismatchError: the serving code refuses the export.
    """
    export.check_tolerance(tolerance)
    expected = pipeline.predict_proba([prepared(text) for text in texts])
    actual = provisional_intent_model(onnx_bytes, "parity-check").probabilities(texts)
    return export.compare(expected, actual, tolerance)


def build_intent_model(
    data: Path,
    out_dir: Path,
    *,
    version: str = DEFAULT_VERSION,
    tolerance: float = export.DEFAULT_TOLERANCE,
    seed: int = 0,
) -> BuiltIntentModel:
    """Train, export to ONNX, check parity, choose the threshold, then write model.onnx and manifest.json.

    Nothing is written unless parity holds.

    Raises:
        IntentDataError: the labelled replies cannot be trained on.
        ParityError: onnxruntime disagrees with sklearn beyond the tolerance.
    """
    export.check_tolerance(tolerance)
    replies = read_replies(data)
    run = train_intent(replies, seed=seed)
    onnx_bytes = to_onnx_bytes(run.pipeline, version)
    parity = check_intent_parity(run.pipeline, onnx_bytes, run.held_out_texts + ODD_REPLIES, tolerance)
    # The threshold comes from onnxruntime's probabilities, the numbers routing will compare against it.
    held_out = provisional_intent_model(onnx_bytes, version).probabilities(run.held_out_texts)
    threshold = choose_threshold(run.held_out_labels, held_out)
    manifest = _manifest(
        run, replies=replies, data=data, version=version, onnx_bytes=onnx_bytes, parity=parity, threshold=threshold
    )
    export.write_model_dir(out_dir, onnx_bytes, manifest, {})
    return BuiltIntentModel(manifest=manifest, run=run, onnx_bytes=onnx_bytes)


def _manifest(
    run: IntentRun,
    *,
    replies: Replies,
    data: Path,
    version: str,
    onnx_bytes: bytes,
    parity: export.Parity,
    threshold: Threshold,
) -> dict[str, Any]:
    counts = Counter(INTENT_CLASSES[int(label)] for label in replies.labels)
    tfidf = run.pipeline.named_steps["tfidf"]
    return {
        "kind": MODEL_KIND,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sha256": export.sha256(onnx_bytes),
        "classes": list(INTENT_CLASSES),
        "preprocessing": "cadence.conversations.intent_model.prepared: NFKC, casefold, trim, whitespace runs to one "
        "space, lone surrogates to '?'",
        "features": {
            "analyzer": tfidf.analyzer,
            "ngram_range": list(tfidf.ngram_range),
            "vocabulary_size": len(tfidf.vocabulary_),
        },
        "estimator": {"name": "logistic_regression", "params": export.estimator_params(run.pipeline)},
        "onnx": {"input": TEXT_INPUT, "output": PROBABILITY_OUTPUT, "opset": export.TARGET_OPSET},
        "training_data": {
            "file": data.name,
            "sha256": replies.sha256,
            "rows": len(replies.texts),
            "per_class": {name: counts[name] for name in INTENT_CLASSES},
            "training_rows": len(run.train_texts),
            "held_out_rows": len(run.held_out_texts),
            "split": f"stratified, held-out share {HELD_OUT_SHARE}, seeded",
        },
        "metrics": run.evaluation.as_dict(),
        "confidence_threshold": threshold.confidence,
        "threshold": threshold.as_dict(),
        "parity": parity.as_dict(),
        "environment": export.environment(),
    }
