"""Rebuild the Space's example clips from the speech recordings that ship inside the gradio package.

    python space/make_examples.py      # writes space/examples/*.flac (16 kHz mono 16-bit FLAC, deterministic)

One real excerpt, its Griffin-Lim resynthesis (a "generated" clip that keeps the words and the voice but loses the
phase), and a longer clip that turns from real to resynthesised half way, so that the Space draws its window
timeline. See README.md for where the recordings come from.
"""

from pathlib import Path

import gradio
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T


SAMPLING_RATE = 16000
GRADIO_AUDIO = Path(gradio.__file__).parent / "media_assets" / "audio"
OUTPUT_DIR = Path(__file__).resolve().parent / "examples"
N_FFT = 512


def read_excerpt(name: str, start_s: float, end_s: float) -> torch.Tensor:
    """A mono excerpt of one of gradio's recordings at 16 kHz."""
    data, rate = sf.read(GRADIO_AUDIO / name, dtype="float32", always_2d=True)
    waveform = AF.resample(torch.from_numpy(data.mean(axis=1)), rate, SAMPLING_RATE)
    return waveform[int(start_s * SAMPLING_RATE) : int(end_s * SAMPLING_RATE)]


def griffin_lim(waveform: torch.Tensor) -> torch.Tensor:
    """Resynthesis from the magnitude spectrogram alone, at the loudness of the original."""
    torch.manual_seed(0)
    magnitude = T.Spectrogram(n_fft=N_FFT, power=1.0)(waveform)
    resynthesis = T.GriffinLim(n_fft=N_FFT, n_iter=32, power=1.0, length=len(waveform))(magnitude)
    return resynthesis * waveform.pow(2).mean().sqrt() / resynthesis.pow(2).mean().sqrt()


def write(name: str, waveform: torch.Tensor) -> None:
    path = OUTPUT_DIR / name
    sf.write(path, np.clip(waveform.numpy(), -1, 1), SAMPLING_RATE, subtype="PCM_16")
    print(f"{path}: {len(waveform) / SAMPLING_RATE:.2f} s, {path.stat().st_size // 1024} KiB")


def main() -> None:
    OUTPUT_DIR.mkdir(exist_ok=True)
    real = read_excerpt("heath_ledger.mp3", 0.0, 3.0)
    write("real_speech.flac", real)
    write("generated_griffin_lim.flac", griffin_lim(real))
    write(
        "real_then_generated.flac",
        torch.cat([read_excerpt("cate_blanch.mp3", 0.0, 2.5), griffin_lim(read_excerpt("cate_blanch.mp3", 2.5, 5.0))]),
    )


if __name__ == "__main__":
    main()
