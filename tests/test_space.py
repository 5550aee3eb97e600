"""The Space (`space/app.py`) on 127.0.0.1 with a tiny random model, called through gradio_client and Chromium."""

import ast
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import pipeline

from modeling_sonar import SonarConfig, SonarFeatureExtractor, SonarForAudioClassification, load_audio, sonar_verdict


REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "space" / "app.py"
EXAMPLES = REPO_ROOT / "space" / "examples"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# written into the tiny model's config, as the training script writes the dev split's decision
THRESHOLD, SCALE = 0.25, 1.7
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random SONAR saved as the training script saves it from the demo corpus: weights, code, feature
    extractor, the dev split's threshold and calibration scale, marked a smoke test."""
    path = tmp_path_factory.mktemp("space_model")
    torch.manual_seed(0)
    config = SonarConfig.from_preset("tiny", decision_threshold=THRESHOLD, calibration_scale=SCALE, smoke_test=True)
    model = SonarForAudioClassification(config)
    model.save_pretrained(path)
    SonarFeatureExtractor().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Good clips in several containers, rates and channel counts, and the bad inputs the Space must refuse."""
    path = tmp_path_factory.mktemp("space_clips")
    speech, rate = sf.read(EXAMPLES / "real_speech.flac", dtype="float32")
    stereo_22k = load_audio(str(EXAMPLES / "real_speech.flac"), sampling_rate=22050)
    sf.write(path / "speech.wav", np.stack([stereo_22k, 0.5 * stereo_22k], axis=1), 22050)
    sf.write(path / "speech.mp3", speech, rate, format="MP3")
    (path / "empty.wav").write_bytes(b"")
    (path / "notes.wav").write_text("These are meeting notes, not audio.\n" * 20)
    sf.write(path / "short.wav", speech[: int(0.05 * rate)], rate)
    noise = np.random.default_rng(0).normal(0, 0.05, 10 * 60 * rate).astype(np.float32)
    sf.write(path / "ten_minutes.wav", noise, rate, subtype="PCM_16")
    examples = [load_audio(str(example)) for example in sorted(EXAMPLES.glob("*.flac"))]
    sf.write(path / "forty_seconds.flac", np.resize(np.concatenate(examples), 40 * 16000), 16000)
    return {
        "wav": path / "speech.wav",
        "mp3": path / "speech.mp3",
        "long": EXAMPLES / "real_then_generated.flac",
        "many_windows": path / "forty_seconds.flac",  # 19 windows, and more than the 30 s the plots show
        "empty": path / "empty.wav",
        "text": path / "notes.wav",
        "short": path / "short.wav",
        "ten_minutes": path / "ten_minutes.wav",
    }


@pytest.fixture(scope="module")
def expected(model_dir, clips) -> dict[str, dict]:
    """What a direct model call says about each good clip: the reference for every answer of the Space."""
    model = SonarForAudioClassification.from_pretrained(model_dir).eval()
    feature_extractor = SonarFeatureExtractor.from_pretrained(model_dir)
    references = {}
    for name in ("wav", "mp3", "long", "many_windows"):
        waveform = load_audio(str(clips[name]))
        with torch.inference_mode():
            output = model(**feature_extractor(waveform, sampling_rate=16000, return_tensors="pt"))
        score = output.scores[0].item()
        references[name] = {
            **sonar_verdict(score, model.config),
            "score": score,
            "js_divergence": output.js_divergence[0].item(),
            "num_windows": int(output.window_mask[0].sum()),
            "duration_s": len(waveform) / 16000,
        }
    return references


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory) -> str:
    """`SONAR_MODEL=DIR python space/app.py` on a free port of 127.0.0.1, stopped after the module's tests."""
    port = free_port()
    log = tmp_path_factory.mktemp("space_server") / "app.log"
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "SONAR_MODEL": str(model_dir),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "HF_MODULES_CACHE": str(tmp_path_factory.mktemp("hf_modules")),
    }
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(APP)], cwd=REPO_ROOT, env=env, stdout=log_file, stderr=log_file
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"space/app.py exited with code {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"space/app.py did not answer on {url} within 120 s:\n{log.read_text()}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def predict(client, path: Path) -> dict:
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/predict")


def assert_matches(report: dict, reference: dict) -> None:
    """The Space says what `sonar_verdict` says of the model's own score."""
    assert report["verdict"] == reference["label"]
    assert report["verdict_text"] == reference["text"] and "smoke-test model" in report["verdict_text"]
    assert (report["threshold"], report["calibration_scale"], report["smoke_test"]) == (THRESHOLD, SCALE, True)
    assert report["score"] == pytest.approx(reference["score"], abs=1e-5)
    assert report["spoof_probability"] == pytest.approx(reference["spoof_probability"], abs=1e-5)
    assert report["probabilities"] == {
        "bona fide (real)": pytest.approx(reference["bonafide_probability"], abs=1e-5),
        "spoof (generated)": pytest.approx(reference["spoof_probability"], abs=1e-5),
    }
    assert report["js_divergence"] == pytest.approx(reference["js_divergence"], abs=1e-4)
    assert report["duration_s"] == pytest.approx(reference["duration_s"], abs=1e-3)
    assert len(report["windows"]) == reference["num_windows"]


def test_api_lists_predict(client):
    assert "/predict" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]


@pytest.mark.parametrize("name", ["wav", "mp3", "long", "many_windows"])
def test_predict_matches_direct_model_call(client, clips, expected, name):
    report = predict(client, clips[name])
    assert_matches(report, expected[name])
    if name == "long":  # 5 s: two 4.04 s windows, the second aligned to the end
        assert report["windows"][0]["start_s"] == 0.0
        assert report["windows"][-1]["end_s"] == pytest.approx(report["duration_s"])


BAD_INPUT_MESSAGES = {
    "empty": r"'empty\.wav' is empty \(0 bytes\)",
    "text": r"Could not decode 'notes\.wav' as audio",
    "short": r"too short: 0\.050 s, the minimum is 0\.1 s",
    "ten_minutes": r"'ten_minutes\.wav' lasts 10\.0 minutes; at most 5 minutes are scored here",
}


def assert_names_no_path(message: str) -> None:
    """No server path (the upload's temporary folder, the model folder) and no library source file in a message."""
    assert not re.search(r"(^|[\s'\"(`])(/|~/|[A-Za-z]:\\)\S", message), message
    assert "site-packages" not in message and ".cpp" not in message and ".py" not in message, message


@pytest.mark.parametrize("name", BAD_INPUT_MESSAGES)
def test_bad_input_is_answered_with_a_message(client, clips, name):
    from gradio_client.exceptions import AppError

    started = time.monotonic()
    with pytest.raises(AppError, match=BAD_INPUT_MESSAGES[name]) as refused:
        predict(client, clips[name])
    assert time.monotonic() - started < 30
    assert_names_no_path(str(refused.value))


def test_twenty_concurrent_requests(client, clips, expected):
    names = ["wav", "mp3", "long", "wav", "mp3"] * 4
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        reports = list(pool.map(lambda name: predict(client, clips[name]), names))
    for name, report in zip(names, reports):
        assert_matches(report, expected[name])


def test_pipeline_space_and_evaluation_agree(client, model_dir, tmp_path):
    """One file, three ways in: `pipeline(...)` in a fresh process with remote code, the Space's `/predict`, and
    `evaluate_sonar.py`. One label, one probability, one score."""
    clip, other = tmp_path / "clip.wav", tmp_path / "other.wav"
    speech = load_audio(str(EXAMPLES / "real_speech.flac"))
    sf.write(clip, speech[: 3 * 16000], 16000, subtype="PCM_16")  # shorter than a window: scored alike by all three
    sf.write(other, load_audio(str(EXAMPLES / "real_then_generated.flac"))[-3 * 16000 :], 16000, subtype="PCM_16")

    space = predict(client, clip)

    code = f"""
import json, sys
from transformers import pipeline
detector = pipeline("audio-classification", model={str(model_dir)!r}, trust_remote_code=True)
result = detector({str(clip)!r}, return_timeline=True)
result = {{key: result[key] for key in ("label", "spoof_probability", "score", "verdict")}}
print(json.dumps({{**result, "package": "modeling_sonar" in sys.modules}}))
"""
    env = {**os.environ, **OFFLINE_ENV, "HF_MODULES_CACHE": str(tmp_path / "hf_modules")}
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    piped = json.loads(ran.stdout.strip().splitlines()[-1])
    assert piped["package"] is False

    features = Features({"audio": Audio(sampling_rate=16000), "label": ClassLabel(names=["bonafide", "spoof"])})
    features["utt_id"] = Value("string")
    rows = {"audio": [str(clip), str(other)], "label": [0, 1], "utt_id": ["clip", "other"]}
    DatasetDict({"eval": Dataset.from_dict(rows, features=features)}).save_to_disk(tmp_path / "dataset")
    command = [sys.executable, "evaluate_sonar.py", "--model", str(model_dir), "--dataset", str(tmp_path / "dataset")]
    ran = subprocess.run(
        command + ["--output_dir", str(tmp_path / "eval")], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    lines = (tmp_path / "eval" / "verdicts.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["utt_id", "score", "label", "spoof_probability"]
    evaluated = {line.split("\t")[0]: line.split("\t")[1:] for line in lines[1:]}["clip"]
    scores_txt = dict(line.split() for line in (tmp_path / "eval" / "scores.txt").read_text().splitlines())

    print(f"pipeline: {piped}\nspace: {space['verdict']} {space['spoof_probability']} {space['score']}\n"
          f"evaluate_sonar.py: {evaluated}")  # fmt: skip
    assert piped["label"] == space["verdict"] == evaluated[1]
    assert piped["verdict"] == space["verdict_text"]
    assert piped["spoof_probability"] == pytest.approx(space["spoof_probability"], abs=1e-5)
    assert piped["spoof_probability"] == pytest.approx(float(evaluated[2]), abs=1e-5)
    assert piped["score"] == pytest.approx(space["score"], abs=1e-5)
    assert piped["score"] == pytest.approx(float(evaluated[0]), abs=1e-5) and evaluated[0] == scores_txt["clip"]


@pytest.fixture(scope="module")
def detector(model_dir):
    """The model's own pipeline, from its folder with its own code, as users build it."""
    return pipeline("audio-classification", model=str(model_dir), trust_remote_code=True)


@pytest.mark.parametrize("name", ["wav", "mp3", "long", "many_windows"])
def test_space_reports_what_the_pipeline_says(client, detector, clips, name):
    """Each `/predict` answer is the pipeline's answer on the same file, reshaped: verdict, probabilities, score, JS
    alignment, duration and every window of the timeline."""
    report = predict(client, clips[name])
    piped = detector(str(clips[name]), return_timeline=True, return_views=True)
    config = detector.model.config
    assert report["verdict"] == piped["label"] and report["verdict_text"] == piped["verdict"]
    assert report["spoof_probability"] == pytest.approx(piped["spoof_probability"], abs=1e-6)
    assert report["probabilities"] == {
        {"bonafide": "bona fide (real)", "spoof": "spoof (generated)"}[entry["label"]]: pytest.approx(entry["score"])
        for entry in piped["labels"]
    }
    assert report["score"] == pytest.approx(piped["score"], abs=1e-6)
    assert report["js_divergence"] == pytest.approx(piped["js_divergence"], abs=1e-6)
    assert report["duration_s"] == len(piped["waveform"]) / 16000
    assert (report["threshold"], report["calibration_scale"]) == (config.decision_threshold, config.calibration_scale)
    assert len(piped["timeline"]) == {"wav": 1, "mp3": 1, "long": 2, "many_windows": 19}[name]
    for window, piped_window in zip(report["windows"], piped["timeline"], strict=True):
        assert window == pytest.approx(piped_window, abs=1e-6)
    assert set(report) == {
        "verdict", "verdict_text", "spoof_probability", "probabilities", "score", "threshold", "calibration_scale",
        "smoke_test", "js_divergence", "duration_s", "windows",
    }  # fmt: skip


def test_space_refuses_what_the_pipeline_refuses(client, detector, clips):
    """Over `SONAR_MAX_DURATION_S` (300 s by default) the Space answers with the pipeline's own refusal, which names
    the limit and is read from the header."""
    with pytest.raises(ValueError, match="at most 5 minutes") as refused_by_pipeline:
        detector(str(clips["ten_minutes"]), max_duration_s=300)
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as refused_by_space:
        predict(client, clips["ten_minutes"])
    assert str(refused_by_pipeline.value) in str(refused_by_space.value)


def import_app(monkeypatch, model: Path, name: str):
    """`space/app.py` imported in this process (not launched) with `SONAR_MODEL=model`."""
    monkeypatch.setenv("SONAR_MODEL", str(model))
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(name, APP)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


def test_without_a_model_the_page_says_how_to_make_one(tmp_path, monkeypatch):
    import gradio as gr

    app = import_app(monkeypatch, tmp_path / "missing", "space_app_without_model")
    assert app.DETECTOR is None
    page_text = " ".join(str(block.value) for block in app.demo.blocks.values() if isinstance(block, gr.Markdown))
    assert "No model loaded" in page_text and "outputs/tiny_demo/model" in page_text and "SONAR_MODEL" in page_text
    assert "from `missing`" in page_text and "Model: `missing`" in page_text
    assert_names_no_path(page_text)
    with pytest.raises(gr.Error, match="SONAR_MODEL") as refused:
        app.detect(str(EXAMPLES / "real_speech.flac"))
    assert_names_no_path(refused.value.message)


def test_a_model_without_sonars_pipeline_is_not_served(tmp_path, monkeypatch):
    """Another audio classifier builds transformers' generic pipeline, which has no views or timeline: the page says
    so instead of failing on the first request."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    sizes = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}
    convolution = {"conv_dim": (8, 8), "conv_kernel": (10, 3), "conv_stride": (5, 2), "num_conv_pos_embeddings": 16}
    config = Wav2Vec2Config(**sizes, **convolution, num_conv_pos_embedding_groups=2)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(tmp_path / "wav2vec2")
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path / "wav2vec2")
    app = import_app(monkeypatch, tmp_path / "wav2vec2", "space_app_not_sonar")
    assert (
        app.DETECTOR is None
        and app.MODEL_ERROR == "`wav2vec2` has no SONAR pipeline that returns its views: save it again."
    )


def test_baseline_model_with_short_windows_and_no_threshold(tmp_path, monkeypatch):
    """The XLS-R baseline has no noise view and no JS; 2 s windows (as in the tiny demo) give a longer timeline."""
    torch.manual_seed(0)
    config = SonarConfig.from_preset("tiny", noise_branch=False, max_length=32000, window_hop_length=16000)
    SonarForAudioClassification(config).save_pretrained(tmp_path)
    SonarFeatureExtractor().save_pretrained(tmp_path)
    app = import_app(monkeypatch, tmp_path, "space_app_baseline")

    clip = str(EXAMPLES / "real_then_generated.flac")  # 5 s in 2 s windows every 1 s
    report, views = app.detect(clip)
    assert (report["threshold"], report["calibration_scale"], report["smoke_test"]) == (0.0, 1.0, False)
    assert report["js_divergence"] is None and views["noise_waveform"] is None
    assert [window["start_s"] for window in report["windows"]] == [0.0, 1.0, 2.0, 3.0]
    probabilities, words, timeline, spectrogram, noise_spectrogram, noise_audio = app.explain(report, views)
    assert probabilities == report["probabilities"] and "threshold" in words and "Jensen-Shannon" not in words
    assert "Smoke test" not in words and "smoke-test" not in report["verdict_text"]
    assert timeline.visible and spectrogram is not None
    assert not noise_spectrogram.visible and not noise_audio.visible


@pytest.mark.browser
def test_page_in_chromium(server, clips, expected, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium (scripts/setup.sh --dev)")
    sync_api = pytest.importorskip("playwright.sync_api")

    verdict_text = {"bonafide": "Bona fide (real)", "spoof": "Spoof (generated)"}[expected["long"]["label"]]
    screenshot = tmp_path / "space.png"
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            page = context.new_page()
            page.goto(server)
            page.locator("input[type=file]").first.set_input_files(str(clips["long"]))  # the upload runs detection
            sync_api.expect(page.locator("#verdict")).to_contain_text(verdict_text, timeout=90_000)
            sync_api.expect(page.locator("#verdict")).to_contain_text(f"threshold {THRESHOLD:+.4f}")
            sync_api.expect(page.locator("#verdict")).to_contain_text("Smoke test, not a detector")
            sync_api.expect(page.locator("#timeline")).to_be_visible()  # 5 s: more than one window
            page.wait_for_timeout(1000)  # let the plots finish drawing
            page.screenshot(path=str(screenshot), full_page=True)

            page.goto(server)  # a refused clip: the page says why instead of a verdict
            page.locator("input[type=file]").first.set_input_files(str(clips["text"]))
            sync_api.expect(page.get_by_text("Could not decode 'notes.wav' as audio").first).to_be_visible()
            sync_api.expect(page.locator("#verdict")).not_to_contain_text("(generated)")
        finally:
            context.close()
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 50_000


def test_a_smoke_test_model_says_so_beside_the_verdict(model_dir, monkeypatch):
    import gradio as gr

    app = import_app(monkeypatch, model_dir, "space_app_smoke_test")
    page_text = " ".join(str(block.value) for block in app.demo.blocks.values() if isinstance(block, gr.Markdown))
    assert "This model is a smoke test, not a detector" in page_text
    clip = str(EXAMPLES / "real_speech.flac")
    report, views = app.detect(clip)
    words = app.explain(report, views)[1]
    assert words.startswith(f"### {report['verdict_text'][0].upper()}") and "smoke-test model" in words
    assert "Smoke test, not a detector" in words


def test_one_decode_per_request_and_the_plots_show_what_the_model_saw(model_dir, clips, monkeypatch):
    """`detect` decodes the file once, in the pipeline; `explain` draws the samples the pipeline scored and the model's
    noise view of them (the first 30 s) without reading the file again. An upload over `SONAR_MAX_FILE_MB` is
    refused before anything is decoded."""
    import gradio as gr

    monkeypatch.setenv("SONAR_MAX_FILE_MB", "0.01")
    app = import_app(monkeypatch, model_dir, "space_app_one_decode")
    pipeline_code = sys.modules[type(app.DETECTOR).__module__]
    decoded, decode = [], pipeline_code.load_audio
    monkeypatch.setattr(
        pipeline_code, "load_audio", lambda audio, *args: decoded.append(audio) or decode(audio, *args)
    )

    with pytest.raises(gr.Error, match=r"real_speech\.flac is 0\.\d MB; this Space accepts files up to 0\.01 MB"):
        app.detect(str(EXAMPLES / "real_speech.flac"))
    assert decoded == []

    monkeypatch.setattr(app, "MAX_FILE_MB", 20.0)
    clip = str(clips["many_windows"])
    report, views = app.detect(clip)
    probabilities, words, timeline, spectrogram, noise_spectrogram, noise_audio = app.explain(report, views)
    assert decoded == [clip]
    json.dumps(report)  # plain JSON: the samples stay out of `/predict`
    assert timeline.visible and noise_spectrogram.visible and noise_audio.visible and "40.0 s scored" in words

    piped = app.DETECTOR(clip, return_views=True)
    shown = 30 * 16000
    assert report["duration_s"] == 40.0 and views["waveform"].shape == views["noise_waveform"].shape == (shown,)
    np.testing.assert_array_equal(views["waveform"], piped["waveform"][:shown])
    np.testing.assert_allclose(views["noise_waveform"], piped["noise_waveform"][:shown], atol=1e-6)


def test_onnx_backend_problems_are_said_on_the_page(model_dir, tmp_path, monkeypatch):
    """`SONAR_BACKEND` goes to the pipeline; what it refuses (an unknown backend, a model without its ONNX export,
    no onnxruntime) the page says in words that name no server path."""
    monkeypatch.setenv("SONAR_BACKEND", "tensorrt")
    app = import_app(monkeypatch, model_dir, "space_app_unknown_backend")
    assert app.DETECTOR is None and "must be pytorch, onnx or onnx-int8" in app.MODEL_ERROR

    monkeypatch.setenv("SONAR_BACKEND", "onnx")
    app = import_app(monkeypatch, model_dir, "space_app_without_onnx_files")
    assert app.DETECTOR is None and "export_sonar.py" in app.MODEL_ERROR and str(model_dir) not in app.MODEL_ERROR

    exported = tmp_path / "exported"
    shutil.copytree(model_dir, exported)
    (exported / "onnx").mkdir()
    (exported / "onnx" / "model.onnx").write_bytes(b"")  # found, never opened: the import of onnxruntime fails first
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    app = import_app(monkeypatch, exported, "space_app_without_onnxruntime")
    assert app.DETECTOR is None and "needs ONNX Runtime: add `onnxruntime`" in app.MODEL_ERROR
    assert str(tmp_path) not in app.MODEL_ERROR


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in one Python file, optional imports inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_space_deploys_with_the_model_folder_and_its_requirements():
    """app.py has no decoder and no project package of its own: the model's pipeline, which comes with the model,
    does the work. So the Space's requirements.txt must install what that code imports (soundfile, torchcodec and
    torchaudio for decoding and resampling) and what app.py imports; gradio comes from the Space's `sdk_version`,
    onnxruntime only for `SONAR_BACKEND=onnx`."""
    app_imports = imported_modules(APP)
    assert not app_imports & {"soundfile", "torchaudio", "torchcodec", "modeling_sonar", "sonar_training"}
    lines = (APP.parent / "requirements.txt").read_text().splitlines()
    required = {re.split(r"[<>=!~\[\s]", line)[0] for line in lines if line.strip() and not line.startswith("#")}
    model_code = set().union(*(imported_modules(path) for path in (REPO_ROOT / "modeling_sonar").glob("*.py")))
    assert {"soundfile", "torchcodec", "torchaudio"} <= model_code
    needed = (model_code | app_imports) - set(sys.stdlib_module_names) - {"gradio", "onnxruntime"}
    assert needed <= required, f"space/requirements.txt lacks {sorted(needed - required)}"
