"""The training recipe's arithmetic and files: argument files, class weights and the learning-rate schedule."""

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import yaml


LR_SCHEDULES = ("cosine_per_epoch", "cosine")


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


__all__ = ["LR_SCHEDULES", "class_weights_from_priors", "cosine_lr_lambda", "load_config_file"]
