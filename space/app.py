"""SONAR deepfake speech detector: a Gradio demo that says whether a clip is real or generated, and shows why.

    SONAR_MODEL=outputs/tiny_demo/model python space/app.py      # http://127.0.0.1:7860 (GRADIO_SERVER_PORT)

`SONAR_MODEL` is a Hub id or a folder written by `save_pretrained`; the model's own code comes with it
(`trust_remote_code=True`), so this folder deploys as a Space without the `modeling_sonar` package. API clients call
`/predict` with one audio file and get the verdict as JSON (see README.md).
"""

import os
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from matplotlib.figure import Figure
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
from transformers.dynamic_module_utils import get_class_from_dynamic_module


SPACE_DIR = Path(__file__).resolve().parent
# The project's CPU quick start writes its Hub-ready model folder here (relative to the repository root).
DEFAULT_MODEL = SPACE_DIR.parent / "outputs" / "tiny_demo" / "model"
MODEL_ID = os.environ.get("SONAR_MODEL", str(DEFAULT_MODEL))
# "pytorch", or "onnx" / "onnx-int8": each window's forward in ONNX Runtime, from the onnx/ that export_sonar.py writes
BACKEND = os.environ.get("SONAR_BACKEND", "pytorch")
MAX_DURATION_S = float(os.environ.get("SONAR_MAX_DURATION_S", 300))
MAX_FILE_MB = float(os.environ.get("SONAR_MAX_FILE_MB", 20))
CONCURRENCY_LIMIT = int(os.environ.get("SONAR_CONCURRENCY_LIMIT", 2))
QUEUE_MAX_SIZE = int(os.environ.get("SONAR_QUEUE_MAX_SIZE", 64))
VIEW_MAX_S = 30  # spectrograms and the noise view show at most this much audio, to keep them light
EXAMPLES = sorted(str(path) for path in (SPACE_DIR / "examples").glob("*.flac"))
BANDS_HZ = ((4000, 8000), (0, 4000))  # top panel first
N_FFT, HOP_LENGTH = 512, 160
HOW_TO_GET_A_MODEL = (
    "Set `SONAR_MODEL` to a Hub model id or to a folder saved with `save_pretrained` (config.json, "
    "preprocessor_config.json, model.safetensors and the model's code), or train the demo model on a CPU in "
    "minutes with `make demo` in the project, which writes `outputs/tiny_demo/model`."
)


def shown_name(model_id: str) -> str:
    """The model as the page names it: a Hub id as it is, a local folder relative to the project (else by its
    name), never by its path on the server."""
    if not os.path.exists(model_id) and not model_id.startswith((".", "/", "~")):
        return model_id
    path = Path(model_id).expanduser().resolve()
    return path.relative_to(SPACE_DIR.parent).as_posix() if path.is_relative_to(SPACE_DIR.parent) else path.name


def load_model(model_id: str) -> tuple:
    """The model and feature extractor, or `None`s and the reason, so that the page can still say what to do. The
    loader's own message, which names server paths, goes to the server's log only."""
    try:
        model = AutoModelForAudioClassification.from_pretrained(model_id, trust_remote_code=True).eval()
        feature_extractor = AutoFeatureExtractor.from_pretrained(model_id, trust_remote_code=True)
    except (OSError, ValueError) as error:
        print(f"Could not load a SONAR model from {model_id}: {error}", file=sys.stderr)
        return None, None, f"No SONAR model could be loaded from `{shown_name(model_id)}`. {HOW_TO_GET_A_MODEL}"
    if not hasattr(sys.modules[type(model).__module__], "sonar_verdict"):
        return None, None, f"`{shown_name(model_id)}` predates `sonar_verdict`: save it again."
    return model, feature_extractor, None


def load_backend(model_id: str, backend: str, max_length: int):
    """The `window_forward` of an ONNX backend, from the model's own pipeline code (`None` for PyTorch), or the reason
    it cannot be had (no ONNX files, no onnxruntime), so that the page can say so."""
    if backend == "pytorch":
        return None, None
    try:
        onnx_backend = get_class_from_dynamic_module("pipeline_sonar.sonar_onnx_backend", model_id)
        return onnx_backend(model_id, backend, max_length), None
    except ImportError as error:
        print(f"Could not load the {backend} backend of {model_id}: {error}", file=sys.stderr)
        return None, f"`SONAR_BACKEND={backend}` needs ONNX Runtime: add `onnxruntime` to the Space's requirements."
    except (OSError, ValueError, AttributeError) as error:  # the message names server paths: the log only
        print(f"Could not load the {backend} backend of {model_id}: {error}", file=sys.stderr)
        return None, (
            f"`SONAR_BACKEND={backend}` cannot run `{shown_name(model_id)}`: the backend must be pytorch, onnx or "
            "onnx-int8, and the model needs its ONNX export (`python export_sonar.py --model MODEL --output OUT "
            "--int8` in the project writes `onnx/model.onnx` and `onnx/model_int8.onnx`)."
        )


MODEL, FEATURE_EXTRACTOR, MODEL_ERROR = load_model(MODEL_ID)
WINDOW_FORWARD = None
if MODEL is not None:
    WINDOW_FORWARD, MODEL_ERROR = load_backend(MODEL_ID, BACKEND, MODEL.config.max_length)
    if MODEL_ERROR:
        MODEL = None
if MODEL is not None:
    SAMPLING_RATE = FEATURE_EXTRACTOR.sampling_rate
    # The verdict, its probability and the window positions come from the model's own code (package or remote code),
    # so that the page says what `pipeline(...)` and `evaluate_sonar.py` say.
    MODEL_CODE = sys.modules[type(MODEL).__module__]
    DISPLAY_NAMES = MODEL_CODE.SONAR_VERDICT_NAMES


def load_audio(path: str) -> np.ndarray:
    """
    Decodes any file soundfile (wav, flac, ogg, mp3) or FFmpeg (through torchcodec: m4a, webm...) reads into mono
    float32 at the model's rate. Size and duration are checked from the header, before decoding.

    Raises:
        ValueError: the file is empty, too large, too long or not audio; the message names it.
    """
    name, size_mb = Path(path).name, os.path.getsize(path) / 2**20
    if size_mb == 0:
        raise ValueError(f"{name} is empty (0 bytes).")
    if size_mb > MAX_FILE_MB:
        raise ValueError(f"{name} is {size_mb:.1f} MB; this Space accepts files up to {MAX_FILE_MB:g} MB.")
    try:
        with sf.SoundFile(path) as audio:
            duration_s, rate = audio.frames / audio.samplerate, audio.samplerate
            data = audio.read(dtype="float32", always_2d=True).T if duration_s <= MAX_DURATION_S else None
    except sf.LibsndfileError:
        from torchcodec.decoders import AudioDecoder

        try:
            decoder = AudioDecoder(path)
            duration_s, rate = decoder.metadata.duration_seconds, decoder.metadata.sample_rate
            data = decoder.get_all_samples().data.numpy() if duration_s <= MAX_DURATION_S else None
        except (RuntimeError, ValueError):  # the decoder's message names server paths and its own source files
            raise ValueError(
                f"{name} could not be decoded as audio: it is not a sound file that soundfile or FFmpeg reads "
                "(wav, flac, ogg, mp3, m4a, webm...)."
            ) from None
    if data is None:
        raise ValueError(
            f"{name} lasts {duration_s / 60:.1f} minutes; this Space scores at most {MAX_DURATION_S / 60:g} minutes. "
            "Trim the recording, or run the model locally, where there is no limit."
        )
    waveform = torch.from_numpy(np.ascontiguousarray(data.mean(axis=0), dtype=np.float32))
    if rate != SAMPLING_RATE:
        waveform = AF.resample(waveform, rate, SAMPLING_RATE)
    return waveform.numpy()


@torch.inference_mode()
def detect(path: str | None) -> dict:
    """Scores one audio file: verdict, probabilities, score against the threshold, JS alignment and windows."""
    if MODEL is None:
        raise gr.Error(MODEL_ERROR)
    if not path:
        raise gr.Error("Upload or record a clip first.")
    try:
        waveform = load_audio(path)
        inputs = FEATURE_EXTRACTOR(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    except ValueError as error:
        raise gr.Error(f"Cannot score this clip: {error}") from error
    output = MODEL(**inputs, window_forward=WINDOW_FORWARD)

    config = MODEL.config
    score = output.scores[0].item()
    verdict = MODEL_CODE.sonar_verdict(score, config)
    window_logits = output.window_logits[0][output.window_mask[0]]
    window_scores = window_logits[:, config.bonafide_id] - window_logits[:, config.spoof_id]
    window_length_s = config.max_length / SAMPLING_RATE
    starts = MODEL_CODE.sonar_window_starts(len(waveform), config.max_length, config.window_hop_length)
    return {
        "verdict": verdict["label"],
        "verdict_text": verdict["text"],
        "spoof_probability": verdict["spoof_probability"],
        "probabilities": {
            DISPLAY_NAMES["bonafide"]: verdict["bonafide_probability"],
            DISPLAY_NAMES["spoof"]: verdict["spoof_probability"],
        },
        "score": score,
        "threshold": config.decision_threshold,
        "calibration_scale": config.calibration_scale,
        "smoke_test": config.smoke_test,
        "js_divergence": output.js_divergence[0].item() if output.js_divergence is not None else None,
        "duration_s": len(waveform) / SAMPLING_RATE,
        "windows": [
            {
                "start_s": start / SAMPLING_RATE,
                "end_s": min(start / SAMPLING_RATE + window_length_s, len(waveform) / SAMPLING_RATE),
                "spoof_probability": MODEL_CODE.sonar_verdict(window_score, config)["spoof_probability"],
            }
            for start, window_score in zip(starts, window_scores.tolist())
        ],
    }


def spectrogram_figure(waveform: torch.Tensor, title: str) -> Figure:
    """Log-magnitude STFT in two panels, 4-8 kHz over 0-4 kHz, on one colour scale so the bands compare."""
    spectrum = torch.stft(waveform, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT), return_complex=True).abs()
    decibels = 20 * torch.log10(spectrum + 1e-8)
    top_db = decibels.max().item()
    figure = Figure(figsize=(7, 3.6), layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    duration_s, bin_hz = len(waveform) / SAMPLING_RATE, SAMPLING_RATE / N_FFT
    for axis, (low_hz, high_hz) in zip(axes, BANDS_HZ):
        band = decibels[int(low_hz / bin_hz) : int(high_hz / bin_hz) + 1]
        extent = (0, duration_s, low_hz / 1000, high_hz / 1000)
        axis.imshow(
            band.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=top_db - 80, vmax=top_db, extent=extent
        )
        axis.set_ylabel("kHz")
    axes[0].set_title(title, fontsize=10)
    axes[1].set_xlabel("time (s)")
    return figure


def timeline_figure(windows: list[dict]) -> Figure:
    """Spoof probability of each window, plotted at the window's centre."""
    figure = Figure(figsize=(7, 2.4), layout="constrained")
    axis = figure.subplots()
    centres = [(window["start_s"] + window["end_s"]) / 2 for window in windows]
    axis.plot(centres, [window["spoof_probability"] for window in windows], marker="o", color="tab:red")
    axis.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="decision threshold")
    axis.set(xlim=(0, windows[-1]["end_s"]), ylim=(0, 1), xlabel="window centre (s)", ylabel="spoof probability")
    axis.set_title(
        f"Spoof probability of each {windows[0]['end_s'] - windows[0]['start_s']:.2f} s window", fontsize=10
    )
    axis.legend(loc="upper right", fontsize=8)
    return figure


def describe(report: dict) -> str:
    """The verdict and the evidence behind it, in words."""
    relation = "at or above" if report["verdict"] == "bonafide" else "below"
    text = f"### {report['verdict_text'][0].upper()}{report['verdict_text'][1:]}\n"
    if report["smoke_test"]:
        text += (
            "**Smoke test, not a detector:** this model was trained on the demo corpus to check that the code runs "
            "end to end. Its verdicts are close to chance.\n\n"
        )
    text += (
        f"Score **{report['score']:+.4f}** (bona fide log-odds: higher means more genuine) is {relation} the "
        f"model's decision threshold **{report['threshold']:+.4f}** (`decision_threshold`, set by training at the "
        f"development split's equal error rate), so the clip is judged **{DISPLAY_NAMES[report['verdict']]}**. "
        f"Probability of spoof: sigmoid({report['calibration_scale']:.4g} x (threshold - score)) = "
        f"**{100 * report['spoof_probability']:.1f}%** (the scale is fitted on the development split)."
    )
    if report["js_divergence"] is not None:
        text += (
            f"\n\nLF-HF alignment (Jensen-Shannon divergence between the content and noise views, 0 = aligned, "
            f"1 = disjoint): **{report['js_divergence']:.4f}**. Training pulls it towards 0 for real speech and "
            "towards 1 for generated speech."
        )
    if len(report["windows"]) > 1:
        text += f"\n\n{report['duration_s']:.1f} s scored in {len(report['windows'])} windows (timeline below)."
    return text


@torch.inference_mode()
def explain(path: str, report: dict) -> tuple:
    """What the page shows after `detect`: label, words, window timeline, band spectrograms and the noise view."""
    waveform = torch.from_numpy(load_audio(path)[: VIEW_MAX_S * SAMPLING_RATE])
    shown = f"first {VIEW_MAX_S} s" if report["duration_s"] > VIEW_MAX_S else "whole clip"
    many_windows = len(report["windows"]) > 1
    outputs = (
        report["probabilities"],
        describe(report),
        gr.Plot(timeline_figure(report["windows"]) if many_windows else None, visible=many_windows),
        spectrogram_figure(waveform, f"Input ({shown}): high band 4-8 kHz over low band 0-4 kHz"),
    )
    filter_bank = MODEL.sonar.filter_bank
    if filter_bank is None:  # a model without the noise branch (the XLS-R baseline) has no noise view
        return *outputs, gr.Plot(visible=False), gr.Audio(visible=False)
    noise = filter_bank(waveform[None])[0]
    peak = noise.abs().max().clamp_min(1e-8)
    return (
        *outputs,
        gr.Plot(spectrogram_figure(noise, f"Noise view ({shown}): what the filter bank passes on"), visible=True),
        gr.Audio((SAMPLING_RATE, (0.9 * 32767 * noise / peak).to(torch.int16).numpy()), visible=True),
    )


def clear() -> tuple:
    """Empties every output, so that a refused clip is not shown next to the previous clip's verdict."""
    return None, None, "", gr.Plot(visible=False), None, None, None


with gr.Blocks(title="SONAR deepfake speech detector") as demo:
    gr.Markdown(
        "# SONAR: is this speech real or generated?\n"
        "Drop in a clip, record one, or pick an example. [SONAR](https://arxiv.org/abs/2511.21325) reads the raw "
        "waveform (content view) and the residual left by learned high-pass filters (noise view), and checks how "
        "well the two agree: generated speech tends to get the high band wrong.\n\n"
        f"Model: `{shown_name(MODEL_ID)}`. Clips up to {MAX_DURATION_S / 60:g} minutes and {MAX_FILE_MB:g} MB."
    )
    if MODEL is not None and MODEL.config.smoke_test:
        gr.Markdown(
            "**This model is a smoke test, not a detector:** it was trained on the embedded demo corpus, which is "
            "too small to learn from. Set `SONAR_MODEL` to a model trained on ASVspoof for real verdicts."
        )
    if MODEL_ERROR:
        gr.Markdown(f"**No model loaded.** {MODEL_ERROR}")
    with gr.Row():
        with gr.Column():
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech clip")
            button = gr.Button("Detect", variant="primary")
            gr.Examples(EXAMPLES, inputs=audio, label="Examples: real, Griffin-Lim resynthesis, real then generated")
        with gr.Column():
            label = gr.Label(label="Verdict", num_top_classes=2)
            verdict = gr.Markdown(elem_id="verdict")
            timeline = gr.Plot(show_label=False, visible=False, elem_id="timeline")
    with gr.Row():
        spectrogram = gr.Plot(show_label=False)
        with gr.Column():
            noise_spectrogram = gr.Plot(show_label=False)
            noise_audio = gr.Audio(
                label="Noise view: what the learned filter bank passes on to the noise encoder (peak-normalised)",
                type="numpy",
                interactive=False,
            )
    with gr.Accordion("API response (`/predict`)", open=False):
        report = gr.JSON(label="JSON")

    shown = [label, verdict, timeline, spectrogram, noise_spectrogram, noise_audio]
    detection = gr.on(
        [button.click, audio.upload, audio.stop_recording], detect, inputs=audio, outputs=report, api_name="predict"
    )
    detection.success(explain, inputs=[audio, report], outputs=shown, api_visibility="private")
    detection.failure(clear, outputs=[report, *shown], api_visibility="private")

demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)


if __name__ == "__main__":
    demo.launch(max_file_size=int(MAX_FILE_MB * 2**20))
