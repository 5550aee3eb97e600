#!/usr/bin/env python
"""Train SONAR, or its one-encoder baseline, with Accelerate: weighted CE + JS loss, dev EER per epoch, early stopping.

The paper's recipe, SONAR-Full on XLS-R 300M and ASVspoof 2019 LA (GPUs; multi-GPU and multi-node through
`accelerate config`, DeepSpeed ZeRO-2 with `--config_file configs/deepspeed_zero2.yaml` after `launch`):

    python dataset_scripts/asvspoof2019_la.py --root /data/LA --output data/asvspoof2019_la
    accelerate launch train_sonar.py --config configs/sonar_full_xlsr.yaml --dataset data/asvspoof2019_la \
        --output_dir outputs/sonar-full

A tiny model on the embedded demo corpus, on a CPU in minutes:

    accelerate launch --cpu --num_processes 1 train_sonar.py --config configs/tiny_demo.yaml \
        --output_dir outputs/tiny_demo

`--config` (YAML or JSON) gives defaults; any `--key value` on the command line wins. Outputs in `--output_dir`:
`checkpoint-{step}/` (accelerate state and `training_state.json`, for `--resume_from_checkpoint latest`), `model/`
(the best dev-EER model, Hub-ready: safetensors, config with `auto_map`, `custom_pipelines` and the decision fitted on
the dev split, `decision_threshold` at its EER and `calibration_scale` of the spoof probability, modeling and pipeline
code, feature extractor, README.md card, training_curves.png), `eval_results/` (scores, verdicts, summary and ROC/DET
plots of the eval split, when the dataset has one) and `trainer_state.json` (log history, best step, early stopping).
A model trained on the demo corpus is marked `smoke_test` in its config, card and Space.

Reading order: `main` (at the end) calls the set-up functions, then `train` (the loop in plain view, with
`evaluate_and_keep_best` for the dev EER, the best model and early stopping), then `finish_run` (eval split, model
card, trainer_state.json, upload).
"""

import copy
import dataclasses
import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import evaluate
import numpy as np
import torch
from accelerate import Accelerator, DistributedType
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from datasets import Dataset, DatasetDict
from huggingface_hub import HfApi
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from modeling_sonar import (
    SonarAudioClassifierOutput,
    SonarFeatureExtractor,
    SonarForAudioClassification,
    sonar_verdict,
)
from sonar_training.arguments import (
    DataArguments,
    ModelArguments,
    SonarTrainingArguments,
    config_from_args,
    parse_args,
)
from sonar_training.checkpoints import TrainingState, resolve_checkpoint, save_checkpoint
from sonar_training.data import SonarCollator, load_sonar_dataset
from sonar_training.metrics import fit_calibration_scale
from sonar_training.model_card import public_name, write_model_card
from sonar_training.plots import plot_training_curves
from sonar_training.recipe import class_weights_from_priors, cosine_lr_lambda
from sonar_training.release import IGNORE_PATTERNS
from sonar_training.sampling import DEV_AUGMENTATION_EPOCH, SonarEpochSampler, SonarKeyedDataset
from sonar_training.scoring import (
    DEFAULT_CONDITION_COLUMNS,
    SCORE_FILE,
    ScoringCollator,
    calibration_summary,
    get_dataloader,
    score_dataloader,
    score_lines,
    write_report,
)


logger = get_logger(__name__)

REPO_DIR = Path(__file__).resolve().parent
EER_METRIC = REPO_DIR / "metrics" / "eer"
DEMO_CORPUS_DIR = REPO_DIR / "data" / "demo_corpus"
DEMO_DATASET_DIR = REPO_DIR / "data" / "demo_dataset"
DEV_SPLITS = ("validation", "dev")
EVAL_SPLITS = ("eval", "test")
MODEL_DIR = "model"
EVAL_DIR = "eval_results"
TRAINER_STATE_FILE = "trainer_state.json"


@contextmanager
def one_line_errors():
    """Turn a `ValueError` (a bad argument, a missing dataset or split) into the one-line error of a command line."""
    try:
        yield
    except ValueError as error:
        raise SystemExit(f"train_sonar.py: error: {error}") from None


# --- Set-up: the accelerator, the data, the model, the dataloaders, the step budget, the state to start from


def create_accelerator(args: SonarTrainingArguments) -> Accelerator:
    """The accelerator (processes, mixed precision, gradient accumulation, trackers) and the log format."""
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to.split(","),
        project_dir=args.output_dir,
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    return accelerator


def prepare_demo_dataset() -> Path:
    """Build the embedded demo corpus and convert it with the ASVspoof 2019 LA converter, once."""
    from dataset_scripts.asvspoof2019_la import build_dataset
    from dataset_scripts.common import write_dataset
    from dataset_scripts.make_demo_corpus import make_demo_corpus

    if not (DEMO_DATASET_DIR / "dataset_dict.json").is_file():
        corpus = make_demo_corpus(DEMO_CORPUS_DIR)
        write_dataset(build_dataset(corpus / "LA"), DEMO_DATASET_DIR, overwrite=True)
    return DEMO_DATASET_DIR


def pick_splits(dataset, data_args: DataArguments, source: str) -> dict[str, str]:
    """The split names for the train, dev and (optional) eval roles; a missing one is a `ValueError` naming it."""
    if not isinstance(dataset, DatasetDict):
        raise ValueError(f"--dataset {source!r} has no named splits; training needs train and dev splits")

    def pick(name: str | None, defaults: tuple[str, ...], role: str, *, required: bool) -> str | None:
        if name is None:
            name = next((split for split in defaults if split in dataset), None)
        if name is None and not required:
            return None
        if name not in dataset:
            raise ValueError(
                f"--{role}_split: no {role} split {name or defaults} in {source!r}, which has {sorted(dataset)}"
            )
        return name

    names = {
        "train": pick(data_args.train_split, (), "train", required=True),
        "dev": pick(data_args.dev_split, DEV_SPLITS, "dev", required=True),
        "eval": pick(data_args.eval_split, EVAL_SPLITS, "eval", required=False),
    }
    return {role: name for role, name in names.items() if name is not None}


def load_splits(data_args: DataArguments) -> tuple[str, dict[str, Dataset]]:
    """The dataset's name (folder name or Hub id) and its train, dev and (optional) eval splits."""
    source = str(prepare_demo_dataset()) if data_args.dataset == "demo" else data_args.dataset
    try:
        dataset = load_sonar_dataset(source)
    except (ValueError, OSError) as error:  # not a dataset folder, or a Hub id that cannot be found or reached
        raise ValueError(f"--dataset {data_args.dataset!r}: {error}") from None
    names = pick_splits(dataset, data_args, source)
    return public_name(source), {role: dataset[name] for role, name in names.items()}


def load_data(
    accelerator: Accelerator, data_args: DataArguments
) -> tuple[str, dict[str, Dataset], evaluate.EvaluationModule]:
    """The dataset's public name, its splits by role (train, dev, and eval when it has one) and the EER metric; the
    main process first, so that the demo corpus and the caches are built once."""
    with accelerator.main_process_first():
        with one_line_errors():  # no such dataset, or not the splits asked for
            dataset_name, splits = load_splits(data_args)
        metric = evaluate.load(str(EER_METRIC), keep_in_memory=True)
    logger.info("Splits: " + ", ".join(f"{role} {len(split)}" for role, split in splits.items()))
    return dataset_name, splits, metric


def is_demo_corpus(train: Dataset) -> bool:
    """Whether the training split is the embedded demo corpus, wherever it was converted to: all its speakers are the
    demo corpus's."""
    from dataset_scripts.make_demo_corpus import SOURCES

    return "speaker" in train.column_names and set(train["speaker"][:]) <= set(SOURCES.values())


def build_model(model_args: ModelArguments, data_args: DataArguments, train: Dataset) -> SonarForAudioClassification:
    """The model from the preset, the overrides, the window length and the class weights; marked a smoke test when
    the training split is the demo corpus."""
    config = config_from_args(model_args, data_args)
    config.class_weights = model_args.class_weights or class_weights_from_priors(train["label"][:], config.num_labels)
    config.smoke_test = is_demo_corpus(train)
    if model_args.encoder_name_or_path:
        model = SonarForAudioClassification.from_encoder_pretrained(model_args.encoder_name_or_path, config)
        # config.json names the encoder by its Hub id or folder name, never by a local path
        model.config.encoder_name_or_path = public_name(model_args.encoder_name_or_path)
        model.config.encoder_config.name_or_path = model.config.encoder_name_or_path
        return model
    return SonarForAudioClassification(config)


def describe_model(accelerator: Accelerator, model: SonarForAudioClassification, preset: str) -> None:
    """Log the model's size and loss set-up; warn where DeepSpeed would undo the filter projection."""
    config = model.config
    logger.info(
        f"{preset}: {model.num_parameters() / 1e6:.2f} M parameters, class weights "
        f"{config.class_weights}, window {config.max_length} samples"
    )
    if accelerator.distributed_type == DistributedType.DEEPSPEED and config.constraint_mode == "projection":
        logger.warning(
            "DeepSpeed's optimiser keeps its own fp32 copy of the weights, which overwrites the filter projection at "
            'its next step: train with --config_overrides \'{"constraint_mode": "forward"}\' under DeepSpeed.'
        )


def get_dataloaders(
    splits: dict[str, Dataset], data_args: DataArguments, args: SonarTrainingArguments, max_length: int
) -> tuple[DataLoader, DataLoader]:
    """Training batches keyed by `(epoch, index)` so that order and augmentation replay on resume; dev batches as
    `evaluate_sonar.py` scores them (first `max_length` samples, tiled), augmented with RawBoost as the released code
    does unless `--augment_dev false`, with the same draws at every evaluation so that dev EERs compare."""
    train = splits["train"].select_columns(["audio", "label"])
    sampler = SonarEpochSampler(
        train["label"][:],
        seed=args.seed,
        balanced=data_args.balanced_sampling,
        spoof_draw=data_args.balanced_spoof_draw,
    )
    collator = SonarCollator(
        max_length=max_length,
        train=True,
        random_crop=data_args.random_crop,
        rawboost_algo=data_args.rawboost_algo,
        seed=args.seed,
        augment_full_clip=data_args.augment_full_clip,
    )
    train_dataloader = DataLoader(
        SonarKeyedDataset(train),
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=data_args.num_workers,
        # the loader's own generator, so that starting an epoch leaves the global RNG (dropout) untouched
        generator=torch.Generator().manual_seed(args.seed),
    )
    if data_args.augment_dev and data_args.rawboost_algo:
        dev = splits["dev"].select_columns(["audio", "label", "utt_id"])
        dev_collator = dataclasses.replace(collator, random_crop=False)  # fixed draws: keyed by dev row
        dev_dataloader = DataLoader(
            SonarKeyedDataset(dev, epoch=DEV_AUGMENTATION_EPOCH),
            batch_size=args.per_device_eval_batch_size,
            collate_fn=ScoringCollator(dev_collator),
            num_workers=data_args.num_workers,
        )
    else:
        dev_dataloader = get_dataloader(
            splits["dev"],
            max_length=max_length,
            batch_size=args.per_device_eval_batch_size,
            num_workers=data_args.num_workers,
        )
    return train_dataloader, dev_dataloader


@dataclass(frozen=True)
class StepBudget:
    """
    How long the run is, in optimiser steps, from the length of the prepared training dataloader (batches per
    process and epoch).

    Args:
        steps_per_epoch: optimiser steps per epoch (micro-batches / gradient accumulation, rounded up).
        max_train_steps: `--max_steps`, else `--num_train_epochs` epochs.
        num_epochs: epochs the loop starts, the last one possibly cut short.
    """

    steps_per_epoch: int
    max_train_steps: int
    num_epochs: int

    @classmethod
    def from_args(cls, args: SonarTrainingArguments, num_batches: int) -> "StepBudget":
        steps_per_epoch = math.ceil(num_batches / args.gradient_accumulation_steps)
        max_train_steps = args.max_steps or args.num_train_epochs * steps_per_epoch
        return cls(
            steps_per_epoch=steps_per_epoch,
            max_train_steps=max_train_steps,
            num_epochs=math.ceil(max_train_steps / steps_per_epoch),
        )


def get_lr_scheduler(
    optimizer: torch.optim.Optimizer, args: SonarTrainingArguments, budget: StepBudget, num_processes: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The cosine of `--lr_scheduler_type` (see `cosine_lr_lambda`), not yet prepared."""
    lr_lambda = cosine_lr_lambda(
        args.lr_scheduler_type,
        learning_rate=args.learning_rate,
        min_learning_rate=args.min_learning_rate,
        total_steps=budget.max_train_steps,
        steps_per_epoch=budget.steps_per_epoch,
        cycle_epochs=args.lr_cycle_epochs,
        num_processes=num_processes,  # the prepared scheduler steps once per process at each optimiser step
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def restore_training_state(
    accelerator: Accelerator, resume_from_checkpoint: str | None, output_dir: Path
) -> TrainingState:
    """A fresh state, or (`--resume_from_checkpoint`) the checkpoint's: accelerate's state first (weights, optimiser,
    scheduler, random generators), then the loop's own (step, best model, patience, log)."""
    if not resume_from_checkpoint:
        return TrainingState()
    checkpoint = resolve_checkpoint(resume_from_checkpoint, output_dir)
    if checkpoint is None:
        logger.info(f"No checkpoint in {output_dir} yet: starting a new run")
        return TrainingState()
    logger.info(f"Resuming from {checkpoint}")
    accelerator.load_state(str(checkpoint))
    return TrainingState.from_checkpoint(checkpoint)


def argument_values(model_args: ModelArguments, data_args: DataArguments, args: SonarTrainingArguments) -> dict:
    """Every argument by name, as the trackers and the recipe record them."""
    return {**asdict(model_args), **asdict(data_args), **asdict(args)}


def start_trackers(
    accelerator: Accelerator, model_args: ModelArguments, data_args: DataArguments, args: SonarTrainingArguments
) -> None:
    """Open the trackers of `--report_to` with every argument as a hyperparameter (non-numbers as text)."""
    if accelerator.is_main_process:
        hparams = argument_values(model_args, data_args, args)
        accelerator.init_trackers(
            "sonar", {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in hparams.items()}
        )


# --- The loop, its logging and its dev evaluation


def log_metrics(accelerator: Accelerator, state: TrainingState, values: dict[str, float]) -> None:
    """Record `values` at the current step: in the state's log history (checkpoints, trainer_state.json, the training
    curves) and in the trackers."""
    values = {"step": state.global_step, **values}
    state.log_history.append(values)
    accelerator.log(values, step=state.global_step)


@dataclass
class RunningLosses:
    """The losses summed over this process's micro-batches since the last log, the clips seen and when counting
    began: what a log entry averages."""

    loss: float = 0.0
    ce_loss: float = 0.0
    js_loss: float = 0.0
    micro_batches: int = 0
    clips: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, outputs: SonarAudioClassifierOutput, num_clips: int) -> None:
        for name in ("loss", "ce_loss", "js_loss"):
            if getattr(outputs, name) is not None:
                setattr(self, name, getattr(self, name) + getattr(outputs, name).detach().float().item())
        self.micro_batches += 1
        self.clips += num_clips


def log_losses(
    accelerator: Accelerator,
    state: TrainingState,
    running: RunningLosses,
    *,
    learning_rate: float,
    epoch: int,
    with_js_loss: bool,
) -> dict[str, float]:
    """Log the mean losses since the last log (averaged over processes), the learning rate and the throughput."""
    means = [running.loss, running.ce_loss, running.js_loss]
    means = torch.tensor([value / running.micro_batches for value in means])
    loss, ce_loss, js_loss = accelerator.reduce(means.to(accelerator.device), "mean").tolist()
    values = {"loss": loss, "ce_loss": ce_loss, "lr": learning_rate, "epoch": epoch}
    if with_js_loss:
        values["js_loss"] = js_loss
    values["samples_per_second"] = running.clips * accelerator.num_processes / (time.perf_counter() - running.started)
    log_metrics(accelerator, state, values)
    return values


@dataclass
class DevEvaluation:
    """
    One dev evaluation.

    Args:
        eer: the equal error rate, in percent.
        threshold: the bona fide log-odds at the EER, the model's `decision_threshold`.
        calibration: the decision fitted there (`decision_threshold`, `calibration_scale`) with the expected
            calibration error (`ece`) and Brier score (`brier`) of its spoof probability.
    """

    eer: float
    threshold: float
    calibration: dict[str, float]


def evaluate_eer(
    model, dataloader: DataLoader, accelerator: Accelerator, metric: evaluate.EvaluationModule
) -> DevEvaluation:
    """Dev EER, its threshold and the decision fitted there: the scale that makes `sonar_verdict`'s spoof probability
    calibrated with the offset at that threshold. The same on every process; leaves the model in training mode."""
    _, scores, labels = score_dataloader(model, dataloader, accelerator)
    config = copy.deepcopy(accelerator.unwrap_model(model).config)
    result = metric.compute(predictions=scores.tolist(), references=labels.tolist(), pos_label=config.bonafide_id)
    model.train()
    is_bonafide = labels == config.bonafide_id
    config.decision_threshold = float(result["threshold"])
    config.calibration_scale = fit_calibration_scale(scores, is_bonafide, config.decision_threshold)
    spoof_probabilities = np.array([sonar_verdict(score, config)["spoof_probability"] for score in scores])
    calibration = calibration_summary(spoof_probabilities, is_bonafide, config)
    return DevEvaluation(eer=100 * result["eer"], threshold=config.decision_threshold, calibration=calibration)


def save_best_model(accelerator: Accelerator, model, model_dir: Path, calibration: dict[str, float]) -> None:
    """Hub-ready folder: safetensors, config (with the dev split's `decision_threshold` and `calibration_scale`),
    modeling and pipeline code, feature extractor."""
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.config.decision_threshold = calibration["decision_threshold"]
    unwrapped.config.calibration_scale = calibration["calibration_scale"]
    state_dict = accelerator.get_state_dict(model)  # every process takes part (DeepSpeed gathers)
    unwrapped.save_pretrained(
        model_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save, state_dict=state_dict
    )
    if accelerator.is_main_process:
        SonarFeatureExtractor(sampling_rate=unwrapped.config.sampling_rate).save_pretrained(model_dir)


def evaluate_and_keep_best(
    accelerator: Accelerator,
    model,
    dev_dataloader: DataLoader,
    metric: evaluate.EvaluationModule,
    state: TrainingState,
    *,
    epoch: int,
    model_dir: Path,
    patience: int | None,
) -> None:
    """Compute and log the dev EER; save the model to `model_dir` when it is the best so far, else count towards
    early stopping (`state.stopped_early` once `patience` evaluations in a row did not improve)."""
    dev = evaluate_eer(model, dev_dataloader, accelerator, metric)
    log_metrics(
        accelerator,
        state,
        {
            "dev_eer": dev.eer,
            "dev_threshold": dev.threshold,
            "dev_calibration_scale": dev.calibration["calibration_scale"],
            "dev_ece": dev.calibration["ece"],
            "dev_brier": dev.calibration["brier"],
            "epoch": epoch,
        },
    )
    logger.info(f"step {state.global_step} (epoch {epoch}): dev EER {dev.eer:.3f}%")
    if state.best_eer is None or dev.eer < state.best_eer:
        state.best_eer, state.best_threshold, state.best_calibration = dev.eer, dev.threshold, dev.calibration
        state.best_step = state.global_step
        state.evals_without_improvement = 0
        save_best_model(accelerator, model, model_dir, dev.calibration)
        return
    state.evals_without_improvement += 1
    if patience is not None and state.evals_without_improvement >= patience:
        state.stopped_early = True
        logger.info(
            f"Early stopping at step {state.global_step}: no better dev EER than {state.best_eer:.3f}% "
            f"(step {state.best_step}) in {patience} evaluation(s)"
        )


def training_done(state: TrainingState, budget: StepBudget) -> bool:
    """Whether the step budget is spent or early stopping has ended the run (also when resuming such a run)."""
    return state.global_step >= budget.max_train_steps or state.stopped_early


def train(
    accelerator: Accelerator,
    *,
    model,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    sampler: SonarEpochSampler,
    train_dataloader: DataLoader,
    dev_dataloader: DataLoader,
    metric: evaluate.EvaluationModule,
    state: TrainingState,
    budget: StepBudget,
    args: SonarTrainingArguments,
) -> None:
    """
    The training loop, from `state` (step 0, or a resumed checkpoint's step: the rest of its epoch replays the same
    batches) until `budget.max_train_steps` or early stopping. After each optimiser step: log every
    `--logging_steps`, compute the dev EER at each epoch's end (and every `--eval_steps`), keeping the best model in
    `output_dir/model`, and save `checkpoint-{step}` every `--checkpointing_steps`. Updates `state` in place.
    """
    output_dir, model_dir = Path(args.output_dir), Path(args.output_dir) / MODEL_DIR
    with_js_loss = accelerator.unwrap_model(model).config.noise_branch
    first_epoch = state.global_step // budget.steps_per_epoch
    batches_to_skip = (state.global_step - first_epoch * budget.steps_per_epoch) * args.gradient_accumulation_steps
    logger.info(
        f"{len(train_dataloader.dataset)} training clips, {len(sampler)} per epoch, {budget.steps_per_epoch} steps "
        f"per epoch, {budget.max_train_steps} steps at most; effective batch "
        f"{args.per_device_train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes}"
    )
    progress = tqdm(
        total=budget.max_train_steps, initial=state.global_step, disable=not accelerator.is_local_main_process
    )

    model.train()
    running = RunningLosses()
    for epoch in range(first_epoch, budget.num_epochs):
        if training_done(state, budget):
            break
        sampler.epoch = epoch
        active_dataloader = train_dataloader
        if epoch == first_epoch and batches_to_skip:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, batches_to_skip)
        for batch in active_dataloader:
            with accelerator.accumulate(model):
                outputs = model(**batch)
                if not torch.isfinite(outputs.loss):
                    raise FloatingPointError(
                        f"The training loss is {outputs.loss.item()} at step {state.global_step}: lower "
                        f"--learning_rate (now {args.learning_rate}) or set --max_grad_norm. The checkpoints and the "
                        f"best model so far in {output_dir} are intact."
                    )
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients and args.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    accelerator.unwrap_model(model).project_constraint()
                lr_scheduler.step()
                optimizer.zero_grad()
            running.add(outputs, num_clips=len(batch["labels"]))
            if not accelerator.sync_gradients:
                continue

            state.global_step += 1
            step = state.global_step
            progress.update(1)
            if step % args.logging_steps == 0 or step == budget.max_train_steps:
                values = log_losses(
                    accelerator,
                    state,
                    running,
                    learning_rate=lr_scheduler.get_last_lr()[0],
                    epoch=epoch,
                    with_js_loss=with_js_loss,
                )
                progress.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}")
                running = RunningLosses()
            end_of_epoch = step % budget.steps_per_epoch == 0
            if end_of_epoch or step == budget.max_train_steps or (args.eval_steps and step % args.eval_steps == 0):
                evaluate_and_keep_best(
                    accelerator,
                    model,
                    dev_dataloader,
                    metric,
                    state,
                    epoch=epoch,
                    model_dir=model_dir,
                    patience=args.early_stopping_patience,
                )
            if args.checkpointing_steps and step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, output_dir, state, args.checkpoints_total_limit)
            if training_done(state, budget):
                break
    progress.close()
    accelerator.wait_for_everyone()


# --- After the loop: the eval split, the model card, trainer_state.json, the upload


def score_eval_split(
    accelerator: Accelerator,
    model_dir: Path,
    dataset: Dataset,
    *,
    batch_size: int,
    output_dir: Path,
    dev_calibration: dict[str, float] | None,
) -> dict:
    """Score the eval split with the best model as `evaluate_sonar.py` does; the main process writes the files, whose
    summary also carries the dev split's calibration (`dev_calibration`), and returns the summary (others: {})."""
    model = SonarForAudioClassification.from_pretrained(model_dir)
    dataloader = get_dataloader(dataset, max_length=model.config.max_length, batch_size=batch_size)
    model, dataloader = accelerator.prepare_model(model, evaluation_mode=True), accelerator.prepare(dataloader)
    utt_ids, scores, labels = score_dataloader(model, dataloader, accelerator)
    if not accelerator.is_main_process:
        return {}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SCORE_FILE).write_text(score_lines(utt_ids, scores.tolist()), encoding="utf-8")
    rows = {utt_id: i for i, utt_id in enumerate(dataset["utt_id"][:])}
    order = [rows[utt_id] for utt_id in utt_ids]
    columns = [column for column in DEFAULT_CONDITION_COLUMNS if column in dataset.column_names]
    conditions = {column: [dataset[column][i] for i in order] for column in columns}
    is_bonafide = labels == model.config.bonafide_id
    return write_report(
        output_dir,
        utt_ids,
        scores,
        is_bonafide,
        model.config,
        conditions=conditions,
        title=f"{dataset.split or 'eval'}",
        details={"dev_calibration": dev_calibration},
    )


def published_path(value: str, output_dir: Path) -> str:
    """A path argument as training_summary.json stores it: relative to the output folder when inside it, else by
    `public_name` (its folder name; a Hub id or `latest` unchanged), so that no local absolute path is published."""
    path, base = Path(value).resolve(), output_dir.resolve()
    if Path(value).exists() and path.is_relative_to(base):
        return path.relative_to(base).as_posix()
    return public_name(value)


def training_recipe(
    model_args: ModelArguments,
    data_args: DataArguments,
    args: SonarTrainingArguments,
    dataset_name: str,
    num_processes: int,
) -> dict:
    """The arguments as the model card and training_summary.json publish them: paths made public
    (`published_path`), the dataset by its public name, the number of processes, and no Hub settings."""
    recipe = {**argument_values(model_args, data_args, args), "dataset": dataset_name, "num_processes": num_processes}
    for key in ("output_dir", "resume_from_checkpoint", "encoder_name_or_path"):
        if recipe[key] is not None:
            recipe[key] = published_path(recipe[key], Path(args.output_dir))
    return {key: value for key, value in recipe.items() if not key.startswith("hub_")}


def save_model_card(
    model_dir: Path, *, recipe: dict, state: TrainingState, results: list[dict], model_name: str
) -> Path:
    """README.md from the recipe, the best dev evaluation and the eval results (model-index, one dict per test set:
    `name`, `dataset`, `split`, `eer`), next to training_curves.png; its inputs go to training_summary.json."""
    dev = {
        "eer": state.best_eer,
        "threshold": state.best_threshold,
        "step": state.best_step,
        "calibration": state.best_calibration,
    }
    return write_model_card(model_dir, {"recipe": recipe, "dev": dev, "results": results}, model_name)


def write_trainer_state(output_dir: Path, state: TrainingState, budget: StepBudget, results: list[dict]) -> Path:
    """trainer_state.json: the final training state with the step budget and the eval results."""
    trainer_state = {
        **asdict(state),
        "max_train_steps": budget.max_train_steps,
        "steps_per_epoch": budget.steps_per_epoch,
        "results": results,
    }
    path = output_dir / TRAINER_STATE_FILE
    path.write_text(json.dumps(trainer_state, indent=1) + "\n", encoding="utf-8")
    return path


def push_model_folder(model_dir: Path, state: TrainingState, args: SonarTrainingArguments) -> None:
    """Upload the model folder to `--hub_model_id` (created if needed), never a checkpoint."""
    api = HfApi()
    api.create_repo(args.hub_model_id, private=args.hub_private, exist_ok=True)
    api.upload_folder(
        repo_id=args.hub_model_id,
        folder_path=model_dir,
        commit_message=f"SONAR, best dev EER {state.best_eer:.2f}% at step {state.best_step}",
        ignore_patterns=IGNORE_PATTERNS,
    )


def finish_run(
    accelerator: Accelerator,
    state: TrainingState,
    budget: StepBudget,
    splits: dict[str, Dataset],
    recipe: dict,
    args: SonarTrainingArguments,
) -> list[dict]:
    """After the loop: score the eval split (if any) with the best model; then, on the main process, the training
    curves, the model card (with `recipe`, see `training_recipe`), trainer_state.json and the upload
    (`--push_to_hub`). Returns the eval results."""
    dataset_name = recipe["dataset"]
    output_dir, model_dir = Path(args.output_dir), Path(args.output_dir) / MODEL_DIR
    results = []
    if "eval" in splits:
        eval_dir = output_dir / EVAL_DIR
        summary = score_eval_split(
            accelerator,
            model_dir,
            splits["eval"],
            batch_size=args.per_device_eval_batch_size,
            output_dir=eval_dir,
            dev_calibration=state.best_calibration,
        )
        if accelerator.is_main_process:
            logger.info(f"Eval split: EER {summary['eer']:.3f}% (scores and plots in {eval_dir})")
            split = str(splits["eval"].split or "eval")
            results.append(
                {"name": f"{dataset_name} ({split})", "dataset": dataset_name, "split": split, "eer": summary["eer"]}
            )
    if not accelerator.is_main_process:
        return results
    plot_training_curves(state.log_history, model_dir / "training_curves.png")
    model_name = args.hub_model_id or output_dir.name
    save_model_card(model_dir, recipe=recipe, state=state, results=results, model_name=model_name)
    write_trainer_state(output_dir, state, budget, results)
    logger.info(f"Best dev EER {state.best_eer:.3f}% at step {state.best_step}; model in {model_dir}")
    if args.push_to_hub:
        push_model_folder(model_dir, state, args)
    return results


def main(argv: list[str] | None = None) -> TrainingState:
    """Set up (arguments, accelerator, data, model, dataloaders, optimiser, schedule, resumed state), train, then score
    the eval split and write the model folder; returns the final training state. The order of the set-up is the order
    of the random draws (initialisation, then sampling and augmentation), which a resumed run replays."""
    with one_line_errors():  # bad arguments: one line naming the argument, and nothing created
        model_args, data_args, args = parse_args(argv)
    accelerator = create_accelerator(args)
    set_seed(args.seed)
    dataset_name, splits, metric = load_data(accelerator, data_args)
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)  # only now: bad arguments or data leave no folder behind

    model = build_model(model_args, data_args, splits["train"])
    describe_model(accelerator, model, model_args.preset)
    train_dataloader, dev_dataloader = get_dataloaders(splits, data_args, args, model.config.max_length)
    sampler = train_dataloader.sampler  # the loop sets its epoch; accelerate's wrapper would hide it
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    model, optimizer, train_dataloader, dev_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, dev_dataloader
    )
    budget = StepBudget.from_args(args, num_batches=len(train_dataloader))
    lr_scheduler = accelerator.prepare(get_lr_scheduler(optimizer, args, budget, accelerator.num_processes))
    state = restore_training_state(accelerator, args.resume_from_checkpoint, Path(args.output_dir))
    start_trackers(accelerator, model_args, data_args, args)

    train(
        accelerator,
        model=model,
        optimizer=optimizer,
        lr_scheduler=lr_scheduler,
        sampler=sampler,
        train_dataloader=train_dataloader,
        dev_dataloader=dev_dataloader,
        metric=metric,
        state=state,
        budget=budget,
        args=args,
    )
    recipe = training_recipe(model_args, data_args, args, dataset_name, accelerator.num_processes)
    finish_run(accelerator, state, budget, splits, recipe, args)
    accelerator.end_training()
    return state


if __name__ == "__main__":
    main()
