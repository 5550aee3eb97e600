"""Training plumbing for `train_sonar.py`: config files, replayable epochs and augmentation, checkpoints, curves.

Not imported by `modeling_sonar.py`, so none of it ships with the weights. Everything random here is a function of
`(seed, epoch, row index)` rather than of a global generator's state, so that a run killed and resumed from a
checkpoint draws exactly the batches and augmentations an uninterrupted run draws.
"""

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import yaml
from torch.utils.data import Dataset, Sampler

from .data import balanced_indices


CHECKPOINT_PREFIX = "checkpoint-"
TRAINING_STATE_FILE = "training_state.json"
LR_SCHEDULES = ("cosine_per_epoch", "cosine")
# Dev rows augmented like the released code's are keyed with this epoch, which no training run reaches, so their fixed
# draws never repeat a training row's.
DEV_AUGMENTATION_EPOCH = 2**32 - 1


def load_config_file(path: str | os.PathLike, dataclass_types: Sequence[type]) -> dict:
    """Read a YAML or JSON file of argument defaults, refusing keys that no argument dataclass declares.

    A mapping value (e.g. `config_overrides`) is turned into its JSON text, which is how the command line takes it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--config {str(path)!r} is not a file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        values = json.loads(text)
    else:
        values = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        raise ValueError(f"--config {str(path)!r} must hold a mapping of argument names to values")
    known = {field.name for dataclass_type in dataclass_types for field in fields(dataclass_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown key(s) {unknown} in {path}; the arguments are {sorted(known)}")
    return {key: json.dumps(value) if isinstance(value, dict) else value for key, value in values.items()}


def class_weights_from_priors(labels: Sequence[int], num_labels: int = 2) -> list[float]:
    """Inverse-frequency cross-entropy weights normalised to sum to 1, in label-id order.

    On ASVspoof 2019 LA train (2,580 bona fide, 22,800 spoof) this gives [0.898, 0.102], close to the released
    code's [0.9, 0.1].
    """
    counts = np.bincount(np.asarray(labels), minlength=num_labels).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"Every class needs training examples to weight the loss, got counts {counts.tolist()}")
    inverse = 1.0 / counts
    return (inverse / inverse.sum()).tolist()


class SonarEpochSampler(Sampler):
    """One epoch of row indices, a function of `(seed, epoch)` only: balanced (all bona fide plus as many spoof rows,
    as the released code trains; `spoof_draw` says whether the spoof rows are drawn once or every epoch, see
    `data.balanced_indices`) or a seeded shuffle of all rows.

    It yields `(epoch, index)` keys for [`SonarKeyedDataset`], so that each row's augmentation (in `SonarCollator`)
    depends on the key.
    The training loop sets `epoch` itself; there is deliberately no `set_epoch`, which accelerate would call with its
    own count of dataloader passes.
    """

    def __init__(self, labels: Sequence[int], seed: int, balanced: bool, spoof_draw: str = "once"):
        self.labels = np.asarray(labels)
        self.seed = seed
        self.balanced = balanced
        self.spoof_draw = spoof_draw
        self.epoch = 0
        if balanced and not ((self.labels == 0).any() and (self.labels != 0).any()):
            raise ValueError("Balanced sampling needs both bona fide (0) and spoof rows in the training split")

    def indices(self) -> list[int]:
        if self.balanced:
            return balanced_indices(self.labels, self.seed, self.epoch, self.spoof_draw)
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels)).tolist()

    def __iter__(self):
        return iter([(self.epoch, index) for index in self.indices()])

    def __len__(self) -> int:
        if self.balanced:
            num_bonafide = int((self.labels == 0).sum())
            return num_bonafide + min(num_bonafide, len(self.labels) - num_bonafide)
        return len(self.labels)


class SonarKeyedDataset(Dataset):
    """A `datasets.Dataset` read by `(epoch, index)` keys; each row carries its key for the collator. With a fixed
    `epoch` it is read by plain indices instead (any sampler), each row keyed `(epoch, index)`: an augmented dev set
    whose draws are the same at every evaluation."""

    def __init__(self, dataset, epoch: int | None = None):
        self.dataset = dataset
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        epoch, index = key if self.epoch is None else (self.epoch, key)
        return {**self.dataset[int(index)], "key": (epoch, int(index))}


def cosine_lr_lambda(
    schedule: str,
    learning_rate: float,
    min_learning_rate: float,
    total_steps: int,
    steps_per_epoch: int,
    cycle_epochs: int,
    num_processes: int = 1,
) -> Callable[[int], float]:
    """The factor of `learning_rate` for `torch.optim.lr_scheduler.LambdaLR`, from the count of scheduler steps.

    Both schedules are the closed-form cosine `lr = min + (lr0 - min) * (1 + cos(pi * t / T)) / 2`:
    - `"cosine_per_epoch"` (the released code: `CosineAnnealingLR(T_max=50, eta_min=1e-8)` stepped after each epoch):
      `t` is the finished epochs and `T = cycle_epochs`; past `T` the cosine climbs back, as PyTorch's does.
    - `"cosine"`: `t` is the finished optimiser steps and `T = total_steps`, reaching `min_learning_rate` at the end.

    Accelerate's prepared scheduler steps `num_processes` times per optimiser step, hence the division.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"The learning-rate schedule must be one of {LR_SCHEDULES}, got {schedule!r}")

    def factor(count: int) -> float:
        step = count // num_processes
        progress = (step // steps_per_epoch) / cycle_epochs if schedule == "cosine_per_epoch" else step / total_steps
        lr = min_learning_rate + (learning_rate - min_learning_rate) * (1 + math.cos(math.pi * progress)) / 2
        return lr / learning_rate if learning_rate else 0.0

    return factor


def checkpoint_step(path: str | os.PathLike) -> int:
    """The optimiser step of a `checkpoint-{step}` folder."""
    match = re.fullmatch(rf"{CHECKPOINT_PREFIX}(\d+)", Path(path).name)
    if match is None:
        raise ValueError(f"{str(path)!r} is not a {CHECKPOINT_PREFIX}{{step}} folder")
    return int(match.group(1))


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """`checkpoint-{step}` folders under `output_dir`, oldest step first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [path for path in output_dir.iterdir() if path.is_dir() and re.fullmatch(r"checkpoint-\d+", path.name)]
    return sorted(found, key=checkpoint_step)


def rotate_checkpoints(output_dir: str | os.PathLike, total_limit: int | None) -> list[Path]:
    """Delete all but the newest `total_limit` checkpoints (None keeps them all); returns those deleted."""
    if total_limit is None:
        return []
    removed = list_checkpoints(output_dir)[:-total_limit]
    for path in removed:
        shutil.rmtree(path)
    return removed


def resolve_checkpoint(resume_from_checkpoint: str, output_dir: str | os.PathLike) -> Path | None:
    """`latest` -> the newest checkpoint in `output_dir` (None if there is none yet); a path -> itself, which must
    exist."""
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint!r} does not exist")
    return path


def plot_training_curves(log_history: list[dict], path: str | os.PathLike) -> Path:
    """Loss, CE and JS loss (left) and dev EER (right) against the optimiser step, as one PNG."""
    from matplotlib.figure import Figure

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


__all__ = [
    "DEV_AUGMENTATION_EPOCH",
    "LR_SCHEDULES",
    "SonarEpochSampler",
    "SonarKeyedDataset",
    "checkpoint_step",
    "class_weights_from_priors",
    "cosine_lr_lambda",
    "list_checkpoints",
    "load_config_file",
    "plot_training_curves",
    "resolve_checkpoint",
    "rotate_checkpoints",
]
