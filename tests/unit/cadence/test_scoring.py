import hashlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from cadence.errors import InvalidInputError, ModelMismatchError
from cadence.features import FEATURE_NAMES, build_feature_matrix
from cadence.scoring import ScoreResult, assign_deciles, load_model, score_profiles
from model_build.export import to_onnx_bytes

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
THRESHOLDS = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]


def fixture_profiles(count, seed=0):
    rng = np.random.default_rng(seed)
    profiles = []
    for index in range(count):
        orders = int(rng.integers(0, 6))
        profile = {"customer_id": f"C{index:04d}", "order_count": orders, "email": "a@b.cn", "consent_email": True}
        if orders:
            profile["total_spend"] = round(float(rng.uniform(20, 900)), 2)
            profile["last_order_at"] = (AS_OF - timedelta(days=int(rng.integers(1, 300)))).isoformat()
        if rng.random() < 0.7:
            profile["last_visit_at"] = (AS_OF - timedelta(days=int(rng.integers(0, 200)))).isoformat()
        profiles.append(profile)
    return profiles


@pytest.fixture(scope="module")
def fitted():
    profiles = fixture_profiles(200)
    features = build_feature_matrix(profiles, AS_OF)
    recency = features[:, FEATURE_NAMES.index("recency_days")]
    labels = (recency < np.median(recency)).astype(int)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(features, labels)
    return pipeline, to_onnx_bytes(pipeline, "v-test"), features


def manifest_for(model_bytes, **changes):
    manifest = {
        "version": "v-test",
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "feature_names": list(FEATURE_NAMES),
        "decile_thresholds": THRESHOLDS,
    }
    return manifest | changes


def test_predict_matches_sklearn_within_1e5(fitted):
    pipeline, model_bytes, features = fitted

    model = load_model(model_bytes, manifest_for(model_bytes))

    np.testing.assert_allclose(model.predict(features), pipeline.predict_proba(features)[:, 1], atol=1e-5, rtol=0)
    assert model.version == "v-test"


def test_load_model_rejects_bytes_whose_hash_differs_from_the_manifest(fitted):
    _, model_bytes, _ = fitted

    with pytest.raises(ModelMismatchError, match="sha256"):
        load_model(model_bytes + b"\0", manifest_for(model_bytes))
    with pytest.raises(ModelMismatchError, match="sha256"):
        load_model(model_bytes, manifest_for(model_bytes, sha256=None))


@pytest.mark.parametrize(
    "names",
    [list(reversed(FEATURE_NAMES)), list(FEATURE_NAMES[:-1]), [*FEATURE_NAMES, "extra"], None],
    ids=["reordered", "missing-one", "extra-one", "absent"],
)
def test_load_model_rejects_feature_names_other_than_the_spec(fitted, names):
    _, model_bytes, _ = fitted

    with pytest.raises(ModelMismatchError, match="feature_names"):
        load_model(model_bytes, manifest_for(model_bytes, feature_names=names))


@pytest.mark.parametrize(
    "thresholds",
    [THRESHOLDS[:-1], list(reversed(THRESHOLDS)), [*THRESHOLDS[:-1], float("nan")], ["0.5"] * 9, None],
    ids=["eight", "ascending", "nan", "strings", "absent"],
)
def test_load_model_rejects_unusable_decile_thresholds(fitted, thresholds):
    _, model_bytes, _ = fitted

    with pytest.raises(ModelMismatchError, match="decile_thresholds"):
        load_model(model_bytes, manifest_for(model_bytes, decile_thresholds=thresholds))


def test_load_model_rejects_bytes_that_are_not_onnx_even_with_a_matching_hash():
    garbage = b"definitely not a protobuf"

    with pytest.raises(ModelMismatchError, match="onnxruntime"):
        load_model(garbage, manifest_for(garbage))


def test_load_model_rejects_a_model_built_for_another_feature_width():
    rng = np.random.default_rng(1)
    narrow = LogisticRegression().fit(rng.normal(size=(40, 3)), np.arange(40) % 2)
    model_bytes = convert_sklearn(
        narrow, initial_types=[("features", FloatTensorType([None, 3]))], options={"zipmap": False}
    ).SerializeToString()

    with pytest.raises(ModelMismatchError, match="features"):
        load_model(model_bytes, manifest_for(model_bytes))


def test_load_model_rejects_a_model_exported_with_zipmap(fitted):
    pipeline, _, _ = fitted
    model_bytes = convert_sklearn(
        pipeline, initial_types=[("features", FloatTensorType([None, len(FEATURE_NAMES)]))]
    ).SerializeToString()

    with pytest.raises(ModelMismatchError, match="probabilities"):
        load_model(model_bytes, manifest_for(model_bytes))


def test_predict_rejects_a_matrix_of_the_wrong_width(fitted):
    _, model_bytes, features = fitted
    model = load_model(model_bytes, manifest_for(model_bytes))

    with pytest.raises(InvalidInputError):
        model.predict(features[:, :-1])


def test_score_profiles_scores_in_input_order_with_deciles_from_the_manifest(fitted):
    pipeline, model_bytes, _ = fitted
    model = load_model(model_bytes, manifest_for(model_bytes))
    profiles = fixture_profiles(30, seed=7)

    results = score_profiles(profiles, model, AS_OF)

    expected = pipeline.predict_proba(build_feature_matrix(profiles, AS_OF))[:, 1]
    assert [r.customer_id for r in results] == [p["customer_id"] for p in profiles]
    np.testing.assert_allclose([r.score for r in results], expected, atol=1e-5, rtol=0)
    assert [r.decile for r in results] == assign_deciles(np.array([r.score for r in results]), THRESHOLDS).tolist()
    assert all(r.model_version == "v-test" and r.scored_at == AS_OF for r in results)
    assert all(isinstance(r, ScoreResult) and isinstance(r.score, float) for r in results)


def test_score_profiles_of_no_profiles_is_empty(fitted):
    _, model_bytes, _ = fitted

    assert score_profiles([], load_model(model_bytes, manifest_for(model_bytes)), AS_OF) == []


def test_score_profiles_rejects_a_profile_without_customer_id(fitted):
    _, model_bytes, _ = fitted
    model = load_model(model_bytes, manifest_for(model_bytes))

    with pytest.raises(InvalidInputError):
        score_profiles([{"customer_id": "C1"}, {"order_count": 2}], model, AS_OF)


def test_deciles_put_cut_points_in_the_upper_decile():
    scores = np.array([0.95, 0.9, 0.85, 0.5, 0.45, 0.1, 0.05, 0.0, 1.0])

    assert assign_deciles(scores, THRESHOLDS).tolist() == [1, 1, 2, 5, 6, 9, 10, 10, 1]


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=2, max_size=50))
def test_deciles_never_rank_a_higher_score_lower(scores):
    ordered = np.sort(np.asarray(scores))[::-1]

    deciles = assign_deciles(ordered, THRESHOLDS)

    assert ((deciles >= 1) & (deciles <= 10)).all()
    assert (np.diff(deciles) >= 0).all()
