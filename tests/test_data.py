"""Tests for sonar_training/data.py and sampling.py: balanced epochs, loading and the collator."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

from conftest import make_speechlike
from modeling_sonar import load_audio
from modeling_sonar.audio_sonar import sonar_window
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE as SAMPLING_RATE
from sonar_training.data import SonarCollator, load_sonar_dataset
from sonar_training.rawboost import rawboost
from sonar_training.sampling import balanced_indices


os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _tone(num_samples: int, rate: int = SAMPLING_RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(num_samples) / rate
    mono = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.fixture
def tiny_dataset(tmp_path):
    """Six flac clips of different lengths (2 bona fide, 4 spoof) as a DatasetDict with audio paths."""
    paths, labels = [], [0, 1, 1, 0, 1, 1]
    for i, num_samples in enumerate([1000, 3000, 70000, 500, 64600, 2000]):
        path = tmp_path / f"clip{i}.flac"
        sf.write(path, _tone(num_samples) * (i + 1) / 10, SAMPLING_RATE, subtype="PCM_16")
        paths.append(str(path))
    features = Features(
        {
            "audio": Audio(sampling_rate=SAMPLING_RATE),
            "label": ClassLabel(names=["bonafide", "spoof"]),
            "utt_id": Value("string"),
        }
    )
    dataset = Dataset.from_dict({"audio": paths, "label": labels, "utt_id": [f"u{i}" for i in range(6)]}, features)
    return DatasetDict({"train": dataset, "dev": dataset.select(range(3))})


class TestBalancedIndices:
    labels = [0] * 5 + [1] * 20

    def test_all_bonafide_and_as_many_spoof(self):
        indices = balanced_indices(self.labels, seed=0, epoch=0)
        assert len(indices) == len(set(indices)) == 10
        assert sorted(i for i in indices if self.labels[i] == 0) == list(range(5))
        assert sum(self.labels[i] for i in indices) == 5

    def test_deterministic_and_new_per_epoch(self):
        draw = "every_epoch"
        assert balanced_indices(self.labels, 1, 0, draw) == balanced_indices(self.labels, 1, 0, draw)
        spoof = [{i for i in balanced_indices(self.labels, 1, e, draw) if self.labels[i]} for e in range(4)]
        assert len({frozenset(s) for s in spoof}) > 1
        assert balanced_indices(self.labels, 1, 0, draw) != balanced_indices(self.labels, 2, 0, draw)

    def test_drawn_once_by_default_as_released(self):
        epochs = [balanced_indices(self.labels, 1, e) for e in range(4)]
        assert len({frozenset(i for i in indices if self.labels[i]) for indices in epochs}) == 1  # same spoof rows
        assert len({tuple(indices) for indices in epochs}) == 4  # in a new order each epoch
        spoof_by_seed = {frozenset(i for i in balanced_indices(self.labels, s, 0) if self.labels[i]) for s in range(4)}
        assert len(spoof_by_seed) > 1

    def test_unknown_draw_is_an_error(self):
        with pytest.raises(ValueError, match="spoof_draw"):
            balanced_indices(self.labels, 0, 0, "sometimes")

    def test_capped_when_spoof_is_scarce(self):
        labels = [0] * 6 + [1] * 2
        assert sorted(balanced_indices(labels, 0, 0)) == list(range(8))


class TestLoadSonarDataset:
    def test_save_to_disk_folder(self, tiny_dataset, tmp_path):
        tiny_dataset.save_to_disk(str(tmp_path / "saved"))
        loaded = load_sonar_dataset(str(tmp_path / "saved"))
        assert set(loaded) == {"train", "dev"} and loaded["train"].num_rows == 6
        row = loaded["train"][0]
        assert isinstance(row["audio"], dict) and row["audio"]["bytes"]
        assert load_audio(row["audio"]).shape == (1000,)
        dev = load_sonar_dataset(str(tmp_path / "saved"), split="dev")
        assert dev.num_rows == 3 and dev.features["audio"].decode is False

    def test_parquet_folder(self, tiny_dataset, tmp_path):
        (tmp_path / "pq").mkdir()
        for split, dataset in tiny_dataset.items():
            dataset.to_parquet(str(tmp_path / "pq" / f"{split}.parquet"))
        loaded = load_sonar_dataset(str(tmp_path / "pq"))
        assert loaded["train"].num_rows == 6 and loaded["dev"].num_rows == 3
        assert loaded["train"].features["audio"] == Audio(sampling_rate=SAMPLING_RATE, decode=False)
        assert load_audio(loaded["train"][2]["audio"]).shape == (70000,)

    def test_labels_in_another_order_are_refused(self, tiny_dataset, tmp_path):
        swapped = tiny_dataset.cast_column("label", ClassLabel(names=["spoof", "bonafide"]))
        swapped.save_to_disk(str(tmp_path / "swapped"))
        with pytest.raises(ValueError, match=r"not ClassLabel\(names=\['bonafide', 'spoof'\]\)"):
            load_sonar_dataset(str(tmp_path / "swapped"))

    def test_missing_path_and_split_are_named(self, tiny_dataset, tmp_path):
        with pytest.raises(ValueError, match="nowhere"):
            load_sonar_dataset(str(tmp_path / "nowhere"))
        (tmp_path / "empty").mkdir()
        with pytest.raises(ValueError, match="empty"):
            load_sonar_dataset(str(tmp_path / "empty"))
        tiny_dataset.save_to_disk(str(tmp_path / "saved"))
        with pytest.raises(ValueError, match="'eval'"):
            load_sonar_dataset(str(tmp_path / "saved"), split="eval")


class TestSonarCollator:
    def test_eval_batch_is_paper_crop(self, tiny_dataset):
        dataset = tiny_dataset["train"].cast_column("audio", Audio(decode=False))
        rows = [dataset[i] for i in range(6)]
        batch = SonarCollator(max_length=4000)(rows)
        assert batch["input_values"].shape == (6, 4000) and batch["input_values"].dtype == torch.float32
        assert batch["labels"].tolist() == [0, 1, 1, 0, 1, 1] and batch["labels"].dtype == torch.long
        expected = sonar_window(load_audio(rows[3]["audio"]), 4000)
        np.testing.assert_array_equal(batch["input_values"][3].numpy(), expected)
        assert torch.equal(SonarCollator(max_length=4000)(rows)["input_values"], batch["input_values"])

    def test_no_labels_without_label_column(self, tiny_dataset):
        dataset = tiny_dataset["train"].cast_column("audio", Audio(decode=False)).remove_columns("label")
        assert set(SonarCollator(max_length=100)([dataset[0]])) == {"input_values"}

    def test_train_augments_reproducibly(self, tiny_dataset):
        dataset = tiny_dataset["train"].cast_column("audio", Audio(decode=False))
        rows = [dataset[i] for i in range(6)]
        plain = SonarCollator(max_length=4000)(rows)["input_values"]

        def run():
            torch.manual_seed(0)
            collator = SonarCollator(max_length=4000, train=True, random_crop=True, rawboost_algo=4, seed=1)
            return collator(rows)["input_values"], collator(rows)["input_values"]

        first, second = run()
        assert first.shape == (6, 4000) and torch.isfinite(first).all()
        assert not torch.equal(first, plain) and not torch.equal(first, second)
        replay = run()
        assert torch.equal(first, replay[0]) and torch.equal(second, replay[1])

    def test_workers_draw_different_augmentations(self, tiny_dataset):
        dataset = tiny_dataset["train"].cast_column("audio", Audio(decode=False)).select([0, 0, 0, 0])
        collator = SonarCollator(max_length=2000, train=True, rawboost_algo=3)

        def batches():
            torch.manual_seed(0)
            loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=collator)
            return [batch["input_values"] for batch in loader]

        first = batches()
        assert not torch.equal(first[0], first[1])  # batch 0 and 1 come from different workers
        assert all(torch.equal(a, b) for a, b in zip(first, batches()))

    @pytest.mark.parametrize("seconds", [0.1, 0.5])  # shorter and longer than the window
    def test_rawboost_runs_on_the_whole_clip_before_the_crop_as_released(self, seconds, tmp_path):
        wave = make_speechlike(seconds, seed=3)
        sf.write(tmp_path / "clip.wav", wave, SAMPLING_RATE)
        row = {"audio": {"path": str(tmp_path / "clip.wav"), "bytes": None}, "key": (2, 5)}
        decoded, window = load_audio(row["audio"]), 4000
        released = SonarCollator(max_length=window, train=True, rawboost_algo=4, seed=1)([row])["input_values"][0]
        expected = sonar_window(rawboost(decoded, 4, np.random.default_rng([1, 2, 5])), window)
        np.testing.assert_allclose(released.numpy(), expected, rtol=1e-6, atol=1e-7)
        crop_first = SonarCollator(max_length=window, train=True, rawboost_algo=4, seed=1, augment_full_clip=False)
        expected = rawboost(sonar_window(decoded, window), 4, np.random.default_rng([1, 2, 5]))
        np.testing.assert_allclose(crop_first([row])["input_values"][0].numpy(), expected, rtol=1e-6, atol=1e-7)
        if len(decoded) < window:  # a short clip is tiled with its noise, which then repeats
            period, cropped_first = len(decoded), crop_first([row])["input_values"][0]
            torch.testing.assert_close(released[period : 2 * period], released[:period])
            assert not torch.allclose(cropped_first[period : 2 * period], cropped_first[:period])

    def test_random_crop_is_a_seeded_window(self, tmp_path):
        """A random crop is a contiguous window of the clip, drawn from the row's key: same key, same window."""
        ramp = np.arange(1000, dtype=np.float32) / 1000
        sf.write(tmp_path / "ramp.wav", ramp, SAMPLING_RATE, subtype="FLOAT")
        collator = SonarCollator(max_length=100, train=True, random_crop=True, seed=1)
        rows = [{"audio": {"path": str(tmp_path / "ramp.wav"), "bytes": None}, "key": (0, i)} for i in range(10)]
        crops = collator(rows)["input_values"].numpy()
        for crop in crops:
            start = int(round(crop[0] * 1000))
            np.testing.assert_allclose(crop, ramp[start : start + 100])
        assert len({round(float(crop[0]), 3) for crop in crops}) > 1
        np.testing.assert_array_equal(collator(rows[3:4])["input_values"].numpy()[0], crops[3])

    def test_rejects_bad_rawboost_algo(self):
        with pytest.raises(ValueError, match="12"):
            SonarCollator(rawboost_algo=12)
