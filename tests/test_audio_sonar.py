"""Tests for modeling_sonar/audio_sonar.py: the one decoder, the one windowing, aggregation, verdict and timeline."""

import io

import numpy as np
import pytest
import soundfile as sf
import torch

from modeling_sonar import SonarConfig, load_audio, sonar_verdict
from modeling_sonar.audio_sonar import (
    sonar_aggregate_windows,
    sonar_timeline,
    sonar_window,
    sonar_window_starts,
    sonar_windows,
)
from modeling_sonar.configuration_sonar import SONAR_SAMPLING_RATE as SAMPLING_RATE


def _tone(num_samples: int, rate: int = SAMPLING_RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(num_samples) / rate
    mono = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def _encoded(x: np.ndarray, rate: int = SAMPLING_RATE, fmt: str = "FLAC") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


class TestLoadAudio:
    def test_path_bytes_and_dict_agree(self, tmp_path):
        x = _tone(4000)
        path = tmp_path / "a.flac"
        path.write_bytes(_encoded(x))
        from_path = load_audio(str(path))
        assert from_path.dtype == np.float32 and from_path.shape == (4000,)
        np.testing.assert_allclose(from_path, x, atol=1e-4)
        np.testing.assert_array_equal(load_audio(path.read_bytes()), from_path)
        np.testing.assert_array_equal(load_audio({"bytes": path.read_bytes(), "path": "a.flac"}), from_path)
        np.testing.assert_array_equal(load_audio({"bytes": None, "path": str(path)}), from_path)

    def test_stereo_is_averaged(self):
        x = _tone(1000, channels=2)
        x[:, 1] = 0
        np.testing.assert_allclose(load_audio(_encoded(x, fmt="WAV")), x[:, 0] / 2, atol=1e-4)

    def test_resamples_to_target_rate(self):
        y = load_audio(_encoded(_tone(8000, rate=8000), rate=8000, fmt="WAV"))
        assert y.shape == (16000,) and y.dtype == np.float32
        assert load_audio(_encoded(_tone(16000)), sampling_rate=8000).shape == (8000,)

    def test_not_normalised(self):
        x = 0.01 * _tone(1000)
        assert np.max(np.abs(load_audio(_encoded(x, fmt="WAV")))) == pytest.approx(0.005, rel=1e-2)

    def test_undecodable_names_the_file(self, tmp_path):
        bad = tmp_path / "broken.flac"
        bad.write_bytes(b"not audio at all")
        with pytest.raises(ValueError, match="broken.flac"):
            load_audio({"bytes": None, "path": str(bad)})
        with pytest.raises(ValueError, match="No audio"):
            load_audio({"bytes": None, "path": None})

    def test_torchcodec_fallback(self, tmp_path, monkeypatch):
        pytest.importorskip("torchcodec.decoders")
        path = tmp_path / "a.wav"
        path.write_bytes(_encoded(_tone(4000), fmt="WAV"))
        monkeypatch.setattr(sf, "SoundFile", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("unsupported")))
        np.testing.assert_allclose(load_audio(str(path)), _tone(4000), atol=1e-3)


class TestSonarWindow:
    def test_first_samples_when_long(self):
        x = np.arange(100, dtype=np.float32)
        np.testing.assert_array_equal(sonar_window(x, 10), x[:10])

    def test_tiles_when_short(self):
        np.testing.assert_array_equal(sonar_window(np.array([1, 2, 3], dtype=np.float32), 8), [1, 2, 3, 1, 2, 3, 1, 2])

    def test_numpy_and_torch_cut_alike(self):
        x = np.arange(50, dtype=np.float32)
        for length, start in ((10, 0), (10, 40), (80, 0)):
            np.testing.assert_array_equal(
                sonar_window(torch.from_numpy(x), length, start).numpy(), sonar_window(x, length, start)
            )

    def test_window_past_the_end_is_an_error(self):
        with pytest.raises(ValueError, match="cannot start at 45"):
            sonar_window(np.zeros(50, dtype=np.float32), 10, 45)

    def test_empty_is_an_error(self):
        with pytest.raises(ValueError, match="non-empty"):
            sonar_window(np.zeros(0, dtype=np.float32), 10)


class TestLoadAudioChecks:
    def test_missing_and_empty_files_are_named_without_their_folder(self, tmp_path):
        with pytest.raises(ValueError, match=r"No audio file at 'nowhere\.wav'") as error:
            load_audio(tmp_path / "nowhere.wav")
        assert str(tmp_path) not in str(error.value)
        (tmp_path / "empty.wav").write_bytes(b"")
        with pytest.raises(ValueError, match=r"'empty\.wav' is empty \(0 bytes\)"):
            load_audio(str(tmp_path / "empty.wav"))

    def test_too_long_is_refused_from_the_header(self, tmp_path, monkeypatch):
        path = tmp_path / "long.flac"
        path.write_bytes(_encoded(_tone(3 * SAMPLING_RATE)))
        assert load_audio(path, max_duration_s=3.0).shape == (3 * SAMPLING_RATE,)
        read = sf.SoundFile.read
        monkeypatch.setattr(sf.SoundFile, "read", lambda *a, **k: pytest.fail("decoded a file it should refuse"))
        with pytest.raises(ValueError, match=r"'long\.flac' lasts 3\.0 s; at most 2 s are scored here"):
            load_audio(path, max_duration_s=2.0)
        monkeypatch.setattr(sf.SoundFile, "read", read)

    def test_other_formats_go_to_ffmpeg(self, tmp_path):
        """A container soundfile cannot read (here AAC in MP4) is decoded by FFmpeg through torchcodec."""
        pytest.importorskip("torchcodec.decoders")
        import shutil
        import subprocess

        if shutil.which("ffmpeg") is None:
            pytest.skip("ffmpeg is not installed")
        wav, m4a = tmp_path / "a.wav", tmp_path / "a.m4a"
        wav.write_bytes(_encoded(_tone(8000), fmt="WAV"))
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), str(m4a)], check=True)
        decoded = load_audio(m4a)
        assert decoded.dtype == np.float32 and abs(len(decoded) - 8000) < 2048


class TestWindows:
    def test_starts_cover_every_sample(self):
        assert sonar_window_starts(100, 100, 50) == [0]
        assert sonar_window_starts(260, 100, 50) == [0, 50, 100, 150, 160]
        assert sonar_window_starts(250, 100, 50) == [0, 50, 100, 150]

    def test_windows_are_cut_at_the_starts(self):
        wave = torch.arange(260, dtype=torch.float32)
        windows = sonar_windows(wave, 100, 50)
        assert windows.shape == (5, 100)
        assert windows[:, 0].tolist() == [0, 50, 100, 150, 160]
        assert torch.equal(sonar_windows(wave[:30], 100, 50)[0], sonar_window(wave[:30], 100))

    @pytest.mark.parametrize(
        "aggregation, expected", [("first", [2.0, 0.0]), ("mean", [1.0, 1.0]), ("max", [0.0, 3.0])]
    )
    def test_aggregation(self, aggregation, expected):
        config = SonarConfig.from_preset("tiny", window_aggregation=aggregation)
        logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
        assert sonar_aggregate_windows(logits, config).tolist() == expected

    def test_timeline(self):
        config = SonarConfig.from_preset("tiny", max_length=16000, decision_threshold=0.5)
        logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.0, 0.0]])
        timeline = sonar_timeline(40000, logits, config)
        assert [(w["start_s"], w["end_s"]) for w in timeline] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5)]
        assert [w["spoof_probability"] for w in timeline] == [
            sonar_verdict(score, config)["spoof_probability"] for score in (1.0, -1.0, 0.5, 0.0)
        ]
        short = sonar_timeline(8000, logits[:1], config)
        assert short == [{"start_s": 0.0, "end_s": 0.5, "spoof_probability": timeline[0]["spoof_probability"]}]
