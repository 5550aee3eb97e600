"""train_sonar.py end to end on a tiny synthetic corpus: launch (1 and 2 processes), checkpoints, a real kill and
resume, early stopping, the filter constraint, and the argument handling."""

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from conftest import REPO_ROOT, make_speechlike


def _run_env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("ACCELERATE_CONFIG_FILE", None)
    return env


TRAIN = [sys.executable, str(REPO_ROOT / "train_sonar.py")]
# `accelerate launch --cpu --num_processes 2` starts one process on a machine without GPUs; torchrun with
# ACCELERATE_USE_CPU gives accelerate's MULTI_CPU (gloo) with two.
TWO_CPU_PROCESSES = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """ASVspoof 2019 LA layout with 8 clips per split (4 bona fide harmonic, 4 'spoof' noisier), converted."""
    from dataset_scripts.asvspoof2019_la import build_dataset
    from dataset_scripts.common import write_dataset

    root = tmp_path_factory.mktemp("tiny_la") / "LA"
    protocols = root / "ASVspoof2019_LA_cm_protocols"
    protocols.mkdir(parents=True)
    names = {"train": ("T", "train.trn"), "dev": ("D", "dev.trl"), "eval": ("E", "eval.trl")}
    for split, (letter, protocol) in names.items():
        folder = root / f"ASVspoof2019_LA_{split}" / "flac"
        folder.mkdir(parents=True)
        lines = []
        for i in range(8):
            spoof = i % 2
            wave = make_speechlike(0.6 + 0.05 * i, seed=100 * len(split) + i)
            if spoof:
                wave = wave + 0.05 * torch.randn(len(wave), generator=torch.Generator().manual_seed(i)).numpy()
            utt_id = f"LA_{letter}_{i:07d}"
            sf.write(folder / f"{utt_id}.flac", wave.clip(-1, 1), 16000)
            lines.append(f"SPK{i % 3} {utt_id} - {'A01' if spoof else '-'} {'spoof' if spoof else 'bonafide'}")
        (protocols / f"ASVspoof2019.LA.cm.{protocol}.txt").write_text("\n".join(lines) + "\n")
    output = root.parent / "dataset"
    write_dataset(build_dataset(root), output)
    return output


def tiny_args(dataset: Path, output_dir: Path, **overrides) -> list[str]:
    """tiny_demo.yaml at test sizes on the synthetic corpus: 0.5 s windows, batch 2, 4 steps per epoch, no trackers."""
    values = {
        "preset": "tiny",
        "dataset": dataset,
        "output_dir": output_dir,
        "max_length": 8000,
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 4,
        "report_to": "none",
        "logging_steps": 1,
        **overrides,
    }
    args = ["--config", str(REPO_ROOT / "configs" / "tiny_demo.yaml")]
    for key, value in values.items():
        args += [f"--{key}", str(value)]
    return args


def run(command: list[str], timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    env = {**_run_env(), **env}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def trainer_state(output_dir: Path) -> dict:
    return json.loads((output_dir / "trainer_state.json").read_text())


def test_two_processes_on_cpu(tiny_dataset, tmp_path):
    output_dir = tmp_path / "ddp"
    # the released schedule: 8 balanced clips / (2 per process x 2 processes) = 2 steps per epoch, cosine over 2 epochs
    schedule = {"lr_scheduler_type": "cosine_per_epoch", "lr_cycle_epochs": 2}
    result = run(
        TWO_CPU_PROCESSES + TRAIN[1:] + tiny_args(tiny_dataset, output_dir, max_steps=3, **schedule),
        ACCELERATE_USE_CPU="true",
    )
    assert "MULTI_CPU" in result.stderr and "Num processes: 2" in result.stderr
    state = trainer_state(output_dir)
    assert state["global_step"] == 3
    lrs = [entry["lr"] for entry in state["log_history"] if "lr" in entry]  # logged after each step, for the next
    assert lrs == pytest.approx([1e-3, 1e-6 + (1e-3 - 1e-6) / 2, 1e-6 + (1e-3 - 1e-6) / 2])
    assert state["best_step"] is not None
    from modeling_sonar import SonarForAudioClassification

    model = SonarForAudioClassification.from_pretrained(output_dir / "model")
    assert model.config.decision_threshold == state["best_threshold"]
    assert model.config.calibration_scale == state["best_calibration"]["calibration_scale"]
    assert model.config.smoke_test is False  # the synthetic corpus is not the demo corpus
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md", "training_curves.png"} <= {
        path.name for path in (output_dir / "model").iterdir()
    }
    summary = json.loads((output_dir / "eval_results" / "summary.json").read_text())
    assert summary["num_bonafide"] == 4
    assert summary["dev_calibration"] == state["best_calibration"]
    assert set(summary["calibration"]) == {"decision_threshold", "calibration_scale", "ece", "brier"}
    assert len((output_dir / "eval_results" / "verdicts.tsv").read_text().splitlines()) == 1 + 8


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    run(TRAIN + tiny_args(tiny_dataset, output_dir, max_steps=12, checkpointing_steps=3, checkpoints_total_limit=2))
    return output_dir


# What users and tools read from training_state.json (each checkpoint) and trainer_state.json (the run), in order
TRAINING_STATE_KEYS = [
    "global_step",
    "best_eer",
    "best_threshold",
    "best_calibration",
    "best_step",
    "evals_without_improvement",
    "stopped_early",
    "log_history",
]
TRAINER_STATE_KEYS = TRAINING_STATE_KEYS + ["max_train_steps", "steps_per_epoch", "results"]


def test_checkpoints_rotate_and_model_folder(uninterrupted):
    assert sorted(path.name for path in uninterrupted.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-9"]
    state = json.loads((uninterrupted / "checkpoint-12" / "training_state.json").read_text())
    assert list(state) == TRAINING_STATE_KEYS
    assert state["global_step"] == 12
    assert [entry["step"] for entry in state["log_history"] if "dev_eer" in entry] == [4, 8, 12]
    run_state = trainer_state(uninterrupted)
    assert list(run_state) == TRAINER_STATE_KEYS
    assert (run_state["max_train_steps"], run_state["steps_per_epoch"]) == (12, 4)
    assert [result["split"] for result in run_state["results"]] == ["eval"]
    card = (uninterrupted / "model" / "README.md").read_text()
    assert "model-index" in card and "decision_threshold" in card and "2511.21325" in card
    assert "## Score, threshold, probability" in card and "Smoke test" not in card
    # the card's inputs: the best dev evaluation as trainer_state.json has it, the recipe without Hub settings
    summary = json.loads((uninterrupted / "model" / "training_summary.json").read_text())
    assert summary["dev"] == {
        "eer": run_state["best_eer"],
        "threshold": run_state["best_threshold"],
        "step": run_state["best_step"],
        "calibration": run_state["best_calibration"],
    }
    assert summary["results"] == run_state["results"]
    recipe = summary["recipe"]
    assert (recipe["output_dir"], recipe["num_processes"], recipe["max_steps"], recipe["preset"]) == (
        ".",
        1,
        12,
        "tiny",
    )
    assert recipe["dataset"] == "dataset" and not any(key.startswith("hub_") for key in recipe)


def test_training_state_round_trips_through_a_checkpoint(tmp_path):
    """save_checkpoint writes the typed state whole (with rotation, no partial folder left), and resuming restores
    accelerate's state (the weights) and the loop's own state alike; no checkpoint means a fresh state."""
    from accelerate import Accelerator

    from sonar_training.checkpoints import TrainingState, list_checkpoints, save_checkpoint
    from train_sonar import restore_training_state

    accelerator = Accelerator()
    model = torch.nn.Linear(3, 2)
    model, optimizer = accelerator.prepare(model, torch.optim.AdamW(model.parameters()))
    calibration = {"decision_threshold": -0.25, "calibration_scale": 1.5, "ece": 0.1, "brier": 0.2}
    state = TrainingState(best_eer=12.5, best_threshold=-0.25, best_calibration=calibration, best_step=2)
    state.log_history.append({"step": 2, "dev_eer": 12.5, "epoch": 0})
    for step in (3, 6, 9):
        state.global_step, state.evals_without_improvement = step, step // 3
        save_checkpoint(accelerator, tmp_path, state, total_limit=2)
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint-6", "checkpoint-9"]
    assert not list(tmp_path.glob("partial-*"))
    assert list(json.loads((tmp_path / "checkpoint-9" / "training_state.json").read_text())) == TRAINING_STATE_KEYS
    assert TrainingState.from_checkpoint(tmp_path / "checkpoint-9") == state

    saved = {key: value.clone() for key, value in accelerator.unwrap_model(model).state_dict().items()}
    with torch.no_grad():
        accelerator.unwrap_model(model).weight.add_(1.0)
    assert restore_training_state(accelerator, "latest", tmp_path) == state
    for key, value in accelerator.unwrap_model(model).state_dict().items():
        torch.testing.assert_close(value, saved[key])
    assert restore_training_state(accelerator, None, tmp_path) == TrainingState()
    assert restore_training_state(accelerator, "latest", tmp_path / "empty") == TrainingState()


def test_logged_losses_are_means_over_micro_batches():
    from types import SimpleNamespace

    from accelerate import Accelerator

    from sonar_training.checkpoints import TrainingState
    from train_sonar import RunningLosses, log_losses

    accelerator, state = Accelerator(), TrainingState(global_step=7)
    running = RunningLosses()
    for loss, ce_loss, js_loss in ((1.0, 0.5, 0.25), (2.0, 1.5, None)):
        js_loss = None if js_loss is None else torch.tensor(js_loss)
        outputs = SimpleNamespace(loss=torch.tensor(loss), ce_loss=torch.tensor(ce_loss), js_loss=js_loss)
        running.add(outputs, num_clips=4)
    assert (running.micro_batches, running.clips) == (2, 8)
    values = log_losses(accelerator, state, running, learning_rate=1e-3, epoch=1, with_js_loss=True)
    assert values == {
        "loss": 1.5,
        "ce_loss": 1.0,
        "lr": 1e-3,
        "epoch": 1,
        "js_loss": 0.125,
        "samples_per_second": pytest.approx(values["samples_per_second"]),
    }
    assert values["samples_per_second"] > 0
    assert state.log_history == [{"step": 7, **values}]
    assert "js_loss" not in log_losses(accelerator, state, running, learning_rate=1e-3, epoch=1, with_js_loss=False)


def test_decision_is_fitted_on_the_dev_split(uninterrupted, tiny_dataset):
    """The saved threshold is the dev EER threshold of the saved model, and the saved scale is the calibration fit of
    its dev scores at that threshold, whose ECE and Brier score the run reports."""
    from modeling_sonar import SonarForAudioClassification, sonar_verdict
    from sonar_training.arguments import parse_args
    from sonar_training.data import load_sonar_dataset
    from sonar_training.metrics import compute_eer, fit_calibration_scale
    from sonar_training.scoring import calibration_summary, iter_scores
    from train_sonar import get_dataloaders

    model = SonarForAudioClassification.from_pretrained(uninterrupted / "model")
    # the dev batches exactly as the run scored them (RawBoost on dev by default, as released)
    _, data_args, args = parse_args([str(arg) for arg in tiny_args(tiny_dataset, uninterrupted)])
    splits = dict(load_sonar_dataset(str(tiny_dataset)))
    batches = list(iter_scores(model, get_dataloaders(splits, data_args, args, model.config.max_length)[1]))
    scores = torch.cat([batch[1] for batch in batches]).numpy()
    is_bonafide = torch.cat([batch[2] for batch in batches]).numpy() == 0
    state = trainer_state(uninterrupted)
    assert compute_eer(scores[is_bonafide], scores[~is_bonafide]) == pytest.approx(
        (state["best_eer"] / 100, model.config.decision_threshold), abs=1e-5
    )
    scale = fit_calibration_scale(scores, is_bonafide, model.config.decision_threshold)
    assert model.config.calibration_scale == pytest.approx(scale, rel=1e-4)
    probabilities = [sonar_verdict(score, model.config)["spoof_probability"] for score in scores]
    expected = calibration_summary(np.array(probabilities), is_bonafide, model.config)
    assert state["best_calibration"] == pytest.approx(expected, rel=1e-4)


def test_demo_corpus_is_recognised_and_its_model_marked_a_smoke_test(tmp_path):
    from datasets import Dataset

    from modeling_sonar import SonarConfig, sonar_verdict
    from sonar_training.arguments import parse_args
    from sonar_training.model_card import render_model_card
    from train_sonar import build_model, is_demo_corpus

    demo = Dataset.from_dict({"speaker": ["DEMO_CB", "DEMO_HL", "DEMO_R1"], "label": [0, 1, 1]})
    assert is_demo_corpus(demo)
    assert not is_demo_corpus(Dataset.from_dict({"speaker": ["DEMO_CB", "LA_0079"], "label": [0, 1]}))
    assert not is_demo_corpus(Dataset.from_dict({"label": [0, 1]}))
    model_args, data_args, _ = parse_args(["--preset", "tiny"])
    assert build_model(model_args, data_args, demo).config.smoke_test is True
    summary = {"recipe": {"dataset": "demo_dataset"}, "dev": {"eer": 40.0, "threshold": 0.1, "step": 5}}
    config = SonarConfig.from_preset("tiny", decision_threshold=1.2, calibration_scale=2.0, smoke_test=True)
    card = str(render_model_card(config, summary, "sonar-demo"))
    assert "Smoke test, not a detector" in card and "smoke-test" in card
    # the card's example verdicts are sonar_verdict's: at the threshold, p = 0.5 and the label bona fide
    verdict = sonar_verdict(1.2, config)
    assert f"| +1.2000 | {verdict['text']} | 0.5000 |" in card and verdict["label"] == "bonafide"


def test_filter_constraint_holds_after_training(uninterrupted):
    from modeling_sonar import SonarForAudioClassification

    filters = SonarForAudioClassification.from_pretrained(uninterrupted / "model").sonar.filter_bank.filters.detach()
    centre = filters.shape[-1] // 2
    torch.testing.assert_close(filters[:, 0, centre], torch.full((filters.shape[0],), -1.0))
    off_centre = filters.sum(-1)[:, 0] - filters[:, 0, centre]
    torch.testing.assert_close(off_centre, torch.ones(filters.shape[0]), atol=1e-5, rtol=0)


def test_killed_and_resumed_run_matches_uninterrupted(tiny_dataset, uninterrupted, tmp_path):
    output_dir = tmp_path / "killed"
    args = TRAIN + tiny_args(tiny_dataset, output_dir, max_steps=12, checkpointing_steps=3, checkpoints_total_limit=2)
    kill_after = random.Random().choice([3, 6])
    process = subprocess.Popen(args, cwd=REPO_ROOT, env=_run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (output_dir / f"checkpoint-{kill_after}").is_dir():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (output_dir / "checkpoint-12").exists(), f"the run finished before the kill after step {kill_after}"

    run(args + ["--resume_from_checkpoint", "latest"])
    for name in ("checkpoint-12/model.safetensors", "model/model.safetensors"):
        expected, resumed = load_file(uninterrupted / name), load_file(output_dir / name)
        assert expected.keys() == resumed.keys()
        for key in expected:
            torch.testing.assert_close(resumed[key], expected[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
    expected_state, resumed_state = trainer_state(uninterrupted), trainer_state(output_dir)
    for key in ("global_step", "best_step", "best_eer", "best_threshold", "best_calibration"):
        assert resumed_state[key] == pytest.approx(expected_state[key]), key


def test_early_stopping_fires(tiny_dataset, tmp_path):
    output_dir = tmp_path / "early"
    # lr 1e-30 (no float32 weight moves) and an MLP head (no BatchNorm statistics): the dev EER cannot change, so
    # patience 1 stops at the 2nd eval
    overrides = {"learning_rate": 1e-30, "min_learning_rate": 0, "early_stopping_patience": 1, "num_train_epochs": 5}
    run(TRAIN + tiny_args(tiny_dataset, output_dir, config_overrides='{"head": "mlp"}', **overrides))
    state = trainer_state(output_dir)
    assert state["stopped_early"] is True
    assert state["global_step"] == 8 < state["max_train_steps"] == 20
    assert state["best_step"] == 4


def test_diverging_loss_stops_with_a_message(tiny_dataset, tmp_path):
    output_dir = tmp_path / "nan"
    command = TRAIN + tiny_args(tiny_dataset, output_dir, learning_rate=1e6, max_steps=40, checkpointing_steps=1)
    result = subprocess.run(command, cwd=REPO_ROOT, env=_run_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert re.search(r"FloatingPointError: The training loss is -?(nan|inf) at step \d+", result.stderr), result.stderr
    assert "lower --learning_rate" in result.stderr
    assert list(output_dir.glob("checkpoint-*")), "the checkpoints written before the divergence stay"


def test_config_file_defaults_and_command_line_overrides(tmp_path):
    from sonar_training.arguments import parse_args

    config = tmp_path / "run.yaml"
    config.write_text(
        "preset: tiny\nlearning_rate: 1.0e-3\nconfig_overrides: {head: mlp}\nclass_weights: [0.9, 0.1]\n"
    )
    model_args, data_args, args = parse_args(
        ["--config", str(config), "--learning_rate", "0.5", "--rawboost_algo", "0"]
    )
    assert (model_args.preset, args.learning_rate, data_args.rawboost_algo) == ("tiny", 0.5, 0)
    assert json.loads(model_args.config_overrides) == {"head": "mlp"}
    assert model_args.class_weights == [0.9, 0.1]
    assert args.weight_decay == 1e-4  # the paper's default where neither sets it

    config.write_text("preset: tiny\nlearning_rat: 1.0e-3\n")
    with pytest.raises(ValueError, match="learning_rat"):
        parse_args(["--config", str(config)])
    with pytest.raises(ValueError, match="checkpointing_steps"):
        parse_args(["--checkpointing_steps", "0"])


BAD_ARGUMENTS = [
    ({"learning_rate": 0}, "--learning_rate must be > 0, got 0.0"),
    ({"learning_rate": -1e-3}, "--learning_rate must be > 0, got -0.001"),
    ({"min_learning_rate": 0.1}, "--min_learning_rate must be in [0, learning_rate=0.001], got 0.1"),
    ({"weight_decay": -1}, "--weight_decay must be >= 0, got -1.0"),
    ({"max_grad_norm": 0}, "--max_grad_norm must be > 0 (or None), got 0.0"),
    ({"num_train_epochs": 0}, "--num_train_epochs must be at least 1, got 0"),
    ({"max_steps": 0}, "--max_steps must be at least 1 (or None), got 0"),
    ({"per_device_train_batch_size": 0}, "--per_device_train_batch_size must be at least 1, got 0"),
    ({"per_device_eval_batch_size": -2}, "--per_device_eval_batch_size must be at least 1, got -2"),
    ({"gradient_accumulation_steps": 0}, "--gradient_accumulation_steps must be at least 1, got 0"),
    ({"logging_steps": 0}, "--logging_steps must be at least 1, got 0"),
    ({"max_length": 0}, "--max_length must be at least 1, got 0"),
    ({"num_workers": -1}, "--num_workers must be >= 0, got -1"),
    ({"config_overrides": '{"head": "lstm"}'}, '--preset tiny, --config_overrides {"head": "lstm"}, --max_length'),
    ({"dataset": "{tmp}/missing"}, "--dataset '{tmp}/missing' is not a folder"),
    ({"dataset": "{tmp}"}, "--dataset '{tmp}': No dataset at '{tmp}'"),
    ({"dataset": "{tmp}/train_only"}, "--dev_split: no dev split ('validation', 'dev') in '{tmp}/train_only'"),
    ({"eval_split": "test"}, "--eval_split: no eval split test in"),
    ({"encoder_name_or_path": "./no_such_encoder"}, "--encoder_name_or_path './no_such_encoder' is not a folder"),
    ({"resume_from_checkpoint": "{tmp}/ckpt-7"}, "--resume_from_checkpoint '{tmp}/ckpt-7' is not a folder"),
]


@pytest.mark.parametrize("bad, message", BAD_ARGUMENTS, ids=[next(iter(bad)) for bad, _ in BAD_ARGUMENTS])
def test_bad_arguments_stop_with_one_line_before_creating_anything(tiny_dataset, tmp_path, bad, message):
    from datasets import DatasetDict, load_from_disk

    from train_sonar import main

    splits = load_from_disk(str(tiny_dataset))
    DatasetDict(train=splits["train"], eval=splits["eval"]).save_to_disk(tmp_path / "train_only")  # no dev split
    bad = {key: str(value).replace("{tmp}", str(tmp_path)) for key, value in bad.items()}
    output_dir = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(tiny_args(bad.pop("dataset", tiny_dataset), output_dir, **{"learning_rate": 1e-3, **bad}))
    assert str(stop.value.code).startswith("train_sonar.py: error: " + message.replace("{tmp}", str(tmp_path)))
    assert "\n" not in str(stop.value.code) and not output_dir.exists()


def test_unknown_preset_in_a_config_file_from_the_command_line(tiny_dataset, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("preset: sonar-huge\n")
    output_dir = tmp_path / "out"
    command = TRAIN + ["--config", str(config), "--dataset", str(tiny_dataset), "--output_dir", str(output_dir)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=_run_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "train_sonar.py: error: --preset 'sonar-huge' is unknown; choose one of "
        "['baseline', 'small', 'sonar-full', 'sonar-lite', 'tiny']"
    ]
    assert not output_dir.exists()


def test_unreachable_hub_dataset_leaves_no_output_folder(tmp_path):
    output_dir = tmp_path / "out"
    command = TRAIN + ["--preset", "tiny", "--dataset", "someorg/no-such-dataset", "--output_dir", str(output_dir)]
    env = {**_run_env(), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("train_sonar.py: error: --dataset 'someorg/no-such-dataset': ")
    )
    assert not output_dir.exists()


def test_recipe_defaults_follow_the_released_code():
    from sonar_training.arguments import parse_args

    _, data_args, args = parse_args([])
    assert (data_args.augment_full_clip, data_args.augment_dev, data_args.balanced_spoof_draw) == (True, True, "once")
    assert (args.lr_scheduler_type, args.lr_cycle_epochs, args.min_learning_rate) == ("cosine_per_epoch", 50, 1e-8)
    with pytest.raises(ValueError, match="lr_cycle_epochs"):
        parse_args(["--lr_cycle_epochs", "0"])


def test_cosine_schedules():
    from sonar_training.recipe import cosine_lr_lambda

    # released: stepped per epoch (10 steps each), 50-epoch half-period, to 1e-8; then back up, as PyTorch's cosine
    per_epoch = cosine_lr_lambda("cosine_per_epoch", 1e-5, 1e-8, 10**6, 10, 50)
    assert {per_epoch(step) for step in range(10)} == {1.0}
    assert per_epoch(10) == pytest.approx((1e-8 + (1e-5 - 1e-8) * (1 + math.cos(math.pi / 50)) / 2) / 1e-5)
    assert per_epoch(500) * 1e-5 == pytest.approx(1e-8) and per_epoch(1000) == pytest.approx(1.0)
    # per step over the whole run; with 4 processes accelerate steps the scheduler 4 times per optimiser step
    per_step = cosine_lr_lambda("cosine", 1e-3, 0.0, 100, 10, 50, num_processes=4)
    assert per_step(0) == 1.0 and per_step(4 * 50) == pytest.approx(0.5) and per_step(4 * 100) == pytest.approx(0)
    assert cosine_lr_lambda("cosine", 0.0, 0.0, 100, 10, 50)(7) == 0.0
    with pytest.raises(ValueError, match="linear"):
        cosine_lr_lambda("linear", 1e-3, 0.0, 100, 10, 50)


def test_dev_split_is_augmented_alike_at_every_evaluation(tiny_dataset):
    from sonar_training.arguments import parse_args
    from sonar_training.data import load_sonar_dataset
    from train_sonar import get_dataloaders

    splits = dict(load_sonar_dataset(str(tiny_dataset)))
    _, data_args, args = parse_args(["--rawboost_algo", "4", "--per_device_eval_batch_size", "3"])

    dev_dataloader = get_dataloaders(splits, data_args, args, 8000)[1]
    augmented, again = list(dev_dataloader), list(dev_dataloader)  # two evaluations
    data_args.augment_dev = False
    clean = list(get_dataloaders(splits, data_args, args, 8000)[1])
    order = [utt_id for batch in augmented for utt_id in batch["utt_id"]]
    assert order == [utt_id for batch in clean for utt_id in batch["utt_id"]] == list(splits["dev"]["utt_id"])
    for first, second, plain in zip(augmented, again, clean):
        assert torch.equal(first["input_values"], second["input_values"])
        assert torch.equal(first["labels"], plain["labels"])
        assert not torch.allclose(first["input_values"], plain["input_values"])


def test_missing_named_checkpoint_raises(tmp_path):
    from sonar_training.checkpoints import resolve_checkpoint

    assert resolve_checkpoint("latest", tmp_path) is None
    with pytest.raises(ValueError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "checkpoint-7"), tmp_path)


def test_class_weights_from_priors():
    from sonar_training.recipe import class_weights_from_priors

    weights = class_weights_from_priors([0] * 2580 + [1] * 22800)
    assert weights == pytest.approx([0.898, 0.102], abs=1e-3)
    with pytest.raises(ValueError, match="counts"):
        class_weights_from_priors([1, 1])
