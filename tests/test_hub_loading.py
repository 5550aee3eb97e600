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
from transformers import pipeline

from conftest import make_speechlike
from modeling_sonar import SonarConfig, SonarFeatureExtractor, SonarForAudioClassification
from modeling_sonar.pipeline_sonar import SonarAudioClassificationPipeline


WINDOW = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sonar-xlsr")
    torch.manual_seed(0)
    model = SonarForAudioClassification(SonarConfig.from_preset("tiny", max_length=WINDOW, window_hop_length=8000))
    model.save_pretrained(folder)
    SonarFeatureExtractor().save_pretrained(folder)
    return folder


def run_fresh_python(code: str, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Runs `code` in a new interpreter that never imports modeling_sonar, and returns the JSON it prints last."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
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
    print(json.dumps({
        "base": type(base).__name__,
        "classifier": type(classifier).__name__,
        "labels": sorted(r["label"] for r in result),
        "package_imported": "modeling_sonar" in sys.modules,
    }))
"""


def check_loaders(report: dict):
    assert report["base"] == "SonarModel"
    assert report["classifier"] == "SonarForAudioClassification"
    assert report["labels"] == ["bonafide", "spoof"]
    assert report["package_imported"] is False


def test_saved_folder_loads_in_a_fresh_process_with_remote_code(model_dir, tmp_path):
    assert {"modeling_sonar.py", "aasist.py", "configuration_sonar.py", "feature_extraction_sonar.py"} <= {
        p.name for p in model_dir.iterdir()
    }
    check_loaders(run_fresh_python(f"MODEL = {str(model_dir)!r}\n" + textwrap.dedent(LOADERS), cwd=tmp_path))


def test_hub_id_loads_offline_from_the_cache_layout(model_dir, tmp_path):
    """`from_pretrained("org/sonar-xlsr")` as users write it, served from a Hugging Face cache entry."""
    repo = tmp_path / "hf_home" / "hub" / "models--org--sonar-xlsr"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_CACHE": str(tmp_path / "hf_home" / "hub")}
    check_loaders(run_fresh_python('MODEL = "org/sonar-xlsr"\n' + textwrap.dedent(LOADERS), env=env, cwd=tmp_path))


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
    sf.write(path, make_speechlike(1.5, sampling_rate=rate, channels=channels), rate)
    result = detector(str(path))
    assert {r["label"] for r in result} == {"bonafide", "spoof"}
    assert abs(sum(r["score"] for r in result) - 1) < 1e-5


def test_pipeline_matches_the_model_on_a_16k_file(detector, model_dir, tmp_path):
    wave = make_speechlike(0.8)
    sf.write(tmp_path / "clip.wav", wave, 16000, subtype="FLOAT")
    result = detector(str(tmp_path / "clip.wav"), return_timeline=True)
    assert result["score"] == pytest.approx(direct_score(model_dir, wave), abs=1e-4)


def test_long_recording_timeline(detector, tmp_path):
    sf.write(tmp_path / "long.wav", make_speechlike(5.25, channels=2), 16000)
    result = detector(str(tmp_path / "long.wav"), return_timeline=True)
    starts = [w["start_s"] for w in result["timeline"]]
    assert starts == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.25]
    assert all(w["end_s"] - w["start_s"] == pytest.approx(1.0) for w in result["timeline"])
    assert all(0 <= w["spoof_probability"] <= 1 for w in result["timeline"])
    assert 0 <= result["js_divergence"] <= 1


def test_pipeline_accepts_multichannel_arrays_at_any_rate(detector):
    stereo = make_speechlike(1.0, sampling_rate=44100, channels=2)
    result = detector({"raw": stereo, "sampling_rate": 44100})
    assert {r["label"] for r in result} == {"bonafide", "spoof"}


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
