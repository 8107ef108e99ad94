from datetime import timedelta

import numpy as np
import onnx
import pytest

from cadence.features import FEATURE_NAMES
from cadence.scoring import load_model
from model_build import export
from model_build.dataset import build_snapshot
from model_build.export import ParityError, check_parity, to_onnx_bytes, write_model_dir
from model_build.train import CANDIDATES, build_model


@pytest.fixture(scope="module")
def snapshot(small_feeds, small_data):
    return build_snapshot(small_feeds, small_data.as_of - timedelta(days=30), 30)


@pytest.fixture(scope="module")
def fitted(snapshot):
    return {name: make(0).fit(snapshot.features, snapshot.labels) for name, make in CANDIDATES.items()}


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_sklearn_and_onnxruntime_agree_within_1e5_for_each_candidate(fitted, snapshot, name):
    onnx_bytes = to_onnx_bytes(fitted[name], "v1")

    parity = check_parity(fitted[name], onnx_bytes, snapshot.features, tolerance=1e-5)

    assert parity.max_abs_diff <= 1e-5
    assert parity.rows == len(snapshot.features)


def test_onnx_takes_one_float_input_as_wide_as_the_feature_spec(fitted):
    model = onnx.load_from_string(to_onnx_bytes(fitted["logistic_regression"], "v1"))

    (graph_input,) = model.graph.input
    dims = [d.dim_value or d.dim_param for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == export.INPUT_NAME
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[1] == len(FEATURE_NAMES)
    assert "probabilities" in [output.name for output in model.graph.output]
    assert {p.key: p.value for p in model.metadata_props}["feature_names"] == ",".join(FEATURE_NAMES)


def test_parity_guard_rejects_a_tampered_export(fitted, snapshot):
    pipeline = fitted["logistic_regression"]
    model = onnx.load_from_string(to_onnx_bytes(pipeline, "v1"))
    # Nudge the learned scaling of one feature, as a broken converter or a corrupted artefact would.
    scaler = next(node for node in model.graph.node if node.op_type == "Scaler")
    scale = next(attribute for attribute in scaler.attribute if attribute.name == "scale")
    scale.floats[FEATURE_NAMES.index("recency_days")] *= 1.5

    with pytest.raises(ParityError, match="differ"):
        check_parity(pipeline, model.SerializeToString(), snapshot.features, tolerance=1e-4)


def test_parity_guard_rejects_a_tolerance_the_export_cannot_meet(fitted, snapshot):
    pipeline = fitted["gradient_boosting"]

    with pytest.raises(ParityError):
        check_parity(pipeline, to_onnx_bytes(pipeline, "v1"), snapshot.features, tolerance=1e-12)


@pytest.mark.parametrize("tolerance", [0.0, -1e-4, float("nan"), float("inf")])
def test_parity_guard_refuses_a_meaningless_tolerance(fitted, snapshot, tolerance):
    pipeline = fitted["logistic_regression"]

    with pytest.raises(ValueError, match="tolerance"):
        check_parity(pipeline, to_onnx_bytes(pipeline, "v1"), snapshot.features, tolerance=tolerance)


def test_build_writes_nothing_when_parity_fails(small_feeds, small_data, tmp_path):
    out = tmp_path / "model"

    with pytest.raises(ParityError):
        build_model(small_feeds, small_data.as_of, 30, out, version="v1", tolerance=1e-12, with_report=False)

    assert not out.exists()


def test_write_model_dir_refuses_a_manifest_that_does_not_describe_the_bytes(tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        write_model_dir(tmp_path, b"model", {"sha256": export.sha256(b"other")}, {})

    assert list(tmp_path.iterdir()) == []


def test_model_dir_round_trips_through_the_serving_loader(fitted, snapshot, tmp_path):
    pipeline = fitted["gradient_boosting"]
    onnx_bytes = to_onnx_bytes(pipeline, "v1")
    manifest = {
        "version": "v1",
        "sha256": export.sha256(onnx_bytes),
        "feature_names": list(FEATURE_NAMES),
        "decile_thresholds": [0.5] * 9,
    }

    write_model_dir(tmp_path, onnx_bytes, manifest, {"report.html": b"<html></html>"})

    model = load_model(*export.read_model_dir(tmp_path))
    np.testing.assert_allclose(
        model.predict(snapshot.features), pipeline.predict_proba(snapshot.features)[:, 1], atol=1e-5, rtol=0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "model.onnx", "report.html"]
