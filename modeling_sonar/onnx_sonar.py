"""Runs SONAR's ONNX export with ONNX Runtime: the per-window forward, in numpy, without PyTorch."""

import os

import numpy as np
from transformers.utils import cached_file


SONAR_BACKENDS = ("pytorch", "onnx", "onnx-int8")
# Where Hugging Face repositories carry ONNX weights, beside the PyTorch ones.
SONAR_ONNX_SUBFOLDER = "onnx"
SONAR_ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}
# A model over protobuf's 2 GiB limit keeps its weights in this file beside the graph, as optimum names it.
SONAR_ONNX_DATA_SUFFIX = "_data"


def sonar_onnx_export_command(model: str, backend: str) -> str:
    """The command that writes the ONNX files `backend` needs."""
    return f"python export_sonar.py --model {model} --output OUT" + (" --int8" if backend == "onnx-int8" else "")


class SonarOnnxRunner:
    """
    SONAR's exported window forward in one ONNX Runtime session: windows `(n, max_length)` of raw 16 kHz samples in,
    `{"logits": (n, 2), "scores": (n,), "js_divergence": (n,)}` out (no `js_divergence` for a model without the noise
    branch), the same per-window outputs as [`SonarForAudioClassification.forward_windows`]. Windowing a recording and
    combining its windows stay with the model and the pipeline; needs only numpy, onnxruntime and transformers.

    ```python
    >>> runner = SonarOnnxRunner.from_pretrained("org/sonar-xlsr", backend="onnx-int8", num_threads=2)
    >>> runner(windows)["scores"]  # windows: float32 (n, runner.max_length)
    ```

    Args:
        model_path (`str` or `os.PathLike`):
            An `.onnx` file written by `export_sonar.py` (its `_data` file, if any, beside it).
        num_threads (`int`, *optional*):
            Threads for one inference; ONNX Runtime's default (the physical cores) when not given.
        providers (`list[str]`, *optional*):
            ONNX Runtime execution providers, in order of preference; `CPUExecutionProvider` when not given.
    """

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None, providers: list | None = None):
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(
                "Running SONAR with ONNX Runtime needs `onnxruntime`: pip install 'modeling_sonar[onnx]'."
            ) from error

        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        self.session = onnxruntime.InferenceSession(
            os.fspath(model_path), options, providers=providers or ["CPUExecutionProvider"]
        )
        (model_input,) = self.session.get_inputs()
        self.input_name = model_input.name
        self.max_length = model_input.shape[1]
        self.output_names = [output.name for output in self.session.get_outputs()]

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        backend: str = "onnx",
        num_threads: int | None = None,
        providers: list | None = None,
        **hub_kwargs,
    ) -> "SonarOnnxRunner":
        """
        Loads `onnx/model.onnx` (`backend="onnx"`) or `onnx/model_int8.onnx` (`"onnx-int8"`) from a model folder or
        Hub repository; `hub_kwargs` (`revision`, `token`, `cache_dir`, `local_files_only`) go to the download.
        """
        if backend not in SONAR_ONNX_FILES:
            raise ValueError(f"Unknown ONNX backend {backend!r}; choose one of {sorted(SONAR_ONNX_FILES)}.")
        filename = SONAR_ONNX_FILES[backend]
        found = {"_raise_exceptions_for_missing_entries": False, "_raise_exceptions_for_connection_errors": False}
        path = cached_file(name_or_path, filename, subfolder=SONAR_ONNX_SUBFOLDER, **found, **hub_kwargs)
        if path is None:
            raise ValueError(
                f"{name_or_path} has no ONNX weights ({SONAR_ONNX_SUBFOLDER}/{filename}) for backend={backend!r}. "
                f"Export them with `{sonar_onnx_export_command(str(name_or_path), backend)}` and load OUT."
            )
        # The weights of a large export live beside the graph; fetched for Hub repositories, found for folders.
        data_file = filename + SONAR_ONNX_DATA_SUFFIX
        cached_file(name_or_path, data_file, subfolder=SONAR_ONNX_SUBFOLDER, **found, **hub_kwargs)
        return cls(path, num_threads=num_threads, providers=providers)

    def __call__(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Scores windows `(n, max_length)`; returns the exported outputs by name, each with `n` rows."""
        windows = np.asarray(windows)
        if windows.ndim != 2 or windows.shape[1] != self.max_length:
            raise ValueError(
                f"Windows must have shape (n, {self.max_length}) (the exported window length), got {windows.shape}."
            )
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(windows, dtype=np.float32)})
        return dict(zip(self.output_names, outputs))


__all__ = [
    "SONAR_BACKENDS",
    "SONAR_ONNX_FILES",
    "SONAR_ONNX_SUBFOLDER",
    "SonarOnnxRunner",
    "sonar_onnx_export_command",
]
