"""PyTorch SONAR model: a content and a noise encoder, cross-attention fusion, and an AASIST or MLP head."""

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import ModelOutput

from .aasist import SonarAasistGraphAttention, SonarAasistHead, SonarAasistHeteroGraphAttention
from .audio_sonar import sonar_aggregate_windows, sonar_scores, sonar_windows
from .configuration_sonar import SONAR_CUSTOM_PIPELINES, SonarConfig


# Fixed SRM high-pass kernels for the non-learnable ablation; each also appears at every shift that fits the filter.
SRM_KERNELS = ([-1.0, 1.0], [1.0, -2.0, 1.0], [-1.0, 3.0, -3.0, 1.0], [-1.0, 4.0, -6.0, 4.0, -1.0])


@dataclass
class SonarModelOutput(ModelOutput):
    """
    Args:
        content_hidden_states (`torch.FloatTensor` of shape `(batch_size, frames, hidden_size)`):
            Last hidden state of the content encoder on the raw waveform (z_c).
        noise_hidden_states (`torch.FloatTensor` of shape `(batch_size, frames, hidden_size)`):
            Last hidden state of the noise encoder on the residual filter bank's output (z_n).
        fused_hidden_states (`torch.FloatTensor` of shape `(batch_size, frames, hidden_size)`, *optional*):
            Bidirectional cross-attention fusion of both views; returned when the head reads it (`config.uses_fusion`).
        noise_waveform (`torch.FloatTensor` of shape `(batch_size, samples)`):
            What the residual filter bank passes on to the noise encoder.
    """

    content_hidden_states: torch.FloatTensor | None = None
    noise_hidden_states: torch.FloatTensor | None = None
    fused_hidden_states: torch.FloatTensor | None = None
    noise_waveform: torch.FloatTensor | None = None


@dataclass
class SonarAudioClassifierOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `(1,)`, *optional*):
            `ce_loss + lambda_js * js_loss`; returned when `labels` is given.
        logits (`torch.FloatTensor` of shape `(batch_size, 2)`):
            Recording-level logits in label-id order, windows combined by `config.window_aggregation`.
        scores (`torch.FloatTensor` of shape `(batch_size,)`):
            Detection score: the bona fide log-odds `logits[bonafide] - logits[spoof]` (higher = more genuine), as
            written to ASVspoof score files.
        js_divergence (`torch.FloatTensor` of shape `(batch_size,)`):
            Jensen-Shannon divergence between the content and noise views, averaged over frames and windows.
        ce_loss (`torch.FloatTensor`, *optional*):
            Weighted cross-entropy part of the loss; returned when `labels` is given.
        js_loss (`torch.FloatTensor`, *optional*):
            Jensen-Shannon alignment part of the loss (before `lambda_js`); returned when `labels` is given.
        window_logits (`torch.FloatTensor` of shape `(batch_size, num_windows, 2)`):
            Logits of every window of each recording; rows past a recording's own window count are zero.
        window_mask (`torch.BoolTensor` of shape `(batch_size, num_windows)`):
            Which rows of `window_logits` are real windows.
        content_embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*):
            Content view averaged over frames and windows; returned when `output_embeddings=True`.
        noise_embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*):
            Noise view averaged over frames and windows; returned when `output_embeddings=True`.
        noise_waveform (`torch.FloatTensor` of shape `(batch_size, samples)`, *optional*):
            What the residual filter bank passes on to the noise encoder, over the whole input (padding included);
            returned when `output_noise_waveform=True` and the model has the noise branch.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    scores: torch.FloatTensor | None = None
    js_divergence: torch.FloatTensor | None = None
    ce_loss: torch.FloatTensor | None = None
    js_loss: torch.FloatTensor | None = None
    window_logits: torch.FloatTensor | None = None
    window_mask: torch.BoolTensor | None = None
    content_embeddings: torch.FloatTensor | None = None
    noise_embeddings: torch.FloatTensor | None = None
    noise_waveform: torch.FloatTensor | None = None


def sonar_js_divergence(content: torch.Tensor, noise: torch.Tensor, log_base: float = 2.0) -> torch.Tensor:
    """
    Jensen-Shannon divergence between the two views, per utterance.

    Each frame's hidden vector is turned into a distribution over the D feature bins by a softmax;
    JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, divided by ln(log_base), then averaged over
    frames.
    With log base 2 it lies in [0, 1].

    Args:
        content, noise (`torch.Tensor` of shape `(batch, frames, hidden)`): the two encoders' last hidden states.
        log_base (`float`): 2 (the paper) or e (the released code).

    Returns:
        `torch.Tensor` of shape `(batch,)`, in float32 whatever the input precision.
    """
    log_p = F.log_softmax(content.float(), dim=-1)
    log_q = F.log_softmax(noise.float(), dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    js = 0.5 * (log_p.exp() * (log_p - log_m)).sum(-1) + 0.5 * (log_q.exp() * (log_q - log_m)).sum(-1)
    return js.mean(-1) / math.log(log_base)


def sonar_js_loss(js_divergence: torch.Tensor, is_bonafide: torch.Tensor) -> torch.Tensor:
    """L_JS = y * JS + (1 - y) * (1 - JS), y = 1 for bona fide: pulls real views together, pushes fake ones apart."""
    y = is_bonafide.to(js_divergence.dtype)
    return (y * js_divergence + (1 - y) * (1 - js_divergence)).mean()


def _mean_per_recording(values: torch.Tensor | None, counts: list[int]) -> torch.Tensor | None:
    """Per-window values `(n, ...)` averaged over each recording's `counts` windows, `(batch_size, ...)`."""
    if values is None:
        return None
    return torch.stack([part.mean(0) for part in values.split(counts)])


class SonarResidualFilterBank(nn.Module):
    """
    The residual filter bank (RFE): `M` value-constrained high-pass filters (Conv1d 1 -> M, 'same' padding, no bias),
    mixed back to one channel by a 1x1 Conv1d, no nonlinearity. Bayar's constraint keeps each filter a residual
    predictor: centre tap -1, off-centre taps summing to +1, so the filter sums to 0 and removes the content.
    """

    def __init__(self, config: SonarConfig):
        super().__init__()
        self.constraint_mode = config.constraint_mode
        self.learnable = config.learnable_filters
        self.init_max_tap = config.filter_init_max_tap
        self.centre = config.filter_length // 2
        self.filters = nn.Parameter(
            torch.empty(config.num_filters, 1, config.filter_length), requires_grad=self.learnable
        )
        self.mix = nn.Parameter(torch.empty(1, config.num_filters, 1))

    @torch.no_grad()
    def reset_parameters(self):
        """
        Learnable bank: N(0, 1), then one projection (the paper); with the projection, a filter whose taps come out
        larger than `filter_init_max_tap` (its off-centre taps summed to nearly 0) is drawn again. Fixed bank: the SRM
        kernels in turn. The 1x1 mix starts as PyTorch's Conv1d does, uniform in +-1/sqrt(M).
        """
        if self.learnable:
            init.normal_(self.filters, mean=0.0, std=1.0)
            self.project_constraint()
            self._redraw_ill_conditioned_filters()
        else:
            num_filters, _, length = self.filters.shape
            kernels = [
                [0.0] * shift + kernel + [0.0] * (length - len(kernel) - shift)
                for kernel in SRM_KERNELS
                for shift in range(length - len(kernel) + 1)
            ]
            bank = torch.tensor([kernels[i % len(kernels)] for i in range(num_filters)], dtype=self.filters.dtype)
            init.copy_(self.filters, bank.unsqueeze(1))
        bound = 1 / math.sqrt(self.mix.shape[1])
        init.uniform_(self.mix, -bound, bound)

    def _bayar_projection(self, filters: torch.Tensor) -> torch.Tensor:
        """Centre tap to 0, divide by the taps' sum (eps 1e-8), centre tap to -1."""
        filters = filters.clone()
        filters[:, :, self.centre] = 0.0
        filters = filters / (filters.sum(dim=-1, keepdim=True) + 1e-8)
        filters[:, :, self.centre] = -1.0
        return filters

    @torch.no_grad()
    def project_constraint(self):
        """
        Bayar projection, called after every optimiser step. A no-op unless `constraint_mode == "projection"` and the
        filters are learnable.
        """
        if self.constraint_mode != "projection" or not self.learnable:
            return
        self.filters.copy_(self._bayar_projection(self.filters))

    @torch.no_grad()
    def _redraw_ill_conditioned_filters(self):
        """
        Draws again, from N(0, 1) and projected, every filter with a tap above `init_max_tap` in magnitude, until none
        is left: the projection divides by the off-centre taps' sum, which is near 0 for a few percent of draws.
        """
        if self.init_max_tap is None or self.constraint_mode != "projection" or self.filters.is_meta:
            return
        while (bad := self.filters.abs().amax(dim=(1, 2)) > self.init_max_tap).any():
            fresh = torch.randn_like(self.filters[bad])
            self.filters[bad] = self._bayar_projection(fresh)

    def effective_filters(self) -> torch.Tensor:
        """The kernels the forward pass applies, `(num_filters, 1, filter_length)`."""
        if self.constraint_mode == "forward" and self.learnable:
            return self.filters - self.filters.sum(dim=-1, keepdim=True)
        return self.filters

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        residuals = F.conv1d(waveform.unsqueeze(1), self.effective_filters(), padding="same")
        return F.conv1d(residuals, self.mix).squeeze(1)


class SonarCrossAttentionFusion(nn.Module):
    """One multi-head attention used both ways (content -> noise, noise -> content); concat, then Linear(2D -> D)."""

    def __init__(self, config: SonarConfig):
        super().__init__()
        hidden_size = config.encoder_config.hidden_size
        self.attention = nn.MultiheadAttention(
            hidden_size, config.fusion_num_heads, dropout=config.fusion_dropout, batch_first=True
        )
        self.residual = config.fusion_residual
        self.norm = nn.LayerNorm(hidden_size) if config.fusion_residual else None
        self.projection = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, content: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        content_to_noise = self.attention(content, noise, noise, need_weights=False)[0]
        noise_to_content = self.attention(noise, content, content, need_weights=False)[0]
        if self.residual:
            content_to_noise = self.norm(content + content_to_noise)
            noise_to_content = self.norm(noise + noise_to_content)
        return self.projection(torch.cat([content_to_noise, noise_to_content], dim=-1))


class SonarMlpHead(nn.Module):
    """
    SONAR-Lite: an MLP (ReLU after each hidden layer) to the logits. On fused frames (the released code) it runs on
    every frame and averages the frames' logits; on pooled views it runs once on the time-averaged views, concatenated.
    """

    def __init__(self, config: SonarConfig):
        super().__init__()
        self.per_frame = config.mlp_input == "fused_frames"
        num_views = 2 if config.noise_branch and not self.per_frame else 1
        widths = [num_views * config.encoder_config.hidden_size, *config.mlp_hidden_sizes]
        self.hidden = nn.ModuleList([nn.Linear(w_in, w_out) for w_in, w_out in zip(widths, widths[1:])])
        self.dropout = nn.Dropout(config.mlp_dropout)
        self.out_proj = nn.Linear(widths[-1], config.num_labels)

    def forward(self, *views: torch.Tensor) -> torch.Tensor:
        """`views`: the fused frames (or, without a noise branch, the content frames) when `per_frame`, otherwise
        each view's frames; each `(batch, frames, hidden)`."""
        hidden_states = views[0] if self.per_frame else torch.cat([view.mean(1) for view in views], dim=-1)
        for layer in self.hidden:
            hidden_states = self.dropout(F.relu(layer(hidden_states)))
        logits = self.out_proj(hidden_states)
        return logits.mean(1) if self.per_frame else logits


class SonarPreTrainedModel(PreTrainedModel):
    config_class = SonarConfig
    base_model_prefix = "sonar"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module):
        """
        Initialises SONAR's own layers; the encoders are sub-models and initialise, or load, themselves. Linear and
        convolution layers follow `config.weight_init`: PyTorch's defaults as the released code keeps them (weights
        and biases uniform in +-1/sqrt(fan_in)), or LeCun-normal weights (std 1/sqrt(fan_in)) with zero biases. The
        AASIST attention vectors are Xavier-normal and its positional and master nodes N(0, 1), as published.
        """
        if isinstance(module, SonarResidualFilterBank):
            if not getattr(module.filters, "_is_hf_initialized", False):
                module.reset_parameters()
        elif isinstance(module, SonarAasistHead):
            init.normal_(module.spectral_position)
            init.normal_(module.master1)
            init.normal_(module.master2)
        elif isinstance(module, (SonarAasistGraphAttention, SonarAasistHeteroGraphAttention)):
            for param in module.parameters(recurse=False):
                init.xavier_normal_(param)
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            if self.config.weight_init == "lecun_normal":
                init.normal_(module.weight, mean=0.0, std=1 / math.sqrt(fan_in))
                if module.bias is not None:
                    init.zeros_(module.bias)
            else:
                init.kaiming_uniform_(module.weight, a=math.sqrt(5))  # = uniform in +-1/sqrt(fan_in)
                if module.bias is not None:
                    init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        else:
            super()._init_weights(module)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """
        `PreTrainedModel.save_pretrained`, plus SONAR's `audio-classification` pipeline: `config.custom_pipelines`
        names it and its code (`pipeline_sonar.py`) is copied next to the model's, so that
        `pipeline("audio-classification", model=FOLDER, trust_remote_code=True)` gives the same verdict as the Space
        and the evaluation script. The import is deferred so that loading a model does not load transformers'
        pipelines; being a relative import of this file, it also makes remote-code loading fetch the pipeline (and
        `audio_sonar.py`, `onnx_sonar.py`) together with the model.
        """
        from .pipeline_sonar import SonarAudioClassificationPipeline

        # `pipeline()` turns the class names of `custom_pipelines` into classes in place: write the names again
        self.config.custom_pipelines = copy.deepcopy(SONAR_CUSTOM_PIPELINES)
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.is_remote_code() and kwargs.get("is_main_process", True):
            custom_object_save(SonarAudioClassificationPipeline, save_directory)

    @classmethod
    def from_encoder_pretrained(cls, encoder_name_or_path: str, config: SonarConfig | None = None, **kwargs):
        """
        Builds SONAR with both encoders cloned from one pretrained encoder checkpoint, the paper's initialisation
        (online: `facebook/wav2vec2-xls-r-300m`). SpecAugment and LayerDrop are switched off in the encoder config.
        The filter bank, fusion and head start from their own initialisation. `kwargs` go to the encoder's
        `from_pretrained` (`cache_dir`, `revision`, `local_files_only`, ...).
        """
        encoder = AutoModel.from_pretrained(encoder_name_or_path, **kwargs)
        encoder_config = encoder.config
        for name, value in (("layerdrop", 0.0), ("mask_time_prob", 0.0), ("apply_spec_augment", False)):
            if hasattr(encoder_config, name):
                setattr(encoder_config, name, value)
        config = SonarConfig() if config is None else config
        config.encoder_config = encoder_config
        config.encoder_name_or_path = str(encoder_name_or_path)
        model = cls(config)
        sonar = model.base_model
        state = encoder.state_dict()
        encoders = [sonar.content_encoder]
        if sonar.noise_encoder is not None and not config.share_encoders:
            encoders.append(sonar.noise_encoder)
        for target in encoders:
            # Only SpecAugment's mask embedding may be left over: it does not exist with masking switched off.
            missing, _ = target.load_state_dict(state, strict=False)
            if missing:
                raise ValueError(f"{encoder_name_or_path} does not hold every encoder weight; missing: {missing[:5]}")
        return model


class SonarModel(SonarPreTrainedModel):
    """
    The two views and their fusion: raw waveform -> content encoder; filter-bank residuals -> noise encoder. With
    `config.noise_branch=False` only the content encoder remains (the paper's XLS-R baseline).
    """

    # Loading the base model from a classification checkpoint leaves the head out on purpose.
    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]

    def __init__(self, config: SonarConfig):
        super().__init__(config)
        self.content_encoder = AutoModel.from_config(config.encoder_config)
        self.filter_bank = self.noise_encoder = self.fusion = None
        if config.noise_branch:
            self.filter_bank = SonarResidualFilterBank(config)
            self.noise_encoder = (
                self.content_encoder if config.share_encoders else AutoModel.from_config(config.encoder_config)
            )
            # wav2vec2-family feature encoders force `requires_grad` on their input, which only a leaf tensor allows;
            # the noise view already carries the filter bank's gradient, so that step is off for the noise encoder.
            feature_encoder = getattr(self.noise_encoder, "feature_extractor", None)
            if hasattr(feature_encoder, "_requires_grad"):
                feature_encoder._requires_grad = False
            if config.uses_fusion:
                self.fusion = SonarCrossAttentionFusion(config)
        self.post_init()

    def project_constraint(self):
        """Re-imposes the filter constraint; the training loop calls it after every optimiser step."""
        if self.filter_bank is not None:
            self.filter_bank.project_constraint()

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SonarModelOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz waveforms of equal length, not normalised (the paper feeds the raw signal).
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            Taken so that the feature extractor's output can be passed as it is; it must mark no padding, since the
            views are computed on whole windows. [`SonarForAudioClassification`] windows recordings of unequal length.
        """
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError(
                "SonarModel computes the views of equal-length windows; these recordings are padded. Score them with "
                "SonarForAudioClassification, which windows each recording on its own samples."
            )
        if self.filter_bank is None:
            content = self.content_encoder(input_values).last_hidden_state
            return SonarModelOutput(content_hidden_states=content)
        noise_waveform = self.filter_bank(input_values)
        if self.config.share_encoders:
            both = self.content_encoder(torch.cat([input_values, noise_waveform])).last_hidden_state
            content, noise = both.chunk(2)
        else:
            content = self.content_encoder(input_values).last_hidden_state
            noise = self.noise_encoder(noise_waveform).last_hidden_state
        return SonarModelOutput(
            content_hidden_states=content,
            noise_hidden_states=noise,
            fused_hidden_states=self.fusion(content, noise) if self.fusion is not None else None,
            noise_waveform=noise_waveform,
        )


class SonarForAudioClassification(SonarPreTrainedModel):
    """SONAR with its classification head, loss (weighted CE + lambda * JS) and window-by-window long-audio scoring."""

    def __init__(self, config: SonarConfig):
        super().__init__(config)
        self.sonar = SonarModel(config)
        if config.head == "aasist":
            self.classifier = SonarAasistHead(
                hidden_size=config.encoder_config.hidden_size,
                linear_size=config.aasist_linear_size,
                filters=config.aasist_filters,
                gat_dims=config.aasist_gat_dims,
                temperatures=config.aasist_temperatures,
                pool_ratios=config.aasist_pool_ratios,
                dropout=config.aasist_dropout,
                num_labels=config.num_labels,
                preactivation=config.aasist_preactivation,
            )
        else:
            self.classifier = SonarMlpHead(config)
        self.post_init()

    def project_constraint(self):
        """Re-imposes the filter constraint; the training loop calls it after every optimiser step."""
        self.sonar.project_constraint()

    def _windows(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, list]:
        """Every recording's windows stacked, and how many each recording has."""
        window, hop = self.config.max_length, self.config.window_hop_length
        if attention_mask is None and input_values.shape[-1] == window:
            return input_values, [1] * input_values.shape[0]
        lengths = (
            attention_mask.sum(-1).tolist()
            if attention_mask is not None
            else [input_values.shape[-1]] * input_values.shape[0]
        )
        per_recording = [sonar_windows(wave[: int(n)], window, hop) for wave, n in zip(input_values, lengths)]
        return torch.cat(per_recording), [w.shape[0] for w in per_recording]

    def forward_windows(
        self, windows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """
        Scores a batch of windows `(n, max_length)`: returns their logits `(n, 2)`, their JS divergence `(n,)` (None
        without the noise branch) and both views' last hidden states. This is the part the ONNX export holds.
        """
        views = self.sonar(windows)
        z_c, z_n = views.content_hidden_states, views.noise_hidden_states
        if self.config.head == "mlp" and self.config.mlp_input == "pooled_views":
            logits = self.classifier(*(z for z in (z_c, z_n) if z is not None))
        else:
            logits = self.classifier(views.fused_hidden_states if z_n is not None else z_c)
        js = sonar_js_divergence(z_c, z_n, self.config.js_log_base) if z_n is not None else None
        return logits, js, z_c, z_n

    def _score_windows(
        self, windows: torch.Tensor, chunk_size: int, window_forward: Callable | None, output_embeddings: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """
        Runs the windows through `forward_windows` (or `window_forward`) `chunk_size` at a time, which bounds memory on
        long recordings. Returns the windows' logits `(n, 2)`, JS divergence `(n,)` and, with `output_embeddings`,
        both views averaged over frames `(n, hidden_size)`; the last three are None where they do not exist.
        """
        logits, js, content, noise = [], [], [], []
        for start in range(0, len(windows), chunk_size):
            batch = windows[start : start + chunk_size]
            if window_forward is not None:
                batch_logits, batch_js = window_forward(batch)
            else:
                batch_logits, batch_js, z_c, z_n = self.forward_windows(batch)
                if output_embeddings:
                    content.append(z_c.mean(1))
                    if z_n is not None:
                        noise.append(z_n.mean(1))
            logits.append(batch_logits)
            if batch_js is not None:
                js.append(batch_js)
        return torch.cat(logits), *(torch.cat(parts) if parts else None for parts in (js, content, noise))

    def _loss(
        self, logits: torch.Tensor, js_divergence: torch.Tensor | None, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`(loss, ce_loss, js_loss)`: weighted cross-entropy on the recordings' logits plus `lambda_js` times the JS
        alignment loss (none without the noise branch)."""
        weight = None
        if self.config.class_weights is not None:
            weight = torch.tensor(self.config.class_weights, device=logits.device)
        ce_loss = F.cross_entropy(logits.float(), labels, weight=weight)
        if js_divergence is None:
            return ce_loss, ce_loss, None
        js_loss = sonar_js_loss(js_divergence, labels == self.config.bonafide_id)
        return ce_loss + self.config.lambda_js * js_loss, ce_loss, js_loss

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_embeddings: bool = False,
        output_noise_waveform: bool = False,
        window_forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]] | None = None,
    ) -> SonarAudioClassifierOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch_size, samples)`):
            Raw 16 kHz waveforms, not normalised. Recordings of `config.max_length` samples are one window each;
            shorter ones are tiled, longer ones scored window by window (see `config.window_aggregation`).
        attention_mask (`torch.LongTensor` of shape `(batch_size, samples)`, *optional*):
            1 for real samples, 0 for padding, as the feature extractor returns for recordings of unequal length.
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Label ids (`config.label2id`: bonafide, spoof). When given, the loss is computed.
        output_embeddings (`bool`, *optional*, defaults to `False`):
            Also return both views' embeddings averaged over frames and windows.
        output_noise_waveform (`bool`, *optional*, defaults to `False`):
            Also return what the residual filter bank passes on to the noise encoder, over the whole input.
        window_forward (`Callable`, *optional*):
            Scores a batch of windows `(n, max_length)` in place of this model's own modules and returns
            `(logits (n, 2), js_divergence (n,) or None)`, as [`~SonarForAudioClassification.forward_windows`] does.
            The pipeline passes an ONNX Runtime session here, so that windowing and aggregation stay this code.
        """
        if input_values.ndim != 2:
            raise ValueError(
                f"`input_values` must be (batch_size, samples), got shape {tuple(input_values.shape)}; "
                "use SonarFeatureExtractor to prepare audio."
            )
        if window_forward is not None and output_embeddings:
            raise ValueError(
                "`output_embeddings=True` needs the PyTorch encoders; it cannot be used with `window_forward`."
            )
        windows, counts = self._windows(input_values, attention_mask)
        chunk_size = self.config.window_batch_size if len(windows) > len(counts) else len(windows)
        window_logits, window_js, content, noise = self._score_windows(
            windows, chunk_size, window_forward, output_embeddings
        )
        per_recording = window_logits.split(counts)
        if all(count == 1 for count in counts):
            logits = window_logits
        else:
            logits = torch.stack([sonar_aggregate_windows(w, self.config) for w in per_recording])
        js_divergence = _mean_per_recording(window_js, counts)
        loss = ce_loss = js_loss = None
        if labels is not None:
            loss, ce_loss, js_loss = self._loss(logits, js_divergence, labels)
        filter_bank = self.sonar.filter_bank
        return SonarAudioClassifierOutput(
            loss=loss,
            logits=logits,
            scores=sonar_scores(logits, self.config),
            js_divergence=js_divergence,
            ce_loss=ce_loss,
            js_loss=js_loss,
            window_logits=nn.utils.rnn.pad_sequence(list(per_recording), batch_first=True),
            window_mask=nn.utils.rnn.pad_sequence(
                [torch.ones(c, dtype=torch.bool, device=window_logits.device) for c in counts], batch_first=True
            ),
            content_embeddings=_mean_per_recording(content, counts),
            noise_embeddings=_mean_per_recording(noise, counts),
            noise_waveform=filter_bank(input_values) if output_noise_waveform and filter_bank is not None else None,
        )


__all__ = [
    "SonarModel",
    "SonarForAudioClassification",
    "SonarPreTrainedModel",
    "SonarResidualFilterBank",
    "sonar_js_divergence",
    "sonar_js_loss",
]
