#!/usr/bin/env python
"""Training-step cost of SONAR-Full at XLS-R 300M size (random init from the config, no download): step time, peak
GPU memory and samples per second, in bf16 autocast and in fp32, on 64,600-sample clips.

    python bench/gpu_step.py                                 # GPU: batch 8, 3 warm-up + 10 timed steps per precision
    python bench/gpu_step.py --preset tiny --steps 2 --warmup 1 --batch_size 2   # CPU smoke check

One optimiser step = forward (weighted CE + JS), backward, AdamW step, filter projection, as `train_sonar.py` does.
"""

import argparse
import time

import torch

from modeling_sonar import SonarConfig, SonarForAudioClassification
from modeling_sonar.configuration_sonar import SONAR_WINDOW_LENGTH


def run(preset: str, precision: str, batch_size: int, length: int, warmup: int, steps: int, device: str) -> dict:
    torch.manual_seed(0)
    model = SonarForAudioClassification(SonarConfig.from_preset(preset, class_weights=[0.9, 0.1])).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=1e-4)
    inputs = 0.1 * torch.randn(batch_size, length, device=device)
    labels = torch.arange(batch_size, device=device) % 2
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(warmup + steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        tic = time.perf_counter()
        with autocast:
            loss = model(inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        model.project_constraint()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - tic)
    step_time = sum(times) / len(times)
    return {
        "precision": precision,
        "parameters_m": model.num_parameters() / 1e6,
        "step_s": step_time,
        "samples_per_s": batch_size / step_time,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan"),
        "loss": loss.item(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="sonar-full")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--length", type=int, default=SONAR_WINDOW_LENGTH, help="samples per clip")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"{args.preset} on {name}: batch {args.batch_size} x {args.length} samples, {args.steps} timed steps")
    print(f"{'precision':>9} {'params (M)':>10} {'step (s)':>9} {'samples/s':>10} {'peak mem (GiB)':>15} {'loss':>8}")
    for precision in args.precisions:
        try:
            r = run(args.preset, precision, args.batch_size, args.length, args.warmup, args.steps, device)
        except torch.OutOfMemoryError:
            print(f"{precision:>9} out of memory at batch {args.batch_size}")
            torch.cuda.empty_cache()
            continue
        print(
            f"{r['precision']:>9} {r['parameters_m']:>10.1f} {r['step_s']:>9.3f} {r['samples_per_s']:>10.1f} "
            f"{r['peak_memory_gib']:>15.2f} {r['loss']:>8.4f}"
        )
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
