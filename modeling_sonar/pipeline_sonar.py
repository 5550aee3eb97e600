"""An audio-classification pipeline that also reports SONAR's score and its per-window timeline on long recordings."""

import inspect
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import AudioClassificationPipeline
from transformers.pipelines.audio_utils import ffmpeg_read

from .modeling_sonar import sonar_window_starts
from .onnx_sonar import SONAR_BACKENDS, SonarOnnxRunner


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


class SonarAudioClassificationPipeline(AudioClassificationPipeline):
    """
    The standard `audio-classification` pipeline (files of any format, rate and channel count are decoded and
    resampled by FFmpeg), plus multi-channel arrays averaged to mono and, with `return_timeline=True`, a richer result:

    `{"labels": [{"label", "score"}, ...], "score": bona fide log-odds, "js_divergence": float,
    "timeline": [{"start_s", "end_s", "spoof_probability"}, ...]}`

    ```python
    >>> from transformers import pipeline
    >>> from modeling_sonar.pipeline_sonar import SonarAudioClassificationPipeline
    >>> detector = pipeline(
    ...     "audio-classification", model="org/sonar-xlsr", pipeline_class=SonarAudioClassificationPipeline
    ... )
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
            runner = SonarOnnxRunner.from_pretrained(source, backend=backend, num_threads=onnx_num_threads)
            if runner.max_length != self.model.config.max_length:
                raise ValueError(
                    f"The ONNX export in {source} scores windows of {runner.max_length} samples but the model's "
                    f"max_length is {self.model.config.max_length}; export this model again."
                )
            self.window_forward = sonar_onnx_window_forward(runner)

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, return_timeline=None, **kwargs):
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(
            top_k=top_k, function_to_apply=function_to_apply, **kwargs
        )
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
            return {"raw": ffmpeg_read(Path(path).read_bytes(), rate), "sampling_rate": rate}
        except ValueError as error:
            raise ValueError(f"Could not decode {path!r} as audio ({error}).") from error

    def preprocess(self, inputs):
        if isinstance(inputs, str) and not inputs.startswith(("http://", "https://")):
            inputs = self._read_file(inputs)
        if isinstance(inputs, dict) and ("raw" in inputs or "array" in inputs):
            key = "raw" if "raw" in inputs else "array"
            array = np.asarray(inputs[key].cpu() if isinstance(inputs[key], torch.Tensor) else inputs[key])
            if array.ndim == 2:
                channel_axis = 0 if array.shape[0] < array.shape[1] else 1
                inputs = {**inputs, key: array.mean(axis=channel_axis).astype(np.float32)}
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

    def postprocess(self, model_outputs, top_k=5, function_to_apply=None, return_timeline=False):
        labels = super().postprocess(model_outputs, top_k=top_k, function_to_apply=function_to_apply)
        if not return_timeline:
            return labels
        config = self.model.config
        rate = config.sampling_rate
        starts = sonar_window_starts(model_outputs["num_samples"], config.max_length, config.window_hop_length)
        spoof = model_outputs["window_logits"][0, : len(starts)].float().softmax(-1)[:, config.spoof_id]
        window_s = min(config.max_length, model_outputs["num_samples"]) / rate
        return {
            "labels": labels,
            "score": float(model_outputs["scores"][0]),
            "js_divergence": float(model_outputs["js_divergence"][0])
            if model_outputs.get("js_divergence") is not None
            else None,
            "timeline": [
                {"start_s": start / rate, "end_s": start / rate + window_s, "spoof_probability": float(p)}
                for start, p in zip(starts, spoof)
            ],
        }


__all__ = ["SonarAudioClassificationPipeline", "sonar_onnx_window_forward"]
