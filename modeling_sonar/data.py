"""Decoding, cropping and batching of SONAR training and evaluation data.

Datasets made by `dataset_scripts/` keep the audio column as `Audio(sampling_rate=16000)`; here it is read with
`decode=False` and decoded by `soundfile`, so wav/flac/ogg never need a system FFmpeg (torchcodec is only the
fallback for other formats). Model input is raw 16 kHz mono float32, not normalised.
"""

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import torch

from .rawboost import rawboost


if TYPE_CHECKING:
    import datasets

SAMPLING_RATE = 16000


def _describe(audio: dict | str | bytes) -> str:
    if isinstance(audio, dict):
        return repr(audio.get("path") or "<in-memory bytes>")
    if isinstance(audio, (bytes, bytearray)):
        return "<in-memory bytes>"
    return repr(str(audio))


def _decode_with_torchcodec(source: str | bytes) -> tuple[np.ndarray, int]:
    from torchcodec.decoders import AudioDecoder

    samples = AudioDecoder(source).get_all_samples()
    return samples.data.numpy().T, samples.sample_rate


def decode_audio(audio: dict | str | bytes, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Decode to a mono float32 waveform at `sampling_rate`.

    Args:
        audio: a datasets `Audio(decode=False)` dict `{"bytes": ..., "path": ...}` (bytes win when present), a path,
            or the encoded file's bytes.
        sampling_rate: target rate; other rates are resampled with `torchaudio.functional.resample`.

    Raises:
        ValueError: naming the file when neither soundfile nor torchcodec can decode it.
    """
    if isinstance(audio, dict):
        source = audio.get("bytes") or audio.get("path")
    else:
        source = audio
    if not source:
        raise ValueError(f"No audio bytes or path in {audio!r}")
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    try:
        data, rate = sf.read(
            io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source, dtype="float32", always_2d=True
        )
    except Exception as sf_error:  # soundfile cannot read this container (e.g. m4a): try FFmpeg through torchcodec
        try:
            data, rate = _decode_with_torchcodec(bytes(source) if isinstance(source, bytearray) else source)
        except Exception as tc_error:
            raise ValueError(
                f"Cannot decode audio {_describe(audio)}: soundfile: {sf_error}; torchcodec: {tc_error}"
            ) from tc_error
    waveform = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
    if rate != sampling_rate:
        import torchaudio.functional as F

        waveform = F.resample(torch.from_numpy(waveform), rate, sampling_rate).numpy()
    return waveform


def fix_length(
    waveform: np.ndarray, length: int, random_crop: bool = False, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Cut or tile a 1-D waveform to exactly `length` samples.

    The paper's protocol keeps the first `length` samples and repeats shorter clips end to end. `random_crop=True`
    takes a random window instead (a training option) from `rng`, or a fresh generator when none is given.
    """
    if waveform.ndim != 1 or waveform.shape[0] == 0:
        raise ValueError(f"Expected a non-empty 1-D waveform, got shape {waveform.shape}")
    num_samples = waveform.shape[0]
    if num_samples < length:
        return np.tile(waveform, math.ceil(length / num_samples))[:length]
    start = 0
    if random_crop and num_samples > length:
        start = int((rng or np.random.default_rng()).integers(0, num_samples - length + 1))
    return waveform[start : start + length]


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

    The audio column is cast to `Audio(decode=False)`, so rows carry the encoded file and `decode_audio` does the
    decoding (no FFmpeg for wav/flac). Returns the `DatasetDict`, or one `Dataset` when `split` is given.
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
    columns = dataset.column_names
    if "audio" in (columns if isinstance(columns, list) else sum(columns.values(), [])):
        dataset = dataset.cast_column("audio", datasets.Audio(sampling_rate=SAMPLING_RATE, decode=False))
    return dataset


SPOOF_DRAWS = ("once", "every_epoch")


def balanced_indices(labels: Sequence[int], seed: int, epoch: int, spoof_draw: str = "once") -> list[int]:
    """Indices of one balanced epoch: all bona fide rows (label 0) plus an equal-sized random draw of spoof rows
    without replacement (capped at the spoof available), shuffled anew each epoch.

    `spoof_draw="once"` (the released code, which draws its spoof subset when the dataset is built and never again:
    its `set_epoch` is never called) draws the subset from `seed` alone, so every epoch trains on the same spoof
    rows; `"every_epoch"` draws it from `(seed, epoch)`, so each epoch sees other spoof rows. The order depends on
    `(seed, epoch)` either way.
    """
    if spoof_draw not in SPOOF_DRAWS:
        raise ValueError(f"spoof_draw must be one of {SPOOF_DRAWS}, got {spoof_draw!r}")
    labels = np.asarray(labels)
    bonafide = np.flatnonzero(labels == 0)
    spoof = np.flatnonzero(labels != 0)
    # the draw has its own stream (spawn key 1), apart from the shuffle's
    draw_entropy = seed if spoof_draw == "once" else [seed, epoch]
    draw_rng = np.random.default_rng(np.random.SeedSequence(draw_entropy, spawn_key=(1,)))
    drawn = draw_rng.choice(spoof, size=min(len(bonafide), len(spoof)), replace=False)
    indices = np.concatenate([bonafide, np.sort(drawn)])
    np.random.default_rng([seed, epoch]).shuffle(indices)
    return indices.tolist()


@dataclass
class SonarCollator:
    """Turn dataset rows (`audio` as a `decode=False` dict, optional `label`) into a batch of fixed-length waveforms.

    Evaluation (`train=False`) follows the paper: the first `max_length` samples, tiled when shorter. Training (or an
    augmented dev set) adds RawBoost `rawboost_algo` (0 = none) and, with `random_crop`, a random window. With
    `augment_full_clip` (the released code) RawBoost runs on the whole decoded clip before it is cut or tiled, so a
    short clip's noise repeats with it and the SNR is set over the clip; otherwise the window is cut first and
    augmented alone (cheaper on long clips; its noise spans the window without repeating).

    A row keyed `(epoch, index)` (as `training_utils.SonarKeyedDataset` yields them) draws from a generator seeded by
    `(seed, epoch, index)`, so a run resumed from a checkpoint replays the same augmentations. Other rows draw from one
    seeded by `(seed, torch.initial_seed(), call count)`: inside DataLoader workers `torch.initial_seed()` differs per
    worker and epoch, so augmentations differ yet replay exactly under the same `torch.manual_seed`.
    """

    max_length: int = 64600
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
            waveform = decode_audio(row["audio"])
            if augment and self.augment_full_clip:
                waveform = rawboost(waveform, self.rawboost_algo, rng)
            waveform = fix_length(waveform, self.max_length, self.train and self.random_crop, rng)
            if augment and not self.augment_full_clip:
                waveform = rawboost(waveform, self.rawboost_algo, rng)
            waveforms.append(waveform)
        batch = {"input_values": torch.from_numpy(np.stack(waveforms).astype(np.float32, copy=False))}
        if rows and "label" in rows[0]:
            batch["labels"] = torch.tensor([row["label"] for row in rows], dtype=torch.long)
        return batch


__all__ = [
    "SAMPLING_RATE",
    "SPOOF_DRAWS",
    "SonarCollator",
    "balanced_indices",
    "decode_audio",
    "fix_length",
    "load_sonar_dataset",
]
