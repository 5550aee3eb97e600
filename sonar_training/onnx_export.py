"""Exports SONAR's window forward to ONNX (fp32, and int8 by dynamic quantisation), checked against PyTorch."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modeling_sonar import SonarFeatureExtractor, SonarForAudioClassification
from modeling_sonar.audio_sonar import sonar_scores
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE
from modeling_sonar.onnx_sonar import SONAR_ONNX_DATA_SUFFIX, SONAR_ONNX_FILES, SONAR_ONNX_SUBFOLDER, SonarOnnxRunner


# Largest weight size kept inside the .onnx file; protobuf refuses files over 2 GiB, so larger weights go beside it.
SONAR_ONNX_MAX_INLINE_BYTES = 2**30
# fp32 ONNX Runtime against PyTorch: the export is refused past this score difference (observed: a few 1e-6).
SONAR_ONNX_SCORE_TOLERANCE = 1e-3
# The exported graph must hold none of these: they would make its scores differ from evaluation-mode PyTorch.
TRAINING_ONLY_OPS = ("Dropout",)
# Node metadata of the torch.export-based exporter: the module path of each node (kept, to choose what int8
# quantises) and the Python stack trace that made it (dropped: it holds the exporting machine's file paths).
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"
# Modules whose matrix multiplications int8 quantises: the encoders, nearly all of the compute.
QUANTIZED_SCOPES = ("model.sonar.content_encoder", "model.sonar.noise_encoder")


class SonarOnnxWindowModel(nn.Module):
    """What the ONNX graph holds: windows `(n, max_length)` -> logits `(n, 2)`, scores `(n,)`, js_divergence `(n,)`."""

    def __init__(self, model: SonarForAudioClassification):
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, js_divergence, _, _ = self.model.forward_windows(input_values)
        scores = sonar_scores(logits, self.model.config)
        return (logits, scores) if js_divergence is None else (logits, scores, js_divergence)


def sonar_onnx_output_names(model: SonarForAudioClassification) -> list[str]:
    """The graph's outputs: a model without the noise branch has no JS divergence."""
    return ["logits", "scores", "js_divergence"] if model.config.noise_branch else ["logits", "scores"]


def export_sonar_onnx(model: SonarForAudioClassification, path: str | os.PathLike) -> None:
    """
    Writes SONAR's window forward to `path` as fp32 ONNX (one window of `config.max_length` samples, dynamic batch),
    with the `torch.export`-based exporter. The model is put in evaluation mode (in place) first: since PyTorch 2.6 the
    exporter keeps the mode it is given, and a model built from a config starts in training mode, whose dropout (0.1
    in XLS-R) alone puts the hidden states at a cosine of about 0.87 from evaluation mode's. Weights over 1 GiB are
    written to `<name>_data` beside the graph.
    """
    model = model.float().eval()
    example = torch.zeros(2, model.config.max_length)  # a batch of 2: torch.export would fix a batch of 1
    example[:, ::100] = 0.1
    program = torch.onnx.export(
        SonarOnnxWindowModel(model).eval(),
        (example,),
        dynamo=True,
        input_names=["input_values"],
        output_names=sonar_onnx_output_names(model),
        dynamic_shapes={"input_values": {0: torch.export.Dim("batch")}},
        verbose=False,
    )
    nodes = list(program.model.graph.all_nodes())
    training_ops = {node.op_type for node in nodes} & set(TRAINING_ONLY_OPS)
    if training_ops:
        raise RuntimeError(f"The exported graph holds training-only operators {sorted(training_ops)}.")
    for node in nodes:
        node.metadata_props.pop(STACK_TRACE_KEY, None)
    path = Path(path)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if weight_bytes > SONAR_ONNX_MAX_INLINE_BYTES:
        import onnx_ir

        onnx_ir.save(program.model, path, external_data=path.name + SONAR_ONNX_DATA_SUFFIX)
    else:
        program.save(path, external_data=False)


def _in_encoders(node) -> bool:
    """Whether an exported node belongs to one of the encoders, by the module path the exporter recorded."""
    scopes = next((prop.value for prop in node.metadata_props if prop.key == NAME_SCOPES_KEY), "")
    return any(f"'{scope}" in scopes for scope in QUANTIZED_SCOPES)


def quantize_sonar_onnx(fp32_path: str | os.PathLike, int8_path: str | os.PathLike) -> None:
    """
    Dynamic int8 quantisation (ONNX Runtime) of the encoders' matrix multiplications: their weights become int8,
    their inputs are quantised on the fly. The encoders hold nearly all of the compute; the fusion and the head stay
    fp32, which on a small model trained on sonar-mini lifts the rank correlation of int8 and PyTorch scores from
    0.991 to 0.999. Convolutions stay fp32 too: the feature encoder's first ones read raw audio, and ONNX Runtime's
    integer convolution is slower on CPU than its fp32 one. At a quarter of the fp32 size, even SONAR-Full's int8
    graph fits in one file.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(fp32_path, load_external_data=False).graph
    encoder_matmuls = [node.name for node in graph.node if node.op_type == "MatMul" and _in_encoders(node)]
    if not encoder_matmuls:
        raise RuntimeError(f"{fp32_path} names no encoder modules in its nodes; export it with export_sonar_onnx.")
    quantize_dynamic(
        fp32_path,
        int8_path,
        op_types_to_quantize=["MatMul"],
        nodes_to_quantize=encoder_matmuls,
        weight_type=QuantType.QInt8,
    )


def sonar_check_windows(max_length: int, num_windows: int = 3, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like windows `(num_windows, max_length)`: harmonics with a wandering pitch, and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(max_length) / SONAR_SAMPLING_RATE
    windows = []
    for i in range(num_windows):
        phase = 2 * np.pi * np.cumsum(110 + 40 * i + 30 * np.sin(2 * np.pi * 0.7 * t)) / SONAR_SAMPLING_RATE
        wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
        windows.append(0.2 * wave / np.abs(wave).max() + 0.01 * rng.standard_normal(max_length))
    return np.stack(windows).astype(np.float32)


def sonar_onnx_parity(model: SonarForAudioClassification, runner: SonarOnnxRunner, windows: np.ndarray) -> dict:
    """Scores `windows` with both: the max |score difference|, the max |JS difference| and whether labels agree."""
    with torch.inference_mode():
        logits, js, _, _ = model.float().eval().forward_windows(torch.from_numpy(windows))
    scores = sonar_scores(logits, model.config).numpy()
    outputs = runner(windows)
    return {
        "max_abs_score_diff": float(np.abs(outputs["scores"] - scores).max()),
        "max_abs_js_diff": float(np.abs(outputs["js_divergence"] - js.numpy()).max()) if js is not None else 0.0,
        "same_labels": bool((outputs["logits"].argmax(-1) == logits.argmax(-1).numpy()).all()),
    }


def _resolve_model_folder(model_name_or_path: str) -> Path:
    """A local model folder as it is, or a Hub repository's top-level files fetched into the cache."""
    path = Path(model_name_or_path)
    if path.is_dir():
        folder = path
    elif path.exists() or model_name_or_path.startswith((".", "/", "~")) or model_name_or_path.count("/") > 1:
        raise ValueError(f"--model {model_name_or_path!r} is not a model folder.")
    else:
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(model_name_or_path, ignore_patterns=["*/*"]))
        except Exception as error:
            raise ValueError(f"Could not fetch the model {model_name_or_path!r} from the Hub: {error}") from error
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    model_type = config.get("model_type")
    if model_type != "sonar":
        raise ValueError(f"{model_name_or_path} is not a saved SONAR model (config.json model_type: {model_type}).")
    return folder


def export_sonar(
    model_name_or_path: str, output_dir: str | os.PathLike, int8: bool = False, overwrite: bool = False
) -> dict:
    """
    Writes `output_dir`: the model folder's files (weights, config, code, feature extractor, card) with
    `onnx/model.onnx` (and `onnx/model_int8.onnx` with `int8`) beside them, as Hugging Face repositories carry ONNX
    weights, so that `release_sonar.py` uploads both and `pipeline(..., backend="onnx")` loads either. Everything is
    written to a temporary folder beside `output_dir` and moved into place once the fp32 export matches PyTorch.
    Returns the parity figures of each export on speech-like test windows.
    """
    folder = _resolve_model_folder(str(model_name_or_path))
    output_dir = Path(output_dir).expanduser().resolve()
    source = folder.resolve()
    if output_dir == source or source in output_dir.parents or output_dir in source.parents:
        raise ValueError(f"--output {output_dir} overlaps the model folder {source}; choose a separate folder.")
    if output_dir.exists() and not overwrite:
        raise ValueError(f"--output {output_dir} already exists; choose another folder or pass --overwrite.")

    model = SonarForAudioClassification.from_pretrained(folder, dtype=torch.float32).eval()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would otherwise become the output folder's mode
    try:
        for item in folder.iterdir():
            if item.is_file():
                shutil.copy2(item, staging / item.name)
        if not (staging / "preprocessor_config.json").is_file():
            SonarFeatureExtractor(sampling_rate=model.config.sampling_rate).save_pretrained(staging)
        onnx_dir = staging / SONAR_ONNX_SUBFOLDER
        onnx_dir.mkdir()
        fp32_path = onnx_dir / SONAR_ONNX_FILES["onnx"]
        export_sonar_onnx(model, fp32_path)
        windows = sonar_check_windows(model.config.max_length)
        report = {"onnx": sonar_onnx_parity(model, SonarOnnxRunner(fp32_path), windows)}
        if not report["onnx"]["same_labels"] or report["onnx"]["max_abs_score_diff"] > SONAR_ONNX_SCORE_TOLERANCE:
            raise RuntimeError(f"The ONNX export does not score as PyTorch does: {report['onnx']}.")
        if int8:
            int8_path = onnx_dir / SONAR_ONNX_FILES["onnx-int8"]
            quantize_sonar_onnx(fp32_path, int8_path)
            report["onnx-int8"] = sonar_onnx_parity(model, SonarOnnxRunner(int8_path), windows)
        if output_dir.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old.", dir=output_dir.parent))
            output_dir.rename(previous / output_dir.name)
            staging.rename(output_dir)
            shutil.rmtree(previous)
        else:
            staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


__all__ = [
    "SonarOnnxWindowModel",
    "export_sonar",
    "export_sonar_onnx",
    "quantize_sonar_onnx",
    "sonar_check_windows",
    "sonar_onnx_parity",
]
