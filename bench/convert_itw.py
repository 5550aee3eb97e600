"""Benchmark: convert an In-the-Wild-sized `meta.csv` (31,779 rows) without decoding audio.

Writes 31,779 tiny wav files (0.1 s of noise each) and a `meta.csv` into a temporary folder, then times
`dataset_scripts.in_the_wild.build_dataset` (CSV parsing, file check, Arrow table) and, separately, `save_to_disk`
(which copies every file's bytes into the Arrow shards). Target: conversion under 30 s on the 2-core dev machine.

    python bench/convert_itw.py [--rows 31779]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from dataset_scripts.common import write_dataset
from dataset_scripts.in_the_wild import build_dataset
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE


ITW_ROWS = 31779
TARGET_S = 30.0


def make_fake_release(folder: Path, rows: int) -> None:
    """`rows` identical 0.1 s wav files plus `meta.csv` in the In-the-Wild layout (about one third bona fide)."""
    wav = folder / "0.wav"
    sf.write(
        wav,
        (np.random.default_rng(0).standard_normal(1600) * 0.1).astype(np.float32),
        SONAR_SAMPLING_RATE,
        subtype="PCM_16",
    )
    payload = wav.read_bytes()
    lines = ["file,speaker,label"]
    for index in range(rows):
        if index:
            (folder / f"{index}.wav").write_bytes(payload)
        lines.append(f"{index}.wav,Speaker {index % 58},{'bona-fide' if index % 3 == 0 else 'spoof'}")
    (folder / "meta.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=ITW_ROWS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        release = Path(tmp) / "release_in_the_wild"
        release.mkdir()
        start = time.perf_counter()
        make_fake_release(release, args.rows)
        print(f"setup: wrote {args.rows} wav files + meta.csv in {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        dataset = build_dataset(release)
        build_s = time.perf_counter() - start
        print(
            f"build_dataset: {dataset['test'].num_rows} rows in {build_s:.2f} s "
            f"({dataset['test'].num_rows / build_s:,.0f} rows/s), audio not decoded"
        )

        start = time.perf_counter()
        write_dataset(dataset, Path(tmp) / "out")
        save_s = time.perf_counter() - start
        print(f"save_to_disk (embeds file bytes): {save_s:.2f} s")
        total_s = build_s + save_s
        verdict = "meets" if total_s < TARGET_S else "MISSES"
        print(f"total conversion: {total_s:.2f} s ({verdict} the {TARGET_S:.0f} s target)")


if __name__ == "__main__":
    main()
