"""Building the reply intent model from the shipped sample: quality floor, parity guard, threshold, CLI and publish."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from cadence.conversations.intent_model import INTENT_CLASSES, MODEL_KIND, load_intent_model
from cadence.dal.models import load_artifacts
from cadence.errors import ModelMismatchError
from model_build.cli import main
from model_build.export import ParityError, read_model_dir
from model_build.intent import (
    DEFAULT_DATA,
    ODD_REPLIES,
    TARGET_PRECISION,
    IntentDataError,
    build_intent_model,
    check_intent_parity,
    choose_threshold,
    read_replies,
    to_onnx_bytes,
    train_intent,
)
from model_build.publish import publish

MACRO_F1_FLOOR = 0.75


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("intent-model")
    return build_intent_model(DEFAULT_DATA, out, version="intent-t"), out


def test_the_shipped_sample_is_balanced_and_bilingual():
    replies = read_replies(DEFAULT_DATA)
    counts = np.bincount(replies.labels, minlength=len(INTENT_CLASSES))
    chinese = sum(any("\u4e00" <= character <= "\u9fff" for character in text) for text in replies.texts)

    assert 400 <= len(replies.texts) <= 600
    assert counts.min() >= 0.8 * counts.max()
    assert 0.4 <= chinese / len(replies.texts) <= 0.6


def test_training_on_the_shipped_sample_beats_the_macro_f1_floor_on_held_out_replies(built):
    evaluation = built[0].run.evaluation

    assert evaluation.macro_f1 > MACRO_F1_FLOOR
    assert all(metrics.recall > 0.5 for metrics in evaluation.per_class.values())
    assert sum(metrics.support for metrics in evaluation.per_class.values()) == len(built[0].run.held_out_texts)


def test_held_out_replies_are_not_trained_on(built):
    run = built[0].run

    assert not set(run.held_out_texts) & set(run.train_texts)


def test_onnxruntime_agrees_with_sklearn_on_held_out_and_odd_replies(built):
    result, _ = built
    rows = result.run.held_out_texts + ODD_REPLIES

    parity = check_intent_parity(result.run.pipeline, result.onnx_bytes, rows, tolerance=1e-4)

    assert parity.max_abs_diff <= 1e-4
    assert parity.rows == len(rows)
    assert result.manifest["parity"]["rows"] == len(rows)


def test_parity_guard_rejects_a_tampered_export(built):
    result, _ = built
    model = onnx.load_from_string(result.onnx_bytes)
    # Nudge the classifier's coefficients, as a broken converter or a corrupted artefact would.
    classifier = next(node for node in model.graph.node if node.op_type == "LinearClassifier")
    coefficients = next(attribute for attribute in classifier.attribute if attribute.name == "coefficients")
    coefficients.floats[: len(coefficients.floats) // 5] = [
        value * 1.5 for value in coefficients.floats[: len(coefficients.floats) // 5]
    ]

    with pytest.raises(ParityError, match="differ"):
        check_intent_parity(result.run.pipeline, model.SerializeToString(), result.run.held_out_texts, 1e-4)


def test_parity_guard_rejects_an_export_whose_idf_weights_were_changed(built):
    result, _ = built
    model = onnx.load_from_string(result.onnx_bytes)
    idf = next(
        init for init in model.graph.initializer if numpy_helper.to_array(init).ndim == 1 and init.dims[0] > 1000
    )
    idf.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(idf)[::-1].copy(), idf.name))

    with pytest.raises(ParityError):
        check_intent_parity(result.run.pipeline, model.SerializeToString(), result.run.held_out_texts, 1e-4)


def test_build_writes_nothing_when_parity_fails(tmp_path):
    out = tmp_path / "intent"

    with pytest.raises(ParityError):
        build_intent_model(DEFAULT_DATA, out, tolerance=1e-12)

    assert not out.exists()


def test_the_manifest_threshold_keeps_auto_handled_held_out_precision_at_the_target(built):
    result, out = built
    model = load_intent_model(*read_model_dir(out))
    classified = model.classify(result.run.held_out_texts)
    labels = [INTENT_CLASSES[label] for label in result.run.held_out_labels]
    handled = [
        (c.intent.value, label)
        for c, label in zip(classified, labels, strict=True)
        if c.confidence >= model.confidence_threshold
    ]

    assert 0.0 < model.confidence_threshold < 1.0
    assert sum(intent == label for intent, label in handled) / len(handled) >= TARGET_PRECISION
    assert len(handled) / len(labels) == pytest.approx(result.manifest["threshold"]["coverage"])


def test_the_manifest_records_kind_classes_metrics_and_parity(built):
    _, out = built
    manifest = json.loads((out / "manifest.json").read_text())

    assert manifest["kind"] == MODEL_KIND
    assert manifest["classes"] == list(INTENT_CLASSES)
    assert set(manifest["metrics"]["per_class"]) == set(INTENT_CLASSES)
    assert manifest["parity"]["tolerance"] == 1e-4
    assert manifest["training_data"]["rows"] == len(read_replies(DEFAULT_DATA).texts)


def test_the_same_data_and_seed_build_the_same_model(built, tmp_path):
    again = build_intent_model(DEFAULT_DATA, tmp_path / "again", version="intent-t")

    assert again.manifest["sha256"] == built[0].manifest["sha256"]


def test_choose_threshold_is_the_lowest_confidence_from_which_every_cut_is_precise_enough():
    # Six replies by falling confidence: right, right, wrong, right, right, right.
    confidence = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([0, 0, 1, 0, 0, 0])
    probabilities = np.column_stack([confidence, 1 - confidence])

    threshold = choose_threshold(labels, probabilities, target=0.75)

    # Cut at 0.8 keeps 2/3 right (< 0.75), so only the two replies above it are handled without a person,
    # even though cutting at 0.6 or 0.5 would be 4/5 and 5/6 right.
    assert threshold.confidence == 0.9
    assert threshold.coverage == pytest.approx(2 / 6)


def test_choose_threshold_hands_everything_to_a_person_when_the_most_confident_reply_is_wrong():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4]])

    threshold = choose_threshold(np.array([1, 0]), probabilities)

    assert threshold.confidence == 1.0
    assert threshold.coverage == 0.0


def test_choose_threshold_does_not_cut_inside_a_run_of_equal_confidences():
    probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.7, 0.3]])

    threshold = choose_threshold(np.array([0, 0, 1]), probabilities, target=0.6)

    # Serving compares >= 0.7: both tied replies are handled, and 2 of 3 right (0.67) still meets the target.
    assert threshold.confidence == 0.7
    assert threshold.coverage == 1.0
    strict = choose_threshold(np.array([0, 0, 1]), probabilities, target=0.7)
    assert strict.confidence == 0.9


def test_replies_are_read_as_text_so_na_and_null_stay_replies(tmp_path):
    data = tmp_path / "replies.csv"
    data.write_text('text,intent\nNA,other\nnull,other\n"a, b",other\n', encoding="utf-8")

    assert read_replies(data).texts == ("NA", "null", "a, b")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("reply,label\nhi,other\n", "header"),
        ("text,intent\nhi,spam\n", "unknown intent"),
        ("text,intent\nhi,other,extra\n", "2 fields"),
    ],
)
def test_a_malformed_sample_is_refused(tmp_path, content, message):
    data = tmp_path / "replies.csv"
    data.write_text(content, encoding="utf-8")

    with pytest.raises(IntentDataError, match=message):
        read_replies(data)


def test_training_refuses_a_sample_with_too_few_replies_of_an_intent(tmp_path):
    replies = read_replies(DEFAULT_DATA)
    data = tmp_path / "replies.csv"
    keep = [(t, INTENT_CLASSES[label]) for t, label in zip(replies.texts, replies.labels, strict=True)]
    kept = [row for row in keep if row[1] != "complaint"] + [row for row in keep if row[1] == "complaint"][:3]
    data.write_text("text,intent\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}",{i}\n' for t, i in kept))

    with pytest.raises(IntentDataError, match="complaint"):
        train_intent(read_replies(data))


def test_the_export_takes_one_string_per_reply(built):
    model = onnx.load_from_string(to_onnx_bytes(built[0].run.pipeline, "v1"))

    (graph_input,) = model.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.STRING
    assert {p.key: p.value for p in model.metadata_props}["classes"] == ",".join(INTENT_CLASSES)


def test_the_cli_writes_a_directory_publish_uploads_and_serving_loads(tmp_path, data_bucket, capsys):
    out = tmp_path / "intent-model"

    assert main(["intent", "--out", str(out), "--version", "intent-cli"]) == 0
    printed = capsys.readouterr().out
    assert main(["publish", "--model", str(out), "--bucket", data_bucket]) == 0

    model = load_intent_model(*load_artifacts(data_bucket, "intent-cli"))
    assert model.version == "intent-cli"
    for name in INTENT_CLASSES:
        assert name in printed
    assert "macro F1=" in printed
    assert "parity max diff=" in printed


def test_publish_refuses_an_intent_directory_whose_classes_were_changed(built, data_bucket, tmp_path):
    _, out = built
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    manifest = json.loads((out / "manifest.json").read_text())
    (tampered / "model.onnx").write_bytes((out / "model.onnx").read_bytes())
    (tampered / "manifest.json").write_text(json.dumps(manifest | {"classes": sorted(INTENT_CLASSES)}))

    with pytest.raises(ModelMismatchError, match="classes"):
        publish(tampered, data_bucket)


def test_the_cli_reports_a_sample_it_cannot_train_on(tmp_path, capsys):
    data = tmp_path / "replies.csv"
    data.write_text("text,intent\nhi,spam\n", encoding="utf-8")

    assert main(["intent", "--data", str(data), "--out", str(tmp_path / "out")]) == 1
    assert "unknown intent" in capsys.readouterr().err
