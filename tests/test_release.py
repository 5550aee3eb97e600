"""release_sonar.py: the dry run holds exactly what the upload sends, the upload calls the Hub API as planned (HfApi
patched: there is no Hub here), and the released folder loads with the three loaders without modeling_sonar."""

import getpass
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects

import release_sonar
from conftest import REPO_ROOT, make_speechlike
from modeling_sonar import SonarConfig, SonarFeatureExtractor, SonarForAudioClassification
from sonar_training.model_card import CARD_INPUTS_FILE, write_model_card
from sonar_training.release import release


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A trained-looking model folder: tiny weights, threshold, card, plus a checkpoint that must never be uploaded."""
    folder = tmp_path_factory.mktemp("release") / "model"
    config = SonarConfig.from_preset("tiny", max_length=16000, window_hop_length=8000, class_weights=[0.8, 0.2])
    config.decision_threshold = 0.25
    SonarForAudioClassification(config).save_pretrained(folder)
    SonarFeatureExtractor().save_pretrained(folder)
    summary = {
        "recipe": {"dataset": "demo", "preset": "tiny", "learning_rate": 1e-3},
        "dev": {"eer": 12.5, "threshold": 0.25, "step": 40},
        "results": [{"name": "demo (eval)", "dataset": "demo", "split": "eval", "eer": 20.0}],
    }
    write_model_card(folder, summary, "sonar-tiny-demo")
    (folder / "checkpoint-40").mkdir()
    (folder / "checkpoint-40" / "optimizer.bin").write_bytes(b"state")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "modeling_sonar.cpython-311.pyc").write_bytes(b"")
    return folder


def test_dry_run_writes_what_would_be_uploaded(model_dir, tmp_path):
    out = tmp_path / "dry"
    code = release_sonar.main(
        ["--model_dir", str(model_dir), "--repo_id", "me/sonar", "--space_dir", str(REPO_ROOT / "space"),
         "--space_id", "me/sonar-demo", "--dry-run", str(out)]
    )  # fmt: skip
    assert code == 0
    model_files = sorted(p.relative_to(out / "model").as_posix() for p in (out / "model").rglob("*") if p.is_file())
    assert "model.safetensors" in model_files and "modeling_sonar.py" in model_files and "README.md" in model_files
    assert not any("checkpoint" in name or "__pycache__" in name for name in model_files)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["repos"][0]["files"] == model_files
    assert "app.py" in plan["repos"][1]["files"] and plan["space_variables"] == {"SONAR_MODEL": "me/sonar"}
    card = (out / "model" / "README.md").read_text()
    assert "model-index" in card and "value: 20.0" in card and "decision_threshold" in card and "2511.21325" in card


def test_upload_calls_the_hub_as_the_dry_run_plans(model_dir, tmp_path, monkeypatch):
    calls = []
    for method in ("create_repo", "upload_folder", "add_space_variable"):
        monkeypatch.setattr(HfApi, method, lambda self, *a, _m=method, **k: calls.append((_m, a, k)))
    plan = release(model_dir, "me/sonar", REPO_ROOT / "space", "me/sonar-demo", private=True)
    dry = release(model_dir, "me/sonar", REPO_ROOT / "space", "me/sonar-demo", dry_run=tmp_path)
    assert plan == {**dry, "private": True}
    creates = [k for m, _, k in calls if m == "create_repo"]
    assert [(c["repo_type"], c["private"]) for c in creates] == [("model", True), ("space", True)]
    assert creates[1]["space_sdk"] == "gradio"
    uploads = [k for m, _, k in calls if m == "upload_folder"]
    assert [(u["repo_id"], u["repo_type"]) for u in uploads] == [("me/sonar", "model"), ("me/sonar-demo", "space")]
    for upload, repo in zip(uploads, plan["repos"]):
        folder = upload["folder_path"]
        every_file = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        sent = sorted(filter_repo_objects(every_file, ignore_patterns=upload["ignore_patterns"]))
        assert sent == repo["files"]  # what upload_folder sends is what the dry run copied
        copied = sorted(p.relative_to(tmp_path / repo["name"]).as_posix() for p in (tmp_path / repo["name"]).rglob("*")
                        if p.is_file())  # fmt: skip
        assert copied == sent
    assert ("add_space_variable", ("me/sonar-demo", "SONAR_MODEL", "me/sonar"), {}) in calls


def test_released_folder_loads_without_the_package(model_dir, tmp_path):
    release(model_dir, "me/sonar", dry_run=tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from transformers import AutoModel, AutoModelForAudioClassification, pipeline
        folder = {str(tmp_path / "model")!r}
        base = AutoModel.from_pretrained(folder, trust_remote_code=True)
        model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True)
        detector = pipeline("audio-classification", model=folder, trust_remote_code=True)
        wave = (0.1 * np.sin(np.arange(20000) / 7)).astype(np.float32)
        result = detector({{"raw": wave, "sampling_rate": 16000}})
        assert sorted(r["label"] for r in result) == ["bonafide", "spoof"], result
        assert type(base).__name__ == "SonarModel" and model.config.decision_threshold == 0.25
        leaked = [name for name in sys.modules if name.split(".")[0] == "modeling_sonar"]
        assert not leaked, leaked
        print("OK")
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def checksums(folder) -> dict[str, str]:
    """Every file under `folder` (checkpoints and caches too) by relative path, with the SHA-256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def evaluation_summary(tmp_path):
    path = tmp_path / "eval-21df" / "summary.json"
    path.parent.mkdir()
    dataset = str(tmp_path / "data" / "asvspoof2021_df")  # older summaries held the local path
    path.write_text(json.dumps({"eer": 7.5, "min_tdcf": 0.25, "dataset": dataset, "split": "eval"}))
    return path


def test_results_go_into_the_upload_copy_not_the_model_folder(model_dir, tmp_path, evaluation_summary):
    before = checksums(model_dir)
    out = tmp_path / "dry"
    args = ["--model_dir", str(model_dir), "--repo_id", "me/sonar", "--dry-run", str(out)]
    assert release_sonar.main([*args, "--results", f"DF21={evaluation_summary}"]) == 0
    assert checksums(model_dir) == before
    card = (out / "model" / "README.md").read_text()
    assert "value: 7.5" in card and "value: 20.0" in card and "| DF21 | eval | 7.50 | 0.2500 |" in card
    assert 'model="me/sonar"' in card  # the card names the repository it is uploaded to
    assert "type: asvspoof2021_df" in card and str(tmp_path) not in card
    names = [r["name"] for r in json.loads((out / "model" / CARD_INPUTS_FILE).read_text())["results"]]
    assert names == ["demo (eval)", "DF21"]
    # files not replaced are exact copies; a second dry run into the same OUT replaces the first
    assert (out / "model" / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    assert release_sonar.main(args) == 0
    assert checksums(out / "model") == {name: before[name] for name in checksums(out / "model")}
    assert checksums(model_dir) == before


def test_upload_with_results_sends_the_new_card_and_keeps_the_folder(model_dir, monkeypatch, evaluation_summary):
    before = checksums(model_dir)
    sent = {}

    def upload_folder(self, *, repo_id, folder_path, **kwargs):  # what the Hub would receive, read while it exists
        sent[repo_id] = {"files": sorted(checksums(folder_path)), "card": (folder_path / "README.md").read_text()}

    monkeypatch.setattr(HfApi, "create_repo", lambda self, *a, **k: None)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    plan = release(model_dir, "me/sonar", results=[f"DF21={evaluation_summary}"])
    assert sent["me/sonar"]["files"] == plan["repos"][0]["files"]
    assert "| DF21 | eval | 7.50 | 0.2500 |" in sent["me/sonar"]["card"]
    assert checksums(model_dir) == before


def test_dry_run_refuses_an_out_that_overlaps_a_released_folder(model_dir, tmp_path, capsys):
    before = checksums(model_dir)
    (tmp_path / "link").symlink_to(model_dir.parent)
    for out in (model_dir, model_dir.parent, model_dir / "release", tmp_path / "link", tmp_path / "link" / "model"):
        assert release_sonar.main(["--model_dir", str(model_dir), "--repo_id", "me/sonar", "--dry-run", str(out)]) == 1
        assert "overlaps" in capsys.readouterr().err, out
    space = ["--space_dir", str(REPO_ROOT / "space"), "--space_id", "me/sonar-demo"]
    assert release_sonar.main(["--model_dir", str(model_dir), "--repo_id", "me/sonar", *space, "--dry-run",
                               str(REPO_ROOT)]) == 1  # fmt: skip
    assert "overlaps" in capsys.readouterr().err
    assert checksums(model_dir) == before and not (model_dir / "release").exists()
    # a folder holding anything but an earlier dry run is not replaced either (e.g. another run's outputs)
    other_run = tmp_path / "other_run"
    (other_run / "model").mkdir(parents=True)
    (other_run / "model" / "model.safetensors").write_bytes(b"weights")
    assert (
        release_sonar.main(["--model_dir", str(model_dir), "--repo_id", "me/sonar", "--dry-run", str(other_run)]) == 1
    )
    assert "not an earlier dry run" in capsys.readouterr().err
    assert (other_run / "model" / "model.safetensors").read_bytes() == b"weights"


def test_nothing_published_carries_a_local_path(tmp_path):
    """Train, evaluate and dry-run a release from a temporary folder with local paths everywhere (dataset, encoder,
    model, summary): no file that would be published names that folder, the home folder, the user or the repo."""
    import soundfile as sf
    from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value
    from transformers import AutoModel

    splits = {}
    for split in ("train", "dev", "eval"):
        (tmp_path / "clips" / split).mkdir(parents=True)
        paths = []
        for i in range(4):
            paths.append(str(tmp_path / "clips" / split / f"{split}_{i}.wav"))
            sf.write(paths[-1], make_speechlike(0.6, seed=i) * (1 + i % 2), 16000)
        columns = {"audio": paths, "label": [0, 1, 0, 1], "utt_id": [Path(p).stem for p in paths]}
        features = Features(
            {"audio": Audio(), "label": ClassLabel(names=["bonafide", "spoof"]), "utt_id": Value("string")}
        )
        splits[split] = Dataset.from_dict(columns, features=features)
    DatasetDict(splits).save_to_disk(tmp_path / "data" / "my_corpus")
    AutoModel.from_config(SonarConfig.from_preset("tiny").encoder_config).save_pretrained(tmp_path / "my_encoder")

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("ACCELERATE_CONFIG_FILE", None)
    train = [sys.executable, str(REPO_ROOT / "train_sonar.py"), "--preset", "tiny", "--report_to", "none",
             "--dataset", str(tmp_path / "data" / "my_corpus"), "--encoder_name_or_path", str(tmp_path / "my_encoder"),
             "--output_dir", "run", "--max_steps", "2", "--max_length", "8000", "--per_device_train_batch_size", "2",
             "--checkpointing_steps", "1", "--resume_from_checkpoint", "latest"]  # fmt: skip
    evaluate = [sys.executable, str(REPO_ROOT / "evaluate_sonar.py"), "--model", str(tmp_path / "run" / "model"),
                "--dataset", str(tmp_path / "data" / "my_corpus"), "--output_dir", str(tmp_path / "eval")]  # fmt: skip
    for command in (train, evaluate):
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    args = ["--model_dir", str(tmp_path / "run" / "model"), "--repo_id", "me/sonar", "--space_dir",
            str(REPO_ROOT / "space"), "--space_id", "me/sonar-demo", "--dry-run", str(tmp_path / "release"),
            "--results", "my corpus=" + str(tmp_path / "eval" / "summary.json")]  # fmt: skip
    assert release_sonar.main(args) == 0

    published = [  # the plan.json of the dry run is a local note of what would go where, never uploaded
        *(p for p in (tmp_path / "release").rglob("*") if p.is_file() and p.name != "plan.json"),
        *(p for p in (tmp_path / "run" / "model").rglob("*") if p.is_file()),
        tmp_path / "eval" / "summary.json",
        tmp_path / "run" / "eval_results" / "summary.json",
    ]
    local = [str(tmp_path), str(tmp_path.resolve()), str(Path.home()), str(REPO_ROOT)]
    user = re.compile(rf"[/\\]{re.escape(getpass.getuser())}([/\\]|$)".encode())
    for path in published:
        content = path.read_bytes()
        for text in local:
            assert text.encode() not in content, f"{path.relative_to(tmp_path)} contains {text}"
        assert not user.search(content), f"{path.relative_to(tmp_path)} contains the user name as a path"
    card = (tmp_path / "release" / "model" / "README.md").read_text()
    assert "type: my_corpus" in card and "cloned from `my_encoder`" in card  # named, by folder
    assert "base_model" not in card  # a local encoder is no Hub model to link to
    recipe = json.loads((tmp_path / "release" / "model" / "training_summary.json").read_text())["recipe"]
    assert (recipe["output_dir"], recipe["dataset"], recipe["encoder_name_or_path"]) == (
        ".",
        "my_corpus",
        "my_encoder",
    )
    assert json.loads((tmp_path / "run" / "model" / "config.json").read_text())["encoder_name_or_path"] == "my_encoder"
