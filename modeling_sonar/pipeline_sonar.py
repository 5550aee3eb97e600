"""SONAR's audio-classification pipeline: its verdict, its score and a per-window timeline on long recordings."""

import inspect
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import torch
from transformers import AudioClassificationPipeline

from .modeling_sonar import sonar_verdict, sonar_window_starts
from .onnx_sonar import SONAR_BACKENDS, SonarOnnxRunner


def ffmpeg_decode(data: bytes, sampling_rate: int) -> np.ndarray:
    """
    Decodes an audio file's bytes with FFmpeg to mono float32 at `sampling_rate`. Unlike transformers' `ffmpeg_read`,
    whose downmix adds the two channels of stereo at 1/sqrt(2) each, the channels are averaged (`rematrix_maxval`
    1), as the Space and `evaluate_sonar.py` average them, so that a stereo file gets one score everywhere.

    Raises:
        ValueError: FFmpeg is missing or cannot decode the bytes; the message gives FFmpeg's reason.
    """
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-ac", "1", "-rematrix_maxval", "1"]
    command += ["-ar", str(sampling_rate), "-f", "f32le", "pipe:1"]
    try:
        result = subprocess.run(command, input=data, capture_output=True, check=False)
    except FileNotFoundError as error:
        raise ValueError("FFmpeg is needed to decode audio files; install it (e.g. `apt install ffmpeg`).") from error
    audio = np.frombuffer(result.stdout, np.float32)
    if result.returncode != 0 or audio.size == 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise ValueError(reason[-1] if reason else "FFmpeg found no audio in it")
    return audio


def _to_mono(audio):
    """One recording as `(samples,)`: a `(samples, channels)` or `(channels, samples)` array is averaged over its
    shorter axis, the channels. The dtype is kept, so that integer samples still meet the feature extractor's check."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio)
    if audio.ndim == 2:
        return audio.mean(axis=int(np.argmin(audio.shape))).astype(audio.dtype)
    if audio.ndim > 2:
        raise ValueError(
            f"The pipeline scores one recording, (samples,) or (samples, channels), got shape {audio.shape}."
        )
    return audio


def sonar_onnx_window_forward(runner: SonarOnnxRunner) -> Callable:
    """
    Adapts an ONNX Runtime session to the model's `window_forward` hook: windows `(n, max_length)` as a tensor in,
    `(logits, js_divergence)` tensors out, so that `model(**inputs, window_forward=...)` windows and aggregates in
    PyTorch exactly as it does for its own forward, and only the per-window forward runs in ONNX Runtime.
    """

    def window_forward(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs = runner(windows.detach().cpu().float().numpy())
        js = outputs.get("js_divergence")
        return torch.from_numpy(outputs["logits"]), None if js is None else torch.from_numpy(js)

    return window_forward


def sonar_onnx_backend(source: str, backend: str, max_length: int, num_threads: int | None = None) -> Callable:
    """
    The `window_forward` of an ONNX `backend` (`"onnx"` or `"onnx-int8"`) from the export in `source` (a folder or Hub
    repository holding `onnx/`), checked to score windows of the model's `max_length`. The pipeline and the Space both
    take their ONNX backend from here.
    """
    runner = SonarOnnxRunner.from_pretrained(source, backend=backend, num_threads=num_threads)
    if runner.max_length != max_length:
        raise ValueError(
            f"The ONNX export in {source} scores windows of {runner.max_length} samples but the model's max_length is "
            f"{max_length}; export this model again."
        )
    return sonar_onnx_window_forward(runner)


class SonarAudioClassificationPipeline(AudioClassificationPipeline):
    """
    The `audio-classification` pipeline of SONAR models, which a saved model names in `config.custom_pipelines`, so
    that `pipeline("audio-classification", model=..., trust_remote_code=True)` builds it. Files (paths, URLs or bytes)
    of any format, rate and channel count are decoded and resampled by FFmpeg, stereo averaged to mono; arrays of one
    recording, `(samples,)`, `(samples, channels)` or `(channels, samples)`, are averaged to mono (also inside
    `{"raw" or "array": ..., "sampling_rate": ...}`). A file that is missing, empty or not audio gets a `ValueError`
    naming it.

    The label scores are `sonar_verdict`'s calibrated probabilities, `p(spoof) = sigmoid(a * (threshold - score))` with
    the threshold and scale of the model's config, so the top label is the verdict at `config.decision_threshold`.
    With `return_timeline=True` the result is richer:

    `{"label", "spoof_probability", "verdict" (the verdict in words), "score" (bona fide log-odds), "labels":
    [{"label", "score"}, ...], "js_divergence", "timeline": [{"start_s", "end_s", "spoof_probability"}, ...]}`

    ```python
    >>> from transformers import pipeline
    >>> detector = pipeline("audio-classification", model="org/sonar-xlsr", trust_remote_code=True)
    >>> detector("interview.mp3", return_timeline=True)["timeline"][:2]
    ```

    Args:
        backend (`str`, *optional*, defaults to `"pytorch"`):
            What scores each window: `"pytorch"`, `"onnx"` (ONNX Runtime, fp32: the same scores within 1e-3) or
            `"onnx-int8"` (dynamically quantised), from the `onnx/` folder `export_sonar.py` writes. Windows,
            aggregation and the result are the same code for all three.
        onnx_model (`str`, *optional*):
            Folder or Hub repository holding `onnx/`; defaults to the model's own.
        onnx_num_threads (`int`, *optional*):
            ONNX Runtime threads per inference; its default (the physical cores) when not given.
    """

    def __init__(
        self,
        *args,
        backend: str = "pytorch",
        onnx_model: str | None = None,
        onnx_num_threads: int | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if backend not in SONAR_BACKENDS:
            raise ValueError(f"Unknown backend {backend!r}; choose one of {list(SONAR_BACKENDS)}.")
        self.backend = backend
        self.window_forward = None
        if backend != "pytorch":
            if "window_forward" not in inspect.signature(self.model.forward).parameters:
                raise ValueError(f"This model's code has no ONNX support (backend={backend!r}); update its code.")
            source = onnx_model or self.model.name_or_path
            if not source:
                raise ValueError(f"backend={backend!r} needs `onnx_model`: the model was not loaded from a folder.")
            self.window_forward = sonar_onnx_backend(source, backend, self.model.config.max_length, onnx_num_threads)

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, return_timeline=None, **kwargs):
        if function_to_apply is not None:
            raise ValueError(
                "SONAR's label scores are calibrated probabilities from the model's decision threshold and "
                "calibration scale; `function_to_apply` does not apply (use `return_timeline=True` for the raw score)."
            )
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(top_k=top_k, **kwargs)
        if return_timeline is not None:
            postprocess_params["return_timeline"] = return_timeline
        return preprocess_params, forward_params, postprocess_params

    def _read_file(self, path: str) -> dict:
        """Decodes a local file with FFmpeg (mono, the model's rate); errors name the file and what is wrong."""
        if not os.path.isfile(path):
            raise ValueError(f"No audio file at {path!r}.")
        if os.path.getsize(path) == 0:
            raise ValueError(f"The audio file {path!r} is empty (0 bytes).")
        rate = self.feature_extractor.sampling_rate
        try:
            return {"raw": ffmpeg_decode(Path(path).read_bytes(), rate), "sampling_rate": rate}
        except ValueError as error:
            raise ValueError(f"Could not decode {path!r} as audio ({error}).") from error

    def preprocess(self, inputs):
        if isinstance(inputs, str) and inputs.startswith(("http://", "https://")):
            inputs = httpx.get(inputs, follow_redirects=True).content
        if isinstance(inputs, str):
            inputs = self._read_file(inputs)
        elif isinstance(inputs, bytes):
            rate = self.feature_extractor.sampling_rate
            inputs = {"raw": ffmpeg_decode(inputs, rate), "sampling_rate": rate}
        if isinstance(inputs, dict) and ("raw" in inputs or "array" in inputs):
            key = "raw" if "raw" in inputs else "array"
            inputs = {**inputs, key: _to_mono(inputs[key])}
        elif isinstance(inputs, (np.ndarray, torch.Tensor)):
            inputs = _to_mono(inputs)
        processed = super().preprocess(inputs)
        processed["num_samples"] = processed["input_values"].shape[-1]
        return processed

    def _forward(self, model_inputs):
        num_samples = model_inputs.pop("num_samples")
        if self.window_forward is not None:
            model_inputs["window_forward"] = self.window_forward
        outputs = self.model(**model_inputs)
        outputs["num_samples"] = num_samples
        return outputs

    def postprocess(self, model_outputs, top_k=5, return_timeline=False):
        config = self.model.config
        score = float(model_outputs["scores"][0])
        verdict = sonar_verdict(score, config)
        # the verdict's label first, also on a tie at the threshold
        ranked = sorted(
            ("bonafide", "spoof"), key=lambda label: (-verdict[f"{label}_probability"], label != verdict["label"])
        )
        labels = [{"label": label, "score": verdict[f"{label}_probability"]} for label in ranked][:top_k]
        if not return_timeline:
            return labels
        rate = config.sampling_rate
        starts = sonar_window_starts(model_outputs["num_samples"], config.max_length, config.window_hop_length)
        window_logits = model_outputs["window_logits"][0, : len(starts)].float()
        window_scores = window_logits[:, config.bonafide_id] - window_logits[:, config.spoof_id]
        window_s = min(config.max_length, model_outputs["num_samples"]) / rate
        js_divergence = model_outputs.get("js_divergence")
        return {
            "label": verdict["label"],
            "spoof_probability": verdict["spoof_probability"],
            "verdict": verdict["text"],
            "score": score,
            "labels": labels,
            "js_divergence": float(js_divergence[0]) if js_divergence is not None else None,
            "timeline": [
                {
                    "start_s": start / rate,
                    "end_s": start / rate + window_s,
                    "spoof_probability": sonar_verdict(window_score, config)["spoof_probability"],
                }
                for start, window_score in zip(starts, window_scores.tolist())
            ],
        }


__all__ = ["SonarAudioClassificationPipeline", "sonar_onnx_backend", "sonar_onnx_window_forward"]
