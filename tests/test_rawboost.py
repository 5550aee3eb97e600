"""Tests for modeling_sonar/rawboost.py: shapes, determinism under a seed, the SSI SNR range and input checks."""

import numpy as np
import pytest

from modeling_sonar.rawboost import (
    DEFAULT_PARAMS,
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
