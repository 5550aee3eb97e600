"""Shared test set-up: offline Hugging Face libraries, one CPU thread per process, and small audio helpers."""

import os


os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


REPO_ROOT = Path(__file__).resolve().parent.parent
SONAR_MINI = REPO_ROOT.parent / "shared" / "data" / "sonar-mini"


def make_speechlike(seconds: float, sampling_rate: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A voiced, amplitude-modulated harmonic signal with a little noise: enough structure for the checks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    wave = 0.2 * wave / np.abs(wave).max() + 0.005 * rng.standard_normal(t.size)
    wave = wave.astype(np.float32)
    return np.stack([wave * (1 - 0.2 * c) for c in range(channels)], axis=1) if channels > 1 else wave


@pytest.fixture(scope="session")
def sonar_mini() -> Path:
    if not (SONAR_MINI / "LA").is_dir():
        pytest.skip(f"sonar-mini corpus not found at {SONAR_MINI}")
    return SONAR_MINI
