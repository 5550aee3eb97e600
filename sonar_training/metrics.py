"""Detection metrics of SONAR: DET curve, EER, min t-DCF (ASVspoof 2019 and 2021) and EER per condition.

Plain numpy, no torch: these functions judge a model, they are never part of one, and score files can be re-scored
without loading a model.

Scores follow the ASVspoof convention: higher means more bona fide (SONAR writes the bona fide log-odds). The
formulas are those of the official ASVspoof evaluation code (`eval_metrics.py` of the 2019 `tDCF_python` package and
of the 2021 `eval-package`), tied scores included: by default every trial is an operating point, as there, so
published numbers are reproduced; `merge_ties=True` makes each distinct score one point (see `compute_det_curve`).
"""

from collections.abc import Sequence

import numpy as np


_PSPOOF = 0.05

ASVSPOOF2019_COST_MODEL = {
    "Pspoof": _PSPOOF,  # prior of a spoofing attack
    "Ptar": (1 - _PSPOOF) * 0.99,  # prior of a target speaker
    "Pnon": (1 - _PSPOOF) * 0.01,  # prior of a zero-effort impostor (nontarget)
    "Cmiss_asv": 1,  # ASV falsely rejects a target
    "Cfa_asv": 10,  # ASV falsely accepts a nontarget
    "Cmiss_cm": 1,  # CM falsely rejects a bona fide trial
    "Cfa_cm": 10,  # CM falsely accepts a spoof
}
"""Cost model of the ASVspoof 2019 challenge t-DCF (Kinnunen et al., Odyssey 2018; "legacy" in `tDCF_python_v2`)."""

ASVSPOOF2021_COST_MODEL = {
    "Pspoof": _PSPOOF,
    "Ptar": (1 - _PSPOOF) * 0.99,
    "Pnon": (1 - _PSPOOF) * 0.01,
    "Cmiss": 1,  # tandem system falsely rejects a target
    "Cfa": 10,  # tandem system falsely accepts a nontarget
    "Cfa_spoof": 10,  # tandem system falsely accepts a spoof
}
"""Cost model of the ASVspoof 2021 t-DCF (Kinnunen et al., IEEE/ACM TASLP 2020), as in the 2021 eval package."""


def _check_scores(name: str, scores: Sequence[float] | np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError(f"`{name}` is empty: every class needs at least one score")
    if not np.isfinite(scores).all():
        raise ValueError(f"`{name}` holds {np.count_nonzero(~np.isfinite(scores))} NaN or infinite score(s)")
    return scores


def compute_det_curve(
    bonafide_scores: Sequence[float] | np.ndarray,
    spoof_scores: Sequence[float] | np.ndarray,
    merge_ties: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every operating point, as the official ASVspoof `compute_det_curve`.

    The trials are sorted by score (stably, so within a tie the bona fide trials come first) and rejected one at a
    time: after the first `k` trials, `frr[k]` is the fraction of bona fide trials rejected, `far[k]` the fraction of
    spoof trials still accepted and `thresholds[k]` the k-th sorted score (the first point, where nothing is
    rejected, has `min - 0.001`). Without ties, point `i` is exactly "accept as bona fide when the score is above
    `thresholds[i]`".

    Tied scores are where definitions differ. The official code, followed by default, keeps one point per trial, so a
    tie yields points that no threshold can reach (scores that are all equal get an EER of 100%); published ASVspoof
    numbers are computed that way. With `merge_ties=True` each distinct score is one point: the curve a threshold can
    reach (all-equal scores get an EER of 50%).

    Args:
        bonafide_scores, spoof_scores: the scores of each class, higher = more bona fide.
        merge_ties (`bool`, *optional*, defaults to `False`): one point per distinct score instead of one per trial.

    Returns:
        `(frr, far, thresholds)`, each of length (number of trials + 1), or (number of distinct scores + 1) with
        `merge_ties`; `frr` rises from 0 to 1 and `far` falls from 1 to 0.
    """
    bonafide_scores = _check_scores("bonafide_scores", bonafide_scores)
    spoof_scores = _check_scores("spoof_scores", spoof_scores)
    scores = np.concatenate([bonafide_scores, spoof_scores])
    is_bonafide = np.concatenate([np.ones(bonafide_scores.size), np.zeros(spoof_scores.size)])
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    bonafide_rejected = np.cumsum(is_bonafide[order])
    spoof_rejected = np.arange(1, scores.size + 1) - bonafide_rejected
    if merge_ties:  # keep the last position of each run of equal scores: a threshold cannot split a tie
        keep = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    else:
        keep = np.ones(scores.size, dtype=bool)
    frr = np.concatenate([[0.0], bonafide_rejected[keep] / bonafide_scores.size])
    far = np.concatenate([[1.0], (spoof_scores.size - spoof_rejected[keep]) / spoof_scores.size])
    thresholds = np.concatenate([[sorted_scores[0] - 0.001], sorted_scores[keep]])
    return frr, far, thresholds


def compute_eer(
    bonafide_scores: Sequence[float] | np.ndarray,
    spoof_scores: Sequence[float] | np.ndarray,
    merge_ties: bool = False,
) -> tuple[float, float]:
    """Equal error rate, as a fraction, and its threshold.

    As in the official ASVspoof `compute_eer`: the point of `compute_det_curve` (which `merge_ties` is passed to)
    where |miss rate - false-alarm rate| is smallest, the first one on ties, reporting the mean of the two rates there.
    """
    frr, far, thresholds = compute_det_curve(bonafide_scores, spoof_scores, merge_ties=merge_ties)
    index = np.argmin(np.abs(frr - far))
    return float((frr[index] + far[index]) / 2), float(thresholds[index])


def _asv_error_rates(
    asv_target: np.ndarray, asv_nontarget: np.ndarray, asv_spoof: np.ndarray, merge_ties: bool = False
) -> tuple[float, float, float]:
    """ASV false-alarm, miss and spoof false-alarm rates at the ASV EER threshold.

    As the official `obtain_asv_error_rates`, a trial scoring exactly at the threshold is accepted (`>=`).
    """
    _, threshold = compute_eer(asv_target, asv_nontarget, merge_ties=merge_ties)
    pfa_asv = np.mean(asv_nontarget >= threshold)
    pmiss_asv = np.mean(asv_target < threshold)
    pfa_spoof_asv = np.mean(asv_spoof >= threshold)
    return float(pfa_asv), float(pmiss_asv), float(pfa_spoof_asv)


def compute_min_tdcf(
    bonafide_cm: Sequence[float] | np.ndarray,
    spoof_cm: Sequence[float] | np.ndarray,
    asv_target: Sequence[float] | np.ndarray,
    asv_nontarget: Sequence[float] | np.ndarray,
    asv_spoof: Sequence[float] | np.ndarray,
    variant: str = "2021",
    cost_model: dict[str, float] | None = None,
    merge_ties: bool = False,
) -> tuple[float, float]:
    """Minimum normalised tandem detection cost (t-DCF) of a countermeasure in front of a fixed ASV system.

    The ASV system runs at its own EER threshold (target vs. nontarget scores). Then, over all CM thresholds `s`:

    - `variant="2021"` (ASVspoof 2021, and the revised 2019 package; `compute_tDCF` in the official code):
      `t-DCF(s) = C0 + C1 Pmiss_cm(s) + C2 Pfa_cm(s)`, normalised by `C0 + min(C1, C2)`, with
      `C0 = Ptar Cmiss Pmiss_asv + Pnon Cfa Pfa_asv`, `C1 = Ptar Cmiss - C0`, `C2 = Pspoof Cfa_spoof Pfa_spoof_asv`.
      A perfect CM scores `C0 / (C0 + min(C1, C2))`, the ASV system's own floor.
    - `variant="2019"` (the ASVspoof 2019 challenge, `compute_tDCF_legacy`):
      `t-DCF(s) = C1 Pmiss_cm(s) + C2 Pfa_cm(s)`, normalised by `min(C1, C2)`, with
      `C1 = Ptar (Cmiss_cm - Cmiss_asv Pmiss_asv) - Pnon Cfa_asv Pfa_asv` and
      `C2 = Cfa_cm Pspoof (1 - Pmiss_spoof_asv)`. A perfect CM scores 0.

    Either way a CM that accepts or rejects everything scores 1, so the minimum is at most 1.

    Args:
        bonafide_cm, spoof_cm: CM scores of bona fide and spoof trials (higher = more bona fide).
        asv_target, asv_nontarget, asv_spoof: ASV scores of target, nontarget and spoof trials.
        variant: `"2021"` or `"2019"`, choosing the formula and its default cost model. Results on ASVspoof 2019 LA
            are published with `"2019"`, on ASVspoof 2021 LA with `"2021"`.
        cost_model: overrides the default `ASVSPOOF2021_COST_MODEL` / `ASVSPOOF2019_COST_MODEL`, with the same keys.
        merge_ties: passed to `compute_det_curve`, for the ASV EER threshold and the CM operating points.

    Returns:
        `(min_tdcf, cm_threshold)`: the minimum normalised t-DCF and the CM threshold reaching it.
    """
    defaults = {"2019": ASVSPOOF2019_COST_MODEL, "2021": ASVSPOOF2021_COST_MODEL}
    if str(variant) not in defaults:
        raise ValueError(f"`variant` must be '2019' or '2021', got {variant!r}")
    variant = str(variant)
    cost = dict(defaults[variant] if cost_model is None else cost_model)
    missing = set(defaults[variant]) - set(cost)
    if missing:
        raise ValueError(f"`cost_model` for the {variant} t-DCF lacks {sorted(missing)}")
    priors = (cost["Ptar"], cost["Pnon"], cost["Pspoof"])
    if min(priors) < 0 or abs(sum(priors) - 1) > 1e-10:
        raise ValueError(
            f"Priors must be non-negative and sum to 1, got Ptar={cost['Ptar']}, Pnon={cost['Pnon']}, "
            f"Pspoof={cost['Pspoof']}"
        )
    pfa_asv, pmiss_asv, pfa_spoof_asv = _asv_error_rates(
        _check_scores("asv_target", asv_target),
        _check_scores("asv_nontarget", asv_nontarget),
        _check_scores("asv_spoof", asv_spoof),
        merge_ties=merge_ties,
    )
    pmiss_cm, pfa_cm, thresholds = compute_det_curve(bonafide_cm, spoof_cm, merge_ties=merge_ties)

    if variant == "2021":
        c0 = cost["Ptar"] * cost["Cmiss"] * pmiss_asv + cost["Pnon"] * cost["Cfa"] * pfa_asv
        c1 = cost["Ptar"] * cost["Cmiss"] - c0
        c2 = cost["Pspoof"] * cost["Cfa_spoof"] * pfa_spoof_asv
    else:
        c0 = 0.0
        c1 = cost["Ptar"] * (cost["Cmiss_cm"] - cost["Cmiss_asv"] * pmiss_asv)
        c1 -= cost["Pnon"] * cost["Cfa_asv"] * pfa_asv
        c2 = cost["Cfa_cm"] * cost["Pspoof"] * pfa_spoof_asv  # pfa_spoof_asv = 1 - Pmiss_spoof_asv
    if min(c0, c1, c2) < 0:
        raise ValueError(f"t-DCF weights must be non-negative, got C0={c0}, C1={c1}, C2={c2}: check the ASV scores")
    default_cost = c0 + min(c1, c2)
    if default_cost == 0:
        raise ValueError(
            f"The t-DCF cannot be normalised (C0={c0}, C1={c1}, C2={c2}): the ASV system alone makes no costly error, "
            "e.g. it rejects every spoof trial"
        )
    tdcf = (c0 + c1 * pmiss_cm + c2 * pfa_cm) / default_cost
    index = np.argmin(tdcf)
    return float(tdcf[index]), float(thresholds[index])


def eer_by_condition(
    scores: Sequence[float] | np.ndarray,
    is_bonafide: Sequence[bool] | np.ndarray,
    conditions: Sequence,
    merge_ties: bool = False,
) -> dict[str, float]:
    """EER (fraction) per value of a condition column: attack, codec, transmission channel, vocoder...

    A group holding both classes (a codec or channel of ASVspoof 2021) is scored on its own trials. A group holding
    spoof only (an attack `A07`...) is scored against all bona fide trials of the pooled set, as the ASVspoof
    per-attack EERs are. A group holding bona fide only (the `-` or `bonafide` system of bona fide trials) has no
    EER of its own and is left out.

    Args:
        scores: detection scores, higher = more bona fide.
        is_bonafide: whether each trial is bona fide (else spoof).
        conditions: the condition value of each trial; keys of the result are `str(value)`, sorted.
        merge_ties: passed to `compute_eer`.
    """
    scores = _check_scores("scores", scores)
    is_bonafide = np.asarray(is_bonafide, dtype=bool).ravel()
    conditions = np.asarray([str(value) for value in conditions])
    if not scores.size == is_bonafide.size == conditions.size:
        raise ValueError(
            f"`scores`, `is_bonafide` and `conditions` must have one entry per trial, got {scores.size}, "
            f"{is_bonafide.size} and {conditions.size}"
        )
    all_bonafide = scores[is_bonafide]
    result = {}
    for value in np.unique(conditions):
        in_group = conditions == value
        group_bonafide = scores[in_group & is_bonafide]
        group_spoof = scores[in_group & ~is_bonafide]
        if group_spoof.size == 0:
            continue
        reference = group_bonafide if group_bonafide.size else all_bonafide
        if reference.size == 0:
            raise ValueError("No bona fide trial to pair with the spoof-only conditions: the set needs both classes")
        result[str(value)] = compute_eer(reference, group_spoof, merge_ties=merge_ties)[0]
    return result


def fit_calibration_scale(
    scores: Sequence[float] | np.ndarray, is_bonafide: Sequence[bool] | np.ndarray, threshold: float
) -> float:
    """Scale `a` that makes `p(spoof) = sigmoid(a * (threshold - score))` a calibrated probability on these trials.

    A logistic regression on the score with one free parameter: the offset stays at `threshold`, so the probability
    is 0.5 exactly there and the label and the probability never disagree. The negative log-likelihood is convex in
    `a`; its minimum is found by Newton steps kept inside a bracket of the root of its derivative. The targets are
    Platt's (1999) smoothed labels, `(N_spoof + 1) / (N_spoof + 2)` for spoof and `1 / (N_bonafide + 2)` for bona fide,
    so that classes separated at the threshold still give a finite scale. Scores that rank the classes the wrong way
    round on these trials give `a = 0`: every probability 0.5.

    Args:
        scores: detection scores, higher = more bona fide.
        is_bonafide: `True` for bona fide trials.
        threshold: the decision threshold (the score where `p = 0.5`).

    Returns:
        `a >= 0`.
    """
    scores = _check_scores("scores", scores)
    is_bonafide = np.asarray(is_bonafide, dtype=bool).ravel()
    if scores.size != is_bonafide.size:
        raise ValueError(f"`scores` and `is_bonafide` differ in length: {scores.size} and {is_bonafide.size}")
    num_bonafide = int(is_bonafide.sum())
    num_spoof = scores.size - num_bonafide
    if num_bonafide == 0 or num_spoof == 0:
        raise ValueError(f"Calibration needs both classes, got {num_bonafide} bona fide and {num_spoof} spoof trials")
    margin = threshold - scores  # positive on the spoof side of the threshold
    target = np.where(is_bonafide, 1 / (num_bonafide + 2), (num_spoof + 1) / (num_spoof + 2))

    def slope(a: float) -> tuple[float, float]:  # derivative and second derivative of the negative log-likelihood
        p = 0.5 * (1 + np.tanh(0.5 * a * margin))  # sigmoid(a * margin) without overflow
        return float(np.sum((p - target) * margin)), float(np.sum(p * (1 - p) * margin**2))

    if not np.any(margin) or slope(0.0)[0] >= 0:
        return 0.0
    low, high = 0.0, 1.0
    while slope(high)[0] < 0:  # the smoothed targets make the derivative positive for a large enough `a`
        low, high = high, 2 * high
    a = high
    for _ in range(100):
        gradient, curvature = slope(a)
        if gradient < 0:
            low = a
        else:
            high = a
        step = a - gradient / curvature if curvature > 0 else None
        a = step if step is not None and low < step < high else (low + high) / 2
        if high - low <= 1e-12 * high or abs(gradient) < 1e-12 * scores.size:
            break
    return float(a)


def expected_calibration_error(
    spoof_probabilities: Sequence[float] | np.ndarray, is_spoof: Sequence[bool] | np.ndarray, num_bins: int = 10
) -> float:
    """Expected calibration error of spoof probabilities: over `num_bins` equal-width bins of `p(spoof)`, the gap
    between the mean probability and the fraction of spoof trials, weighted by the bin's share of the trials."""
    probabilities = np.asarray(spoof_probabilities, dtype=np.float64).ravel()
    is_spoof = np.asarray(is_spoof, dtype=bool).ravel()
    if probabilities.size == 0 or probabilities.size != is_spoof.size:
        raise ValueError(f"Need one label per probability, got {probabilities.size} and {is_spoof.size}")
    bins = np.minimum((probabilities * num_bins).astype(int), num_bins - 1)
    error = 0.0
    for index in np.unique(bins):
        in_bin = bins == index
        error += in_bin.mean() * abs(probabilities[in_bin].mean() - is_spoof[in_bin].mean())
    return float(error)


def brier_score(spoof_probabilities: Sequence[float] | np.ndarray, is_spoof: Sequence[bool] | np.ndarray) -> float:
    """Mean squared difference between `p(spoof)` and the outcome (1 spoof, 0 bona fide): 0 is perfect, 0.25 is
    always saying 0.5."""
    probabilities = np.asarray(spoof_probabilities, dtype=np.float64).ravel()
    is_spoof = np.asarray(is_spoof, dtype=bool).ravel()
    if probabilities.size == 0 or probabilities.size != is_spoof.size:
        raise ValueError(f"Need one label per probability, got {probabilities.size} and {is_spoof.size}")
    return float(np.mean((probabilities - is_spoof) ** 2))


__all__ = [
    "ASVSPOOF2019_COST_MODEL",
    "ASVSPOOF2021_COST_MODEL",
    "compute_det_curve",
    "compute_eer",
    "compute_min_tdcf",
    "eer_by_condition",
    "brier_score",
    "expected_calibration_error",
    "fit_calibration_scale",
]
