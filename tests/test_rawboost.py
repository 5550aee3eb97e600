"""Tests for sonar_training/rawboost.py: shapes, determinism under a seed, the SSI SNR range, the filter band
ranges, input checks, and equality with the first implementation (tests/rawboost_reference.py) under the same seed."""

import numpy as np
import pytest
import rawboost_reference as reference

from conftest import make_speechlike
from modeling_sonar import load_audio
from sonar_training import rawboost as fast
from sonar_training.rawboost import (
    DEFAULT_PARAMS,
    RawBoostParams,
    _draw_notch_filter,
    _filter_spectra,
    isd_additive_noise,
    lnl_convolutive_noise,
    rawboost,
    ssi_additive_noise,
)


def _speechlike(num_samples: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.3 * envelope * (np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(num_samples))).astype(np.float32)


@pytest.mark.parametrize("algo", range(9))
def test_shape_dtype_and_finite(algo):
    x = _speechlike()
    y = rawboost(x, algo, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    if algo == 0:
        np.testing.assert_array_equal(y, x)
    else:
        assert not np.allclose(y, x)


@pytest.mark.parametrize("algo", [1, 2, 3, 4, 8])
def test_deterministic_under_seed(algo):
    x = _speechlike()
    np.testing.assert_array_equal(
        rawboost(x, algo, np.random.default_rng(7)), rawboost(x, algo, np.random.default_rng(7))
    )
    assert not np.array_equal(rawboost(x, algo, np.random.default_rng(7)), rawboost(x, algo, np.random.default_rng(8)))


def test_ssi_noise_within_snr_range():
    x = _speechlike().astype(np.float64)
    for seed in range(20):
        noise = rawboost(x, 3, np.random.default_rng(seed)).astype(np.float64) - x
        snr_db = 20 * np.log10(np.linalg.norm(x) / np.linalg.norm(noise))
        assert DEFAULT_PARAMS.snr_min - 0.01 <= snr_db <= DEFAULT_PARAMS.snr_max + 0.01


def test_primitives_keep_length_and_peak():
    x = _speechlike(8000)
    rng = np.random.default_rng(0)
    for primitive in (lnl_convolutive_noise, isd_additive_noise, ssi_additive_noise):
        assert primitive(x, rng).shape == x.shape
    assert np.max(np.abs(lnl_convolutive_noise(x, rng))) <= 1 + 1e-9
    assert np.max(np.abs(isd_additive_noise(x, rng))) <= 1 + 1e-9


def test_isd_touches_at_most_p_percent():
    x = _speechlike()
    changed = np.count_nonzero(isd_additive_noise(x, np.random.default_rng(3)) != x)
    assert changed <= x.size * DEFAULT_PARAMS.p / 100


def test_short_clip_shorter_than_filters():
    x = _speechlike(200)
    assert rawboost(x, 4, np.random.default_rng(0)).shape == (200,)


@pytest.mark.parametrize("algo", [-1, 9, "4"])
def test_bad_algo_is_named(algo):
    with pytest.raises(ValueError, match=repr(algo).replace("'", ".")):
        rawboost(_speechlike(), algo, np.random.default_rng(0))


def test_rejects_multichannel():
    with pytest.raises(ValueError, match="1-D"):
        rawboost(np.zeros((2, 100), dtype=np.float32), 1, np.random.default_rng(0))


def _generator_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


@pytest.mark.parametrize("algo", range(1, 9))
@pytest.mark.parametrize("num_samples", [1, 200, 3595, 3596, 3597, 64600])
def test_same_augmentation_as_reference(algo, num_samples):
    """Same seed, same output (float32, to an ulp at the peak) and the same random draws; 3596 is one FFT block."""
    x = make_speechlike(num_samples / 16000 + 1e-6, seed=num_samples)[:num_samples]
    rng, reference_rng = np.random.default_rng(algo), np.random.default_rng(algo)
    np.testing.assert_allclose(rawboost(x, algo, rng), reference.rawboost(x, algo, reference_rng), rtol=0, atol=1e-6)
    assert _generator_state(rng) == _generator_state(reference_rng)


@pytest.mark.parametrize(
    "params",
    [
        DEFAULT_PARAMS,
        RawBoostParams(n_bands=3, min_coeff=5, max_coeff=40, n_f=3, snr_min=0.0, snr_max=5.0),
        RawBoostParams(n_bands=8, min_f=100.0, max_f=7900.0, max_coeff=150, sampling_rate=22050),
    ],
    ids=["default", "short-filters", "long-filters"],
)
@pytest.mark.parametrize("primitive", ["lnl_convolutive_noise", "isd_additive_noise", "ssi_additive_noise"])
def test_primitives_match_reference_in_float64(primitive, params):
    x = make_speechlike(2.0).astype(np.float64)
    rng, reference_rng = np.random.default_rng(5), np.random.default_rng(5)
    ours = getattr(fast, primitive)(x, rng, params)
    theirs = getattr(reference, primitive)(x, reference_rng, params)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert _generator_state(rng) == _generator_state(reference_rng)


def test_same_augmentation_as_reference_on_real_clips(sonar_mini):
    files = sorted((sonar_mini / "LA" / "ASVspoof2019_LA_train" / "flac").glob("*.flac"))[:4]
    for seed, path in enumerate(files):
        x = load_audio(str(path))
        np.testing.assert_allclose(
            rawboost(x, 4, np.random.default_rng(seed)),
            reference.rawboost(x, 4, np.random.default_rng(seed)),
            rtol=0,
            atol=1e-6,
            err_msg=path.name,
        )


def test_notch_filters_within_band_ranges():
    """Drawn notches stay in the configured centre, bandwidth, length and gain ranges, and the filter peaks at
    exactly the drawn gain over freqz's 512 frequencies."""
    params = DEFAULT_PARAMS
    min_g, max_g = params.min_g - params.min_bias_lin_non_lin, params.max_g - params.max_bias_lin_non_lin
    rng = np.random.default_rng(0)
    filters = [_draw_notch_filter(rng, params, min_g, max_g) for _ in range(200)]
    notches = np.concatenate([notch for notch, _ in filters])
    gains = np.array([gain for _, gain in filters])
    centre, bandwidth, num_taps = notches.T
    assert params.min_f <= centre.min() and centre.max() <= params.max_f
    assert params.min_bw <= bandwidth.min() and bandwidth.max() <= params.max_bw
    assert np.all(num_taps % 2 == 1)
    assert params.min_coeff <= num_taps.min() and num_taps.max() <= params.max_coeff + 1
    assert max_g <= gains.min() and gains.max() <= min_g  # the non-linear range is given high-to-low
    assert np.ptp(centre) > 0.9 * (params.max_f - params.min_f)  # the ranges are used, not one corner of them
    spectra = _filter_spectra(filters, params, 4096)
    peak_db = 20 * np.log10(np.abs(spectra[:, :2048:4]).max(axis=-1))
    np.testing.assert_allclose(peak_db, gains, atol=1e-9)
