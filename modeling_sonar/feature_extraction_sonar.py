"""Feature extractor for SONAR: checks raw waveforms where they enter and batches them, without normalising."""

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType, logging

from .configuration_sonar import SONAR_SAMPLING_RATE


logger = logging.get_logger(__name__)


class SonarFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Prepares raw 16 kHz mono waveforms for [`SonarForAudioClassification`]: every input check lives here, each failure
    a `ValueError` that names the problem, and recordings of unequal length are zero-padded with an `attention_mask`
    so that the model scores each on its own samples only. The paper feeds the raw signal, so nothing is normalised by
    default. Windowing and tiling of short or long recordings happen in the model (see `SonarConfig.max_length`).

    Args:
        feature_size (`int`, *optional*, defaults to 1):
            One value per sample (raw audio).
        sampling_rate (`int`, *optional*, defaults to 16000):
            The rate the model was trained at; input at another rate is refused (resample first, as the pipeline does).
        padding_value (`float`, *optional*, defaults to 0.0):
            Value that pads shorter recordings in a batch.
        do_normalize (`bool`, *optional*, defaults to `False`):
            Zero-mean unit-variance normalisation per recording; off, as in the paper.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Return the mask of real samples, which the model needs to window padded recordings correctly.
        min_duration_s (`float`, *optional*, defaults to 0.1):
            Shortest recording accepted, in seconds: shorter ones hold too little signal to score.
        silence_threshold (`float`, *optional*, defaults to 1e-5):
            Peak absolute amplitude below which a recording counts as silent and is refused.
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 1,
        sampling_rate: int = SONAR_SAMPLING_RATE,
        padding_value: float = 0.0,
        do_normalize: bool = False,
        return_attention_mask: bool = True,
        min_duration_s: float = 0.1,
        silence_threshold: float = 1e-5,
        **kwargs,
    ):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.do_normalize = do_normalize
        self.return_attention_mask = return_attention_mask
        self.min_duration_s = min_duration_s
        self.silence_threshold = silence_threshold

    def _check_waveform(self, waveform, index: int) -> np.ndarray:
        """One recording as float32 (samples,), or a ValueError naming what is wrong with it."""
        name = f"audio input {index}"
        if hasattr(waveform, "detach"):
            waveform = waveform.detach().cpu().numpy()
        if isinstance(waveform, (list, tuple)):
            waveform = np.asarray(waveform)
        if not isinstance(waveform, np.ndarray):
            raise ValueError(f"{name} must be a numpy array, torch tensor or list of floats, got {type(waveform)}.")
        if not np.issubdtype(waveform.dtype, np.floating):
            raise ValueError(
                f"{name} has dtype {waveform.dtype}; SONAR expects floating-point samples in [-1, 1] "
                "(divide int16 PCM by 32768)."
            )
        if waveform.ndim != 1:
            raise ValueError(
                f"{name} must be mono with shape (samples,), got shape {waveform.shape}; average the channels first."
            )
        if waveform.size == 0:
            raise ValueError(f"{name} is empty (0 samples).")
        if not np.isfinite(waveform).all():
            raise ValueError(f"{name} contains NaN or Inf samples.")
        min_samples = int(round(self.min_duration_s * self.sampling_rate))
        if waveform.size < min_samples:
            raise ValueError(
                f"{name} is too short: {waveform.size / self.sampling_rate:.3f} s, "
                f"the minimum is {self.min_duration_s} s."
            )
        peak = float(np.abs(waveform).max())
        if peak < self.silence_threshold:
            raise ValueError(f"{name} is silent (peak amplitude {peak:.2e}); there is no speech to score.")
        waveform = waveform.astype(np.float32)
        if self.do_normalize:
            waveform = (waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)
        return waveform

    def __call__(
        self,
        raw_speech: np.ndarray | list[float] | list[np.ndarray],
        sampling_rate: int | None = None,
        padding: bool | str = "longest",
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            raw_speech (`np.ndarray`, `torch.Tensor`, `list[float]` or a list of those):
                One recording (samples,), a batch (batch, samples), or a list of recordings of any lengths.
            sampling_rate (`int`, *optional*):
                Rate of `raw_speech`; pass it, since a mismatch with the model's rate is an error.
        """
        if sampling_rate is None:
            logger.warning(
                f"No `sampling_rate` passed to {self.__class__.__name__}; assuming {self.sampling_rate} Hz. "
                "Pass it to catch audio at the wrong rate."
            )
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"The audio is sampled at {sampling_rate} Hz but the model expects {self.sampling_rate} Hz; "
                "resample it first (the audio-classification pipeline does this for files)."
            )

        if hasattr(raw_speech, "detach"):
            raw_speech = raw_speech.detach().cpu().numpy()
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 2:
            raise ValueError(
                f"Audio input must be (samples,) or (batch, samples), got shape {raw_speech.shape}; "
                "average the channels of multi-channel audio first."
            )
        # (samples, 2) read as a batch would be thousands of recordings too short to score: say what it likely is
        if (
            isinstance(raw_speech, np.ndarray)
            and raw_speech.ndim == 2
            and raw_speech.shape[1] < min(raw_speech.shape[0], self.min_duration_s * self.sampling_rate)
        ):
            raise ValueError(
                f"Audio input of shape {raw_speech.shape} looks like channels-last audio (samples, channels); "
                "a 2-D array is a batch (batch, samples). Average the channels first (`audio.mean(axis=1)`), or give "
                "it to the audio-classification pipeline, which does."
            )
        is_batched = (isinstance(raw_speech, np.ndarray) and raw_speech.ndim == 2) or (
            isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0 and not np.isscalar(raw_speech[0])
        )
        recordings = list(raw_speech) if is_batched else [raw_speech]
        if not recordings:
            raise ValueError("No audio given: the batch is empty.")
        waveforms = [self._check_waveform(w, i) for i, w in enumerate(recordings)]

        return_attention_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        padded = self.pad(
            BatchFeature({"input_values": waveforms}),
            padding=padding,
            return_attention_mask=return_attention_mask,
            **{k: v for k, v in kwargs.items() if k in ("max_length", "truncation", "pad_to_multiple_of")},
        )
        return padded.convert_to_tensors(return_tensors) if return_tensors is not None else padded


__all__ = ["SonarFeatureExtractor"]
