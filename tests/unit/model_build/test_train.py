from datetime import timedelta

import numpy as np
import pytest

from cadence.features import FEATURE_NAMES
from cadence.scoring import load_model, score_profiles
from model_build.dataset import prepare_feeds
from model_build.evaluate import evaluate
from model_build.export import read_model_dir
from model_build.train import CandidateResult, TrainingDataError, build_model, select_best


@pytest.fixture(scope="module")
def built(small_feeds, small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    return build_model(small_feeds, small_data.as_of, 30, out, version="test-1", with_report=False), out


def test_built_model_dir_verifies_and_scores_like_the_pipeline(built):
    result, out = built

    model = load_model(*read_model_dir(out))
    profiles = result.run.earlier.profiles
    scores = [r.score for r in score_profiles(profiles, model, result.run.earlier.cutoff)]

    expected = result.run.pipeline.predict_proba(result.run.earlier.features)[:, 1]
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)
    assert model.version == "test-1"


def test_candidates_are_fitted_early_and_evaluated_one_horizon_later(built, small_data):
    result, _ = built
    run = result.run

    assert run.earlier.cutoff == small_data.as_of - timedelta(days=60)
    assert run.latest.cutoff == small_data.as_of - timedelta(days=30)
    assert set(run.candidates) == {"logistic_regression", "gradient_boosting"}
    for candidate in run.candidates.values():
        assert candidate.evaluation == evaluate(run.latest.labels, candidate.scores)


def test_manifest_is_a_complete_model_card(built):
    manifest = built[0].manifest

    assert manifest["feature_names"] == list(FEATURE_NAMES)
    assert manifest["estimator"]["name"] in manifest["candidates"]
    assert manifest["metrics"] == manifest["candidates"][manifest["estimator"]["name"]]
    assert manifest["label"]["horizon_days"] == 30
    assert len(manifest["training_data"]["fingerprint"]) == 64
    assert manifest["parity"]["max_abs_diff"] <= manifest["parity"]["tolerance"] == 1e-4
    thresholds = manifest["decile_thresholds"]
    assert len(thresholds) == 9 and thresholds == sorted(thresholds, reverse=True)
    for key in ("roc_auc", "pr_auc", "top_decile_lift", "lift_by_decile", "cumulative_gains_by_decile", "calibration"):
        assert key in manifest["metrics"]


def test_deciles_of_the_training_rows_are_roughly_equal(built):
    result, out = built
    model = load_model(*read_model_dir(out))

    deciles = model.deciles(model.predict(result.run.latest.features))

    counts = np.bincount(deciles, minlength=11)[1:]
    assert counts.sum() == len(result.run.latest.features)
    # Ties in tree scores can merge neighbours, but the top decile holds about a tenth.
    assert 0.05 < counts[0] / counts.sum() < 0.2


def test_the_known_signal_is_learned(built):
    metrics = built[0].manifest["metrics"]

    assert metrics["roc_auc"] > 0.65
    assert metrics["top_decile_lift"] > 1.5


def test_selection_prefers_pr_auc_then_roc_auc():
    def candidate(name, pr_auc, roc_auc):
        labels = np.array([0, 1] * 5)
        evaluation = evaluate(labels, np.linspace(0, 1, 10))
        evaluation = type(evaluation)(**(evaluation.as_dict() | {"pr_auc": pr_auc, "roc_auc": roc_auc}))
        return CandidateResult(name=name, evaluation=evaluation, scores=np.zeros(10))

    assert select_best({"a": candidate("a", 0.4, 0.9), "b": candidate("b", 0.5, 0.6)}) == "b"
    assert select_best({"a": candidate("a", 0.5, 0.9), "b": candidate("b", 0.5, 0.6)}) == "a"


def test_history_shorter_than_two_horizons_is_refused(small_data, tmp_path):
    recent = small_data.orders[small_data.orders["order_date"] >= (small_data.as_of - timedelta(days=40)).isoformat()]

    with pytest.raises(TrainingDataError, match="snapshot"):
        build_model(prepare_feeds(recent), small_data.as_of, 30, tmp_path / "m", version="v", with_report=False)

    assert not (tmp_path / "m").exists()
