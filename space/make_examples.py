"""Rebuild the Space's example clips from the speech recordings that ship inside the gradio package.

    python space/make_examples.py      # writes space/examples/*.flac (16 kHz mono 16-bit FLAC, deterministic)

One real excerpt, its Griffin-Lim resynthesis (a "generated" clip that keeps the words and the voice but loses the
phase: the demo corpus's system G01), and a longer clip that turns from real to resynthesised half way, so that the
Space draws its window timeline. See README.md for where the recordings come from. A development tool, not part of
the deployed Space: decoding and resynthesis are the project's own (`load_audio`, `make_demo_corpus.py`).
"""

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from dataset_scripts.make_demo_corpus import SYSTEMS, gradio_folder, match_level
from modeling_sonar import load_audio
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE


OUTPUT_DIR = Path(__file__).resolve().parent / "examples"


def read_excerpt(name: str, start_s: float, end_s: float) -> np.ndarray:
    """A mono excerpt of one of gradio's recordings at 16 kHz."""
    waveform = load_audio(gradio_folder() / "media_assets" / "audio" / name)
    return waveform[int(start_s * SONAR_SAMPLING_RATE) : int(end_s * SONAR_SAMPLING_RATE)]


def resynthesis(waveform: np.ndarray) -> np.ndarray:
    """The demo corpus's G01 (Griffin-Lim from the linear magnitude) at the loudness of the original."""
    method, settings = SYSTEMS["G01"]
    torch.manual_seed(0)
    return match_level(method(torch.from_numpy(waveform), **settings).numpy(), waveform)


def write(name: str, waveform: np.ndarray) -> None:
    path = OUTPUT_DIR / name
    sf.write(path, np.clip(waveform, -1, 1), SONAR_SAMPLING_RATE, subtype="PCM_16")
    print(f"{path.name}: {len(waveform) / SONAR_SAMPLING_RATE:.2f} s, {path.stat().st_size // 1024} KiB")


def main() -> None:
    OUTPUT_DIR.mkdir(exist_ok=True)
    real = read_excerpt("heath_ledger.mp3", 0.0, 3.0)
    write("real_speech.flac", real)
    write("generated_griffin_lim.flac", resynthesis(real))
    second_half = resynthesis(read_excerpt("cate_blanch.mp3", 2.5, 5.0))
    write("real_then_generated.flac", np.concatenate([read_excerpt("cate_blanch.mp3", 0.0, 2.5), second_half]))


if __name__ == "__main__":
    main()
