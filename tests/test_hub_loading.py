"""Hub-style loading and the pipeline: saved folders and Hub ids load in a fresh process, on any input file."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from transformers import pipeline

from conftest import make_speechlike
from modeling_sonar import SonarConfig, SonarFeatureExtractor, SonarForAudioClassification, load_audio, sonar_verdict
from modeling_sonar.pipeline_sonar import SonarAudioClassificationPipeline


WINDOW = 16000
THRESHOLD, SCALE = 0.5, 1.7  # a decision as training sets it: neither the argmax nor the softmax


def save_model(folder: Path, **config) -> Path:
    torch.manual_seed(0)
    config = SonarConfig.from_preset("tiny", max_length=WINDOW, window_hop_length=8000, **config)
    SonarForAudioClassification(config).save_pretrained(folder)
    SonarFeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("sonar-xlsr"), decision_threshold=THRESHOLD, calibration_scale=SCALE)


def run_fresh_python(code: str, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Runs `code` in a new interpreter that never imports modeling_sonar, and returns the JSON it prints last."""
    modules = {"HF_MODULES_CACHE": str((cwd or Path.cwd()) / "hf_modules")}  # no remote code shared between runs
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **modules, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, cwd=cwd
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


LOADERS = """
    import json, sys
    import numpy as np
    from transformers import AutoModel, AutoModelForAudioClassification, pipeline

    base = AutoModel.from_pretrained(MODEL, trust_remote_code=True)
    classifier = AutoModelForAudioClassification.from_pretrained(MODEL, trust_remote_code=True)
    detector = pipeline("audio-classification", model=MODEL, trust_remote_code=True)
    wave = (0.1 * np.sin(np.arange(24000) / 7)).astype("float32")
    result = detector({"raw": wave, "sampling_rate": 16000})
    rich = detector({"raw": np.stack([wave, wave], axis=1), "sampling_rate": 16000}, return_timeline=True)
    try:
        detector("missing.wav")
        file_error = None
    except ValueError as error:
        file_error = str(error)
    print(json.dumps({
        "base": type(base).__name__,
        "classifier": type(classifier).__name__,
        "pipeline": type(detector).__name__,
        "labels": result,
        "rich": {key: rich[key] for key in ("label", "spoof_probability", "score", "verdict")},
        "windows": len(rich["timeline"]),
        "file_error": file_error,
        "package_imported": "modeling_sonar" in sys.modules,
    }))
"""


def check_loaders(report: dict, model_dir: Path):
    """What the plain `pipeline(...)` call of a fresh process says is what SONAR's pipeline says in this one."""
    assert report["base"] == "SonarModel"
    assert report["classifier"] == "SonarForAudioClassification"
    assert report["pipeline"] == "SonarAudioClassificationPipeline"
    assert report["package_imported"] is False
    score = direct_score(model_dir, (0.1 * np.sin(np.arange(24000) / 7)).astype("float32"))
    verdict = sonar_verdict(score, SonarConfig.from_pretrained(model_dir))
    assert report["labels"][0]["label"] == verdict["label"]
    assert report["labels"] == [
        {"label": label, "score": pytest.approx(verdict[f"{label}_probability"], abs=1e-6)}
        for label in [verdict["label"], {"bonafide": "spoof", "spoof": "bonafide"}[verdict["label"]]]
    ]
    # the stereo copy of the same wave: averaged to mono, so the same verdict
    assert report["rich"] == {
        "label": verdict["label"],
        "spoof_probability": pytest.approx(verdict["spoof_probability"], abs=1e-6),
        "score": pytest.approx(score, abs=1e-5),
        "verdict": verdict["text"],
    }
    assert report["windows"] == 2
    assert report["file_error"] == "No audio file at 'missing.wav'."


def test_saved_folder_loads_in_a_fresh_process_with_remote_code(model_dir, tmp_path):
    assert {"modeling_sonar.py", "aasist.py", "configuration_sonar.py", "feature_extraction_sonar.py"} <= {
        p.name for p in model_dir.iterdir()
    }
    shipped = {p.name for p in model_dir.iterdir() if p.suffix == ".py"}
    assert {"pipeline_sonar.py", "audio_sonar.py", "onnx_sonar.py"} <= shipped
    assert not {"data.py", "rawboost.py", "metrics.py", "model_card.py"} & shipped  # the tooling never ships
    config = json.loads((model_dir / "config.json").read_text())
    assert (
        config["custom_pipelines"]["audio-classification"]["impl"] == "pipeline_sonar.SonarAudioClassificationPipeline"
    )
    assert (config["decision_threshold"], config["calibration_scale"], config["smoke_test"]) == (
        THRESHOLD,
        SCALE,
        False,
    )
    report = run_fresh_python(f"MODEL = {str(model_dir)!r}\n" + textwrap.dedent(LOADERS), cwd=tmp_path)
    check_loaders(report, model_dir)


def test_hub_id_loads_offline_from_the_cache_layout(model_dir, tmp_path):
    """`from_pretrained("org/sonar-xlsr")` as users write it, served from a Hugging Face cache entry."""
    repo = tmp_path / "hf_home" / "hub" / "models--org--sonar-xlsr"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_CACHE": str(tmp_path / "hf_home" / "hub")}
    report = run_fresh_python('MODEL = "org/sonar-xlsr"\n' + textwrap.dedent(LOADERS), env=env, cwd=tmp_path)
    check_loaders(report, model_dir)


def test_a_model_saved_after_pipeline_use_still_names_its_pipeline(model_dir, tmp_path):
    """`pipeline()` turns the names in `custom_pipelines` into classes in place; saving again must write names."""
    detector = pipeline("audio-classification", model=str(model_dir), trust_remote_code=True)
    detector.model.save_pretrained(tmp_path / "again")
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert config["custom_pipelines"]["audio-classification"]["pt"] == ["AutoModelForAudioClassification"]
    assert (tmp_path / "again" / "pipeline_sonar.py").is_file()


@pytest.fixture(scope="module")
def detector(model_dir):
    return pipeline("audio-classification", model=str(model_dir), pipeline_class=SonarAudioClassificationPipeline)


def direct_score(model_dir: Path, wave: np.ndarray) -> float:
    model = SonarForAudioClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(torch.from_numpy(wave).unsqueeze(0)).scores.item()


@pytest.mark.parametrize(
    "suffix, rate, channels",
    [(".wav", 16000, 1), (".flac", 44100, 2), (".mp3", 22050, 1), (".ogg", 48000, 2), (".wav", 8000, 1)],
)
def test_pipeline_reads_any_format_rate_and_channel_count(detector, tmp_path, suffix, rate, channels):
    path = tmp_path / f"clip{suffix}"
    wave = make_speechlike(1.5, sampling_rate=rate, channels=channels)
    sf.write(path, wave, rate)
    result = detector(str(path), return_timeline=True)
    verdict = sonar_verdict(result["score"], detector.model.config)
    assert result["labels"][0]["label"] == result["label"] == verdict["label"]
    assert {r["label"]: r["score"] for r in result["labels"]}["spoof"] == verdict["spoof_probability"]
    if rate == 16000:  # no resampling: FFmpeg's samples are the file's, so the score is the model's on them
        reference = detector({"raw": load_audio(str(path)), "sampling_rate": 16000}, return_timeline=True)
        assert result["score"] == pytest.approx(reference["score"], abs=1e-5)


def test_pipeline_matches_the_model_on_a_16k_file(detector, model_dir, tmp_path):
    wave = make_speechlike(0.8)
    sf.write(tmp_path / "clip.wav", wave, 16000, subtype="FLOAT")
    result = detector(str(tmp_path / "clip.wav"), return_timeline=True)
    score = direct_score(model_dir, wave)
    verdict = sonar_verdict(score, detector.model.config)
    assert result["score"] == pytest.approx(score, abs=1e-4)
    assert (result["label"], result["verdict"]) == (verdict["label"], verdict["text"])
    assert result["spoof_probability"] == pytest.approx(verdict["spoof_probability"], abs=1e-5)


@pytest.mark.parametrize("threshold_offset, label", [(+0.5, "spoof"), (-0.5, "bonafide")])
def test_pipeline_decides_at_the_configs_threshold(tmp_path, threshold_offset, label):
    """A threshold on either side of a clip's score flips the pipeline's label; its probability is the calibrated
    one, sigmoid(scale * (threshold - score)), not the softmax of the logits."""
    wave = make_speechlike(0.8)
    score = direct_score(save_model(tmp_path / "argmax"), wave)
    folder = save_model(tmp_path / "decided", decision_threshold=score + threshold_offset, calibration_scale=3.0)
    detector = pipeline("audio-classification", model=str(folder), pipeline_class=SonarAudioClassificationPipeline)
    result = detector({"raw": wave, "sampling_rate": 16000})
    expected_spoof = 1 / (1 + np.exp(-3.0 * threshold_offset))
    assert result[0]["label"] == label
    assert {r["label"]: r["score"] for r in result}["spoof"] == pytest.approx(expected_spoof, abs=1e-5)


def test_long_recording_timeline(detector, model_dir, tmp_path):
    wave = make_speechlike(5.25, channels=2)
    sf.write(tmp_path / "long.wav", wave, 16000, subtype="FLOAT")
    result = detector(str(tmp_path / "long.wav"), return_timeline=True)
    starts = [w["start_s"] for w in result["timeline"]]
    assert starts == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.25]
    assert all(w["end_s"] - w["start_s"] == pytest.approx(1.0) for w in result["timeline"])
    model = SonarForAudioClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        out = model(torch.from_numpy(wave.mean(axis=1)).unsqueeze(0))
    window_scores = (out.window_logits[0, :, 0] - out.window_logits[0, :, 1]).tolist()
    expected = [sonar_verdict(score, model.config)["spoof_probability"] for score in window_scores]
    assert [w["spoof_probability"] for w in result["timeline"]] == pytest.approx(expected, abs=1e-5)
    assert result["js_divergence"] == pytest.approx(out.js_divergence.item(), abs=1e-5)


@pytest.mark.parametrize(
    "layout", ["samples_channels", "channels_samples", "dict_raw", "dict_array_tensor", "tensor", "dict_44k"]
)
def test_pipeline_averages_one_stereo_recording_to_mono(detector, layout):
    """However one stereo recording comes, the pipeline scores the mean of its channels (and resamples it)."""
    stereo = make_speechlike(1.2, channels=2)  # (samples, 2)
    mono = detector({"raw": stereo.mean(axis=1), "sampling_rate": 16000}, return_timeline=True)
    inputs = {
        "samples_channels": stereo,
        "channels_samples": np.ascontiguousarray(stereo.T),
        "dict_raw": {"raw": stereo, "sampling_rate": 16000},
        "dict_array_tensor": {"array": torch.from_numpy(np.ascontiguousarray(stereo.T)), "sampling_rate": 16000},
        "tensor": torch.from_numpy(stereo),
    }
    if layout == "dict_44k":
        stereo_44k = make_speechlike(1.2, sampling_rate=44100, channels=2)
        result = detector({"raw": stereo_44k, "sampling_rate": 44100}, return_timeline=True)
        resampled = torchaudio.functional.resample(torch.from_numpy(stereo_44k.mean(axis=1)), 44100, 16000)
        mono = detector({"raw": resampled.numpy(), "sampling_rate": 16000}, return_timeline=True)
    else:
        result = detector(inputs[layout], return_timeline=True)
    assert result["score"] == pytest.approx(mono["score"], abs=1e-5)
    assert result["label"] == mono["label"]


def test_pipeline_refuses_what_is_not_one_recording(detector):
    with pytest.raises(ValueError, match=r"one recording.*shape \(2, 2, 16000\)"):
        detector(np.zeros((2, 2, 16000), dtype=np.float32))
    with pytest.raises(ValueError, match="function_to_apply"):
        detector(make_speechlike(1.0), function_to_apply="softmax")
    with pytest.raises(ValueError, match="dtype int16"):
        detector((make_speechlike(1.0, channels=2) * 32767).astype(np.int16))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"bad\.wav' is empty \(0 bytes\)"),
        (b"this is not audio at all\n" * 50, r"Could not decode .*bad\.wav' as audio"),
    ],
)
def test_pipeline_refuses_files_that_are_not_audio(detector, tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        detector(str(path))


@pytest.mark.parametrize(
    "wave, message",
    [
        (np.zeros(16000, dtype=np.float32), "silent"),
        (make_speechlike(0.05), "too short"),
    ],
)
def test_pipeline_refuses_bad_audio_with_a_named_problem(detector, tmp_path, wave, message):
    sf.write(tmp_path / "bad.wav", wave, 16000)
    with pytest.raises(ValueError, match=message):
        detector(str(tmp_path / "bad.wav"))
