"""Training checkpoints: `checkpoint-{step}` folders, written whole or not at all, rotated, found again to resume."""

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from accelerate import Accelerator


logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
PARTIAL_PREFIX = "partial-"
TRAINING_STATE_FILE = "training_state.json"


@dataclass
class TrainingState:
    """
    What the training loop keeps besides the weights and optimiser: saved with every checkpoint (as
    `training_state.json`), so that a resumed run goes on with the same best model, patience and log.

    Args:
        global_step: optimiser steps done.
        best_eer, best_threshold, best_step: the best dev EER (percent) so far, its threshold and its step.
        best_calibration: the decision fitted on dev at the best step (threshold, scale, ECE, Brier).
        evals_without_improvement: dev evaluations since the best one (early stopping's count).
        stopped_early: whether early stopping has ended the run.
        log_history: every logged dict (losses, learning rate, dev metrics), each with its step.
    """

    global_step: int = 0
    best_eer: float | None = None
    best_threshold: float | None = None
    best_calibration: dict | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False
    log_history: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike) -> "TrainingState":
        return cls(**json.loads((Path(checkpoint) / TRAINING_STATE_FILE).read_text(encoding="utf-8")))


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
    pattern = re.compile(rf"{CHECKPOINT_PREFIX}\d+")
    found = [path for path in output_dir.iterdir() if path.is_dir() and pattern.fullmatch(path.name)]
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


def save_checkpoint(
    accelerator: Accelerator, output_dir: str | os.PathLike, state: TrainingState, total_limit: int | None
) -> Path:
    """
    `checkpoint-{step}` with the accelerate state and the training state; written under a temporary name and renamed
    when complete, so a run killed while saving never leaves a checkpoint that `latest` would pick. Then all but the
    newest `total_limit` checkpoints are removed.
    """
    output_dir = Path(output_dir)
    path = output_dir / f"{CHECKPOINT_PREFIX}{state.global_step}"
    partial = output_dir / f"{PARTIAL_PREFIX}{path.name}"
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / TRAINING_STATE_FILE).write_text(state.to_json(), encoding="utf-8")
        if path.exists():  # left by an earlier run that got further than the checkpoint this one resumed from
            shutil.rmtree(path)
        partial.rename(path)
        for old in rotate_checkpoints(output_dir, total_limit):
            logger.info(f"Removed {old} (checkpoints_total_limit={total_limit})")
    accelerator.wait_for_everyone()
    return path


__all__ = [
    "CHECKPOINT_PREFIX",
    "PARTIAL_PREFIX",
    "TRAINING_STATE_FILE",
    "TrainingState",
    "checkpoint_step",
    "list_checkpoints",
    "resolve_checkpoint",
    "rotate_checkpoints",
    "save_checkpoint",
]
