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

import evaluate_sonar
from modeling_sonar import SonarConfig, sonar_verdict
from sonar_training import asv_scores, scoring
from sonar_training.metrics import brier_score, compute_eer, expected_calibration_error


REPO_ROOT = Path(__file__).resolve().parents[1]


LABELS = [0, 0, 0, 1, 1, 1]
SYSTEMS = ["-", "-", "-", "A01", "A01", "A02"]
UTT_IDS = [f"LA_E_{1000001 + index}" for index in range(len(LABELS))]  # ASVspoof 2019 LA ids: the 2019 t-DCF


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
    scores = scoring.consolidate_scores(tmp_path)
    assert scores == {"a": "0.5", "b": "-1", "c": "2.25", "e": "3"}
    assert (tmp_path / "scores.txt").read_text() == "a 0.5\nb -1\nc 2.25\ne 3\n"
    assert not list(tmp_path.glob("scores.part*"))
    (tmp_path / "scores.txt").write_text("a 0.5 extra\n")
    with pytest.raises(ValueError, match="expected `UTT_ID SCORE`"):
        scoring.read_score_file(tmp_path / "scores.txt")


@pytest.mark.parametrize(
    "damage, message",
    [
        (b"b nan\n", r"scores\.txt:2: the score 'nan' of 'b' is not finite"),
        (b"b -inf\n", r"scores\.txt:2: the score '-inf' of 'b' is not finite"),
        (b"b 0,5\n", r"scores\.txt:2: the score '0,5' of 'b' is not a number"),
        (b"b\xff 0.5\n", r"scores\.txt:2: not UTF-8 text \(byte 0xff\)"),
    ],
)
def test_damaged_score_file_names_file_and_line(tmp_path, damage, message):
    (tmp_path / "scores.txt").write_bytes(b"a 0.5\n" + damage + b"c 1\n")
    with pytest.raises(ValueError, match=message):
        scoring.read_score_file(tmp_path / "scores.txt")


def test_read_asv_scores(tmp_path):
    # ASVspoof 2019 `CM_KEY ASV_KEY SCORE` lines, then a six-column line of tDCF_python_v2
    path = tmp_path / "asv.txt"
    path.write_text(
        "bonafide target 2.5\nbonafide nontarget -1\n\nA07 spoof 0.5\nLA_0002 LA_E_1 - A07 spoof 0.25\n"
        "bonafide target 3\n"
    )
    target, nontarget, spoof = asv_scores.read_asv_scores(path)
    assert target.tolist() == [2.5, 3.0] and nontarget.tolist() == [-1.0] and spoof.tolist() == [0.5, 0.25]
    path.write_text("LA_0001 bonafide 2.5\n")
    with pytest.raises(ValueError, match="no key"):
        asv_scores.read_asv_scores(path)
    path.write_text("LA_0007-alaw-ita_tx LA_E_5013670-alaw-ita_tx -4.8546\n")  # a raw ASVspoof 2021 score.txt
    with pytest.raises(ValueError, match="pass its ASV/trial_metadata.txt as --asv_keys"):
        asv_scores.read_asv_scores(path)
    path.write_text("bonafide target high\n")
    with pytest.raises(ValueError, match="score 'high' is not a number"):
        asv_scores.read_asv_scores(path)


# The official ASVspoof 2021 LA ASV files: `keys/LA/ASV/trial_metadata.txt` and `keys/LA/ASV/ASVTorch_Kaldi/score.txt`.
# The first and seventh key lines are verbatim from the released keys; the others follow their layout, with trial
# LA_E_5013670 scored against two enrolled speakers, as trials are. Scores are made up.
ASV2021_ROWS = [  # ASV speaker, trial, codec, transmission, attack, key, phase, score
    ("LA_0007-alaw-ita_tx", "LA_E_5013670-alaw-ita_tx", "alaw", "ita_tx", "bonafide", "nontarget", "eval", -4.8546),
    ("LA_0012-alaw-ita_tx", "LA_E_5013670-alaw-ita_tx", "alaw", "ita_tx", "bonafide", "target", "eval", 3.2017),
    ("LA_0015-g722-loc_tx", "LA_E_1103494-g722-loc_tx", "g722", "loc_tx", "bonafide", "target", "eval", 2.441),
    ("LA_0015-g722-loc_tx", "LA_E_7294490-g722-loc_tx", "g722", "loc_tx", "bonafide", "nontarget", "eval", 0.912),
    ("LA_0007-alaw-ita_tx", "LA_E_7417804-alaw-ita_tx", "alaw", "ita_tx", "A07", "spoof", "eval", 1.7532),
    ("LA_0012-alaw-ita_tx", "LA_E_7417804-alaw-ita_tx", "alaw", "ita_tx", "A07", "spoof", "eval", -0.6605),
    ("LA_0013-alaw-ita_tx", "LA2021-LA_E_5658320", "alaw", "ita_tx", "A07", "spoof", "progress", 2.9904),
    ("LA_0013-alaw-ita_tx", "LA_E_4187390-alaw-ita_tx", "alaw", "ita_tx", "bonafide", "target", "progress", 1.1038),
    ("LA_0019-none-loc_tx", "LA_E_4187390-none-loc_tx", "none", "loc_tx", "bonafide", "nontarget", "hidden", 1.3572),
]


def write_asv2021(folder: Path, rows=ASV2021_ROWS) -> tuple[Path, Path]:
    keys, scores = folder / "trial_metadata.txt", folder / "score.txt"
    keys.write_text("".join(f"{s} {t} {c} {x} {a} {k} notrim {p}\n" for s, t, c, x, a, k, p, _ in rows))
    scores.write_text("".join(f"{row[0]} {row[1]} {row[-1]}\n" for row in rows))
    return scores, keys


def test_read_asvspoof2021_asv_scores_joins_by_line_and_phase(tmp_path):
    from sonar_training.metrics import compute_min_tdcf

    scores, keys = write_asv2021(tmp_path)
    target, nontarget, spoof = asv_scores.read_asvspoof2021_asv_scores(scores, keys)
    assert target.tolist() == [3.2017, 2.441] and nontarget.tolist() == [-4.8546, 0.912]
    assert spoof.tolist() == [1.7532, -0.6605]
    every = asv_scores.read_asvspoof2021_asv_scores(scores, keys, "all")
    assert [len(column) for column in every] == [3, 3, 3]
    for path in (scores, keys):  # a byte-order mark is not part of the first speaker
        path.write_text("\ufeff" + path.read_text(), encoding="utf-8")
    assert asv_scores.read_asvspoof2021_asv_scores(scores, keys)[0].tolist() == target.tolist()
    # The subset filter changes the t-DCF. eval: ASV threshold 0.912, Pfa 1/2, Pmiss 0, Pfa_spoof 1/2, so
    # C0 0.0475, C1 0.893, C2 0.25, min at CM (frr, far) = (0, 2/5). all: threshold 1.1038, Pfa 1/3, Pfa_spoof 2/3,
    # so C0 0.095/3, C2 1/3 (times 3 below).
    cm = [2.0, 0.5, 3.0, 1.2], [-1.0, 0.8, 1.5, -2.0, 0.1]
    assert compute_min_tdcf(*cm, target, nontarget, spoof)[0] == pytest.approx(0.1475 / 0.2975)  # 0.4958
    assert compute_min_tdcf(*cm, *every)[0] == pytest.approx((0.095 + 0.4) / (0.095 + 1))  # 0.4521


def test_read_asvspoof2021_asv_scores_bad_input(tmp_path):
    scores, keys = write_asv2021(tmp_path)
    lines = scores.read_text().splitlines(keepends=True)
    scores.write_text("".join(lines[:-1]))
    with pytest.raises(ValueError, match="has 8 trials and its keys .* 9"):
        asv_scores.read_asvspoof2021_asv_scores(scores, keys)
    scores.write_text("".join([lines[1], lines[0], *lines[2:]]))  # out of step
    with pytest.raises(ValueError, match=r"score\.txt:1 scores 'LA_0012-alaw-ita_tx LA_E_5013670-alaw-ita_tx' but"):
        asv_scores.read_asvspoof2021_asv_scores(scores, keys)
    scores, keys = write_asv2021(tmp_path, [row for row in ASV2021_ROWS if row[6] != "eval"])
    with pytest.raises(ValueError, match="no target/nontarget/spoof trial in phase 'eval'"):
        asv_scores.read_asvspoof2021_asv_scores(scores, keys)
    with pytest.raises(ValueError, match="phase must be one of"):
        asv_scores.read_asvspoof2021_asv_scores(scores, keys, "hidden_track")


def test_default_tdcf_variant():
    la2019_ids = ["LA_E_2834763", "LA_E_8877452", "LA_D_1000001"]
    assert asv_scores.default_tdcf_variant(["audio", "label", "utt_id", "speaker", "system"], la2019_ids) == "2019"
    la2021_columns = ["audio", "label", "utt_id", "speaker", "system", "codec", "transmission", "trim", "phase"]
    assert asv_scores.default_tdcf_variant(la2021_columns, la2019_ids) == "2021"
    assert asv_scores.default_tdcf_variant(["utt_id"], la2019_ids, asv_keys_given=True) == "2021"
    assert asv_scores.default_tdcf_variant(["utt_id"], ["0", "1"]) == "2021"  # e.g. In-the-Wild


def test_summarize():
    scores = np.array([2.0, 3.0, 0.0, 1.0, 2.5, 4.0])
    is_bonafide = np.array([True, True, False, False, False, False])
    summary = scoring.summarize(scores, is_bonafide, {"system": ["-", "-", "A01", "A01", "A02", "A02"]})
    # pooled: spoof {0, 1, 2.5, 4} against bona fide {2, 3}; at t = 2: frr 1/2, far 2/4 -> 50%
    assert summary == {
        "eer": 50.0,
        "eer_threshold": 2.0,
        "num_bonafide": 2,
        "num_spoof": 4,
        "eer_by_system": {"A01": 0.0, "A02": 50.0},
    }
    asv = np.array([2.0, 3.0, 4.0]), np.array([0.0, 1.0]), np.array([0.5, 5.0])  # as in test_metrics.py
    for variant, expected in (("2019", 0.5), ("2021", 0.1725 / 0.2975)):  # min at CM (frr, far) = (0, 1/2)
        summary = scoring.summarize(scores, is_bonafide, {}, asv, tdcf_variant=variant)
        assert summary["tdcf_variant"] == variant and summary["min_tdcf"] == pytest.approx(expected)
    tied = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert scoring.summarize(tied, is_bonafide, {})["eer"] == 100.0  # the official code's answer
    merged = scoring.summarize(tied, is_bonafide, {}, merge_ties=True)
    assert merged["eer"] == 50.0 and merged["merge_ties"] is True


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


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--asv_keys", "keys.txt"], "--asv_keys needs --asv_scores"),
        (["--asv_scores", "absent.txt"], "is not a file"),
        (["--asv_scores", __file__, "--asv_keys", "absent.txt"], "--asv_keys 'absent.txt' is not a file"),
    ],
)
def test_asv_argument_errors(extra, message, monkeypatch):
    monkeypatch.setattr(
        sys, "argv", ["evaluate_sonar.py", "--model", "m", "--dataset", "d", "--output_dir", "o", *extra]
    )
    with pytest.raises(ValueError, match=message):
        evaluate_sonar.parse_args()


@pytest.fixture(scope="module")
def tiny_model_and_dataset(tmp_path_factory):
    import modeling_sonar

    folder = tmp_path_factory.mktemp("evaluate_sonar")
    config = modeling_sonar.SonarConfig.from_preset(
        "tiny", max_length=4000, window_hop_length=2000, decision_threshold=0.2, calibration_scale=1.5
    )
    modeling_sonar.SonarForAudioClassification(config).save_pretrained(folder / "model")
    return folder / "model", make_dataset(folder)


def run_evaluate(model_dir: Path, dataset_dir: Path, output_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "evaluate_sonar.py", "--model", str(model_dir), "--dataset", str(dataset_dir)]
    command += ["--output_dir", str(output_dir), "--batch_size", "2", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_end_to_end_and_resume(tiny_model_and_dataset, tmp_path):
    model_dir, dataset_dir = tiny_model_and_dataset
    output_dir = tmp_path / "out"
    asv2019 = tmp_path / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    asv2019.write_text("bonafide target 2.5\nbonafide target 3.5\nbonafide nontarget -1\nA07 spoof 0.5\nA08 spoof 3\n")
    result = run_evaluate(model_dir, dataset_dir, output_dir, "--asv_scores", str(asv2019))
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
    assert summary["tdcf_variant"] == "2019" and 0 <= summary["min_tdcf"] <= 1  # auto: ASVspoof 2019 LA ids
    assert (summary["model"], summary["dataset"], summary["split"]) == ("model", "dataset", "eval")  # no local path
    assert (output_dir / "roc.png").stat().st_size > 0 and (output_dir / "det.png").stat().st_size > 0
    assert not list(output_dir.glob("scores.part*"))

    # a killed run: two lines made it to scores.txt, one more to a part file, the next was cut off mid-write
    (output_dir / "scores.txt").write_text("\n".join(lines[:2]) + "\n")
    (output_dir / "scores.part0.txt").write_text(lines[2] + "\n" + lines[3][:-2])
    asv_scores, asv_keys = write_asv2021(tmp_path)
    result = run_evaluate(
        model_dir, dataset_dir, output_dir, "--asv_scores", str(asv_scores), "--asv_keys", str(asv_keys)
    )
    assert "Skipping 3 utterance(s)" in result.stderr and "3 left to score" in result.stderr

    resumed_lines = (output_dir / "scores.txt").read_text().splitlines()
    assert resumed_lines[:3] == lines[:3]
    resumed = dict(line.split() for line in resumed_lines)
    assert sorted(resumed) == UTT_IDS
    for utt_id in UTT_IDS:
        assert float(resumed[utt_id]) == pytest.approx(float(scores[utt_id]), rel=1e-5, abs=1e-6)
    resumed_summary = json.loads((output_dir / "summary.json").read_text())
    assert resumed_summary["eer"] == pytest.approx(summary["eer"])
    assert resumed_summary["tdcf_variant"] == "2021" and resumed_summary["asv_phase"] == "eval"  # the 2021 join


def test_damaged_score_file_stops_the_run_before_scoring(tiny_model_and_dataset, tmp_path):
    model_dir, dataset_dir = tiny_model_and_dataset
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "scores.txt").write_text("utt_0 0.5\nutt_1 NaN\n")
    command = [sys.executable, "evaluate_sonar.py", "--model", str(model_dir), "--dataset", str(dataset_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [*command, "--output_dir", str(output_dir)], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert (
        last_line
        == f"evaluate_sonar.py: error: {output_dir / 'scores.txt'}:2: the score 'NaN' of 'utt_1' is not finite"
    )
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in output_dir.iterdir()) == ["scores.txt"]  # nothing was scored
