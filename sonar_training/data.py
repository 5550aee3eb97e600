"""Loading and batching of SONAR training and evaluation data.

Datasets made by `dataset_scripts/` keep the audio column as `Audio(sampling_rate=16000)`; here it is read with
`decode=False` and decoded by `load_audio` (soundfile, so wav/flac/ogg never need a system FFmpeg). Model input is raw
16 kHz mono float32, not normalised, cut by `sonar_window` as the pipeline cuts its first window.
"""

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from modeling_sonar.audio_sonar import load_audio, sonar_window
from modeling_sonar.configuration_sonar import SONAR_LABELS, SONAR_SAMPLING_RATE, SONAR_WINDOW_LENGTH

from .rawboost import rawboost


if TYPE_CHECKING:
    import datasets


def _parquet_data_files(folder: str) -> dict[str, list[str]]:
    """Group a folder's parquet files by split, named by the file name up to its first '-' or '.'.

    Covers `train.parquet` as written by `dataset_scripts/` and `data/train-00000-of-00002.parquet` as on the Hub.
    """
    data_files: dict[str, list[str]] = {}
    for dirpath, _, filenames in os.walk(folder):
        for name in sorted(filenames):
            if name.endswith(".parquet"):
                split = name.split(".")[0].split("-")[0]
                data_files.setdefault(split, []).append(os.path.join(dirpath, name))
    return data_files


def load_sonar_dataset(path_or_id: str, split: str | None = None) -> "datasets.DatasetDict | datasets.Dataset":
    """Load a converted dataset: a `save_to_disk` folder, a folder of parquet files, or a Hub dataset id.

    The audio column is cast to `Audio(decode=False)`, so rows carry the encoded file and `load_audio` does the
    decoding (no FFmpeg for wav/flac). A `label` column must be `ClassLabel(names=SONAR_LABELS)`, as `dataset_scripts/`
    writes it, so that its ids are the model's. Returns the `DatasetDict`, or one `Dataset` when `split` is given.
    """
    import datasets

    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "dataset_dict.json")) or os.path.exists(os.path.join(path, "state.json")):
            dataset = datasets.load_from_disk(path)
        elif data_files := _parquet_data_files(path):
            dataset = datasets.load_dataset("parquet", data_files=data_files)
        else:
            raise ValueError(f"No dataset at {path!r}: neither a save_to_disk folder nor a folder of parquet files")
    elif os.path.exists(path) or path.startswith((".", "/", "~")) or path.count("/") != 1:
        raise ValueError(f"No dataset at {path!r}: not a save_to_disk folder, a parquet folder or a Hub id")
    else:
        dataset = datasets.load_dataset(path)
    if split is not None and isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise ValueError(f"Split {split!r} not in the dataset at {path!r}; it has {sorted(dataset)}")
        dataset = dataset[split]
    splits = dataset.values() if isinstance(dataset, datasets.DatasetDict) else [dataset]
    for part in splits:
        label = part.features.get("label")
        if label is not None and getattr(label, "names", None) != list(SONAR_LABELS):
            raise ValueError(
                f"The `label` column of {path!r} is {label}, not ClassLabel(names={list(SONAR_LABELS)}): its ids "
                "would not be the model's. Convert the corpus with dataset_scripts/."
            )
    if any("audio" in part.column_names for part in splits):
        dataset = dataset.cast_column("audio", datasets.Audio(sampling_rate=SONAR_SAMPLING_RATE, decode=False))
    return dataset


@dataclass(kw_only=True)
class SonarCollator:
    """Turn dataset rows (`audio` as a `decode=False` dict, optional `label`) into a batch of fixed-length waveforms.

    Evaluation (`train=False`) follows the paper: the first `max_length` samples, tiled when shorter. Training (or an
    augmented dev set) adds RawBoost `rawboost_algo` (0 = none) and, with `random_crop`, a random window. With
    `augment_full_clip` (the released code) RawBoost runs on the whole decoded clip before it is cut or tiled, so a
    short clip's noise repeats with it and the SNR is set over the clip; otherwise the window is cut first and
    augmented alone (cheaper on long clips; its noise spans the window without repeating).

    A row keyed `(epoch, index)` (as `sampling.SonarKeyedDataset` yields them) draws from a generator seeded by
    `(seed, epoch, index)`, so a run resumed from a checkpoint replays the same augmentations. Other rows draw from one
    seeded by `(seed, torch.initial_seed(), call count)`: inside DataLoader workers `torch.initial_seed()` differs per
    worker and epoch, so augmentations differ yet replay exactly under the same `torch.manual_seed`.
    """

    max_length: int = SONAR_WINDOW_LENGTH
    train: bool = False
    random_crop: bool = False
    rawboost_algo: int = 0
    seed: int = 0
    augment_full_clip: bool = True

    def __post_init__(self):
        if self.rawboost_algo not in range(9):
            raise ValueError(f"rawboost_algo must be in 0..8, got {self.rawboost_algo!r}")
        self._calls = 0

    def _batch_rng(self) -> np.random.Generator:
        self._calls += 1
        return np.random.default_rng([self.seed, torch.initial_seed() % 2**63, self._calls])

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch_rng = self._batch_rng() if self.train else None
        waveforms = []
        for row in rows:
            rng = np.random.default_rng([self.seed, *row["key"]]) if self.train and "key" in row else batch_rng
            augment = self.train and self.rawboost_algo
            waveform = load_audio(row["audio"])
            if augment and self.augment_full_clip:
                waveform = rawboost(waveform, self.rawboost_algo, rng)
            start = 0
            if self.train and self.random_crop and len(waveform) > self.max_length:
                start = int(rng.integers(0, len(waveform) - self.max_length + 1))
            waveform = sonar_window(waveform, self.max_length, start)
            if augment and not self.augment_full_clip:
                waveform = rawboost(waveform, self.rawboost_algo, rng)
            waveforms.append(waveform)
        batch = {"input_values": torch.from_numpy(np.stack(waveforms).astype(np.float32, copy=False))}
        if rows and "label" in rows[0]:
            batch["labels"] = torch.tensor([row["label"] for row in rows], dtype=torch.long)
        return batch


__all__ = ["SonarCollator", "load_sonar_dataset"]
