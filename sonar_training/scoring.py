"""Scoring a dataset with a SONAR model: score files (resumable), the summary of a scored split and its verdicts.

The training script's dev and eval scoring and `evaluate_sonar.py` both go through here, so that a split scores the
same whichever of them scores it.
"""

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import PreTrainedModel

from modeling_sonar import sonar_verdict

from .data import SonarCollator
from .metrics import brier_score, compute_eer, compute_min_tdcf, eer_by_condition, expected_calibration_error
from .plots import plot_roc_det


DEFAULT_CONDITION_COLUMNS = ("system", "codec", "transmission", "vocoder_type", "source")
SCORE_FILE = "scores.txt"
VERDICT_FILE = "verdicts.tsv"
SUMMARY_FILE = "summary.json"
PART_FILE_PATTERN = "scores.part*.txt"


def score_lines(utt_ids: list[str], scores: list[float]) -> str:
    """`UTT_ID SCORE` lines; 9 significant digits write float32 scores exactly."""
    return "".join(f"{utt_id} {score:.9g}\n" for utt_id, score in zip(utt_ids, scores))


def read_score_file(path: str | os.PathLike) -> dict[str, str]:
    """Scores of a `UTT_ID SCORE` file by utterance, kept as written; the first score of a repeated utterance wins.

    Every line is checked as it is read (UTF-8, two fields, a finite number), so that a damaged file is reported as
    `FILE:LINE: ...` before anything is scored, not when the summary is computed. A last line without its newline is
    the trace of a killed run and is dropped: its score may be cut short.
    """
    scores = {}
    with open(path, "rb") as file:
        for number, raw_line in enumerate(file, start=1):
            if not raw_line.endswith(b"\n"):
                break
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not UTF-8 text (byte {raw_line[error.start]:#04x})") from None
            fields = line.split()
            if len(fields) != 2:
                raise ValueError(f"{path}:{number}: expected `UTT_ID SCORE`, got {line.strip()!r}")
            try:
                score = float(fields[1])
            except ValueError:
                raise ValueError(
                    f"{path}:{number}: the score {fields[1]!r} of {fields[0]!r} is not a number"
                ) from None
            if not math.isfinite(score):
                raise ValueError(f"{path}:{number}: the score {fields[1]!r} of {fields[0]!r} is not finite")
            scores.setdefault(fields[0], fields[1])
    return scores


def consolidate_scores(output_dir: str | os.PathLike) -> dict[str, str]:
    """Merge the part files of this and earlier runs into `scores.txt` (atomically), delete them, and return it all."""
    output_dir = Path(output_dir)
    score_path = output_dir / SCORE_FILE
    scores = read_score_file(score_path) if score_path.exists() else {}
    part_paths = sorted(output_dir.glob(PART_FILE_PATTERN))
    if not part_paths:
        return scores
    for part_path in part_paths:
        for utt_id, score in read_score_file(part_path).items():
            scores.setdefault(utt_id, score)
    temporary_path = score_path.with_suffix(".tmp")
    temporary_path.write_text("".join(f"{utt_id} {score}\n" for utt_id, score in scores.items()), encoding="utf-8")
    os.replace(temporary_path, score_path)
    for part_path in part_paths:
        part_path.unlink()
    return scores


@dataclass
class ScoringCollator:
    """`SonarCollator` for evaluation, keeping each row's `utt_id` so the scores can be written out."""

    collator: SonarCollator

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor | list[str]]:
        batch = self.collator(rows)
        batch["utt_id"] = [row["utt_id"] for row in rows]
        return batch


def get_dataloader(dataset: Dataset, max_length: int, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Batches of `{"input_values", "labels", "utt_id"}` in dataset order, cut or tiled to `max_length` samples."""
    dataset = dataset.select_columns(["audio", "label", "utt_id"])
    collator = ScoringCollator(SonarCollator(max_length=max_length, train=False))
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collator)


def iter_scores(
    model: PreTrainedModel, dataloader: DataLoader
) -> Iterator[tuple[list[str], torch.Tensor, torch.Tensor]]:
    """Yield `(utt_ids, scores, labels)` batch by batch on this process; scores are float32 on the model's device."""
    model.eval()
    with torch.inference_mode():
        for batch in dataloader:
            outputs = model(input_values=batch["input_values"])
            yield batch["utt_id"], outputs.scores.float(), batch["labels"]


def score_dataloader(
    model: PreTrainedModel, dataloader: DataLoader, accelerator: Accelerator
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Score a dataloader on every process and gather `(utt_ids, scores, labels)` of the whole dataset on each.

    The training script's dev EER uses it on a dataloader from `get_dataloader` passed through `accelerator.prepare`.
    """
    utt_ids, scores, labels = [], [], []
    for batch_ids, batch_scores, batch_labels in iter_scores(model, dataloader):
        utt_ids.extend(accelerator.gather_for_metrics(batch_ids, use_gather_object=True))
        batch_scores, batch_labels = accelerator.gather_for_metrics((batch_scores, batch_labels))
        scores.append(batch_scores.cpu().numpy())
        labels.append(batch_labels.cpu().numpy())
    return utt_ids, np.concatenate(scores), np.concatenate(labels)


def summarize(
    scores: np.ndarray,
    is_bonafide: np.ndarray,
    conditions: dict[str, list],
    asv_scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    tdcf_variant: str = "2021",
    merge_ties: bool = False,
) -> dict:
    """Pooled EER (percent), its threshold, counts, EER per condition (percent) and, given ASV `(target, nontarget,
    spoof)` scores, the min t-DCF with the formula used. `merge_ties` is passed to the metrics."""
    bonafide_scores, spoof_scores = scores[is_bonafide], scores[~is_bonafide]
    eer, threshold = compute_eer(bonafide_scores, spoof_scores, merge_ties=merge_ties)
    summary = {
        "eer": 100 * eer,
        "eer_threshold": threshold,
        "num_bonafide": len(bonafide_scores),
        "num_spoof": len(spoof_scores),
    }
    if merge_ties:
        summary["merge_ties"] = True
    if asv_scores is not None:
        min_tdcf, _ = compute_min_tdcf(
            bonafide_scores, spoof_scores, *asv_scores, variant=tdcf_variant, merge_ties=merge_ties
        )
        summary.update(min_tdcf=min_tdcf, tdcf_variant=tdcf_variant)
    for column, values in conditions.items():
        eers = eer_by_condition(scores, is_bonafide, values, merge_ties=merge_ties)
        summary[f"eer_by_{column}"] = {value: 100 * value_eer for value, value_eer in eers.items()}
    return summary


def write_verdicts(
    utt_ids: list[str], scores: np.ndarray, is_bonafide: np.ndarray, config, output_dir: str | os.PathLike
) -> dict:
    """Write `verdicts.tsv` (`utt_id score label spoof_probability`, tab-separated, with a header), each line from
    `sonar_verdict` as the pipeline and the Space decide, and return the calibration of those probabilities: the
    threshold and scale used, the expected calibration error and the Brier score."""
    verdicts = [sonar_verdict(score, config) for score in scores]
    lines = [
        f"{utt_id}\t{score:.9g}\t{v['label']}\t{v['spoof_probability']:.9g}\n"
        for utt_id, score, v in zip(utt_ids, scores, verdicts)
    ]
    path = Path(output_dir) / VERDICT_FILE
    temporary_path = path.with_suffix(".tmp")
    temporary_path.write_text("utt_id\tscore\tlabel\tspoof_probability\n" + "".join(lines), encoding="utf-8")
    os.replace(temporary_path, path)
    spoof_probabilities = np.array([v["spoof_probability"] for v in verdicts])
    return calibration_summary(spoof_probabilities, is_bonafide, config)


def calibration_summary(spoof_probabilities: np.ndarray, is_bonafide: np.ndarray, config) -> dict:
    """How well `sonar_verdict`'s spoof probabilities match the outcomes (lower is better for both errors)."""
    return {
        "decision_threshold": config.decision_threshold,
        "calibration_scale": config.calibration_scale,
        "ece": expected_calibration_error(spoof_probabilities, ~is_bonafide),
        "brier": brier_score(spoof_probabilities, ~is_bonafide),
    }


def write_report(
    output_dir: str | os.PathLike,
    utt_ids: list[str],
    scores: np.ndarray,
    is_bonafide: np.ndarray,
    config,
    *,
    conditions: dict[str, list],
    title: str,
    details: dict | None = None,
    asv_scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    tdcf_variant: str = "2021",
    merge_ties: bool = False,
) -> dict:
    """Everything a scored split leaves beside its score file, the same from `evaluate_sonar.py` and from training:
    `verdicts.tsv` (see `write_verdicts`), `summary.json` (see `summarize`, plus the calibration of the verdicts'
    probabilities and `details`), `roc.png` and `det.png`. Returns the summary."""
    output_dir = Path(output_dir)
    summary = summarize(scores, is_bonafide, conditions, asv_scores, tdcf_variant, merge_ties)
    summary["calibration"] = write_verdicts(utt_ids, scores, is_bonafide, config, output_dir)
    summary.update(details or {})
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plot_roc_det(scores[is_bonafide], scores[~is_bonafide], output_dir, title=title)
    return summary


__all__ = [
    "DEFAULT_CONDITION_COLUMNS",
    "PART_FILE_PATTERN",
    "SCORE_FILE",
    "SUMMARY_FILE",
    "VERDICT_FILE",
    "ScoringCollator",
    "calibration_summary",
    "consolidate_scores",
    "get_dataloader",
    "iter_scores",
    "read_score_file",
    "score_dataloader",
    "score_lines",
    "summarize",
    "write_report",
    "write_verdicts",
]
