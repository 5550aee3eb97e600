"""SONAR deepfake speech detector: a Gradio demo that says whether a clip is real or generated, and shows why.

    SONAR_MODEL=outputs/tiny_demo/model python space/app.py      # http://127.0.0.1:7860 (GRADIO_SERVER_PORT)

`SONAR_MODEL` is a Hub id or a folder written by `save_pretrained`. The page is a thin UI over the model's own
`audio-classification` pipeline, which comes with the model (`trust_remote_code=True`) and does all the work: it
decodes the file, cuts it into windows, scores them and gives the verdict, the window timeline and the views the plots
draw. So this folder deploys as a Space without the `modeling_sonar` package, and the page says what `pipeline(...)`
says. API clients call `/predict` with one audio file and get the verdict as JSON (see README.md).
"""

import importlib.util
import inspect
import os
import sys
from pathlib import Path

import gradio as gr
import torch
from matplotlib.figure import Figure
from transformers import Pipeline, pipeline


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
# How long a session keeps the views of its last clip for the plots: API clients never close a tab to free them.
VIEWS_TIME_TO_LIVE_S = 600
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


def load_error(error: Exception, model_id: str, backend: str) -> str:
    """What the page says when the pipeline cannot be built: what is missing and how to get it, without the loader's
    own message, which names server paths."""
    shown = shown_name(model_id)
    if isinstance(error, ImportError):
        if backend != "pytorch" and importlib.util.find_spec("onnxruntime") is None:
            return f"`SONAR_BACKEND={backend}` needs ONNX Runtime: add `onnxruntime` to the Space's requirements."
        return f"The code of `{shown}` needs a package this Space lacks (the server log names it)."
    if isinstance(error, OSError) or backend == "pytorch":
        return f"No SONAR model could be loaded from `{shown}`. {HOW_TO_GET_A_MODEL}"
    # the pipeline refuses an unknown backend, or a model without the ONNX files its backend needs
    return (
        f"`SONAR_BACKEND={backend}` cannot run `{shown}`: the backend must be pytorch, onnx or onnx-int8, and the "
        "model needs its ONNX export (`python export_sonar.py --model MODEL --output OUT --int8` in the project "
        "writes `onnx/model.onnx` and `onnx/model_int8.onnx`)."
    )


def load_detector(model_id: str, backend: str) -> tuple[Pipeline | None, str | None]:
    """The model's own `audio-classification` pipeline on `backend`, or `None` and the reason it cannot be had, so
    that the page can still say what to do."""
    try:
        detector = pipeline("audio-classification", model=model_id, trust_remote_code=True, backend=backend)
    except (OSError, ValueError, ImportError) as error:
        print(f"Could not load a SONAR pipeline from {model_id} (backend {backend}): {error}", file=sys.stderr)
        return None, load_error(error, model_id, backend)
    # Another audio classifier gets transformers' generic pipeline; an older SONAR pipeline lacks the views.
    if "return_views" not in inspect.signature(detector._sanitize_parameters).parameters:
        return None, f"`{shown_name(model_id)}` has no SONAR pipeline that returns its views: save it again."
    return detector, None


def verdict_names(detector: Pipeline) -> dict[str, str]:
    """How each label reads, from the model's own code beside the `sonar_verdict` its pipeline calls, so that the
    page's labels are the words of the verdict text."""
    pipeline_code = sys.modules[type(detector).__module__]
    return sys.modules[pipeline_code.sonar_verdict.__module__].SONAR_VERDICT_NAMES


DETECTOR, MODEL_ERROR = load_detector(MODEL_ID, BACKEND)
if DETECTOR is not None:
    SAMPLING_RATE = DETECTOR.feature_extractor.sampling_rate
    DISPLAY_NAMES = verdict_names(DETECTOR)


def detect(path: str | None) -> tuple[dict, dict]:
    """
    Scores one audio file with one pipeline call: the `/predict` report (verdict, probabilities, score against the
    threshold, JS alignment, windows), and, for the plots only, the views the model saw (its first `VIEW_MAX_S`
    seconds), kept out of the JSON. Everything in both comes from the pipeline; the page only reshapes it.
    """
    if DETECTOR is None:
        raise gr.Error(MODEL_ERROR)
    if not path:
        raise gr.Error("Upload or record a clip first.")
    size_mb = os.path.getsize(path) / 2**20
    if size_mb > MAX_FILE_MB:  # before anything is read; the duration limit is the pipeline's, from the header
        raise gr.Error(
            f"Cannot score this clip: {Path(path).name} is {size_mb:.1f} MB; this Space accepts files up to "
            f"{MAX_FILE_MB:g} MB."
        )
    try:
        result = DETECTOR(path, return_timeline=True, return_views=True, max_duration_s=MAX_DURATION_S)
    except ValueError as error:  # names the file, never its folder
        raise gr.Error(f"Cannot score this clip: {error}") from error
    config = DETECTOR.model.config
    report = {
        "verdict": result["label"],
        "verdict_text": result["verdict"],
        "spoof_probability": result["spoof_probability"],
        "probabilities": {DISPLAY_NAMES[entry["label"]]: entry["score"] for entry in result["labels"]},
        "score": result["score"],
        "threshold": config.decision_threshold,
        "calibration_scale": config.calibration_scale,
        "smoke_test": config.smoke_test,
        "js_divergence": result["js_divergence"],
        "duration_s": len(result["waveform"]) / SAMPLING_RATE,
        "windows": result["timeline"],
    }
    shown = VIEW_MAX_S * SAMPLING_RATE
    noise = result["noise_waveform"]
    return report, {"waveform": result["waveform"][:shown], "noise_waveform": None if noise is None else noise[:shown]}


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


def explain(report: dict, views: dict) -> tuple:
    """What the page shows after `detect`: label, words, window timeline, band spectrograms of the samples the model
    scored and the model's own noise view of them. Nothing is decoded or scored again."""
    shown = f"first {VIEW_MAX_S} s" if report["duration_s"] > VIEW_MAX_S else "whole clip"
    many_windows = len(report["windows"]) > 1
    outputs = (
        report["probabilities"],
        describe(report),
        gr.Plot(timeline_figure(report["windows"]) if many_windows else None, visible=many_windows),
        spectrogram_figure(
            torch.from_numpy(views["waveform"]), f"Input ({shown}): high band 4-8 kHz over low band 0-4 kHz"
        ),
    )
    if views["noise_waveform"] is None:  # a model without the noise branch (the XLS-R baseline) has no noise view
        return *outputs, gr.Plot(visible=False), gr.Audio(visible=False)
    noise = torch.from_numpy(views["noise_waveform"])
    peak = noise.abs().max().clamp_min(1e-8)
    return (
        *outputs,
        gr.Plot(spectrogram_figure(noise, f"Noise view ({shown}): what the filter bank passes on"), visible=True),
        gr.Audio((SAMPLING_RATE, (0.9 * 32767 * noise / peak).to(torch.int16).numpy()), visible=True),
    )


def clear() -> tuple:
    """Empties every output, so that a refused clip is not shown next to the previous clip's verdict."""
    return None, None, None, "", gr.Plot(visible=False), None, None, None


with gr.Blocks(title="SONAR deepfake speech detector") as demo:
    gr.Markdown(
        "# SONAR: is this speech real or generated?\n"
        "Drop in a clip, record one, or pick an example. [SONAR](https://arxiv.org/abs/2511.21325) reads the raw "
        "waveform (content view) and the residual left by learned high-pass filters (noise view), and checks how "
        "well the two agree: generated speech tends to get the high band wrong.\n\n"
        f"Model: `{shown_name(MODEL_ID)}`. Clips up to {MAX_DURATION_S / 60:g} minutes and {MAX_FILE_MB:g} MB."
    )
    if DETECTOR is not None and DETECTOR.model.config.smoke_test:
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
    views = gr.State(time_to_live=VIEWS_TIME_TO_LIVE_S)  # the samples for the plots, out of the JSON

    shown = [label, verdict, timeline, spectrogram, noise_spectrogram, noise_audio]
    detection = gr.on(
        [button.click, audio.upload, audio.stop_recording],
        detect,
        inputs=audio,
        outputs=[report, views],
        api_name="predict",
    )
    detection.success(explain, inputs=[report, views], outputs=shown, api_visibility="private")
    detection.failure(clear, outputs=[report, views, *shown], api_visibility="private")

demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)


if __name__ == "__main__":
    demo.launch(max_file_size=int(MAX_FILE_MB * 2**20))
