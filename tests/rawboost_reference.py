"""RawBoost as first written (commit 9860469): one `scipy.signal.firwin` per notch and one `fftconvolve` per filter.

Kept as the reference that `sonar_training.rawboost` must reproduce under the same seed (tests/test_rawboost.py) and
as the "before" of `bench/dataloader.py`. Not part of the package.
"""

import numpy as np
from scipy import signal

from sonar_training.rawboost import DEFAULT_PARAMS, RawBoostParams


def _peak_normalise(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x)) if x.size else 0.0
    return x / peak if peak > 1 else x


def _notch_filter(rng: np.random.Generator, params: RawBoostParams, min_g: float, max_g: float) -> np.ndarray:
    nyquist = params.sampling_rate / 2
    taps = np.ones(1)
    for _ in range(params.n_bands):
        centre = rng.uniform(params.min_f, params.max_f)
        bandwidth = rng.uniform(params.min_bw, params.max_bw)
        num_taps = int(rng.integers(params.min_coeff, params.max_coeff + 1)) | 1
        low = max(centre - bandwidth / 2, 1e-3)
        high = min(centre + bandwidth / 2, nyquist - 1e-3)
        band = signal.firwin(num_taps, [low, high], window="hamming", pass_zero="bandstop", fs=params.sampling_rate)
        taps = np.convolve(taps, band)
    gain_db = rng.uniform(*sorted((min_g, max_g)))
    _, response = signal.freqz(taps, 1, fs=params.sampling_rate)
    return 10 ** (gain_db / 20) * taps / np.max(np.abs(response))


def lnl_convolutive_noise(
    waveform: np.ndarray, rng: np.random.Generator, params: RawBoostParams = DEFAULT_PARAMS
) -> np.ndarray:
    out = np.zeros_like(waveform, dtype=np.float64)
    for power in range(1, params.n_f + 1):
        min_g, max_g = params.min_g, params.max_g
        if power > 1:
            min_g, max_g = min_g - params.min_bias_lin_non_lin, max_g - params.max_bias_lin_non_lin
        out += signal.fftconvolve(np.power(waveform, power), _notch_filter(rng, params, min_g, max_g), mode="same")
    return _peak_normalise(out - out.mean())


def isd_additive_noise(
    waveform: np.ndarray, rng: np.random.Generator, params: RawBoostParams = DEFAULT_PARAMS
) -> np.ndarray:
    out = np.array(waveform, dtype=np.float64, copy=True)
    beta = rng.uniform(0, params.p)
    num = int(out.shape[0] * beta / 100)
    positions = rng.permutation(out.shape[0])[:num]
    shape = rng.uniform(-1, 1, num) * rng.uniform(-1, 1, num)
    out[positions] += params.g_sd * out[positions] * shape
    return _peak_normalise(out)


def ssi_additive_noise(
    waveform: np.ndarray, rng: np.random.Generator, params: RawBoostParams = DEFAULT_PARAMS
) -> np.ndarray:
    white = rng.standard_normal(waveform.shape[0])
    noise = signal.fftconvolve(white, _notch_filter(rng, params, params.min_g, params.max_g), mode="same")
    snr_db = rng.uniform(params.snr_min, params.snr_max)
    noise_norm = np.linalg.norm(noise)
    if noise_norm == 0:
        return np.asarray(waveform, dtype=np.float64)
    noise *= np.linalg.norm(waveform) / (noise_norm * 10 ** (snr_db / 20))
    return waveform + noise


_ALGOS = {
    0: (),
    1: (lnl_convolutive_noise,),
    2: (isd_additive_noise,),
    3: (ssi_additive_noise,),
    4: (lnl_convolutive_noise, isd_additive_noise, ssi_additive_noise),
    5: (lnl_convolutive_noise, isd_additive_noise),
    6: (lnl_convolutive_noise, ssi_additive_noise),
    7: (isd_additive_noise, ssi_additive_noise),
}


def rawboost(
    waveform: np.ndarray, algo: int, rng: np.random.Generator, params: RawBoostParams = DEFAULT_PARAMS
) -> np.ndarray:
    waveform = np.asarray(waveform)
    if algo == 8:
        x = lnl_convolutive_noise(waveform, rng, params) + isd_additive_noise(waveform, rng, params)
        return _peak_normalise(x).astype(np.float32)
    x = waveform.astype(np.float64)
    for primitive in _ALGOS[algo]:
        x = primitive(x, rng, params)
    return x.astype(np.float32)
