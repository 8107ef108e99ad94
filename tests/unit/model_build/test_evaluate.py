import numpy as np
import pytest

from model_build.evaluate import calibration_table, decile_lift_and_gains, decile_thresholds, evaluate


def test_lift_and_gains_by_decile_on_a_known_ranking():
    # 100 customers, 10 buyers: all buyers in the top decile.
    scores = np.linspace(1, 0, 100)
    labels = np.zeros(100, dtype=int)
    labels[:10] = 1

    lift, gains = decile_lift_and_gains(labels, scores)

    assert lift == [10.0] + [0.0] * 9
    assert gains == [1.0] * 10


def test_a_random_ranking_has_no_lift():
    labels = np.tile([1, 0, 0, 0, 0], 20)

    lift, gains = decile_lift_and_gains(labels, np.linspace(1, 0, 100))

    assert lift == pytest.approx([1.0] * 10)
    assert gains == pytest.approx([k / 10 for k in range(1, 11)])


def test_perfectly_calibrated_scores_sit_on_the_diagonal():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 200_000)
    labels = (rng.uniform(0, 1, scores.size) < scores).astype(int)

    table = calibration_table(labels, scores)

    assert len(table) == 10
    for row in table:
        assert row["observed_rate"] == pytest.approx(row["mean_predicted"], abs=0.01)


def test_evaluate_reports_ranking_metrics_and_refuses_a_single_class():
    labels = np.array([0, 0, 1, 1])
    evaluation = evaluate(labels, np.array([0.1, 0.2, 0.8, 0.9]))

    assert (evaluation.roc_auc, evaluation.pr_auc, evaluation.positives, evaluation.base_rate) == (1.0, 1.0, 2, 0.5)
    with pytest.raises(ValueError, match="both"):
        evaluate(np.zeros(4), np.array([0.1, 0.2, 0.8, 0.9]))


def test_decile_thresholds_are_nine_descending_quantiles():
    thresholds = decile_thresholds(np.arange(1, 1001) / 1000)

    assert len(thresholds) == 9
    assert thresholds == sorted(thresholds, reverse=True)
    assert thresholds[0] == pytest.approx(0.9, abs=0.002) and thresholds[-1] == pytest.approx(0.1, abs=0.002)
