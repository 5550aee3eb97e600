"""SONAR's audio-classification pipeline: its verdict, its score and a per-window timeline on long recordings."""

import inspect
from collections.abc import Callable

import httpx
import numpy as np
import torch
from transformers import AudioClassificationPipeline

from .audio_sonar import load_audio, sonar_timeline, sonar_verdict
from .onnx_sonar import SONAR_BACKENDS, SonarOnnxRunner


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
    of any format, rate and channel count are decoded by `load_audio` (soundfile, else FFmpeg), resampled and averaged
    to mono; arrays of one recording, `(samples,)`, `(samples, channels)` or `(channels, samples)`, are averaged to
    mono (also inside `{"raw" or "array": ..., "sampling_rate": ...}`). A file that is missing, empty or not audio
    gets a `ValueError` naming it; so does one longer than `max_duration_s`, when given.

    The label scores are `sonar_verdict`'s calibrated probabilities, `p(spoof) = sigmoid(a * (threshold - score))` with
    the threshold and scale of the model's config, so the top label is the verdict at `config.decision_threshold`.
    With `return_timeline=True` the result is richer:

    `{"label", "spoof_probability", "verdict" (the verdict in words), "score" (bona fide log-odds), "labels":
    [{"label", "score"}, ...], "js_divergence", "timeline": [{"start_s", "end_s", "spoof_probability"}, ...]}`

    and `return_views=True` adds what the model saw: `"waveform"` (the 16 kHz mono samples scored) and
    `"noise_waveform"` (the residual filter bank's output on them; None without the noise branch), as the Space
    shows them.

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

    def _sanitize_parameters(
        self,
        top_k=None,
        function_to_apply=None,
        return_timeline=None,
        return_views=None,
        max_duration_s=None,
        **kwargs,
    ):
        if function_to_apply is not None:
            raise ValueError(
                "SONAR's label scores are calibrated probabilities from the model's decision threshold and "
                "calibration scale; `function_to_apply` does not apply (use `return_timeline=True` for the raw score)."
            )
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(top_k=top_k, **kwargs)
        if max_duration_s is not None:
            preprocess_params["max_duration_s"] = max_duration_s
        if return_views is not None:
            forward_params["return_views"] = return_views
        if return_timeline is not None:
            postprocess_params["return_timeline"] = return_timeline
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, inputs, max_duration_s: float | None = None):
        if isinstance(inputs, str) and inputs.startswith(("http://", "https://")):
            inputs = httpx.get(inputs, follow_redirects=True).content
        if isinstance(inputs, (str, bytes)):
            rate = self.feature_extractor.sampling_rate
            inputs = {"raw": load_audio(inputs, rate, max_duration_s), "sampling_rate": rate}
        if isinstance(inputs, dict) and ("raw" in inputs or "array" in inputs):
            key = "raw" if "raw" in inputs else "array"
            inputs = {**inputs, key: _to_mono(inputs[key])}
        elif isinstance(inputs, (np.ndarray, torch.Tensor)):
            inputs = _to_mono(inputs)
        return super().preprocess(inputs)

    def _forward(self, model_inputs, return_views: bool = False):
        outputs = self.model(**model_inputs, output_noise_waveform=return_views, window_forward=self.window_forward)
        outputs["num_samples"] = model_inputs["input_values"].shape[-1]
        if return_views:
            outputs["waveform"] = model_inputs["input_values"][0]
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
        returns_views = "waveform" in model_outputs
        if not (return_timeline or returns_views):
            return labels
        js_divergence = model_outputs.get("js_divergence")
        result = {
            "label": verdict["label"],
            "spoof_probability": verdict["spoof_probability"],
            "verdict": verdict["text"],
            "score": score,
            "labels": labels,
            "js_divergence": float(js_divergence[0]) if js_divergence is not None else None,
            "timeline": sonar_timeline(model_outputs["num_samples"], model_outputs["window_logits"][0], config),
        }
        if returns_views:
            noise_waveform = model_outputs.get("noise_waveform")
            result["waveform"] = model_outputs["waveform"].float().numpy()
            result["noise_waveform"] = None if noise_waveform is None else noise_waveform[0].float().numpy()
        return result


__all__ = ["SonarAudioClassificationPipeline", "sonar_onnx_backend", "sonar_onnx_window_forward"]
