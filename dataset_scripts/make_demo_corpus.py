"""Build the embedded demo corpus: real speech shipped inside gradio versus resyntheses of it made here.

A SMOKE CORPUS, NOT A BENCHMARK. It exists so that training, evaluation and the Space run end to end offline in
minutes on a CPU; its EER says nothing about deepfake detection (one handful of speakers, eight signal-processing
"generators", no neural vocoder). Use ASVspoof 2019 LA, 2021 LA/DF and In-the-Wild for numbers.

Real side: the speech recordings bundled in gradio's `media_assets/audio` (Cate Blanchett and Heath Ledger
excerpts and a voice recording), decoded with soundfile, cut into seven 2-3.5 s source utterances, each given seven
speed/gain variants (speed 0.85-1.15 by resampling, gain -6..0 dB). Generated side: each real clip resynthesised by
four of the systems below, drawn at random; the loudness is matched to the real clip.

    G01-G04  Griffin-Lim from the linear magnitude (n_fft 512/1024/256/512, 32/16/8/64 iterations, momentum)
    G05-G06  mel-spectrogram inversion (80 and 40 mel bins, least squares) + Griffin-Lim
    G07      magnitude with random phase, one inverse STFT
    G08      cepstral spectral envelope on white-noise excitation (a noise-excited vocoder)

Source utterances (not clips) are split 4/2/1 into train/dev/eval, so no utterance's real or generated versions
cross splits. Output, in the ASVspoof 2019 LA layout that `asvspoof2019_la.py` reads:

    OUTPUT/LA/ASVspoof2019_LA_{train,dev,eval}/flac/LA_{T,D,E}_*.flac        16 kHz mono 16-bit FLAC
    OUTPUT/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
    OUTPUT/systems.csv   system -> generator settings
    OUTPUT/sources.csv   clip -> source recording, offset, speed, gain

    python dataset_scripts/make_demo_corpus.py --output data/demo [--seed 0]

It is deterministic in `--seed`, takes a few seconds, and does nothing when OUTPUT is already complete.
"""

import argparse
import csv
import importlib.util
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from dataset_scripts.common import atomic_output
from modeling_sonar import load_audio
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE


# gradio files that hold speech (cantina.wav and sax.wav are music); speaker ids group recordings of one person
SOURCES = {
    "media_assets/audio/cate_blanch.mp3": "DEMO_CB",
    "media_assets/audio/cate_blanch_2.mp3": "DEMO_CB",
    "media_assets/audio/heath_ledger.mp3": "DEMO_HL",
    "media_assets/audio/recording1.wav": "DEMO_R1",
}
UTTERANCE_S = 2.5  # target length of a source utterance
SPEEDS = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)
SYSTEMS_PER_CLIP = 4
SPLIT_SIZES = {"train": 4, "dev": 2, "eval": 1}  # source utterances per split
SPLIT_LAYOUT = {
    "train": ("T", "ASVspoof2019.LA.cm.train.trn.txt"),
    "dev": ("D", "ASVspoof2019.LA.cm.dev.trl.txt"),
    "eval": ("E", "ASVspoof2019.LA.cm.eval.trl.txt"),
}
COMPLETE_MARKER = ".complete.json"


def _magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    return T.Spectrogram(n_fft=n_fft, hop_length=n_fft // 4, power=1)(x)


def griffin_lim(x: torch.Tensor, n_fft: int, n_iter: int, momentum: float) -> torch.Tensor:
    """Phase re-estimated from the STFT magnitude alone."""
    inverse = T.GriffinLim(
        n_fft=n_fft, hop_length=n_fft // 4, n_iter=n_iter, power=1, momentum=momentum, length=x.shape[-1]
    )
    return inverse(_magnitude(x, n_fft))


def mel_griffin_lim(x: torch.Tensor, n_fft: int, n_mels: int, n_iter: int) -> torch.Tensor:
    """Mel spectrogram (what TTS acoustic models predict) inverted by least squares, then Griffin-Lim."""
    mel = T.MelScale(n_mels=n_mels, sample_rate=SONAR_SAMPLING_RATE, n_stft=n_fft // 2 + 1)(_magnitude(x, n_fft))
    magnitude = T.InverseMelScale(n_stft=n_fft // 2 + 1, n_mels=n_mels, sample_rate=SONAR_SAMPLING_RATE)(mel)
    inverse = T.GriffinLim(n_fft=n_fft, hop_length=n_fft // 4, n_iter=n_iter, power=1, length=x.shape[-1])
    return inverse(magnitude)


def random_phase(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """True magnitude with uniformly random phase: the crudest resynthesis."""
    magnitude = _magnitude(x, n_fft)
    phase = torch.rand(magnitude.shape) * 2 * math.pi
    window = torch.hann_window(n_fft)
    return torch.istft(torch.polar(magnitude, phase), n_fft, n_fft // 4, window=window, length=x.shape[-1])


def noise_vocoder(x: torch.Tensor, n_fft: int, n_cepstra: int) -> torch.Tensor:
    """Spectral envelope (low-quefrency cepstrum) of the speech imposed on white noise: whisper-like speech."""
    window = torch.hann_window(n_fft)
    log_magnitude = torch.log(_magnitude(x, n_fft) + 1e-5)
    cepstrum = torch.fft.irfft(log_magnitude, dim=0)
    cepstrum[n_cepstra : cepstrum.shape[0] - n_cepstra + 1] = 0
    envelope = torch.exp(torch.fft.rfft(cepstrum, dim=0).real)
    noise = torch.stft(torch.randn(x.shape[-1]), n_fft, n_fft // 4, window=window, return_complex=True)
    noise = noise / noise.abs().clamp_min(1e-8)
    return torch.istft(noise * envelope, n_fft, n_fft // 4, window=window, length=x.shape[-1])


SYSTEMS = {
    "G01": (griffin_lim, {"n_fft": 512, "n_iter": 32, "momentum": 0.99}),
    "G02": (griffin_lim, {"n_fft": 1024, "n_iter": 16, "momentum": 0.99}),
    "G03": (griffin_lim, {"n_fft": 256, "n_iter": 8, "momentum": 0.99}),
    "G04": (griffin_lim, {"n_fft": 512, "n_iter": 64, "momentum": 0.0}),
    "G05": (mel_griffin_lim, {"n_fft": 1024, "n_mels": 80, "n_iter": 32}),
    "G06": (mel_griffin_lim, {"n_fft": 512, "n_mels": 40, "n_iter": 16}),
    "G07": (random_phase, {"n_fft": 512}),
    "G08": (noise_vocoder, {"n_fft": 512, "n_cepstra": 40}),
}


def match_level(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Same RMS as the real clip (loudness must not give the class away), peak kept under 1."""
    fake = fake * (np.sqrt(np.mean(real**2)) / max(np.sqrt(np.mean(fake**2)), 1e-8))
    return _limit_peak(fake)


def _limit_peak(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    return (x * (0.99 / peak) if peak > 0.99 else x).astype(np.float32)


def gradio_folder() -> Path:
    """The installed gradio package, whose bundled recordings are the real speech here (found, not imported)."""
    spec = importlib.util.find_spec("gradio")
    if spec is None or spec.origin is None:
        raise RuntimeError("The demo corpus is made from gradio's bundled recordings: pip install -e '.[space]'")
    return Path(spec.origin).parent


def find_source_recordings() -> list[tuple[Path, str]]:
    """Paths of gradio's bundled speech recordings with their speaker ids."""
    package = gradio_folder()
    found = [(package / relative, speaker) for relative, speaker in SOURCES.items() if (package / relative).is_file()]
    if not found:
        raise RuntimeError(f"None of gradio's speech recordings {list(SOURCES)} is under {package}")
    return found


def source_utterances() -> list[dict]:
    """Cut each recording into equal pieces of about `UTTERANCE_S` seconds (2-3.5 s with gradio's recordings)."""
    utterances = []
    for path, speaker in find_source_recordings():
        waveform = load_audio(str(path), SONAR_SAMPLING_RATE)
        pieces = max(1, round(len(waveform) / (UTTERANCE_S * SONAR_SAMPLING_RATE)))
        size = len(waveform) // pieces
        for piece in range(pieces):
            utterances.append(
                {
                    "waveform": waveform[piece * size : (piece + 1) * size],
                    "speaker": speaker,
                    "source": path.name,
                    "offset_s": piece * size / SONAR_SAMPLING_RATE,
                }
            )
    return utterances


def _write_corpus(folder: Path, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    utterances = source_utterances()
    order = rng.permutation(len(utterances))
    split_of = {}
    start = 0
    for split, size in SPLIT_SIZES.items():  # with fewer recordings than planned, train shrinks first
        count = size if split != "train" else max(1, len(utterances) - sum(SPLIT_SIZES.values()) + size)
        for index in order[start : start + count]:
            split_of[int(index)] = split
        start += count

    la = folder / "LA"
    (la / "ASVspoof2019_LA_cm_protocols").mkdir(parents=True)
    protocols = {split: [] for split in SPLIT_LAYOUT}
    sources = []
    counters = {split: 1000000 for split in SPLIT_LAYOUT}

    def write_clip(split: str, waveform: np.ndarray, speaker: str, system: str, label: str, info: dict) -> None:
        counters[split] += 1
        utt_id = f"LA_{SPLIT_LAYOUT[split][0]}_{counters[split]}"
        flac = la / f"ASVspoof2019_LA_{split}" / "flac"
        flac.mkdir(parents=True, exist_ok=True)
        sf.write(flac / f"{utt_id}.flac", waveform, SONAR_SAMPLING_RATE, subtype="PCM_16", format="FLAC")
        protocols[split].append(f"{speaker} {utt_id} - {system} {label}")
        sources.append({"utt_id": utt_id, "split": split, "label": label, "system": system, **info})

    for index, utterance in enumerate(utterances):
        split = split_of.get(index)
        if split is None:
            continue
        for speed in SPEEDS:
            # speed perturbation: read the samples as if recorded at speed * 16 kHz, then resample back to 16 kHz
            real = AF.resample(
                torch.from_numpy(utterance["waveform"]), round(SONAR_SAMPLING_RATE * speed), SONAR_SAMPLING_RATE
            )
            real = _limit_peak(real.numpy() * 10 ** (rng.uniform(-6, 0) / 20))
            info = {"source": utterance["source"], "offset_s": utterance["offset_s"], "speed": speed}
            write_clip(split, real, utterance["speaker"], "-", "bonafide", info)
            for system in sorted(rng.choice(list(SYSTEMS), SYSTEMS_PER_CLIP, replace=False)):
                method, kwargs = SYSTEMS[system]
                torch.manual_seed(int(rng.integers(2**31)))
                fake = method(torch.from_numpy(real), **kwargs).numpy()
                write_clip(split, match_level(fake, real), utterance["speaker"], system, "spoof", info)

    for split, (_, protocol) in SPLIT_LAYOUT.items():
        (la / "ASVspoof2019_LA_cm_protocols" / protocol).write_text("\n".join(protocols[split]) + "\n")
    with open(folder / "systems.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "method", "settings"])
        writer.writerows([system, method.__name__, json.dumps(kwargs)] for system, (method, kwargs) in SYSTEMS.items())
    with open(folder / "sources.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(sources[0]))
        writer.writeheader()
        writer.writerows(sources)
    return {split: len(lines) for split, lines in protocols.items()}


def make_demo_corpus(output: str | Path, seed: int = 0) -> Path:
    """Write the corpus to `output` (atomically) unless it is already complete for `seed`; returns `output`."""
    output = Path(output).resolve()
    marker = output / COMPLETE_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("seed") == seed:
        return output
    if output.exists() and any(output.iterdir()):
        raise RuntimeError(f"{output} exists but is not a complete demo corpus for seed {seed}; remove it first")
    with atomic_output(output) as tmp:
        counts = _write_corpus(tmp, seed)
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"seed": seed, "clips": counts}))
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="corpus folder (LA/ is written inside it)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, variants and system draws")
    args = parser.parse_args(argv)
    try:
        output = make_demo_corpus(args.output, args.seed)
    except RuntimeError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    counts = json.loads((output / COMPLETE_MARKER).read_text())["clips"]
    print(f"Demo corpus in {output}/LA: " + ", ".join(f"{split} {count} clips" for split, count in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
