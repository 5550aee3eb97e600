"""SonarFeatureExtractor: batching with attention masks, no normalisation, and a named ValueError for bad input."""

import numpy as np
import pytest
import torch

from conftest import make_speechlike
from modeling_sonar import SonarFeatureExtractor


@pytest.fixture
def extractor():
    return SonarFeatureExtractor()


def test_single_and_batched_input(extractor):
    wave = make_speechlike(1.0)
    single = extractor(wave, sampling_rate=16000, return_tensors="pt")
    assert single["input_values"].shape == (1, 16000)
    torch.testing.assert_close(single["input_values"][0], torch.from_numpy(wave))  # raw, not normalised

    batch = extractor([make_speechlike(1.0), make_speechlike(0.5)], sampling_rate=16000, return_tensors="pt")
    assert batch["input_values"].shape == (2, 16000)
    assert batch["attention_mask"].sum(-1).tolist() == [16000, 8000]
    assert batch["input_values"][1, 8000:].abs().sum() == 0


def test_accepts_tensors_and_lists(extractor):
    wave = make_speechlike(0.5)
    from_tensor = extractor(torch.from_numpy(wave), sampling_rate=16000, return_tensors="np")["input_values"]
    from_list = extractor(wave.tolist(), sampling_rate=16000, return_tensors="np")["input_values"]
    np.testing.assert_allclose(from_tensor, from_list, rtol=1e-6)


@pytest.mark.parametrize(
    "audio, message",
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.zeros(16000, dtype=np.float32), "silent"),
        (np.full(16000, np.nan, dtype=np.float32), "NaN or Inf"),
        (np.concatenate([make_speechlike(0.5), [np.inf]]).astype(np.float32), "NaN or Inf"),
        (make_speechlike(0.05), "too short: 0.050 s"),
        ((make_speechlike(0.5) * 32767).astype(np.int16), "dtype int16"),
        (np.stack([np.stack([make_speechlike(0.5)] * 2)] * 2), "shape"),
        ("not audio", "numpy array"),
    ],
)
def test_bad_input_names_the_problem(extractor, audio, message):
    with pytest.raises(ValueError, match=message):
        extractor(audio, sampling_rate=16000)


def test_wrong_rate_names_both_rates(extractor):
    with pytest.raises(ValueError, match="44100 Hz.*16000 Hz"):
        extractor(make_speechlike(1.0, sampling_rate=44100), sampling_rate=44100)


def test_save_and_load(tmp_path, extractor):
    extractor.save_pretrained(tmp_path)
    loaded = SonarFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.do_normalize is False and loaded.sampling_rate == 16000 and loaded.min_duration_s == 0.1


def test_channels_last_stereo_is_named_not_called_too_short(extractor):
    stereo = make_speechlike(1.0, channels=2)  # (16000, 2)
    with pytest.raises(ValueError, match=r"shape \(16000, 2\) looks like channels-last audio") as error:
        extractor(stereo, sampling_rate=16000)
    assert "too short" not in str(error.value)
    # (2, samples) stays what transformers means by a 2-D array: a batch of two recordings
    batch = extractor(np.ascontiguousarray(stereo.T), sampling_rate=16000, return_tensors="np")
    assert batch["input_values"].shape == (2, 16000)
