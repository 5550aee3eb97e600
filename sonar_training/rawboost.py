"""RawBoost data augmentation (Tak et al. 2022, https://arxiv.org/abs/2111.04433), written from the paper.

Three primitives act on a raw waveform:

- **LnL**: linear and non-linear convolutive noise, a sum of notch-filtered powers of the signal
  (stands in for channel and coding distortions);
- **ISD**: impulsive signal-dependent additive noise on a random fraction of the samples (clipping, quantisation);
- **SSI**: stationary signal-independent coloured additive noise at a random SNR (background and transmission noise).

`rawboost(waveform, algo, rng)` combines them as the released SSL+AASIST code does: 0 none, 1 LnL, 2 ISD, 3 SSI,
4 LnL->ISD->SSI in series (SONAR's choice), 5 LnL->ISD, 6 LnL->SSI, 7 ISD->SSI, 8 LnL and ISD in parallel.
Only numpy and scipy: it runs inside data-loader workers. The filters are
designed for all notches at once and applied by overlap-add FFT, the LnL terms summed before one inverse transform:
algo 4 takes about 5 ms per 4 s clip on one core, 5x less than with one `scipy.signal.fftconvolve` per filter. The
random draws are those of that first version, in the same order, so a seeded generator gives the same augmentation
up to float64 rounding (tests/rawboost_reference.py keeps it).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, repeat

import numpy as np
from scipy import fft

from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE


@dataclass(frozen=True)
class RawBoostParams:
    """RawBoost parameters; the defaults are those SONAR and the SSL+AASIST recipe train with (the released
    code's `main_SSL_LA.py` defaults).

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
    sampling_rate: int = SONAR_SAMPLING_RATE


DEFAULT_PARAMS = RawBoostParams()


def _peak_normalise(x: np.ndarray, always: bool = False) -> np.ndarray:
    """Scale to a peak of 1, always or only when the peak exceeds 1 (keeps augmented audio in [-1, 1])."""
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak > 0 and (always or peak > 1):
        return x / peak
    return x


def _notch_width(params: RawBoostParams) -> int:
    """Taps of the longest notch FIR: the odd `max_coeff | 1`."""
    return params.max_coeff | 1


def _filter_delay(params: RawBoostParams) -> int:
    """Group delay in samples of a cascade of `n_bands` notches, each centred in `_notch_width` taps."""
    return params.n_bands * (_notch_width(params) - 1) // 2


def _draw_notch_filter(
    rng: np.random.Generator, params: RawBoostParams, min_g: float, max_g: float
) -> tuple[np.ndarray, float]:
    """Draw one coloured filter: `(n_bands, 3)` rows of notch centre (Hz), bandwidth (Hz) and odd FIR length, then
    the gain in dB; in this order, one notch after the other, so a seeded generator gives the paper code's filters."""
    notches = np.empty((params.n_bands, 3))
    for notch in notches:
        notch[0] = rng.uniform(params.min_f, params.max_f)
        notch[1] = rng.uniform(params.min_bw, params.max_bw)
        notch[2] = int(rng.integers(params.min_coeff, params.max_coeff + 1)) | 1  # band-stop FIRs need odd length
    return notches, rng.uniform(*sorted((min_g, max_g)))  # the non-linear LnL gain range is given high-to-low


def _filter_spectra(filters: list[tuple[np.ndarray, float]], params: RawBoostParams, fft_size: int) -> np.ndarray:
    """`fft_size`-point spectra `(len(filters), fft_size // 2 + 1)` of the drawn coloured filters.

    Each filter cascades `n_bands` Hamming-windowed band-stop FIRs (`scipy.signal.firwin(..., pass_zero="bandstop")`,
    built here for all notches at once, each centred in `_notch_width(params)` taps) and is scaled so that its peak
    gain over `scipy.signal.freqz`'s 512 frequencies is the drawn gain. The cascade's delay is `_filter_delay`.
    """
    notches = np.stack([notch for notch, _ in filters])  # (filters, n_bands, 3)
    centre, bandwidth, num_taps = np.split(notches, 3, axis=-1)
    nyquist = params.sampling_rate / 2
    low = np.maximum(centre - bandwidth / 2, 1e-3) / nyquist
    high = np.minimum(centre + bandwidth / 2, nyquist - 1e-3) / nyquist
    width = _notch_width(params)
    offset = np.arange(width) - (width - 1) / 2  # tap position relative to the notch's centre tap
    half = (num_taps - 1) / 2
    taps = low * np.sinc(low * offset) + np.sinc(offset) - high * np.sinc(high * offset)  # pass [0, low], [high, 1]
    window = 0.54 + 0.46 * np.cos(np.pi * offset / np.maximum(half, 1))  # Hamming over the notch's own taps
    taps = np.where(np.abs(offset) <= half, taps * window, 0.0)
    taps /= taps.sum(axis=-1, keepdims=True)  # unit gain at 0 Hz, as firwin scales a band-stop
    cascade_taps = 2 * _filter_delay(params) + 1
    grid = max(1024, 1 << (cascade_taps - 1).bit_length())  # DFT long enough for the cascade and freqz's grid
    cascade = np.prod(fft.rfft(taps, n=grid, axis=-1), axis=1)
    peak = np.abs(cascade[:, : grid // 2 : grid // 1024]).max(axis=-1)  # freqz(worN=512): k * pi / 512
    gain = 10 ** (np.array([gain_db for _, gain_db in filters]) / 20)
    cascade *= (gain / peak)[:, None]
    return fft.rfft(fft.irfft(cascade, n=grid, axis=-1)[:, :cascade_taps], n=fft_size, axis=-1)


def _filter_sum(
    signals: Iterable[np.ndarray], length: int, filters: list[tuple[np.ndarray, float]], params: RawBoostParams
) -> np.ndarray:
    """Sum over k of the k-th signal (`length` samples) through `filters[k]`, aligned as
    `scipy.signal.fftconvolve(..., mode="same")` aligns one signal through one filter.

    Overlap-add with FFTs of at least 8x the filter length: the signal is cut into blocks, each block's spectrum is
    multiplied by the filter's and the products are summed before one inverse FFT. Signals are taken one at a time
    so that the buffers stay small. The same result as one `fftconvolve` per signal up to float64 rounding, at an
    eighth of the time for LnL's five terms on a 4 s clip.
    """
    delay = _filter_delay(params)
    fft_size = max(1024, 1 << (16 * delay + 7).bit_length())  # a power of 2 >= 8x the cascade's 2 * delay + 1 taps
    block = fft_size - 2 * delay
    num_full, rest = divmod(length, block)
    frames = np.zeros((num_full + (rest > 0), fft_size))  # one signal's blocks, zero-padded to the FFT size
    total = np.zeros((frames.shape[0], fft_size // 2 + 1), dtype=np.complex128)
    for signal, spectrum in zip(signals, _filter_spectra(filters, params, fft_size), strict=True):
        frames[:num_full, :block] = signal[: num_full * block].reshape(num_full, block)
        frames[num_full:, :rest] = signal[num_full * block :]
        product = fft.rfft(frames, axis=-1)
        product *= spectrum
        total += product
    frames = fft.irfft(total, n=fft_size, axis=-1)
    out = np.zeros((frames.shape[0] + 1, block))
    out[:-1] += frames[:, :block]
    out[1:, : 2 * delay] += frames[:, block:]  # each block's tail overlaps the start of the next
    return out.reshape(-1)[delay : delay + length]


def lnl_convolutive_noise(
    waveform: np.ndarray, rng: np.random.Generator, params: RawBoostParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Linear and non-linear convolutive noise: sum over k = 1..n_f of a random notch filter applied to x**k."""
    filters = []
    for power in range(1, params.n_f + 1):
        min_g, max_g = params.min_g, params.max_g
        if power > 1:  # higher-order terms are attenuated, as in the paper's "bias" between linear and non-linear
            min_g, max_g = min_g - params.min_bias_lin_non_lin, max_g - params.max_bias_lin_non_lin
        filters.append(_draw_notch_filter(rng, params, min_g, max_g))
    waveform = np.asarray(waveform, dtype=np.float64)
    powers = accumulate(repeat(waveform, params.n_f), np.multiply)  # x, x**2, ..., x**n_f
    out = _filter_sum(powers, waveform.shape[0], filters, params)
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
    white = rng.standard_normal(waveform.shape[0])
    noise = _filter_sum([white], white.shape[0], [_draw_notch_filter(rng, params, params.min_g, params.max_g)], params)
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
