#!/usr/bin/env python
"""Convergence of SONAR against its baseline ablation (one encoder + AASIST, no filter bank, no JS) on sonar-mini.

The paper claims SONAR-Full stabilises about 4x sooner than XLS-R + AASIST. This measures the same comparison at a
CPU-sized scale: both models get the same small wav2vec2-shaped encoder trained from scratch (no XLS-R: no downloads
here), the same data, crops, batch size, learning rate, step budget and seeds, through `train_sonar.py` itself.
It prints the dev EER every `--eval_steps` steps for both, and the steps each needs to reach the baseline's best.

    python bench/convergence.py                            # defaults: about 15 minutes on 2 CPU cores
    python bench/convergence.py --steps 1500 --seeds 0 1 2 # longer, several seeds

Reads `../shared/data/sonar-mini` (ASVspoof 2019 LA layout), converted once into `data/sonar-mini`; without it,
prints a message and exits 0. For scale: linear LFCC statistics with logistic regression reach 23.8% dev EER here.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from modeling_sonar.configuration_sonar import SMALL_ENCODER


REPO_DIR = Path(__file__).resolve().parents[1]
SONAR_MINI = REPO_DIR.parent / "shared" / "data" / "sonar-mini"
LFCC_LOGREG_DEV_EER = 23.8


def encoder_config(hidden_size: int, num_layers: int) -> dict:
    """The `small` preset's wav2vec2 (XLS-R's 320x frame stride, SpecAugment and dropout off) at the asked size."""
    return {
        **SMALL_ENCODER,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "intermediate_size": 2 * hidden_size,
    }


def prepare_dataset(output: Path) -> Path:
    if not (output / "dataset_dict.json").is_file():
        from dataset_scripts.asvspoof2019_la import build_dataset
        from dataset_scripts.common import write_dataset

        write_dataset(build_dataset(SONAR_MINI / "LA"), output, overwrite=True)
    return output


def train(name: str, noise_branch: bool, seed: int, args, dataset: Path) -> list[tuple[int, float]]:
    """One `train_sonar.py` run; returns (step, dev EER %) at every evaluation."""
    output_dir = args.output_dir / f"{name}-seed{seed}"
    overrides = {"encoder_config": encoder_config(args.hidden_size, args.num_layers), "noise_branch": noise_branch}
    if args.weight_init:
        overrides["weight_init"] = args.weight_init
    command = [
        sys.executable, str(REPO_DIR / "train_sonar.py"),
        "--config", str(REPO_DIR / "configs" / "tiny_demo.yaml"), "--preset", "small",
        "--dataset", str(dataset), "--output_dir", str(output_dir),
        "--config_overrides", json.dumps(overrides),
        "--max_steps", str(args.steps), "--eval_steps", str(args.eval_steps),
        "--early_stopping_patience", str(10**6), "--checkpointing_steps", str(10**9),
        "--max_length", str(args.max_length), "--per_device_train_batch_size", str(args.batch_size),
        "--per_device_eval_batch_size", "32", "--learning_rate", str(args.learning_rate),
        "--rawboost_algo", str(args.rawboost_algo), "--seed", str(seed), "--report_to", "none",
        "--logging_steps", str(args.eval_steps),
    ]  # fmt: skip
    tic = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_DIR, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{name} seed {seed} failed:\n{result.stderr[-4000:]}")
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    curve = [(entry["step"], entry["dev_eer"]) for entry in history if "dev_eer" in entry]
    print(f"  {name} seed {seed}: {time.perf_counter() - tic:.0f} s, best dev EER {min(e for _, e in curve):.2f}%")
    return curve


def first_step_reaching(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((step for step, eer in curve if eer <= target), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps per run (same for both)")
    parser.add_argument("--eval_steps", type=int, default=50, help="dev EER every this many steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--max_length", type=int, default=24000, help="samples per crop (1.5 s)")
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--rawboost_algo", type=int, default=0, help="0 keeps the CPU budget for the models")
    parser.add_argument(
        "--weight_init", choices=["pytorch", "lecun_normal"], help="SonarConfig.weight_init (default: the preset's)"
    )
    parser.add_argument("--output_dir", type=Path, default=REPO_DIR / "outputs" / "bench_convergence")
    args = parser.parse_args()
    if not (SONAR_MINI / "LA").is_dir():
        print(f"sonar-mini not found at {SONAR_MINI}: nothing to benchmark.")
        return 0
    dataset = prepare_dataset(REPO_DIR / "data" / "sonar-mini")
    print(
        f"SONAR (small preset, 2 encoders) vs baseline (1 encoder, no filter bank, no JS) on sonar-mini; "
        f"encoder wav2vec2 hidden {args.hidden_size} x {args.num_layers} layers from scratch; {args.steps} steps, "
        f"batch {args.batch_size}, lr {args.learning_rate} cosine, crops {args.max_length} samples, balanced epochs, "
        f"RawBoost {args.rawboost_algo}, init {args.weight_init or 'preset'}, seeds {args.seeds}; dev EER every "
        f"{args.eval_steps} steps"
    )
    rows = []
    for seed in args.seeds:
        curves = {name: train(name, name == "sonar", seed, args, dataset) for name in ("sonar", "baseline")}
        baseline_best = min(eer for _, eer in curves["baseline"])
        steps = {name: first_step_reaching(curve, baseline_best) for name, curve in curves.items()}
        rows.append((seed, curves, baseline_best, steps))

    for seed, curves, baseline_best, steps in rows:
        print(f"\nseed {seed}: dev EER (%) by step")
        print(f"{'step':>6} {'SONAR':>8} {'baseline':>9}")
        for (step, sonar), (_, baseline) in zip(curves["sonar"], curves["baseline"]):
            print(f"{step:>6} {sonar:>8.2f} {baseline:>9.2f}")
        sonar_best = min(eer for _, eer in curves["sonar"])
        print(f"best: SONAR {sonar_best:.2f}%, baseline {baseline_best:.2f}% "
              f"(LFCC + logistic regression: {LFCC_LOGREG_DEV_EER}%)")  # fmt: skip
        reached = steps["sonar"]
        print(
            f"steps to reach the baseline's best ({baseline_best:.2f}%): baseline {steps['baseline']}, SONAR "
            + (f"{reached} (speed-up x{steps['baseline'] / reached:.2f})" if reached else f"not within {args.steps}")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
