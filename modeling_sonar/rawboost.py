"""RawBoost data augmentation (Tak et al. 2022, https://arxiv.org/abs/2111.04433), written from the paper.

Three primitives act on a raw waveform:

- **LnL**: linear and non-linear convolutive noise, a sum of notch-filtered powers of the signal
  (stands in for channel and coding distortions);
- **ISD**: impulsive signal-dependent additive noise on a random fraction of the samples (clipping, quantisation);
- **SSI**: stationary signal-independent coloured additive noise at a random SNR (background and transmission noise).

`rawboost(waveform, algo, rng)` combines them as the released SSL+AASIST code does: 0 none, 1 LnL, 2 ISD, 3 SSI,
4 LnL->ISD->SSI in series (SONAR's choice), 5 LnL->ISD, 6 LnL->SSI, 7 ISD->SSI, 8 LnL and ISD in parallel.
Only numpy and scipy: it runs inside data-loader workers and never ships with the model weights.
"""

from dataclasses import dataclass

import numpy as np
from scipy import signal


@dataclass(frozen=True)
class RawBoostParams:
    """RawBoost parameters; the defaults are those SONAR and the SSL+AASIST recipe train with (SPEC.md section 3).

    Args:
        n_bands (`int`): number of notch filters cascaded into one coloured filter (`nBands`).
        min_f, max_f (`float`): range of the notch centre frequencies in Hz (`minF`, `maxF`).
        min_bw, max_bw (`float`): range of the notch bandwidths in Hz (`minBW`, `maxBW`).
        min_coeff, max_coeff (`int`): range of the FIR lengths of each notch (`minCoeff`, `maxCoeff`); made odd.
        min_g, max_g (`float`): range of the filter gain in dB (`minG`, `maxG`).
        min_bias_lin_non_lin, max_bias_lin_non_lin (`float`): dB subtracted from the gain range for the non-linear
            (power >= 2) LnL terms (`minBiasLinNonLin`, `maxBiasLinNonLin`).
        n_f (`int`): number of LnL terms, i.e. highest power of the signal (`N_f`).
        p (`float`): at most this percentage of samples receives ISD noise (`P`).
        g_sd (`float`): ISD gain (`g_sd`).
        snr_min, snr_max (`float`): range of the SSI signal-to-noise ratio in dB (`SNRmin`, `SNRmax`).
        sampling_rate (`int`): sampling rate the frequencies refer to.
    """

    n_bands: int = 5
    min_f: float = 20.0
    max_f: float = 8000.0
    min_bw: float = 100.0
    max_bw: float = 1000.0
    min_coeff: int = 10
    max_coeff: int = 100
    min_g: float = 0.0
    max_g: float = 0.0
    min_bias_lin_non_lin: float = 5.0
    max_bias_lin_non_lin: float = 20.0
    n_f: int = 5
    p: float = 10.0
    g_sd: float = 2.0
    snr_min: float = 10.0
    snr_max: float = 40.0
    sampling_rate: int = 16000


DEFAULT_PARAMS = RawBoostParams()


def _peak_normalise(x: np.ndarray, always: bool = False) -> np.ndarray:
    """Scale to a peak of 1, always or only when the peak exceeds 1 (keeps augmented audio in [-1, 1])."""
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak > 0 and (always or peak > 1):
        return x / peak
    return x


def _notch_filter(rng: np.random.Generator, params: RawBoostParams, min_g: float, max_g: float) -> np.ndarray:
    """Random coloured FIR filter: `n_bands` band-stop filters in cascade, scaled to a random peak gain in dB."""
    nyquist = params.sampling_rate / 2
    taps = np.ones(1)
    for _ in range(params.n_bands):
        centre = rng.uniform(params.min_f, params.max_f)
        bandwidth = rng.uniform(params.min_bw, params.max_bw)
        num_taps = int(rng.integers(params.min_coeff, params.max_coeff + 1)) | 1  # band-stop FIRs need odd length
        low = max(centre - bandwidth / 2, 1e-3)
        high = min(centre + bandwidth / 2, nyquist - 1e-3)
        band = signal.firwin(num_taps, [low, high], window="hamming", pass_zero="bandstop", fs=params.sampling_rate)
        taps = np.convolve(taps, band)
    gain_db = rng.uniform(*sorted((min_g, max_g)))  # the non-linear LnL range is given high-to-low
    _, response = signal.freqz(taps, 1, fs=params.sampling_rate)
    return 10 ** (gain_db / 20) * taps / np.max(np.abs(response))


def _apply_fir(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Filter with the (odd-length, linear-phase) FIR and undo its group delay so the output stays aligned."""
    return signal.fftconvolve(x, taps, mode="same")


def lnl_convolutive_noise(
    waveform: np.ndarray, rng: np.random.Generator, params: RawBoostParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Linear and non-linear convolutive noise: sum over k = 1..n_f of a random notch filter applied to x**k."""
    out = np.zeros_like(waveform, dtype=np.float64)
    for power in range(1, params.n_f + 1):
        min_g, max_g = params.min_g, params.max_g
        if power > 1:  # higher-order terms are attenuated, as in the paper's "bias" between linear and non-linear
            min_g, max_g = min_g - params.min_bias_lin_non_lin, max_g - params.max_bias_lin_non_lin
        out += _apply_fir(np.power(waveform, power), _notch_filter(rng, params, min_g, max_g))
    return _peak_normalise(out - out.mean())


def isd_additive_noise(
    waveform: np.ndarray, rng: np.random.Generator, params: RawBoostParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Impulsive signal-dependent noise: a random beta <= P percent of samples get x + g_sd * x * (u1 * u2)."""
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
    """Stationary signal-independent noise: white noise through a random notch filter, added at a random SNR."""
    noise = _apply_fir(rng.standard_normal(waveform.shape[0]), _notch_filter(rng, params, params.min_g, params.max_g))
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
    """Apply RawBoost algorithm `algo` (0-8, see the module docstring) to a 1-D waveform; returns float32.

    All randomness comes from `rng`, so a seeded generator reproduces the augmentation exactly.
    """
    if algo not in range(9):
        raise ValueError(f"RawBoost algo must be an integer in 0..8, got {algo!r}")
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"RawBoost expects a 1-D waveform, got shape {waveform.shape}")
    if algo == 8:  # parallel: convolutive and impulsive noise on the clean signal, summed
        x = lnl_convolutive_noise(waveform, rng, params) + isd_additive_noise(waveform, rng, params)
        return _peak_normalise(x).astype(np.float32)
    x = waveform.astype(np.float64)
    for primitive in _ALGOS[algo]:
        x = primitive(x, rng, params)
    return x.astype(np.float32)


__all__ = [
    "DEFAULT_PARAMS",
    "RawBoostParams",
    "isd_additive_noise",
    "lnl_convolutive_noise",
    "rawboost",
    "ssi_additive_noise",
]
