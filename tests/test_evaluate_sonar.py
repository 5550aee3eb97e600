"""Tests of `evaluate_sonar.py`: its file helpers, then end to end on a tiny random model, including a resumed run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value


REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import evaluate_sonar  # noqa: E402
from modeling_sonar import SonarConfig  # noqa: E402
from modeling_sonar.metrics import brier_score, compute_eer, expected_calibration_error  # noqa: E402
from modeling_sonar.modeling_sonar import sonar_verdict  # noqa: E402


LABELS = [0, 0, 0, 1, 1, 1]
SYSTEMS = ["-", "-", "-", "A01", "A01", "A02"]
UTT_IDS = [f"utt_{index}" for index in range(len(LABELS))]


def make_dataset(folder: Path, with_label: bool = True) -> Path:
    """Six short noise clips of unequal length (some shorter than the model's window, so tiled), saved to disk."""
    rng = np.random.default_rng(0)
    paths = []
    for utt_id, length in zip(UTT_IDS, [1200, 3000, 9000, 2500, 5000, 800]):
        path = folder / f"{utt_id}.wav"
        sf.write(path, (0.1 * rng.standard_normal(length)).astype(np.float32), 16000)
        paths.append(str(path))
    columns = {"audio": paths, "utt_id": UTT_IDS, "speaker": ["spk"] * len(UTT_IDS), "system": SYSTEMS}
    features = {
        "audio": Audio(sampling_rate=16000),
        **{name: Value("string") for name in ["utt_id", "speaker", "system"]},
    }
    if with_label:
        columns["label"] = LABELS
        features["label"] = ClassLabel(names=["bonafide", "spoof"])
    dataset_dir = folder / ("dataset" if with_label else "dataset_without_label")
    DatasetDict({"eval": Dataset.from_dict(columns, features=Features(features))}).save_to_disk(dataset_dir)
    return dataset_dir


def test_select_split():
    splits = DatasetDict({name: Dataset.from_dict({"x": [1]}) for name in ["train", "dev", "eval"]})
    assert evaluate_sonar.select_split(splits, None)[1] == "eval"
    assert evaluate_sonar.select_split(DatasetDict({"train": splits["train"], "dev": splits["dev"]}), None)[1] == "dev"
    assert evaluate_sonar.select_split(DatasetDict({"only": splits["train"]}), None)[1] == "only"
    assert evaluate_sonar.select_split(splits, "train")[1] == "train"
    with pytest.raises(ValueError, match="not in the dataset"):
        evaluate_sonar.select_split(splits, "test")
    with pytest.raises(ValueError, match="pass --split"):
        evaluate_sonar.select_split(DatasetDict({"a": splits["train"], "b": splits["train"]}), None)


def test_score_files_survive_a_killed_run(tmp_path):
    (tmp_path / "scores.txt").write_text("a 0.5\nb -1\n")
    (tmp_path / "scores.part0.txt").write_text("b 7\nc 2.25\nd 0.12")  # `d` was cut off mid-write
    (tmp_path / "scores.part1.txt").write_text("e 3\n")
    scores = evaluate_sonar.consolidate_scores(tmp_path)
    assert scores == {"a": "0.5", "b": "-1", "c": "2.25", "e": "3"}
    assert (tmp_path / "scores.txt").read_text() == "a 0.5\nb -1\nc 2.25\ne 3\n"
    assert not list(tmp_path.glob("scores.part*"))
    (tmp_path / "scores.txt").write_text("a 0.5 extra\n")
    with pytest.raises(ValueError, match="expected `UTT_ID SCORE`"):
        evaluate_sonar.read_score_file(tmp_path / "scores.txt")


def test_read_asv_scores(tmp_path):
    path = tmp_path / "asv.txt"
    path.write_text("LA_0001 target 2.5\nLA_0001 nontarget -1\n\nLA_0002 LA_E_1 - A07 spoof 0.5\nLA_0002 target 3\n")
    target, nontarget, spoof = evaluate_sonar.read_asv_scores(path)
    assert target.tolist() == [2.5, 3.0] and nontarget.tolist() == [-1.0] and spoof.tolist() == [0.5]
    path.write_text("LA_0001 bonafide 2.5\n")
    with pytest.raises(ValueError, match="no key"):
        evaluate_sonar.read_asv_scores(path)


def test_summarize():
    scores = np.array([2.0, 3.0, 0.0, 1.0, 2.5, 4.0])
    is_bonafide = np.array([True, True, False, False, False, False])
    summary = evaluate_sonar.summarize(scores, is_bonafide, {"system": ["-", "-", "A01", "A01", "A02", "A02"]})
    # pooled: spoof {0, 1, 2.5, 4} against bona fide {2, 3}; at t = 2: frr 1/2, far 2/4 -> 50%
    assert summary == {
        "eer": 50.0,
        "eer_threshold": 2.0,
        "num_bonafide": 2,
        "num_spoof": 4,
        "eer_by_system": {"A01": 0.0, "A02": 50.0},
    }


def test_missing_label_column_raises(tmp_path, monkeypatch):
    dataset_dir = make_dataset(tmp_path, with_label=False)
    argv = ["evaluate_sonar.py", "--model", "unused", "--dataset", str(dataset_dir), "--output_dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['label'\]"):
        evaluate_sonar.main()


def test_missing_model_raises(tmp_path, monkeypatch):
    dataset_dir = make_dataset(tmp_path)
    argv = ["evaluate_sonar.py", "--model", str(tmp_path / "no_model"), "--dataset", str(dataset_dir)]
    monkeypatch.setattr(sys, "argv", argv + ["--output_dir", str(tmp_path / "out")])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="Cannot load a model"):
        evaluate_sonar.main()


@pytest.fixture(scope="module")
def tiny_model_and_dataset(tmp_path_factory):
    import modeling_sonar

    folder = tmp_path_factory.mktemp("evaluate_sonar")
    config = modeling_sonar.SonarConfig.from_preset(
        "tiny", max_length=4000, window_hop_length=2000, decision_threshold=0.2, calibration_scale=1.5
    )
    modeling_sonar.SonarForAudioClassification(config).save_pretrained(folder / "model")
    return folder / "model", make_dataset(folder)


def run_evaluate(model_dir: Path, dataset_dir: Path, output_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "evaluate_sonar.py", "--model", str(model_dir), "--dataset", str(dataset_dir)]
    command += ["--output_dir", str(output_dir), "--batch_size", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_end_to_end_and_resume(tiny_model_and_dataset, tmp_path):
    model_dir, dataset_dir = tiny_model_and_dataset
    output_dir = tmp_path / "out"
    result = run_evaluate(model_dir, dataset_dir, output_dir)
    assert "Skipping 0 utterance(s)" in result.stderr and "6 left to score" in result.stderr

    lines = (output_dir / "scores.txt").read_text().splitlines()
    scores = dict(line.split() for line in lines)
    assert len(lines) == 6 and sorted(scores) == UTT_IDS and len(set(scores.values())) == 6
    summary = json.loads((output_dir / "summary.json").read_text())
    values = np.array([float(scores[utt_id]) for utt_id in UTT_IDS])
    is_bonafide = np.array(LABELS) == 0
    eer, threshold = compute_eer(values[is_bonafide], values[~is_bonafide])
    assert (summary["eer"], summary["eer_threshold"]) == (pytest.approx(100 * eer), pytest.approx(threshold))
    assert (summary["num_bonafide"], summary["num_spoof"]) == (3, 3)
    # each utterance's verdict is `sonar_verdict` of its score, as the pipeline and the Space give it
    config = SonarConfig.from_pretrained(model_dir)
    verdict_lines = (output_dir / "verdicts.tsv").read_text().splitlines()
    assert verdict_lines[0] == "utt_id\tscore\tlabel\tspoof_probability"
    probabilities = []
    for line, utt_id, score in zip(verdict_lines[1:], UTT_IDS, values):
        verdict = sonar_verdict(score, config)
        written_id, written_score, label, probability = line.split("\t")
        assert (written_id, written_score, label) == (utt_id, scores[utt_id], verdict["label"])
        assert float(probability) == pytest.approx(verdict["spoof_probability"], rel=1e-8)
        probabilities.append(verdict["spoof_probability"])
    assert summary["calibration"] == {
        "decision_threshold": 0.2,
        "calibration_scale": 1.5,
        "ece": pytest.approx(expected_calibration_error(probabilities, ~is_bonafide)),
        "brier": pytest.approx(brier_score(probabilities, ~is_bonafide)),
    }
    assert sorted(summary["eer_by_system"]) == ["A01", "A02"]
    assert "min_tdcf" not in summary
    assert (summary["model"], summary["dataset"], summary["split"]) == (str(model_dir), str(dataset_dir), "eval")
    assert (output_dir / "roc.png").stat().st_size > 0 and (output_dir / "det.png").stat().st_size > 0
    assert not list(output_dir.glob("scores.part*"))

    # a killed run: two lines made it to scores.txt, one more to a part file, the next was cut off mid-write
    (output_dir / "scores.txt").write_text("\n".join(lines[:2]) + "\n")
    (output_dir / "scores.part0.txt").write_text(lines[2] + "\n" + lines[3][:-2])
    result = run_evaluate(model_dir, dataset_dir, output_dir)
    assert "Skipping 3 utterance(s)" in result.stderr and "3 left to score" in result.stderr

    resumed_lines = (output_dir / "scores.txt").read_text().splitlines()
    assert resumed_lines[:3] == lines[:3]
    resumed = dict(line.split() for line in resumed_lines)
    assert sorted(resumed) == UTT_IDS
    for utt_id in UTT_IDS:
        assert float(resumed[utt_id]) == pytest.approx(float(scores[utt_id]), rel=1e-5, abs=1e-6)
    assert json.loads((output_dir / "summary.json").read_text())["eer"] == pytest.approx(summary["eer"])
