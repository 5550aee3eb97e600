"""SONAR's audio handling, shared by training, evaluation, the pipeline and the Space: decode, window, decide.

Each concern has one function here, so that a clip gets the same samples, windows and verdict wherever it is scored:
`load_audio` decodes any file or bytes to 16 kHz mono float32, `sonar_window` cuts (or tiles) one window,
`sonar_windows` all the windows of a long recording at `sonar_window_starts`, `sonar_aggregate_windows` combines their
logits and `sonar_verdict` turns a score into a label and a probability. Importing this module needs numpy and torch
only; the decoders (soundfile, else FFmpeg through torchcodec) and torchaudio's resampler load when first used.
"""

import io
import math
import os

import numpy as np
import torch

from .configuration_sonar import SONAR_SAMPLING_RATE, SonarConfig


# How a verdict reads, for each label.
SONAR_VERDICT_NAMES = {"bonafide": "bona fide (real)", "spoof": "spoof (generated)"}
SMOKE_TEST_NOTE = "smoke-test model trained on the demo corpus, not a detector"
AUDIO_FORMATS = "wav, flac, ogg, mp3, m4a, webm..."


def _source_name(audio: dict | str | os.PathLike | bytes) -> str:
    """How errors name the audio: its file name (never the folder it lies in), or that it came as bytes."""
    if isinstance(audio, dict):
        audio = audio.get("path") or b""
    if isinstance(audio, (bytes, bytearray)):
        return "<in-memory bytes>"
    return repr(os.path.basename(os.fspath(audio)))


class AudioTooLongError(ValueError):
    """A recording over `max_duration_s`, found from its header: the other decoder need not try it."""


def _duration(seconds: float, spec: str) -> str:
    """A duration in minutes from one minute up, else in seconds, its number formatted by `spec`."""
    value, unit = (seconds / 60, "minutes") if seconds >= 60 else (seconds, "s")
    return f"{value:{spec}} {unit}"


def _too_long(name: str, duration_s: float, max_duration_s: float) -> AudioTooLongError:
    return AudioTooLongError(
        f"{name} lasts {_duration(duration_s, '.1f')}; at most {_duration(max_duration_s, 'g')} are scored here. "
        "Trim the recording."
    )


# The decoders and the resampler are optional imports, inside `try` so that loading the model's code from the Hub
# (`trust_remote_code`) does not require them: `load_audio` says which to install when neither decoder is there.
def _decode_soundfile(source: str | bytes, name: str, max_duration_s: float | None) -> tuple[np.ndarray, int]:
    try:
        import soundfile as sf
    except ImportError as error:
        raise ImportError("soundfile is not installed") from error

    with sf.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else source) as audio:
        duration_s = audio.frames / audio.samplerate
        if max_duration_s is not None and duration_s > max_duration_s:
            raise _too_long(name, duration_s, max_duration_s)
        return audio.read(dtype="float32", always_2d=True).T, audio.samplerate


def _decode_torchcodec(source: str | bytes, name: str, max_duration_s: float | None) -> tuple[np.ndarray, int]:
    try:
        from torchcodec.decoders import AudioDecoder
    except ImportError as error:
        raise ImportError("torchcodec is not installed") from error

    decoder = AudioDecoder(source)
    duration_s = decoder.metadata.duration_seconds
    if max_duration_s is not None and duration_s is not None and duration_s > max_duration_s:
        raise _too_long(name, duration_s, max_duration_s)
    samples = decoder.get_all_samples()
    return samples.data.numpy(), samples.sample_rate


def load_audio(
    audio: dict | str | os.PathLike | bytes,
    sampling_rate: int = SONAR_SAMPLING_RATE,
    max_duration_s: float | None = None,
) -> np.ndarray:
    """
    Decodes a recording to a mono float32 waveform at `sampling_rate`: the one decoder of the project.

    soundfile reads wav, flac, ogg and mp3 without a system FFmpeg; anything else (m4a, webm...) goes to FFmpeg through
    torchcodec. Channels are averaged; another rate is resampled with `torchaudio.functional.resample`. The samples
    are not normalised (the paper feeds the raw signal).

    Args:
        audio: a path, the encoded file's bytes, or a datasets `Audio(decode=False)` dict `{"bytes", "path"}` (the
            bytes win when present).
        sampling_rate: the rate to return.
        max_duration_s: refuse a longer recording, checked from the file's header before anything is decoded.

    Raises:
        ValueError: naming the file (never its folder) when it is missing, empty, too long or not audio.
    """
    if isinstance(audio, dict):
        source = audio.get("bytes") or audio.get("path")
    else:
        source = audio
    if not source:
        raise ValueError(f"No audio bytes or path in {audio!r}")
    name = _source_name(audio)
    if isinstance(source, (bytes, bytearray)):
        source = bytes(source)
    else:
        source = os.fspath(source)
        if not os.path.isfile(source):
            raise ValueError(f"No audio file at {name}.")
        if os.path.getsize(source) == 0:
            raise ValueError(f"The audio file {name} is empty (0 bytes).")
    errors = []
    for decode in (_decode_soundfile, _decode_torchcodec):
        try:
            channels, rate = decode(source, name, max_duration_s)
            break
        except AudioTooLongError:
            raise
        except Exception as error:  # each decoder has its own error types; their messages may name server paths
            errors.append(error)
    else:
        if all(isinstance(error, ImportError) for error in errors):
            raise ImportError("Decoding audio files needs `soundfile` or `torchcodec`: pip install soundfile")
        raise ValueError(
            f"Could not decode {name} as audio: it is not a sound file that soundfile or FFmpeg (torchcodec) reads "
            f"({AUDIO_FORMATS})."
        ) from errors[-1]
    waveform = np.ascontiguousarray(channels.mean(axis=0), dtype=np.float32)
    if rate != sampling_rate:
        try:
            from torchaudio.functional import resample
        except ImportError as error:
            raise ImportError(f"{name} is at {rate} Hz: resampling it needs torchaudio") from error
        waveform = resample(torch.from_numpy(waveform), rate, sampling_rate).numpy()
    return waveform


def sonar_window(waveform: np.ndarray | torch.Tensor, length: int, start: int = 0) -> np.ndarray | torch.Tensor:
    """
    One window of `length` samples from `start` of a 1-D waveform (numpy or torch); a recording no longer than a
    window is tiled (repeated end to end) to its length, as the paper pads. Training crops, evaluation's first window
    and the windows of a long recording are all cut here.
    """
    num_samples = waveform.shape[-1]
    if waveform.ndim != 1 or num_samples == 0:
        raise ValueError(f"Expected a non-empty 1-D waveform, got shape {tuple(waveform.shape)}")
    if num_samples <= length:
        repeats = math.ceil(length / num_samples)
        tiled = waveform.repeat(repeats) if isinstance(waveform, torch.Tensor) else np.tile(waveform, repeats)
        return tiled[:length]
    if not 0 <= start <= num_samples - length:
        raise ValueError(f"A window of {length} samples cannot start at {start} in {num_samples} samples")
    return waveform[start : start + length]


def sonar_window_starts(num_samples: int, window_length: int, hop_length: int) -> list[int]:
    """
    Start sample of every window that scores a recording of `num_samples`: one window (tiled) when it is no longer
    than `window_length`; otherwise one every `hop_length` samples, plus one aligned to the end when the hops leave a
    tail, so that every sample is scored.
    """
    if num_samples <= window_length:
        return [0]
    starts = list(range(0, num_samples - window_length + 1, hop_length))
    if starts[-1] + window_length < num_samples:
        starts.append(num_samples - window_length)
    return starts


def sonar_windows(waveform: torch.Tensor, window_length: int, hop_length: int) -> torch.Tensor:
    """One recording `(samples,)` as the windows the model scores, `(num_windows, window_length)`."""
    starts = sonar_window_starts(waveform.shape[-1], window_length, hop_length)
    return torch.stack([sonar_window(waveform, window_length, start) for start in starts])


def sonar_scores(logits: torch.Tensor, config: SonarConfig) -> torch.Tensor:
    """The detection score of each row of `logits` `(..., 2)`: the bona fide log-odds, higher = more genuine."""
    return logits[..., config.bonafide_id] - logits[..., config.spoof_id]


def sonar_aggregate_windows(window_logits: torch.Tensor, config: SonarConfig) -> torch.Tensor:
    """
    Combines one recording's window logits `(num_windows, 2)` into `(2,)` by `config.window_aggregation`: `"first"`
    (the paper's protocol), `"mean"` of the logits, or `"max"`: the most spoof-like window, the one with the lowest
    score.
    """
    if config.window_aggregation == "first":
        return window_logits[0]
    if config.window_aggregation == "mean":
        return window_logits.mean(0)
    return window_logits[sonar_scores(window_logits, config).argmin()]


def sonar_verdict(score: float, config: SonarConfig) -> dict:
    """
    The decision on one recording (or one window) from its score: the only place where a score meets the threshold.
    The pipeline, the Space, the evaluation script and the model card all call it, so they agree.

    `p(spoof) = sigmoid(a * (t - score))` with `t = config.decision_threshold` and `a = config.calibration_scale`
    (fitted on the development split by the training script), so that the probability is 0.5 exactly at the
    threshold; the label is `bonafide` when `score >= t`.

    Args:
        score (`float`): the bona fide log-odds (`outputs.scores`), higher = more genuine.
        config (`SonarConfig`): the model's config.

    Returns:
        `dict` with `label` (`"bonafide"` or `"spoof"`), `spoof_probability`, `bonafide_probability` (floats that sum
        to 1) and `text`, the verdict in words (which also says when the model is only a smoke test).
    """
    score = float(score)
    margin = config.calibration_scale * (config.decision_threshold - score)
    # a sigmoid that never overflows
    spoof_probability = 1 / (1 + math.exp(-margin)) if margin >= 0 else math.exp(margin) / (1 + math.exp(margin))
    label = "bonafide" if score >= config.decision_threshold else "spoof"
    probability = spoof_probability if label == "spoof" else 1 - spoof_probability
    text = f"{SONAR_VERDICT_NAMES[label]}, probability {100 * probability:.1f}%"
    if config.smoke_test:
        text += f" ({SMOKE_TEST_NOTE})"
    return {
        "label": label,
        "spoof_probability": spoof_probability,
        "bonafide_probability": 1 - spoof_probability,
        "text": text,
    }


def sonar_timeline(num_samples: int, window_logits: torch.Tensor, config: SonarConfig) -> list[dict]:
    """
    Where each window of a recording of `num_samples` lies and how spoof-like it is: `[{"start_s", "end_s",
    "spoof_probability"}, ...]` from its logits `(num_windows, 2)` (`outputs.window_logits` of one recording).
    """
    rate = config.sampling_rate
    starts = sonar_window_starts(num_samples, config.max_length, config.window_hop_length)
    window_s = min(config.max_length, num_samples) / rate
    scores = sonar_scores(window_logits[: len(starts)].float(), config).tolist()
    return [
        {
            "start_s": start / rate,
            "end_s": start / rate + window_s,
            "spoof_probability": sonar_verdict(score, config)["spoof_probability"],
        }
        for start, score in zip(starts, scores)
    ]


__all__ = [
    "AudioTooLongError",
    "SMOKE_TEST_NOTE",
    "SONAR_VERDICT_NAMES",
    "load_audio",
    "sonar_aggregate_windows",
    "sonar_scores",
    "sonar_timeline",
    "sonar_verdict",
    "sonar_window",
    "sonar_window_starts",
    "sonar_windows",
]
