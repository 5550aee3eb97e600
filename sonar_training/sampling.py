"""Which training rows each epoch reads, and in what order: replayable from `(seed, epoch)` alone.

Everything random here is a function of `(seed, epoch, row index)` rather than of a global generator's state, so that a
run killed and resumed from a checkpoint draws exactly the batches and augmentations an uninterrupted run draws.
"""

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset, Sampler

from modeling_sonar.configuration_sonar import SONAR_BONAFIDE_ID


# Dev rows augmented like the released code's are keyed with this epoch, which no training run reaches, so their fixed
# draws never repeat a training row's.
DEV_AUGMENTATION_EPOCH = 2**32 - 1
SPOOF_DRAWS = ("once", "every_epoch")


def balanced_indices(labels: Sequence[int], seed: int, epoch: int, spoof_draw: str = "once") -> list[int]:
    """Indices of one balanced epoch: all bona fide rows plus an equal-sized random draw of spoof rows
    without replacement (capped at the spoof available), shuffled anew each epoch.

    `spoof_draw="once"` (the released code, which draws its spoof subset when the dataset is built and never again:
    its `set_epoch` is never called) draws the subset from `seed` alone, so every epoch trains on the same spoof
    rows; `"every_epoch"` draws it from `(seed, epoch)`, so each epoch sees other spoof rows. The order depends on
    `(seed, epoch)` either way.
    """
    if spoof_draw not in SPOOF_DRAWS:
        raise ValueError(f"spoof_draw must be one of {SPOOF_DRAWS}, got {spoof_draw!r}")
    labels = np.asarray(labels)
    bonafide = np.flatnonzero(labels == SONAR_BONAFIDE_ID)
    spoof = np.flatnonzero(labels != SONAR_BONAFIDE_ID)
    # the draw has its own stream (spawn key 1), apart from the shuffle's
    draw_entropy = seed if spoof_draw == "once" else [seed, epoch]
    draw_rng = np.random.default_rng(np.random.SeedSequence(draw_entropy, spawn_key=(1,)))
    drawn = draw_rng.choice(spoof, size=min(len(bonafide), len(spoof)), replace=False)
    indices = np.concatenate([bonafide, np.sort(drawn)])
    np.random.default_rng([seed, epoch]).shuffle(indices)
    return indices.tolist()


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
        is_bonafide = self.labels == SONAR_BONAFIDE_ID
        if balanced and not (is_bonafide.any() and (~is_bonafide).any()):
            raise ValueError("Balanced sampling needs both bona fide and spoof rows in the training split")

    def indices(self) -> list[int]:
        if self.balanced:
            return balanced_indices(self.labels, self.seed, self.epoch, self.spoof_draw)
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels)).tolist()

    def __iter__(self):
        return iter([(self.epoch, index) for index in self.indices()])

    def __len__(self) -> int:
        if self.balanced:
            num_bonafide = int((self.labels == SONAR_BONAFIDE_ID).sum())
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


__all__ = ["DEV_AUGMENTATION_EPOCH", "SPOOF_DRAWS", "SonarEpochSampler", "SonarKeyedDataset", "balanced_indices"]
