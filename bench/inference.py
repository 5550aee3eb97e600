"""Inference cost of SONAR-Full at XLS-R 300M size (random-initialised): against the single-encoder floor, and on
ONNX Runtime (fp32 and dynamic int8) against PyTorch, on CPU.

1. SONAR runs two encoder passes (content and noise), so 2.0x the time of `Wav2Vec2ForSequenceClassification` with
   the same encoder config is its floor; the target is at most 2.10x. Both models score the same batch of 4.04 s
   clips, runs interleaved so that machine load hits both alike.
2. ONNX Runtime: the same SONAR exported by `export_sonar_onnx` (fp32) and quantised (int8), one 4.04 s window at
   batch 1 and 8, `--threads` threads for every variant, runs interleaved: audio seconds per wall second and peak
   memory for PyTorch fp32, ONNX fp32 and ONNX int8. Target: the best ONNX variant >= 1.6x PyTorch at batch 1.
3. Long recordings: a 10-minute recording scored through the model's windowing (`window_batch_size` windows per
   batch) on the fastest backend, in windows per second against single 4.04 s clips on the same backend (target
   >= 0.9; windows overlap by the hop, so windows, not audio seconds, are compared).

Peak memory is measured in a child process per model and variant (peak RSS on CPU, `max_memory_allocated` on CUDA),
so no model's allocations count against another's; ONNX children load only the runner, not PyTorch.

    python bench/inference.py                      # CPU: all three, about 10 minutes on 2 cores, 12 GB of memory
    python bench/inference.py --onnx_dir outputs/bench_onnx   # keep the exports and reuse them next time
    python bench/inference.py --device cuda --batch_size 8 --runs 10 --dtype bfloat16 --skip_onnx

Ends with the lines `sonar_vs_wav2vec2_ratio=`, `onnx_vs_torch_speedup=` (best ONNX variant / PyTorch fp32 at
batch 1), `onnx_max_abs_score_diff=` (fp32) and `long_recording_windows_per_s_ratio=`.
"""

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import Wav2Vec2ForSequenceClassification

from modeling_sonar import SonarConfig, SonarForAudioClassification
from modeling_sonar.audio_sonar import sonar_scores
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE, SONAR_WINDOW_LENGTH


RUNNER_FILE = Path(__file__).resolve().parents[1] / "modeling_sonar" / "onnx_sonar.py"
ONNX_VARIANTS = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}


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


def peak_rss_mib() -> float:
    """
    This process's peak resident memory. `VmHWM` belongs to the address space `exec` created; `ru_maxrss` is
    carried over from the forked parent on Linux, so a child of a large process would report the parent's peak.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
        peak = peak_rss_mib()
    return {"weights_mib": weights, "peak_mib": peak, "parameters": sum(p.numel() for p in model.parameters())}


def measure_in_child(name: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--measure_memory", name, "--device", args.device, "--dtype", args.dtype,
               "--batch_size", str(args.batch_size), "--samples", str(args.samples)]  # fmt: skip
    if args.share_encoders:
        command.append("--share_encoders")
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# An ONNX child loads the runner's file alone: the package, or this script, would import PyTorch into it.
ONNX_MEMORY_CHILD = """
import importlib.util, json, sys
import numpy as np
runner_file, model_path, batch_size, samples, threads = sys.argv[1:]
spec = importlib.util.spec_from_file_location("onnx_sonar", runner_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
runner = module.SonarOnnxRunner(model_path, num_threads=int(threads))
runner(np.random.default_rng(0).standard_normal((int(batch_size), int(samples)), dtype=np.float32) * 0.1)
status = open("/proc/self/status").read()
print(json.dumps({"peak_mib": int(status.split("VmHWM:")[1].split()[0]) / 1024, "torch": "torch" in sys.modules}))
"""


def variant_peak_memory(variant: str, batch_size: int, args: argparse.Namespace) -> float:
    """Peak RSS of one forward at `batch_size` in a fresh process: PyTorch (building the model) or one ONNX session."""
    if variant == "pytorch":
        command = [sys.executable, __file__, "--measure_memory", "sonar", "--device", "cpu", "--threads",
                   str(args.threads), "--batch_size", str(batch_size), "--samples", str(args.samples)]  # fmt: skip
    else:
        model_path = args.onnx_dir / ONNX_VARIANTS[variant]
        command = [sys.executable, "-c", ONNX_MEMORY_CHILD, str(RUNNER_FILE), str(model_path), str(batch_size),
                   str(args.samples), str(args.threads)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def export_onnx(model: SonarForAudioClassification, onnx_dir: Path) -> None:
    """fp32 export and its int8 quantisation, unless `onnx_dir` already holds both (reruns reuse them)."""
    from sonar_training.onnx_export import export_sonar_onnx, quantize_sonar_onnx

    fp32, int8 = (onnx_dir / name for name in ONNX_VARIANTS.values())
    onnx_dir.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        tic = time.perf_counter()
        export_sonar_onnx(model, fp32)
        print(f"exported fp32 ONNX in {time.perf_counter() - tic:.0f} s")
    if not int8.is_file():
        tic = time.perf_counter()
        quantize_sonar_onnx(fp32, int8)
        print(f"quantised int8 ONNX in {time.perf_counter() - tic:.0f} s")


def onnx_benchmark(model: SonarForAudioClassification, args: argparse.Namespace) -> dict:
    """PyTorch fp32, ONNX fp32 and ONNX int8 at each batch size, interleaved; returns the summary figures."""
    from modeling_sonar.onnx_sonar import SonarOnnxRunner

    export_onnx(model, args.onnx_dir)
    runners = {
        name: SonarOnnxRunner(args.onnx_dir / file, num_threads=args.threads) for name, file in ONNX_VARIANTS.items()
    }
    clip_s = args.samples / SONAR_SAMPLING_RATE
    print(f"\nONNX Runtime: SONAR-Full, XLS-R 300M size, random init; {args.threads} threads; one {clip_s:.2f} s "
          f"window per clip; runs={args.runs}, interleaved; {args.onnx_dir}")  # fmt: skip
    summary = {"throughput": {}}
    for batch_size in args.onnx_batch_sizes:
        generator = torch.Generator().manual_seed(batch_size)
        batch = (torch.randn(batch_size, args.samples, generator=generator) * 0.1).numpy()
        forwards = {
            "pytorch": lambda: model.forward_windows(torch.from_numpy(batch)),
            **{name: (lambda r=runner: r(batch)) for name, runner in runners.items()},
        }
        with torch.inference_mode():
            reference = model.forward_windows(torch.from_numpy(batch))[0]
            for forward in forwards.values():
                forward()  # warm-up
            times = {name: [] for name in forwards}
            for _ in range(args.runs):
                for name, forward in forwards.items():
                    gc.collect()
                    tic = time.perf_counter()
                    forward()
                    times[name].append(time.perf_counter() - tic)
        torch_scores = sonar_scores(reference, model.config).numpy()
        for name in forwards:
            best = min(times[name])
            throughput = batch_size * clip_s / best
            summary["throughput"][(name, batch_size)] = throughput
            peak = variant_peak_memory(name, batch_size, args)
            diff = ""
            if name in runners:
                score_diff = float(np.abs(runners[name](batch)["scores"] - torch_scores).max())
                diff = f" max|score diff|={score_diff:.2e}"
                if name == "onnx":
                    summary["max_abs_score_diff"] = max(summary.get("max_abs_score_diff", 0.0), score_diff)
            runs = ", ".join(f"{t:.2f}" for t in times[name])
            print(f"batch={batch_size} {name:9s} forward={best:.3f}s (runs: {runs}) "
                  f"throughput={throughput:.2f} audio-s/s peak={peak:.0f}MiB{diff}")  # fmt: skip
    first = args.onnx_batch_sizes[0]
    best_name = max(ONNX_VARIANTS, key=lambda name: summary["throughput"][(name, first)])
    summary["best"] = best_name
    summary["speedup"] = summary["throughput"][(best_name, first)] / summary["throughput"][("pytorch", first)]
    summary["runners"] = runners
    return summary


def long_recording_benchmark(model: SonarForAudioClassification, backend: str, runner, args) -> float:
    """
    Windows per second on a long recording against single clips, both through the model's own windowing, interleaved:
    after each batch of `window_batch_size` windows of the recording, one single clip is scored and timed apart, so
    that both rates are averages over the same minutes of machine load. One batch is scored first as a warm-up
    (ONNX Runtime grows its memory arena on the first large batch).
    """
    from modeling_sonar.pipeline_sonar import sonar_onnx_window_forward

    config = model.config
    window_forward = (
        sonar_onnx_window_forward(runner) if runner is not None else lambda w: model.forward_windows(w)[:2]
    )
    generator = torch.Generator().manual_seed(1)
    recording = torch.randn(1, int(args.long_recording_s * SONAR_SAMPLING_RATE), generator=generator) * 0.1
    clip = recording[:, : args.samples]
    single = []

    def then_one_single_clip(windows: torch.Tensor) -> tuple:
        outputs = window_forward(windows)
        tic = time.perf_counter()
        model(clip, window_forward=window_forward)
        single.append(time.perf_counter() - tic)
        return outputs

    with torch.inference_mode():
        model(recording[:, : config.max_length + (config.window_batch_size - 1) * config.window_hop_length],
              window_forward=window_forward)  # fmt: skip
        model(clip, window_forward=window_forward)
        tic = time.perf_counter()
        outputs = model(recording, window_forward=then_one_single_clip)
        long_s = time.perf_counter() - tic - sum(single)
    num_windows = int(outputs.window_mask.sum())
    single_rate, long_rate = len(single) / sum(single), num_windows / long_s
    print(f"\nlong recording ({backend}): {args.long_recording_s / 60:.0f} min = {num_windows} windows in "
          f"{long_s:.1f} s, {long_rate:.3f} windows/s at window_batch_size={config.window_batch_size}")  # fmt: skip
    clip_s = args.samples / SONAR_SAMPLING_RATE
    print(f"single {clip_s:.2f} s clips, one after each batch: {single_rate:.3f} windows/s "
          f"({len(single)} clips, {min(single):.2f}-{max(single):.2f} s each)")  # fmt: skip
    return long_rate / single_rate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--samples", type=int, default=SONAR_WINDOW_LENGTH, help="samples per clip (4.04 s)")
    parser.add_argument("--runs", type=int, default=3, help="timed forward passes per model, interleaved")
    parser.add_argument("--share_encoders", action="store_true", help="tie SONAR's encoders (one batched pass)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads, PyTorch and ONNX Runtime alike")
    parser.add_argument("--onnx_batch_sizes", type=int, nargs="+", default=[1, 8], help="first one: the speed-up's")
    parser.add_argument("--onnx_dir", type=Path, help="where the ONNX exports go, reused if present (default: temp)")
    parser.add_argument("--long_recording_s", type=float, default=600.0, help="the long recording's length")
    parser.add_argument("--skip_onnx", action="store_true", help="only the SONAR vs wav2vec2 comparison")
    parser.add_argument("--measure_memory", choices=["sonar", "wav2vec2"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.measure_memory:
        print(json.dumps(peak_memory(args)))
        return

    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    print(f"device={args.device} dtype={args.dtype} threads={torch.get_num_threads()} batch={args.batch_size} "
          f"clip={args.samples / SONAR_SAMPLING_RATE:.2f}s runs={args.runs} "
          f"share_encoders={args.share_encoders}")  # fmt: skip
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

    audio_seconds = args.batch_size * args.samples / SONAR_SAMPLING_RATE
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
    lines = [f"sonar_vs_wav2vec2_ratio={ratio:.3f}"]
    if args.skip_onnx or args.device != "cpu" or args.dtype != "float32" or args.share_encoders:
        print("(ONNX Runtime and long recordings: CPU, float32, two encoders only; skipped)")
    else:
        sonar = models.pop("sonar")
        del models, model
        gc.collect()
        with tempfile.TemporaryDirectory(prefix="sonar_onnx_") as scratch:
            args.onnx_dir = args.onnx_dir or Path(scratch)
            onnx = onnx_benchmark(sonar, args)
            runner = onnx.pop("runners")[onnx["best"]]  # the other session is freed before the long recording
            gc.collect()
            long_ratio = long_recording_benchmark(sonar, onnx["best"], runner, args)
            del runner
        print(
            f"\nfastest ONNX variant: {onnx['best']} (speed-up at batch {args.onnx_batch_sizes[0]}, target >= 1.6); "
            "score difference: fp32 ONNX against PyTorch (target <= 1e-3); long recording: target >= 0.9"
        )
        lines += [
            f"onnx_vs_torch_speedup={onnx['speedup']:.3f}",
            f"onnx_max_abs_score_diff={onnx['max_abs_score_diff']:.2e}",
            f"long_recording_windows_per_s_ratio={long_ratio:.3f}",
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
