"""Inference cost of SONAR-Full against the single-encoder floor, both at XLS-R 300M size and random-initialised.

SONAR runs two encoder passes (content and noise), so 2.0x the time of `Wav2Vec2ForSequenceClassification` with the
same encoder config is its floor; the target is at most 2.10x. Both models score the same batch of 4.04 s clips, runs
interleaved so that machine load hits both alike. Peak memory is measured in a child process per model (peak RSS on
CPU, `max_memory_allocated` on CUDA), so neither model's allocations count against the other.

    python bench/inference.py                      # CPU, batch 1, 3 timed runs each
    python bench/inference.py --device cuda --batch_size 8 --runs 10 --dtype bfloat16

Ends with one line `sonar_vs_wav2vec2_ratio=<number>`.
"""

import argparse
import gc
import json
import resource
import subprocess
import sys
import time

import torch
from transformers import Wav2Vec2ForSequenceClassification

from modeling_sonar import SonarConfig, SonarForAudioClassification


def build(name: str, share_encoders: bool, dtype: torch.dtype, device: str) -> torch.nn.Module:
    config = SonarConfig.from_preset("sonar-full", share_encoders=share_encoders)
    if name == "sonar":
        model = SonarForAudioClassification(config)
    else:
        model = Wav2Vec2ForSequenceClassification(config.encoder_config)
    return model.to(device=device, dtype=dtype).eval()


def forward_seconds(model: torch.nn.Module, batch: torch.Tensor) -> float:
    if batch.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        model(batch)
    if batch.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_memory(args: argparse.Namespace) -> dict:
    """Child-process mode: builds one model, runs one forward, reports weights and peak memory in MiB."""
    dtype = getattr(torch, args.dtype)
    model = build(args.measure_memory, args.share_encoders, dtype, args.device)
    batch = torch.randn(args.batch_size, args.samples, device=args.device, dtype=dtype) * 0.1
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        forward_seconds(model, batch)
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        forward_seconds(model, batch)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"weights_mib": weights, "peak_mib": peak, "parameters": sum(p.numel() for p in model.parameters())}


def measure_in_child(name: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--measure_memory", name, "--device", args.device, "--dtype", args.dtype,
               "--batch_size", str(args.batch_size), "--samples", str(args.samples)]  # fmt: skip
    if args.share_encoders:
        command.append("--share_encoders")
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--samples", type=int, default=64600, help="samples per clip (64,600 = 4.04 s at 16 kHz)")
    parser.add_argument("--runs", type=int, default=3, help="timed forward passes per model, interleaved")
    parser.add_argument("--share_encoders", action="store_true", help="tie SONAR's encoders (one batched pass)")
    parser.add_argument("--measure_memory", choices=["sonar", "wav2vec2"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure_memory:
        print(json.dumps(peak_memory(args)))
        return

    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    print(f"device={args.device} dtype={args.dtype} threads={torch.get_num_threads()} batch={args.batch_size} "
          f"clip={args.samples / 16000:.2f}s runs={args.runs} share_encoders={args.share_encoders}")  # fmt: skip
    memory = {name: measure_in_child(name, args) for name in ("wav2vec2", "sonar")}
    models = {name: build(name, args.share_encoders, dtype, args.device) for name in ("wav2vec2", "sonar")}
    batch = torch.randn(args.batch_size, args.samples, device=args.device, dtype=dtype) * 0.1
    for model in models.values():
        forward_seconds(model, batch)  # warm-up

    times = {name: [] for name in models}
    for _ in range(args.runs):
        for name, model in models.items():
            gc.collect()
            times[name].append(forward_seconds(model, batch))

    audio_seconds = args.batch_size * args.samples / 16000
    for name in models:
        best = min(times[name])
        runs = ", ".join(f"{t:.3f}" for t in times[name])
        print(
            f"{name:9s} params={memory[name]['parameters'] / 1e6:.1f}M weights={memory[name]['weights_mib']:.0f}MiB "
            f"peak={memory[name]['peak_mib']:.0f}MiB forward={best:.3f}s (runs: {runs}) "
            f"throughput={audio_seconds / best:.2f} audio-s/s"
        )
    ratio = min(times["sonar"]) / min(times["wav2vec2"])
    print(
        f"memory_ratio={memory['sonar']['peak_mib'] / memory['wav2vec2']['peak_mib']:.2f} (target: time ratio <= 2.10)"
    )
    print(f"sonar_vs_wav2vec2_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
