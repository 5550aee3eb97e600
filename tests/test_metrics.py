"""Tests of the evaluation maths (`sonar_training.metrics`) and of the `evaluate` metric in `metrics/eer`."""

from pathlib import Path

import numpy as np
import pytest

from sonar_training.metrics import (
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


# ------------------------------------------------------------------ the official package, transcribed independently
# Written trial by trial in plain Python from the published definitions (ASVspoof 2019 evaluation plan, Kinnunen et
# al. Odyssey 2018 and TASLP 2020) and the documented behaviour of `eval_metrics.py` in asvspoof-challenge/2021
# eval-package: one operating point per trial in stable score order (a tie lists bona fide first), the EER at the
# first point minimising |frr - far|, the ASV run at its EER threshold accepting scores `>=` it. It shares no code
# with `sonar_training.metrics`, so the parity tests below compare two implementations, not one with itself.

OFFICIAL_PSPOOF = 0.05
OFFICIAL_PTAR, OFFICIAL_PNON = (1 - OFFICIAL_PSPOOF) * 0.99, (1 - OFFICIAL_PSPOOF) * 0.01


def official_det(bonafide, spoof) -> list[tuple[float, float, float]]:
    """(frr, far, threshold) after rejecting 0, 1, 2, ... trials in score order."""
    trials = sorted([(score, False) for score in bonafide] + [(score, True) for score in spoof], key=lambda t: t[0])
    points = [(0.0, 1.0, trials[0][0] - 0.001)]
    bonafide_rejected = spoof_rejected = 0
    for score, is_spoof in trials:
        if is_spoof:
            spoof_rejected += 1
        else:
            bonafide_rejected += 1
        points.append((bonafide_rejected / len(bonafide), (len(spoof) - spoof_rejected) / len(spoof), score))
    return points


def official_eer(bonafide, spoof) -> tuple[float, float]:
    points = official_det(bonafide, spoof)
    best = min(range(len(points)), key=lambda i: abs(points[i][0] - points[i][1]))  # the first of equal minima
    return (points[best][0] + points[best][1]) / 2, points[best][2]


def official_asv_rates(target, nontarget, spoof) -> tuple[float, float, float, float]:
    """Pfa_asv, Pmiss_asv, Pmiss_spoof_asv, Pfa_spoof_asv at the ASV EER threshold."""
    _, threshold = official_eer(target, nontarget)
    return (
        sum(score >= threshold for score in nontarget) / len(nontarget),
        sum(score < threshold for score in target) / len(target),
        sum(score < threshold for score in spoof) / len(spoof),
        sum(score >= threshold for score in spoof) / len(spoof),
    )


def official_min_tdcf_2021(bonafide, spoof, target, nontarget, asv_spoof) -> float:
    """`compute_tDCF` with the ASVspoof 2021 cost model (Cmiss 1, Cfa 10, Cfa_spoof 10)."""
    pfa_asv, pmiss_asv, _, pfa_spoof_asv = official_asv_rates(target, nontarget, asv_spoof)
    c0 = OFFICIAL_PTAR * 1 * pmiss_asv + OFFICIAL_PNON * 10 * pfa_asv
    c1 = OFFICIAL_PTAR * 1 - c0
    c2 = OFFICIAL_PSPOOF * 10 * pfa_spoof_asv
    return min((c0 + c1 * frr + c2 * far) / (c0 + min(c1, c2)) for frr, far, _ in official_det(bonafide, spoof))


def official_min_tdcf_2019(bonafide, spoof, target, nontarget, asv_spoof) -> float:
    """`compute_tDCF_legacy` with the ASVspoof 2019 cost model (Cmiss_asv 1, Cfa_asv 10, Cmiss_cm 1, Cfa_cm 10)."""
    pfa_asv, pmiss_asv, pmiss_spoof_asv, _ = official_asv_rates(target, nontarget, asv_spoof)
    c1 = OFFICIAL_PTAR * (1 - 1 * pmiss_asv) - OFFICIAL_PNON * 10 * pfa_asv
    c2 = 10 * OFFICIAL_PSPOOF * (1 - pmiss_spoof_asv)
    return min((c1 * frr + c2 * far) / min(c1, c2) for frr, far, _ in official_det(bonafide, spoof))


def draw(rng: np.random.Generator, kind: str, mean: float, size: int) -> np.ndarray:
    """Scores around `mean`: continuous (`random`), rounded to integers (`tied`) or to 0.1 (`quantised`)."""
    scores = rng.normal(mean, 1.0, size)
    return {"random": scores, "tied": np.round(scores), "quantised": np.round(scores, 1)}[kind]


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
        # bona fide {1, 2}, spoof {1, 0}. Official, one point per trial, the tie at 1 bona fide first:
        # (frr, far) = (0, 1) (0, 1/2) (1/2, 1/2) (1/2, 0) (1, 0) -> EER 1/2 at t = 1.
        assert compute_eer([1.0, 2.0], [1.0, 0.0]) == (0.5, 1.0)
        # merged, one point per distinct score: (0, 1) (0, 1/2) (1/2, 0) (1, 0), both middle points 1/2 from equal:
        # the first is taken, EER = 1/4 at t = 0
        assert compute_eer([1.0, 2.0], [1.0, 0.0], merge_ties=True) == (0.25, 0.0)

    def test_constant_scores(self):
        # official: all three bona fide are rejected before any spoof, so frr = far only at (1, 1): EER 100%
        assert compute_eer([1.0, 1.0, 1.0], [1.0, 1.0])[0] == 1.0
        assert compute_eer([1.0, 1.0, 1.0], [1.0, 1.0], merge_ties=True)[0] == 0.5  # chance

    @pytest.mark.parametrize("kind", ["random", "tied", "quantised"])
    def test_matches_official(self, kind):
        rng = np.random.default_rng(0)
        for _ in range(20):
            bonafide, spoof = draw(rng, kind, 1.0, rng.integers(1, 60)), draw(rng, kind, 0.0, rng.integers(1, 60))
            eer, threshold = compute_eer(bonafide, spoof)
            official, official_threshold = official_eer(bonafide, spoof)
            assert eer == pytest.approx(official, abs=1e-12) and threshold == official_threshold

    def test_merged_ties_equal_official_without_ties(self):
        rng = np.random.default_rng(5)
        bonafide, spoof = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 70)
        assert compute_eer(bonafide, spoof, merge_ties=True) == compute_eer(bonafide, spoof)

    def test_invariant_to_monotonic_transform(self):
        rng = np.random.default_rng(1)
        bonafide, spoof = rng.normal(1.0, 1.0, 50), rng.normal(0.0, 1.0, 80)
        assert compute_eer(np.exp(bonafide), np.exp(spoof))[0] == pytest.approx(compute_eer(bonafide, spoof)[0])

    def test_det_curve_per_trial_and_merged(self):
        rng = np.random.default_rng(2)
        bonafide, spoof = rng.integers(0, 10, 40).astype(float), rng.integers(0, 10, 30).astype(float)
        for merge_ties in (False, True):
            frr, far, thresholds = compute_det_curve(bonafide, spoof, merge_ties=merge_ties)
            assert frr[0] == 0 and frr[-1] == 1 and far[0] == 1 and far[-1] == 0
            assert np.all(np.diff(frr) >= 0) and np.all(np.diff(far) <= 0) and np.all(np.diff(thresholds) >= 0)
        frr, far, thresholds = compute_det_curve(bonafide, spoof)
        assert len(thresholds) == 70 + 1  # one point per trial
        frr, far, thresholds = compute_det_curve(bonafide, spoof, merge_ties=True)
        assert len(thresholds) == len(np.unique(np.concatenate([bonafide, spoof]))) + 1
        assert np.all(np.diff(thresholds) > 0)
        for rate_frr, rate_far, threshold in zip(frr, far, thresholds):  # every merged point is a reachable threshold
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

    @pytest.mark.parametrize("kind", ["random", "tied", "quantised"])
    def test_both_formulas_match_official(self, kind):
        rng = np.random.default_rng(6)
        for _ in range(10):
            cm = draw(rng, kind, 1.5, rng.integers(2, 50)), draw(rng, kind, 0.0, rng.integers(2, 80))
            asv = draw(rng, kind, 3.0, 60), draw(rng, kind, 0.0, 40), draw(rng, kind, 1.5, 50)
            assert compute_min_tdcf(*cm, *asv)[0] == pytest.approx(official_min_tdcf_2021(*cm, *asv), abs=1e-12)
            assert compute_min_tdcf(*cm, *asv, variant="2019")[0] == pytest.approx(
                official_min_tdcf_2019(*cm, *asv), abs=1e-12
            )

    def test_ties_matter_through_the_asv_threshold_only(self):
        # ASV target {1, 2} vs nontarget {1, 0}, the tie of TestEer: official EER threshold 1, merged 0.
        # At 1: Pfa_asv 1/2, Pmiss_asv 0, Pfa_spoof_asv 1/2 (of -0.5, 5) -> C0 0.0475, C1 0.893, C2 0.25.
        # At 0: Pfa_asv 1 -> C0 0.095, C1 0.8455, C2 0.25. CM min at (frr, far) = (0, 1/2) either way.
        cm, asv = ([1.0, 2.0], [0.0, 1.5]), ([1.0, 2.0], [1.0, 0.0], [-0.5, 5.0])
        assert compute_min_tdcf(*cm, *asv)[0] == pytest.approx(0.1725 / 0.2975)
        assert compute_min_tdcf(*cm, *asv)[0] == pytest.approx(official_min_tdcf_2021(*cm, *asv))
        assert compute_min_tdcf(*cm, *asv, merge_ties=True)[0] == pytest.approx(0.22 / 0.345)
        # tied CM scores add only dominated points (bona fide rejected before the tied spoof): same minimum
        rng = np.random.default_rng(7)
        asv = rng.normal(3.0, 1.0, 40), rng.normal(0.0, 1.0, 40), rng.normal(1.5, 1.0, 40)
        for variant in ("2019", "2021"):
            cm = np.round(rng.normal(1.0, 1.0, 50)), np.round(rng.normal(0.0, 1.0, 50))
            official, _ = compute_min_tdcf(*cm, *asv, variant=variant)
            assert compute_min_tdcf(*cm, *asv, variant=variant, merge_ties=True)[0] == pytest.approx(official)

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
        result = eer_by_condition(scores, np.asarray(labels) == 0, systems)
        # A01 {0, 1} below all bona fide {2, 3}: 0. A02 {2.5, 4} against {2, 3}: (frr, far) at t = 2.5 is (1/2, 1/2)
        assert result == {"A01": 0.0, "A02": 0.5}

    def test_groups_with_both_classes_use_their_own(self):
        scores = [2.0, 0.0, 0.0, 2.0]
        labels = [0, 1, 0, 1]
        codecs = ["mp3", "mp3", "aac", "aac"]
        assert eer_by_condition(scores, np.asarray(labels) == 0, codecs) == {"aac": 1.0, "mp3": 0.0}

    def test_bonafide_label_and_non_string_conditions(self):
        result = eer_by_condition([5.0, 1.0, 0.0], [True, False, False], [None, 7, 7])
        assert result == {"7": 0.0}

    def test_length_mismatch_raises(self):
        with pytest.raises(ValueError, match="one entry per trial"):
            eer_by_condition([0.0, 1.0], [True, False], ["a"])


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
    constant = {"predictions": [1.0] * 5, "references": [0, 0, 0, 1, 1]}
    assert metric.compute(**constant)["eer"] == 1.0 and metric.compute(**constant, merge_ties=True)["eer"] == 0.5


class TestCalibration:
    """`fit_calibration_scale`, `expected_calibration_error` and `brier_score`: the verdict's spoof probability."""

    def test_recovers_the_scale_of_logistic_data(self):
        from sonar_training.metrics import fit_calibration_scale

        rng = np.random.default_rng(0)
        scores = rng.normal(0.0, 3.0, 20000)
        is_spoof = rng.random(scores.size) < 1 / (1 + np.exp(-2.0 * (0.5 - scores)))  # true scale 2, threshold 0.5
        assert fit_calibration_scale(scores, ~is_spoof, 0.5) == pytest.approx(2.0, rel=0.05)

    def test_is_the_likelihood_maximum(self):
        from sonar_training.metrics import fit_calibration_scale

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
        from sonar_training.metrics import fit_calibration_scale

        scores, is_bonafide = [2.0, 3.0, -1.0, -2.0], [True, True, False, False]
        assert 0 < fit_calibration_scale(scores, is_bonafide, 0.0) < 10
        assert fit_calibration_scale(scores, [not b for b in is_bonafide], 0.0) == 0.0
        with pytest.raises(ValueError, match="both classes"):
            fit_calibration_scale(scores, [True] * 4, 0.0)

    def test_ece_and_brier_by_hand(self):
        from sonar_training.metrics import brier_score, expected_calibration_error

        probabilities, is_spoof = [0.05, 0.05, 0.95, 0.95], [False, True, True, True]
        # bin 0: mean p 0.05 vs 1/2 spoof; bin 9: 0.95 vs 1: (2 x 0.45 + 2 x 0.05) / 4
        assert expected_calibration_error(probabilities, is_spoof) == pytest.approx(0.25)
        assert brier_score(probabilities, is_spoof) == pytest.approx((0.05**2 + 0.95**2 + 2 * 0.05**2) / 4)
        assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0 and brier_score([0.5], [True]) == 0.25
