#!/usr/bin/env python
"""Training data pipeline throughput: clips per second one DataLoader worker turns out, and the workers a GPU needs.

One process, one thread, as a DataLoader worker runs: `SonarCollator` at the paper's setting (decode, 64,600-sample
crop, RawBoost algo 4) over batches of training rows held in memory (as `save_to_disk` embeds the FLAC bytes),
before (RawBoost as first written, `tests/rawboost_reference.py`) and after (`sonar_training.rawboost`), the runs
interleaved so that machine load hits both alike. Two clip sets from sonar-mini's train split:

- `sonar-mini`: the clips as they are (16 kHz FLAC, up to 6 s);
- `64600`: the same clips cut or tiled to 64,600 samples (4.04 s; ASVspoof 2019 clips average 3.5 s), re-encoded.

Rates are clips per CPU-second of this process (what a worker on a core of its own delivers; wall-clock rates, which
other processes on the machine lower, are shown beside them). Each set also prints the largest difference between the
two collators' batches under the same seed, and the workers one GPU needs at `--gpu_clips_per_s` (150: SONAR-Full on
one H100 at batch 64, bf16).

    python bench/dataloader.py
    python bench/dataloader.py --data ../shared/data/sonar-mini/LA --clips 512 --batch_size 64
"""

import os


for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy loads: a worker computes on one core

import argparse  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from datasets import Audio, disable_progress_bars  # noqa: E402


REPO_DIR = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_DIR), str(REPO_DIR / "tests")]

import rawboost_reference  # noqa: E402

from dataset_scripts.asvspoof2019_la import build_split_dataset  # noqa: E402
from modeling_sonar import load_audio  # noqa: E402
from modeling_sonar.audio_sonar import sonar_window  # noqa: E402
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE, SONAR_WINDOW_LENGTH  # noqa: E402
from sonar_training import data  # noqa: E402


DEFAULT_DATA = REPO_DIR.parent / "shared" / "data" / "sonar-mini" / "LA"


def load_rows(root: Path, num_clips: int) -> list[dict]:
    """The first `num_clips` training rows of the converted split, their FLAC bytes read into memory."""
    dataset = build_split_dataset(root, "train").cast_column("audio", Audio(decode=False))
    rows = []
    for row in dataset.select(range(min(num_clips, len(dataset)))):
        path = Path(row["audio"]["path"])
        rows.append({"audio": {"bytes": path.read_bytes(), "path": path.name}, "label": row["label"]})
    return rows


def fixed_length_rows(rows: list[dict], length: int) -> list[dict]:
    """The same clips cut or tiled to `length` samples (the paper's crop), re-encoded as 16-bit FLAC."""
    fixed = []
    for row in rows:
        buffer = io.BytesIO()
        waveform = sonar_window(load_audio(row["audio"]), length)
        sf.write(buffer, waveform, SONAR_SAMPLING_RATE, format="FLAC", subtype="PCM_16")
        fixed.append({"audio": {"bytes": buffer.getvalue(), "path": row["audio"]["path"]}, "label": row["label"]})
    return fixed


def clips_per_second(collator: data.SonarCollator, rows: list[dict], batch_size: int) -> tuple[float, float]:
    """(clips per CPU-second, clips per wall-clock second) over all rows, after one warm-up batch."""
    collator(rows[:batch_size])
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(rows), batch_size):
        collator(rows[start : start + batch_size])
    return len(rows) / (time.process_time() - cpu), len(rows) / (time.perf_counter() - wall)


def reference_rawboost():
    """Within this context the collator augments with RawBoost as first written."""
    return mock.patch.object(data, "rawboost", rawboost_reference.rawboost)


def measure(rows: list[dict], args: argparse.Namespace) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Best (CPU, wall) rates of `repeats` interleaved passes before and after, and the largest difference between
    their first batches under the same seed."""

    def collator() -> data.SonarCollator:
        return data.SonarCollator(max_length=args.max_length, train=True, rawboost_algo=args.rawboost_algo, seed=0)

    best = {"before": (0.0, 0.0), "after": (0.0, 0.0)}
    for _ in range(args.repeats):
        with reference_rawboost():
            best["before"] = max(best["before"], clips_per_second(collator(), rows, args.batch_size))
        best["after"] = max(best["after"], clips_per_second(collator(), rows, args.batch_size))
    with reference_rawboost():
        before = collator()(rows[: args.batch_size])["input_values"]
    after = collator()(rows[: args.batch_size])["input_values"]
    return best["before"], best["after"], float((before - after).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ASVspoof 2019 LA folder (sonar-mini's LA/)")
    parser.add_argument("--clips", type=int, default=256, help="training clips per set")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rawboost_algo", type=int, default=4)
    parser.add_argument("--max_length", type=int, default=SONAR_WINDOW_LENGTH)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per implementation; the best counts")
    parser.add_argument("--gpu_clips_per_s", type=float, default=150.0, help="what one GPU trains on per second")
    args = parser.parse_args()
    if not (args.data / "ASVspoof2019_LA_train").is_dir():
        parser.error(f"--data {args.data} has no ASVspoof2019_LA_train/ (sonar-mini lives in ../shared/data)")
    for name in ("clips", "batch_size", "max_length", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.rawboost_algo not in range(9):
        parser.error(f"--rawboost_algo must be in 0..8, got {args.rawboost_algo}")
    if args.gpu_clips_per_s <= 0:
        parser.error(f"--gpu_clips_per_s must be > 0, got {args.gpu_clips_per_s}")
    torch.set_num_threads(1)
    disable_progress_bars()

    rows = load_rows(args.data, args.clips)
    clip_sets = {"sonar-mini": rows, str(args.max_length): fixed_length_rows(rows, args.max_length)}
    print(
        f"{len(rows)} clips per set, batch {args.batch_size}, RawBoost algo {args.rawboost_algo}, one thread; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (rates are per CPU-second, wall in brackets)"
    )
    for name, clips in clip_sets.items():
        seconds = np.mean([sf.info(io.BytesIO(row["audio"]["bytes"])).duration for row in clips])
        (before, before_wall), (after, after_wall), max_abs_diff = measure(clips, args)
        print(
            f"set={name} (mean {seconds:.2f} s): before={before:.1f} clips/s ({before_wall:.1f} wall) "
            f"after={after:.1f} clips/s ({after_wall:.1f} wall) speedup={after / before:.2f} "
            f"max_abs_diff={max_abs_diff:.1e}"
        )
        print(
            f"set={name}: workers_per_gpu_at_{args.gpu_clips_per_s:g}_clips_per_s "
            f"before={math.ceil(args.gpu_clips_per_s / before)} after={math.ceil(args.gpu_clips_per_s / after)}"
        )


if __name__ == "__main__":
    main()
