"""Tests of the evaluation maths (`modeling_sonar.metrics`) and of the `evaluate` metric in `metrics/eer`."""

from pathlib import Path

import numpy as np
import pytest

from modeling_sonar.metrics import (
    ASVSPOOF2019_COST_MODEL,
    ASVSPOOF2021_COST_MODEL,
    compute_det_curve,
    compute_eer,
    compute_min_tdcf,
    eer_by_condition,
)


REPO_ROOT = Path(__file__).resolve().parents[1]

# ASV scores of the hand-computed t-DCF cases: target vs. nontarget separate perfectly; the EER threshold is the
# largest nontarget score 1.0, which the official `>=` rule accepts, so Pfa_asv = 1/2, Pmiss_asv = 0 and
# Pfa_spoof_asv = 1/2 (the spoof scoring 5.0).
ASV_TARGET, ASV_NONTARGET, ASV_SPOOF = [2.0, 3.0, 4.0], [0.0, 1.0], [0.5, 5.0]


def official_eer(bonafide: np.ndarray, spoof: np.ndarray) -> float:
    """The official ASVspoof `compute_det_curve` + `compute_eer`, one point per trial (right only without ties)."""
    scores = np.concatenate([bonafide, spoof])
    labels = np.concatenate([np.ones(bonafide.size), np.zeros(spoof.size)])[np.argsort(scores, kind="mergesort")]
    frr = np.concatenate([[0], np.cumsum(labels) / bonafide.size])
    far = np.concatenate([[1], (spoof.size - (np.arange(1, scores.size + 1) - np.cumsum(labels))) / spoof.size])
    index = np.argmin(np.abs(frr - far))
    return (frr[index] + far[index]) / 2


class TestEer:
    def test_perfectly_separated(self):
        assert compute_eer([2.0, 3.0], [0.0, 1.0]) == (0.0, 1.0)

    def test_fully_reversed(self):
        assert compute_eer([0.0, 1.0], [2.0, 3.0])[0] == 1.0

    def test_hand_computed_without_ties(self):
        # sorted: 0.1 s, 0.2 s, 0.3 b, 0.6 b, 0.7 s, 0.9 b -> at t = 0.3: frr = 1/3 (0.3), far = 1/3 (0.7)
        eer, threshold = compute_eer([0.6, 0.9, 0.3], [0.1, 0.7, 0.2])
        assert eer == pytest.approx(1 / 3)
        assert threshold == 0.3

    def test_hand_computed_with_ties(self):
        # bona fide {1, 2}, spoof {0, 1}: the tie at 1 is one point, (frr, far) goes (0, 1/2) -> (1/2, 0), both
        # 1/2 from equal: the first is taken, EER = 1/4 at t = 0. The official code splits the tie bona fide first
        # and reports 1/2.
        assert compute_eer([1.0, 2.0], [1.0, 0.0]) == (0.25, 0.0)

    def test_constant_scores_are_chance(self):
        assert compute_eer([1.0, 1.0, 1.0], [1.0, 1.0])[0] == 0.5

    def test_matches_official_without_ties(self):
        rng = np.random.default_rng(0)
        for _ in range(20):
            bonafide, spoof = rng.normal(1.0, 1.0, rng.integers(1, 60)), rng.normal(0.0, 1.0, rng.integers(1, 60))
            assert compute_eer(bonafide, spoof)[0] == pytest.approx(official_eer(bonafide, spoof))

    def test_invariant_to_monotonic_transform(self):
        rng = np.random.default_rng(1)
        bonafide, spoof = rng.normal(1.0, 1.0, 50), rng.normal(0.0, 1.0, 80)
        assert compute_eer(np.exp(bonafide), np.exp(spoof))[0] == pytest.approx(compute_eer(bonafide, spoof)[0])

    def test_det_curve_is_monotonic(self):
        rng = np.random.default_rng(2)
        bonafide, spoof = rng.integers(0, 10, 40).astype(float), rng.integers(0, 10, 30).astype(float)
        frr, far, thresholds = compute_det_curve(bonafide, spoof)
        assert frr[0] == 0 and frr[-1] == 1 and far[0] == 1 and far[-1] == 0
        assert np.all(np.diff(frr) >= 0) and np.all(np.diff(far) <= 0) and np.all(np.diff(thresholds) > 0)
        assert len(thresholds) == len(np.unique(np.concatenate([bonafide, spoof]))) + 1
        for rate_frr, rate_far, threshold in zip(frr, far, thresholds):
            assert rate_frr == np.mean(bonafide <= threshold) and rate_far == np.mean(spoof > threshold)

    @pytest.mark.parametrize(
        "bonafide, spoof, message",
        [([], [0.0], "bonafide_scores` is empty"), ([1.0], [np.nan], "NaN or infinite"), ([np.inf], [0.0], "NaN")],
    )
    def test_bad_input_raises(self, bonafide, spoof, message):
        with pytest.raises(ValueError, match=message):
            compute_eer(bonafide, spoof)


class TestMinTdcf:
    def test_2021_hand_computed(self):
        # C0 = 0.9405 * 0 + 0.0095 * 10 * 1/2 = 0.0475, C1 = 0.9405 - C0 = 0.893, C2 = 0.05 * 10 * 1/2 = 0.25.
        # CM (frr, far): (0, 1) (0, 1/2) (1/2, 1/2) (1/2, 0) (1, 0) -> min at (0, 1/2): (C0 + C2/2) / (C0 + C2)
        min_tdcf, threshold = compute_min_tdcf([1.0, 2.0], [0.0, 1.5], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
        assert min_tdcf == pytest.approx(0.1725 / 0.2975)
        assert threshold == 0.0

    def test_2019_hand_computed(self):
        # C1 = 0.9405 * (1 - 0) - 0.0095 * 10 * 1/2 = 0.893, C2 = 10 * 0.05 * (1 - 1/2) = 0.25 -> min (C2/2) / C2
        min_tdcf, _ = compute_min_tdcf([1.0, 2.0], [0.0, 1.5], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, variant="2019")
        assert min_tdcf == pytest.approx(0.5)

    def test_perfect_cm_reaches_the_asv_floor(self):
        bonafide, spoof = [3.0, 4.0, 5.0], [0.0, 1.0]
        assert compute_min_tdcf(bonafide, spoof, ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)[0] == pytest.approx(
            0.0475 / 0.2975
        )
        assert compute_min_tdcf(bonafide, spoof, ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, variant="2019")[0] == 0.0

    @pytest.mark.parametrize("variant", ["2019", "2021"])
    def test_useless_cm_costs_one(self, variant):
        min_tdcf, _ = compute_min_tdcf([0.0, 1.0], [2.0, 3.0], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, variant=variant)
        assert min_tdcf == pytest.approx(1.0)

    @pytest.mark.parametrize("variant", ["2019", "2021"])
    def test_bounded_and_invariant_to_monotonic_transform(self, variant):
        rng = np.random.default_rng(3)
        cm = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 60)
        asv = rng.normal(3.0, 1.0, 50), rng.normal(0.0, 1.0, 50), rng.normal(2.0, 1.0, 50)
        min_tdcf, _ = compute_min_tdcf(*cm, *asv, variant=variant)
        assert 0 <= min_tdcf <= 1
        assert compute_min_tdcf(*(np.tanh(s) for s in cm), *asv, variant=variant)[0] == pytest.approx(min_tdcf)

    def test_cost_model_override(self):
        cost_model = {**ASVSPOOF2021_COST_MODEL, "Cfa_spoof": 20}
        # C2 doubles to 0.5: min(C1, C2) = 0.5, min at (0, 1/2): (C0 + C2/2) / (C0 + C2)
        min_tdcf, _ = compute_min_tdcf(
            [1.0, 2.0], [0.0, 1.5], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, cost_model=cost_model
        )
        assert min_tdcf == pytest.approx(0.2975 / 0.5475)

    def test_bad_input_raises(self):
        with pytest.raises(ValueError, match="variant"):
            compute_min_tdcf([1.0], [0.0], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, variant="2015")
        with pytest.raises(ValueError, match="lacks"):
            compute_min_tdcf([1.0], [0.0], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, cost_model=ASVSPOOF2019_COST_MODEL)
        with pytest.raises(ValueError, match="sum to 1"):
            bad_priors = {**ASVSPOOF2021_COST_MODEL, "Pspoof": 0.5}
            compute_min_tdcf([1.0], [0.0], ASV_TARGET, ASV_NONTARGET, ASV_SPOOF, cost_model=bad_priors)
        with pytest.raises(ValueError, match="asv_spoof` is empty"):
            compute_min_tdcf([1.0], [0.0], ASV_TARGET, ASV_NONTARGET, [])
        with pytest.raises(ValueError, match="cannot be normalised"):
            compute_min_tdcf([1.0], [0.0], ASV_TARGET, ASV_NONTARGET, [-5.0], variant="2019")


class TestEerByCondition:
    def test_spoof_only_groups_use_all_bonafide(self):
        scores = [2.0, 3.0, 0.0, 1.0, 2.5, 4.0]
        labels = [0, 0, 1, 1, 1, 1]
        systems = ["-", "-", "A01", "A01", "A02", "A02"]
        result = eer_by_condition(scores, labels, systems)
        # A01 {0, 1} below all bona fide {2, 3}: 0. A02 {2.5, 4} against {2, 3}: (frr, far) at t = 2.5 is (1/2, 1/2)
        assert result == {"A01": 0.0, "A02": 0.5}

    def test_groups_with_both_classes_use_their_own(self):
        scores = [2.0, 0.0, 0.0, 2.0]
        labels = [0, 1, 0, 1]
        codecs = ["mp3", "mp3", "aac", "aac"]
        assert eer_by_condition(scores, labels, codecs) == {"aac": 1.0, "mp3": 0.0}

    def test_bonafide_label_and_non_string_conditions(self):
        result = eer_by_condition([5.0, 1.0, 0.0], [1, 0, 0], [None, 7, 7], bonafide_label=1)
        assert result == {"7": 0.0}

    def test_length_mismatch_raises(self):
        with pytest.raises(ValueError, match="one entry per trial"):
            eer_by_condition([0.0, 1.0], [0, 1], ["a"])


@pytest.mark.parametrize("relative", [True, False])
def test_evaluate_metric_loads_offline_and_agrees(relative, monkeypatch):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO_ROOT)
    metric = evaluate.load("./metrics/eer" if relative else str(REPO_ROOT / "metrics" / "eer"))
    rng = np.random.default_rng(4)
    scores = rng.normal(0.0, 1.0, 30)
    labels = rng.integers(0, 2, 30)
    eer, threshold = compute_eer(scores[labels == 0], scores[labels == 1])
    assert metric.compute(predictions=scores, references=labels) == {"eer": eer, "threshold": threshold}
    eer_swapped, _ = compute_eer(scores[labels == 1], scores[labels == 0])
    assert metric.compute(predictions=scores, references=labels, pos_label=1)["eer"] == eer_swapped


class TestCalibration:
    """`fit_calibration_scale`, `expected_calibration_error` and `brier_score`: the verdict's spoof probability."""

    def test_recovers_the_scale_of_logistic_data(self):
        from modeling_sonar.metrics import fit_calibration_scale

        rng = np.random.default_rng(0)
        scores = rng.normal(0.0, 3.0, 20000)
        is_spoof = rng.random(scores.size) < 1 / (1 + np.exp(-2.0 * (0.5 - scores)))  # true scale 2, threshold 0.5
        assert fit_calibration_scale(scores, ~is_spoof, 0.5) == pytest.approx(2.0, rel=0.05)

    def test_is_the_likelihood_maximum(self):
        from modeling_sonar.metrics import fit_calibration_scale

        rng = np.random.default_rng(1)
        scores, is_bonafide = rng.normal(0.0, 2.0, 300), rng.random(300) < 0.5
        scores[is_bonafide] += 1.5
        scale = fit_calibration_scale(scores, is_bonafide, 0.7)
        num_bonafide, num_spoof = is_bonafide.sum(), (~is_bonafide).sum()
        target = np.where(is_bonafide, 1 / (num_bonafide + 2), (num_spoof + 1) / (num_spoof + 2))  # Platt's

        def nll(a):
            margin = a * (0.7 - scores)
            return np.sum(np.logaddexp(0, margin) - target * margin)

        assert nll(scale) <= min(nll(scale * 0.99), nll(scale * 1.01))

    def test_separated_classes_give_a_finite_scale_and_reversed_ones_zero(self):
        from modeling_sonar.metrics import fit_calibration_scale

        scores, is_bonafide = [2.0, 3.0, -1.0, -2.0], [True, True, False, False]
        assert 0 < fit_calibration_scale(scores, is_bonafide, 0.0) < 10
        assert fit_calibration_scale(scores, [not b for b in is_bonafide], 0.0) == 0.0
        with pytest.raises(ValueError, match="both classes"):
            fit_calibration_scale(scores, [True] * 4, 0.0)

    def test_ece_and_brier_by_hand(self):
        from modeling_sonar.metrics import brier_score, expected_calibration_error

        probabilities, is_spoof = [0.05, 0.05, 0.95, 0.95], [False, True, True, True]
        # bin 0: mean p 0.05 vs 1/2 spoof; bin 9: 0.95 vs 1: (2 x 0.45 + 2 x 0.05) / 4
        assert expected_calibration_error(probabilities, is_spoof) == pytest.approx(0.25)
        assert brier_score(probabilities, is_spoof) == pytest.approx((0.05**2 + 0.95**2 + 2 * 0.05**2) / 4)
        assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0 and brier_score([0.5], [True]) == 0.25
