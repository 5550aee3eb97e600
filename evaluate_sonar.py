#!/usr/bin/env python
"""Score a converted dataset with a SONAR model: ASVspoof score file, pooled EER, min t-DCF, EER per condition, plots.

    python evaluate_sonar.py --model outputs/sonar-full --dataset data/asvspoof2021_df --output_dir outputs/eval-21df
    accelerate launch evaluate_sonar.py --model outputs/sonar-full --dataset data/asvspoof2021_la \
        --output_dir outputs/eval-21la --asv_scores keys/LA/ASV/ASVTorch_Kaldi/score.txt \
        --asv_keys keys/LA/ASV/trial_metadata.txt

Writes `OUT/scores.txt` (`UTT_ID SCORE`, the score being the bona fide log-odds as in ASVspoof score files),
`OUT/verdicts.tsv` (each utterance's label and spoof probability from `sonar_verdict`, as the pipeline and the Space
give them), `OUT/summary.json` (EERs, and the calibration of those probabilities), `OUT/roc.png` and `OUT/det.png`.
Every utterance is the first `max_length` samples, tiled when shorter (the paper's protocol). Under `accelerate
launch` each process scores its shard of the trials. EER and min t-DCF follow the official ASVspoof evaluation code,
including its t-DCF formula for the corpus scored (the 2019 legacy formula on ASVspoof 2019 LA, the 2021 one on
ASVspoof 2021) and its handling of tied scores.

Resumable, since ASVspoof 2021 DF alone has 611,829 trials: each process appends to `OUT/scores.part{rank}.txt` batch
by batch, and a run restarted with the same `--output_dir` skips the utterances already scored.
"""

import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from datasets import ClassLabel, Dataset, DatasetDict
from matplotlib.figure import Figure
from scipy.stats import norm
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModelForAudioClassification, HfArgumentParser, PreTrainedModel

import modeling_sonar  # noqa: F401  (registers the SONAR Auto classes)
from modeling_sonar.data import SonarCollator, load_sonar_dataset
from modeling_sonar.metrics import (
    brier_score,
    compute_det_curve,
    compute_eer,
    compute_min_tdcf,
    eer_by_condition,
    expected_calibration_error,
)
from modeling_sonar.model_card import public_name
from modeling_sonar.modeling_sonar import sonar_verdict


logger = get_logger(__name__)

DEFAULT_SPLITS = ("eval", "test", "validation", "dev")
DEFAULT_CONDITION_COLUMNS = ("system", "codec", "transmission", "vocoder_type", "source")
ASV_KEYS = ("target", "nontarget", "spoof")
ASVSPOOF2021_PHASES = ("eval", "progress", "hidden", "all")
ASVSPOOF2019_LA_UTT_ID = re.compile(r"LA_[TDE]_\d+")
SCORE_FILE = "scores.txt"
VERDICT_FILE = "verdicts.tsv"
PART_FILE_PATTERN = "scores.part*.txt"


@dataclass
class EvaluationArguments:
    model: str = field(metadata={"help": "Model folder or Hub id."})
    dataset: str = field(metadata={"help": "Converted dataset: a save_to_disk folder, a parquet folder or a Hub id."})
    output_dir: str = field(metadata={"help": "Where scores.txt, summary.json, roc.png and det.png are written."})
    split: str | None = field(
        default=None,
        metadata={"help": "Split to score. Default: `eval`, else `test`, `validation` or `dev`, else the only split."},
    )
    batch_size: int = field(default=16, metadata={"help": "Utterances per forward pass and process."})
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers decoding audio, per process."})
    max_length: int | None = field(
        default=None, metadata={"help": "Samples scored per utterance. Default: the model config's `max_length`."}
    )
    asv_scores: str | None = field(
        default=None,
        metadata={
            "help": "ASV score file; adds the min t-DCF to the summary. One trial a line with its key (target, "
            "nontarget or spoof) in a column and the score last, e.g. ASVspoof 2019's `CM_KEY ASV_KEY SCORE` "
            "(`bonafide target 2.17`, `A07 spoof -0.4`). With --asv_keys: the ASVspoof 2021 LA "
            "`ASV/ASVTorch_Kaldi/score.txt` (`ASV_SPEAKER TRIAL SCORE`, no key)."
        },
    )
    asv_keys: str | None = field(
        default=None,
        metadata={
            "help": "ASVspoof 2021 LA `ASV/trial_metadata.txt`: joined with --asv_scores line by line, as the "
            "official package does (a trial is scored against several enrolled speakers, so its name repeats), "
            "keeping the --asv_phase rows."
        },
    )
    asv_phase: str = field(
        default="eval",
        metadata={
            "help": "With --asv_keys: the `subset` of ASV trials the t-DCF uses, as the official --subset. Default "
            "`eval`, as published results; it should match the phase of the CM trials scored.",
            "choices": list(ASVSPOOF2021_PHASES),
        },
    )
    tdcf_variant: str = field(
        default="auto",
        metadata={
            "help": "t-DCF formula. `auto`: the one results on the scored corpus are published with, i.e. `2019` "
            "(the ASVspoof 2019 legacy formula) on ASVspoof 2019 LA (utterance ids `LA_[TDE]_N`, no 2021 key "
            "columns), else `2021` (the revised formula of ASVspoof 2021 and tDCF_python_v2).",
            "choices": ["auto", "2019", "2021"],
        },
    )
    merge_ties: bool = field(
        default=False,
        metadata={
            "help": "Make each distinct score one operating point of the DET curve, instead of each trial as the "
            "official ASVspoof code does; changes the EER and min t-DCF only where scores tie."
        },
    )
    condition_columns: list[str] | None = field(
        default=None,
        metadata={
            "help": f"Columns to report the EER per value of. Default: those of {DEFAULT_CONDITION_COLUMNS} present."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run the model code of a Hub repository instead of the installed package."}
    )


def parse_args() -> EvaluationArguments:
    (args,) = HfArgumentParser(EvaluationArguments).parse_args_into_dataclasses()
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.num_workers < 0:
        raise ValueError(f"--num_workers must be non-negative, got {args.num_workers}")
    if args.max_length is not None and args.max_length < 1:
        raise ValueError(f"--max_length must be at least 1, got {args.max_length}")
    if args.asv_scores is not None and not os.path.isfile(args.asv_scores):
        raise ValueError(f"--asv_scores {args.asv_scores!r} is not a file")
    if args.asv_keys is not None and args.asv_scores is None:
        raise ValueError("--asv_keys needs --asv_scores, the ASV score.txt it gives the keys of")
    if args.asv_keys is not None and not os.path.isfile(args.asv_keys):
        raise ValueError(f"--asv_keys {args.asv_keys!r} is not a file")
    return args


def select_split(dataset: Dataset | DatasetDict, split: str | None) -> tuple[Dataset, str | None]:
    """The split to score: `split` when given, else the first of `DEFAULT_SPLITS` present, else the only one."""
    if isinstance(dataset, Dataset):
        return dataset, split or (str(dataset.split) if dataset.split else None)
    if split is None:
        split = next((name for name in DEFAULT_SPLITS if name in dataset), None)
        if split is None and len(dataset) == 1:
            (split,) = dataset
    if split not in dataset:
        raise ValueError(f"Split {split!r} is not in the dataset, which has {sorted(dataset)}: pass --split")
    return dataset[split], split


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


def read_asv_scores(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target, nontarget and spoof scores of an ASV score file (key in one column, score in the last).

    Covers the ASVspoof 2019 `CM_KEY ASV_KEY SCORE` files (`ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt`, whose
    first column is `bonafide` or the attack `A01`-`A19`) and the six-column files of the revised t-DCF package.
    """
    scores = {key: [] for key in ASV_KEYS}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            key = next((value for value in fields[:-1] if value in scores), None)
            if key is None:
                message = f"{path}:{number}: no key among {ASV_KEYS} before the score in {line.strip()!r}"
                if len(fields) == 3:
                    message += ": an ASVspoof 2021 score.txt has none, pass its ASV/trial_metadata.txt as --asv_keys"
                raise ValueError(message)
            scores[key].append(_parse_score(fields[-1], path, number))
    return tuple(np.asarray(scores[key]) for key in ASV_KEYS)


def read_asvspoof2021_asv_scores(
    score_path: str | os.PathLike, keys_path: str | os.PathLike, phase: str = "eval"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target, nontarget and spoof scores of the official ASVspoof 2021 LA ASV scores, restricted to one phase.

    `score_path` is `ASV/ASVTorch_Kaldi/score.txt` (`ASV_SPEAKER TRIAL SCORE`), `keys_path` its key,
    `ASV/trial_metadata.txt` (`SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM PHASE`, e.g.
    `LA_0007-alaw-ita_tx LA_E_5013670-alaw-ita_tx alaw ita_tx bonafide nontarget notrim eval`). A trial is scored
    against several enrolled speakers, so its name repeats: like the official package, the two files are joined line
    by line; each line's speaker and trial must agree, which catches files out of step. The official package then
    keeps the rows of one phase (`--subset`); without that filter the t-DCF silently mixes in the progress and hidden
    trials.

    Args:
        score_path, keys_path: the two official files.
        phase: `eval`, `progress`, `hidden`, or `all` to keep every row.
    """
    if phase not in ASVSPOOF2021_PHASES:
        raise ValueError(f"ASV phase must be one of {ASVSPOOF2021_PHASES}, got {phase!r}")
    with open(score_path, encoding="utf-8-sig") as file:  # -sig: a byte-order mark is not part of the first speaker
        score_lines = [(number, line.split()) for number, line in enumerate(file, start=1) if line.strip()]
    with open(keys_path, encoding="utf-8-sig") as file:
        key_lines = [(number, line.split()) for number, line in enumerate(file, start=1) if line.strip()]
    if len(score_lines) != len(key_lines):
        raise ValueError(
            f"{score_path} has {len(score_lines)} trials and its keys {keys_path} {len(key_lines)}: they must be the "
            "official ASV score.txt and trial_metadata.txt of the same track, complete"
        )
    scores = {key: [] for key in ASV_KEYS}
    for (score_number, score_fields), (key_number, key_fields) in zip(score_lines, key_lines):
        if len(score_fields) != 3:
            raise ValueError(f"{score_path}:{score_number}: expected `ASV_SPEAKER TRIAL SCORE`, got {score_fields}")
        if len(key_fields) != 8:
            raise ValueError(
                f"{keys_path}:{key_number}: expected 8 fields `SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM "
                f"PHASE`, got {len(key_fields)}"
            )
        if score_fields[:2] != key_fields[:2]:
            raise ValueError(
                f"{score_path}:{score_number} scores {' '.join(score_fields[:2])!r} but {keys_path}:{key_number} "
                f"keys {' '.join(key_fields[:2])!r}: the files are out of step"
            )
        key, trial_phase = key_fields[5], key_fields[7]
        if key not in scores:
            raise ValueError(f"{keys_path}:{key_number}: unknown ASV key {key!r}; expected one of {ASV_KEYS}")
        if phase in ("all", trial_phase):
            scores[key].append(_parse_score(score_fields[2], score_path, score_number))
    empty = [key for key in ASV_KEYS if not scores[key]]
    if empty:
        raise ValueError(f"{keys_path} has no {'/'.join(empty)} trial in phase {phase!r}")
    return tuple(np.asarray(scores[key]) for key in ASV_KEYS)


def _parse_score(value: str, path: str | os.PathLike, number: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{path}:{number}: score {value!r} is not a number") from None


def default_tdcf_variant(column_names: list[str], utt_ids: list[str], asv_keys_given: bool = False) -> str:
    """The t-DCF formula results on this corpus are published with: `2019` for ASVspoof 2019 LA, else `2021`.

    ASVspoof 2019 LA results report the legacy formula of its challenge; ASVspoof 2021 LA, and the revised
    `tDCF_python_v2` package for everything since, the 2021 one. A set counts as ASVspoof 2019 LA when its utterance
    ids are `LA_T_`/`LA_D_`/`LA_E_` numbers (the 2019 converter's output, sonar-mini and the demo corpus) and nothing
    marks it as ASVspoof 2021, whose LA eval ids look the same: its ASV keys (`--asv_keys`) or the key columns the
    2021 converter writes (`phase`, `transmission`).
    """
    if asv_keys_given or {"phase", "transmission"} & set(column_names):
        return "2021"
    if utt_ids and all(ASVSPOOF2019_LA_UTT_ID.fullmatch(utt_id) for utt_id in utt_ids):
        return "2019"
    return "2021"


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


def detection_scores(model: PreTrainedModel, outputs) -> torch.Tensor:
    """The bona fide log-odds `logits[:, bonafide] - logits[:, spoof]`, taken from `outputs.scores` when there."""
    scores = getattr(outputs, "scores", None)
    if scores is not None:
        return scores
    label2id = model.config.label2id
    return outputs.logits[:, label2id["bonafide"]] - outputs.logits[:, label2id["spoof"]]


def iter_scores(
    model: PreTrainedModel, dataloader: DataLoader
) -> Iterator[tuple[list[str], torch.Tensor, torch.Tensor]]:
    """Yield `(utt_ids, scores, labels)` batch by batch on this process; scores are float32 on the model's device."""
    model.eval()
    with torch.inference_mode():
        for batch in dataloader:
            outputs = model(input_values=batch["input_values"])
            yield batch["utt_id"], detection_scores(model, outputs).float(), batch["labels"]


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
        eers = eer_by_condition(scores, np.where(is_bonafide, 0, 1), values, merge_ties=merge_ties)
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


def write_summary_and_plots(
    summary: dict, scores: np.ndarray, is_bonafide: np.ndarray, output_dir: str | os.PathLike, title: str
) -> None:
    """Write `summary.json`, `roc.png` and `det.png` into `output_dir`: what every evaluation leaves next to its
    score file."""
    output_dir = Path(output_dir)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plot_roc_det(scores[is_bonafide], scores[~is_bonafide], output_dir, title=title)


def main():
    args = parse_args()
    # no collective runs while scoring, so processes may get shards of unequal size instead of padded duplicates
    accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(even_batches=False))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)

    dataset, split = select_split(load_sonar_dataset(args.dataset), args.split)
    logger.info(f"Scoring split {split!r} of {args.dataset} ({len(dataset)} utterances)")
    missing = [column for column in ("audio", "label", "utt_id") if column not in dataset.column_names]
    if missing:
        raise ValueError(f"The dataset lacks the column(s) {missing}; it has {dataset.column_names}")
    if args.condition_columns is None:
        condition_columns = [column for column in DEFAULT_CONDITION_COLUMNS if column in dataset.column_names]
    else:
        condition_columns = args.condition_columns
        unknown = [column for column in condition_columns if column not in dataset.column_names]
        if unknown:
            raise ValueError(f"--condition_columns {unknown} not in the dataset, which has {dataset.column_names}")
    utt_ids = dataset["utt_id"][:]
    if len(set(utt_ids)) != len(utt_ids):
        raise ValueError("`utt_id` must be unique: the score file and resuming are keyed by it")
    asv_scores, tdcf_variant = None, args.tdcf_variant
    if args.asv_scores is not None:  # read before scoring: a bad file should not cost a whole run
        if args.asv_keys is not None:
            asv_scores = read_asvspoof2021_asv_scores(args.asv_scores, args.asv_keys, args.asv_phase)
        else:
            asv_scores = read_asv_scores(args.asv_scores)
        if tdcf_variant == "auto":
            tdcf_variant = default_tdcf_variant(dataset.column_names, utt_ids, args.asv_keys is not None)
        logger.info(f"min t-DCF with the ASVspoof {tdcf_variant} formula")

    try:
        model = AutoModelForAudioClassification.from_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    except OSError as error:
        raise ValueError(f"Cannot load a model from {args.model!r}: {error}") from error
    config = model.config
    max_length = args.max_length or config.max_length

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        consolidate_scores(output_dir)
    accelerator.wait_for_everyone()
    score_path = output_dir / SCORE_FILE
    done = read_score_file(score_path) if score_path.exists() else {}
    unknown = done.keys() - set(utt_ids)
    if unknown:
        raise ValueError(
            f"{score_path} scores {len(unknown)} utterance(s) not in this split (e.g. {sorted(unknown)[0]!r}), so it "
            "comes from another dataset: choose another --output_dir"
        )
    todo = [index for index, utt_id in enumerate(utt_ids) if utt_id not in done]
    logger.info(f"Skipping {len(done)} utterance(s) already in {score_path}; {len(todo)} left to score")

    if todo:
        dataloader = get_dataloader(dataset.select(todo), max_length, args.batch_size, args.num_workers)
        model = accelerator.prepare_model(model, evaluation_mode=True)
        dataloader = accelerator.prepare(dataloader)
        part_path = output_dir / f"scores.part{accelerator.process_index}.txt"
        progress = tqdm(total=len(dataloader), desc="Scoring", disable=not accelerator.is_local_main_process)
        with open(part_path, "a", encoding="utf-8") as part_file:
            for batch_ids, batch_scores, _ in iter_scores(model, dataloader):
                part_file.write(score_lines(batch_ids, batch_scores.tolist()))
                part_file.flush()
                progress.update()
        progress.close()
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        scores = consolidate_scores(output_dir)
        if len(scores) != len(utt_ids):
            raise RuntimeError(f"{score_path} has {len(scores)} scores for {len(utt_ids)} utterances")
        score_array = np.array([float(scores[utt_id]) for utt_id in utt_ids])
        label_feature = dataset.features["label"]
        bonafide_label = label_feature.str2int("bonafide") if isinstance(label_feature, ClassLabel) else 0
        is_bonafide = np.asarray(dataset["label"][:]) == bonafide_label
        conditions = {column: dataset[column][:] for column in condition_columns}
        summary = summarize(score_array, is_bonafide, conditions, asv_scores, tdcf_variant, args.merge_ties)
        if args.asv_keys is not None:
            summary["asv_phase"] = args.asv_phase
        summary["calibration"] = write_verdicts(utt_ids, score_array, is_bonafide, config, output_dir)
        summary.update(model=public_name(args.model), dataset=public_name(args.dataset), split=split)
        write_summary_and_plots(summary, score_array, is_bonafide, output_dir, title=f"{summary['dataset']} {split}")
        logger.info(f"EER {summary['eer']:.3f}% on {len(utt_ids)} utterances; wrote {score_path} and summary.json")
    accelerator.end_training()


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:  # bad input: one line naming the problem, no traceback
        raise SystemExit(f"evaluate_sonar.py: error: {error}") from None
