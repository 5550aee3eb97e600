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

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm
from transformers import AutoModelForAudioClassification, HfArgumentParser

import modeling_sonar  # noqa: F401  (registers the SONAR Auto classes)
from modeling_sonar.configuration_sonar import SONAR_BONAFIDE_ID
from sonar_training.asv_scores import (
    ASVSPOOF2021_PHASES,
    default_tdcf_variant,
    read_asv_scores,
    read_asvspoof2021_asv_scores,
)
from sonar_training.data import load_sonar_dataset
from sonar_training.model_card import public_name
from sonar_training.scoring import (
    DEFAULT_CONDITION_COLUMNS,
    SCORE_FILE,
    consolidate_scores,
    get_dataloader,
    iter_scores,
    read_score_file,
    score_lines,
    write_report,
)


logger = get_logger(__name__)

DEFAULT_SPLITS = ("eval", "test", "validation", "dev")


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
            "choices": list(ASVSPOOF2021_PHASES),
            "help": "With --asv_keys: the `subset` of ASV trials the t-DCF uses, as the official --subset. Default "
            "`eval`, as published results; it should match the phase of the CM trials scored.",
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
        is_bonafide = np.asarray(dataset["label"][:]) == SONAR_BONAFIDE_ID
        details = {"model": public_name(args.model), "dataset": public_name(args.dataset), "split": split}
        if args.asv_keys is not None:
            details["asv_phase"] = args.asv_phase
        summary = write_report(
            output_dir,
            utt_ids,
            score_array,
            is_bonafide,
            config,
            conditions={column: dataset[column][:] for column in condition_columns},
            title=f"{details['dataset']} {split}",
            details=details,
            asv_scores=asv_scores,
            tdcf_variant=tdcf_variant,
            merge_ties=args.merge_ties,
        )
        logger.info(f"EER {summary['eer']:.3f}% on {len(utt_ids)} utterances; wrote {score_path} and summary.json")
    accelerator.end_training()


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:  # bad input: one line naming the problem, no traceback
        raise SystemExit(f"evaluate_sonar.py: error: {error}") from None
