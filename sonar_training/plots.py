"""The figures a run leaves beside its numbers: training curves, and ROC and DET curves of a scored split."""

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import norm

from .metrics import compute_det_curve, compute_eer


def plot_training_curves(log_history: list[dict], path: str | os.PathLike) -> Path:
    """Loss, CE and JS loss (left) and dev EER (right) against the optimiser step, as one PNG."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    losses, eers = figure.subplots(1, 2)
    for key, label in (("loss", "loss"), ("ce_loss", "weighted CE"), ("js_loss", "JS loss")):
        points = [(entry["step"], entry[key]) for entry in log_history if entry.get(key) is not None]
        if points:
            losses.plot(*zip(*points), label=label)
    losses.set(xlabel="optimiser step", ylabel="training loss", title="Training loss")
    losses.legend()
    points = [(entry["step"], entry["dev_eer"]) for entry in log_history if "dev_eer" in entry]
    if points:
        eers.plot(*zip(*points), marker="o")
    eers.set(xlabel="optimiser step", ylabel="dev EER (%)", title="Dev EER")
    eers.grid(True, alpha=0.3)
    path = Path(path)
    figure.savefig(path, dpi=110)
    return path


def plot_roc_det(
    bonafide_scores: np.ndarray, spoof_scores: np.ndarray, output_dir: str | os.PathLike, title: str = ""
) -> tuple[Path, Path]:
    """Write `roc.png` (bona fide accepted vs. spoof accepted) and `det.png` (miss vs. false alarm, normal-deviate
    axes as usual in speaker verification), each marking the EER point. Returns the two paths."""
    frr, far, _ = compute_det_curve(bonafide_scores, spoof_scores)
    eer, _ = compute_eer(bonafide_scores, spoof_scores)
    output_dir = Path(output_dir)

    figure = Figure(figsize=(5, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(far, 1 - frr, label="ROC")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.plot(eer, 1 - eer, "o", fillstyle="none", label=f"EER {100 * eer:.2f}%")
    axes.set(xlabel="Spoof accepted (false alarm rate)", ylabel="Bona fide accepted (1 - miss rate)", title=title)
    axes.legend(loc="lower right")
    roc_path = output_dir / "roc.png"
    figure.savefig(roc_path, dpi=120)

    # probit axes cannot show rates of 0 or 1: clip to half a trial
    low = 0.5 / max(len(bonafide_scores), len(spoof_scores))
    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    ticks = ticks[ticks >= low]
    figure = Figure(figsize=(5, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(norm.ppf(np.clip(far, low, 1 - low)), norm.ppf(np.clip(frr, low, 1 - low)), label="DET")
    axes.plot(norm.ppf(max(eer, low)), norm.ppf(max(eer, low)), "o", fillstyle="none", label=f"EER {100 * eer:.2f}%")
    limits = norm.ppf([ticks[0] if len(ticks) else low, 0.5])
    axes.set(xlim=limits, ylim=limits, xlabel="False alarm rate (%)", ylabel="Miss rate (%)", title=title)
    axes.set_xticks(norm.ppf(ticks), [f"{100 * tick:g}" for tick in ticks])
    axes.set_yticks(norm.ppf(ticks), [f"{100 * tick:g}" for tick in ticks])
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right")
    det_path = output_dir / "det.png"
    figure.savefig(det_path, dpi=120)
    return roc_path, det_path


__all__ = ["plot_roc_det", "plot_training_curves"]
