"""SONAR model configuration"""

import copy
import math

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec


# The constants every part of the project imports from here: labels and their ids, the rate the encoders expect and
# the paper's window (64,600 samples, about 4.04 s at 16 kHz).
SONAR_LABELS = ("bonafide", "spoof")
SONAR_BONAFIDE_ID = SONAR_LABELS.index("bonafide")
SONAR_SPOOF_ID = SONAR_LABELS.index("spoof")
SONAR_SAMPLING_RATE = 16000
SONAR_WINDOW_LENGTH = 64600

# XLS-R 300M (facebook/wav2vec2-xls-r-300m) as the paper fine-tunes it: last hidden state only, SpecAugment and
# LayerDrop off.
XLSR_300M_ENCODER = {
    "model_type": "wav2vec2",
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "conv_bias": True,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.1,
    "layerdrop": 0.0,
    "apply_spec_augment": False,
    "mask_time_prob": 0.0,
}

# Tiny encoder at the sizes of transformers' Wav2Vec2ModelTester, with a 320x stride so that frames match XLS-R's.
TINY_ENCODER = {
    "model_type": "wav2vec2",
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "conv_dim": [16, 16, 16],
    "conv_stride": [5, 8, 8],
    "conv_kernel": [10, 8, 8],
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "conv_bias": True,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "layerdrop": 0.0,
    "apply_spec_augment": False,
    "mask_time_prob": 0.0,
}

# Written into every saved config, so that a saved folder loads with `trust_remote_code=True` through either class.
SONAR_AUTO_MAP = {
    "AutoConfig": "configuration_sonar.SonarConfig",
    "AutoModel": "modeling_sonar.SonarModel",
    "AutoModelForAudioClassification": "modeling_sonar.SonarForAudioClassification",
}

# Also written into every saved config: `pipeline("audio-classification", model=FOLDER, trust_remote_code=True)` then
# builds SONAR's own pipeline (its verdict, file checks, timeline), whose code `save_pretrained` ships with the model.
SONAR_CUSTOM_PIPELINES = {
    "audio-classification": {
        "impl": "pipeline_sonar.SonarAudioClassificationPipeline",
        "pt": ["AutoModelForAudioClassification"],
        "type": "audio",
    }
}

# A small encoder that learns from scratch on a CPU in minutes: the main job's and the convergence benchmark's.
SMALL_ENCODER = {
    **TINY_ENCODER,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "conv_dim": [32, 32, 32],
    "num_conv_pos_embedding_groups": 4,
}

SONAR_PRESETS = {
    "sonar-full": {"encoder_config": XLSR_300M_ENCODER, "head": "aasist"},
    "sonar-lite": {"encoder_config": XLSR_300M_ENCODER, "head": "mlp"},
    "baseline": {"encoder_config": XLSR_300M_ENCODER, "head": "aasist", "noise_branch": False},
    "small": {
        "encoder_config": SMALL_ENCODER,
        "aasist_linear_size": 48,
        "aasist_filters": [[1, 16], [16, 16], [16, 32], [32, 32], [32, 32], [32, 32]],
        "aasist_gat_dims": [32, 16],
        "mlp_hidden_sizes": [64, 16],
    },
    "tiny": {
        "encoder_config": TINY_ENCODER,
        "num_filters": 4,
        "aasist_linear_size": 24,
        "aasist_filters": [[1, 4], [4, 4], [4, 8], [8, 8], [8, 8], [8, 8]],
        "aasist_gat_dims": [8, 8],
        "mlp_hidden_sizes": [16, 4],
    },
}


class SonarConfig(PreTrainedConfig):
    r"""
    Configuration of a [`SonarModel`] or [`SonarForAudioClassification`]: SONAR (Spectral-Contrastive Audio Residuals,
    [arXiv 2511.21325](https://arxiv.org/abs/2511.21325)). The defaults give SONAR-Full on XLS-R 300M as the paper
    trains it; [`SonarConfig.from_preset`] gives the named variants. Where the paper and the authors' released code
    differ, a field exposes the choice and defaults to the paper.

    Views:

    noise_branch (`bool`, *optional*, defaults to `True`):
        Build the noise path (filter bank, noise encoder, fusion, JS loss). `False` leaves one encoder and the head:
        the paper's XLS-R + AASIST baseline (Tak et al. 2022), used for the ablation and the convergence benchmark.

    Residual filter bank (noise path):

    num_filters (`int`, *optional*, defaults to 30):
        Number `M` of value-constrained high-pass filters (the paper's best is 30; its ablations use 1 and 10).
    filter_length (`int`, *optional*, defaults to 5):
        Taps per filter (odd, so that each has a centre tap).
    constraint_mode (`str`, *optional*, defaults to `"projection"`):
        How the filters are kept high-pass. `"projection"` (the paper) keeps Bayar's constraint (centre tap -1,
        off-centre taps summing to +1, so every filter sums to 0: zero DC gain) by rewriting the weights after every
        optimiser step through `project_constraint()`. `"forward"` (the released code, which left the projection
        commented out) applies `w - sum(w)` in the forward pass: it subtracts the taps' sum from every tap, so the
        kernel sums to `(1 - filter_length) * sum(w)`, not 0, and no tap is fixed; it is the released transform, not a
        constraint, and gives no zero DC gain. `"none"` is the unconstrained ablation.
    filter_init_max_tap (`float`, *optional*, defaults to 10.0):
        Only relevant with `constraint_mode="projection"`. The paper initialises each filter from N(0, 1) and projects
        it once, dividing by the sum of its off-centre taps; when that sum is near 0 the taps explode (over 200 seeds
        the bank's largest tap has a median of about 20, and 13% of seeds have a tap above 100, which swamps the noise
        view). As a safeguard, a filter whose projected taps exceed this magnitude is drawn again (about 5% of filters
        at 10); the rule is otherwise the paper's. `None` keeps every first draw.
    learnable_filters (`bool`, *optional*, defaults to `True`):
        `False` freezes the bank to fixed SRM kernels ([-1, 1], [1, -2, 1], [-1, 3, -3, 1], [-1, 4, -6, 4, -1] and
        their shifts), the paper's "non-learnable" ablation.

    Encoders:

    encoder_config (`dict` or `PreTrainedConfig`, *optional*):
        Config of the audio encoder used for both views; any Hugging Face audio encoder whose output has
        `last_hidden_state` (wav2vec2, XLS-R, HuBERT, WavLM). Defaults to the XLS-R 300M shape with SpecAugment and
        LayerDrop off.
    weight_init (`str`, *optional*, defaults to `"pytorch"`):
        Initialisation of SONAR's own linear and convolution layers (filter bank, fusion and head; the encoders
        initialise or load themselves). `"pytorch"` (the released code, which keeps PyTorch's defaults): weights and
        biases uniform in +-1/sqrt(fan_in). `"lecun_normal"`: weights N(0, 1/fan_in), about 1.7x the standard
        deviation, and zero biases (this project's earlier choice, meant to keep activations near unit scale through
        AASIST's SELU layers).
    share_encoders (`bool`, *optional*, defaults to `False`):
        Tie the content and noise encoders (the paper clones one checkpoint into two separately fine-tuned encoders).
        With shared weights both views run as one batch.
    encoder_name_or_path (`str`, *optional*):
        The checkpoint both encoders were cloned from by [`SonarModel.from_encoder_pretrained`], kept for the model
        card.

    Fusion:

    fusion_num_heads (`int`, *optional*, defaults to 8):
        Heads of the one `nn.MultiheadAttention` used in both directions (content->noise, noise->content).
    fusion_dropout (`float`, *optional*, defaults to 0.0):
        Attention dropout inside the fusion.
    fusion_residual (`bool`, *optional*, defaults to `False`):
        Add a residual connection and LayerNorm around each attention direction: a variant, not the paper's design.

    Head:

    head (`str`, *optional*, defaults to `"aasist"`):
        `"aasist"` (SONAR-Full: the AASIST graph-attention back-end on the fused frames) or `"mlp"` (SONAR-Lite: a
        small MLP, see `mlp_input`).
    aasist_linear_size (`int`, *optional*, defaults to 128):
        Width of the linear map from the encoder's hidden size into AASIST's 2-D feature map.
    aasist_filters (`list[list[int]]`, *optional*):
        Input and output channels of AASIST's six residual blocks; defaults to
        `[[1, 32], [32, 32], [32, 64], [64, 64], [64, 64], [64, 64]]`.
    aasist_gat_dims (`list[int]`, *optional*, defaults to `[64, 32]`):
        Node sizes of the graph-attention layers and of the heterogeneous-graph layers.
    aasist_temperatures (`list[float]`, *optional*, defaults to `[2.0, 2.0, 100.0, 100.0]`):
        Attention temperatures: spectral GAT, temporal GAT, heterogeneous layers (the fourth is kept for parity with
        the AASIST config and unused, as in AASIST).
    aasist_pool_ratios (`list[float]`, *optional*, defaults to `[0.5, 0.5, 0.5, 0.5]`):
        Fraction of nodes kept by the graph pooling layers: spectral, temporal, heterogeneous.
    aasist_dropout (`float`, *optional*, defaults to 0.5):
        Dropout on the 5 * gat_dims[1] readout before the output layer.
    aasist_preactivation (`bool`, *optional*, defaults to `False`):
        `False` (the published AASIST code, its copies in Tak et al.'s SSL_Anti-spoofing and the SONAR release, and
        so their checkpoints): each residual block's first convolution reads the block's input. Those blocks also
        compute BatchNorm + SELU of the input and discard the result; that step changes no output and is left out
        here. `True` feeds that BatchNorm + SELU into the convolution (a pre-activation block, in every block but the
        first), which the published code may have meant; weights are then not interchangeable with the authors'.
    mlp_input (`str`, *optional*, defaults to `"fused_frames"`):
        What the SONAR-Lite MLP reads. `"fused_frames"` (the released SonarLite code): every frame of the
        cross-attention fusion, one logit pair per frame; the frames' logits are averaged into the recording's (the
        released module returns per-frame logits and leaves the pooling open). `"pooled_views"`: the time-averaged
        content and noise embeddings, concatenated (one reading of the paper's "small MLP"; no fusion is built).
    mlp_hidden_sizes (`list[int]`, *optional*, defaults to `[512, 128]`):
        Hidden widths of the SONAR-Lite MLP, ReLU after each (the released code: 1024 -> 512 -> 128 -> 2; the paper
        gives no sizes).
    mlp_dropout (`float`, *optional*, defaults to 0.0):
        Dropout after each hidden layer of the SONAR-Lite MLP (the released code has none).

    Loss:

    lambda_js (`float`, *optional*, defaults to 1.0):
        Weight of the Jensen-Shannon alignment loss (paper 1.0, best in its ablation; released code 0.8).
    js_log_base (`float`, *optional*, defaults to 2.0):
        Logarithm base of the JS divergence: 2 (the paper; JS lies in [0, 1], so the spoof target 1 - JS is reachable)
        or e (about 2.718, the released code).
    class_weights (`list[float]`, *optional*):
        Cross-entropy weights in label-id order (bonafide, spoof). `None` is unweighted; the training script sets
        them from the training split's priors, and the released code used 0.9 for bona fide and 0.1 for spoof.

    Input and long audio:

    sampling_rate (`int`, *optional*, defaults to 16000):
        Rate the encoders expect.
    max_length (`int`, *optional*, defaults to 64600):
        Samples in one window (about 4.04 s), the paper's input length. Shorter input is tiled (repeated) to it.
    window_hop_length (`int`, *optional*, defaults to half of `max_length`):
        Hop, in samples, between the windows that score input longer than `max_length`; the last window is aligned to
        the end of the recording so that no sample is left out.
    window_aggregation (`str`, *optional*, defaults to `"mean"`):
        How per-window logits become the recording's logits: `"first"` keeps the first window only (the paper's
        evaluation protocol, which scores the first 64,600 samples), `"mean"` averages the windows' logits, `"max"`
        takes the most spoof-like window.
    window_batch_size (`int`, *optional*, defaults to 16):
        Windows of long recordings scored per forward pass, which bounds memory on hour-long input.

    Decision (read by `sonar_verdict`, the one place a score becomes a label and a probability):

    decision_threshold (`float`, *optional*, defaults to 0.0):
        Score (bona fide log-odds) at or above which a recording is judged bona fide. 0.0 is the argmax of the logits;
        the training script sets it to the development split's equal-error-rate threshold.
    calibration_scale (`float`, *optional*, defaults to 1.0):
        Scale `a` of the spoof probability `sigmoid(a * (decision_threshold - score))`, which is 0.5 exactly at the
        threshold. The training script fits it on the development split (logistic regression with the offset fixed at
        the threshold); 1.0 with a threshold of 0 gives the softmax of the logits. 0 means the scores carry no
        evidence: every probability is 0.5.
    smoke_test (`bool`, *optional*, defaults to `False`):
        The model was trained on the embedded demo corpus: a smoke test of the code, not a detector. The training
        script sets it; the verdict text, the model card and the Space say so.

    Example:

    ```python
    >>> from modeling_sonar import SonarConfig, SonarForAudioClassification

    >>> # SONAR-Full at XLS-R 300M size, randomly initialised
    >>> config = SonarConfig.from_preset("sonar-full")
    >>> model = SonarForAudioClassification(config)

    >>> # the same with both encoders cloned from the pretrained XLS-R checkpoint
    >>> model = SonarForAudioClassification.from_encoder_pretrained("facebook/wav2vec2-xls-r-300m", config)
    ```"""

    model_type = "sonar"
    sub_configs_defaults = {
        "encoder_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="wav2vec2",
            init_kwargs={k: v for k, v in XLSR_300M_ENCODER.items() if k != "model_type"},
        )
    }

    noise_branch: bool = True
    num_filters: int = 30
    filter_length: int = 5
    constraint_mode: str = "projection"
    filter_init_max_tap: float | None = 10.0
    learnable_filters: bool = True

    encoder_config: dict | PreTrainedConfig | None = None
    share_encoders: bool = False
    encoder_name_or_path: str | None = None
    weight_init: str = "pytorch"

    fusion_num_heads: int = 8
    fusion_dropout: float = 0.0
    fusion_residual: bool = False

    head: str = "aasist"
    aasist_linear_size: int = 128
    aasist_filters: list[list[int]] | None = None
    aasist_gat_dims: list[int] | None = None
    aasist_temperatures: list[float] | None = None
    aasist_pool_ratios: list[float] | None = None
    aasist_dropout: float = 0.5
    aasist_preactivation: bool = False
    mlp_input: str = "fused_frames"
    mlp_hidden_sizes: list[int] | None = None
    mlp_dropout: float = 0.0

    lambda_js: float = 1.0
    js_log_base: float = 2.0
    class_weights: list[float] | None = None

    sampling_rate: int = SONAR_SAMPLING_RATE
    max_length: int = SONAR_WINDOW_LENGTH
    window_hop_length: int | None = None
    window_aggregation: str = "mean"
    window_batch_size: int = 16

    decision_threshold: float = 0.0
    calibration_scale: float = 1.0
    smoke_test: bool = False

    def __post_init__(self, **kwargs):
        self.aasist_filters = self.aasist_filters or [[1, 32], [32, 32], [32, 64], [64, 64], [64, 64], [64, 64]]
        self.aasist_gat_dims = self.aasist_gat_dims or [64, 32]
        self.aasist_temperatures = self.aasist_temperatures or [2.0, 2.0, 100.0, 100.0]
        self.aasist_pool_ratios = self.aasist_pool_ratios or [0.5, 0.5, 0.5, 0.5]
        self.mlp_hidden_sizes = self.mlp_hidden_sizes or [512, 128]
        if self.id2label is None:
            self.id2label = dict(enumerate(SONAR_LABELS))
            self.label2id = {label: i for i, label in enumerate(SONAR_LABELS)}
        if self.window_hop_length is None:
            self.window_hop_length = self.max_length // 2
        super().__post_init__(**kwargs)
        self.auto_map = {**SONAR_AUTO_MAP, **(getattr(self, "auto_map", None) or {})}
        self.custom_pipelines = copy.deepcopy(SONAR_CUSTOM_PIPELINES)
        self._validate()

    def _validate(self):
        choices = {
            "constraint_mode": ("projection", "forward", "none"),
            "head": ("aasist", "mlp"),
            "mlp_input": ("fused_frames", "pooled_views"),
            "weight_init": ("pytorch", "lecun_normal"),
            "window_aggregation": ("first", "mean", "max"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}.")
        if self.num_filters < 1:
            raise ValueError(f"`num_filters` must be at least 1, got {self.num_filters}.")
        if self.filter_length < 3 or self.filter_length % 2 == 0:
            raise ValueError(f"`filter_length` must be odd and at least 3, got {self.filter_length}.")
        if self.filter_init_max_tap is not None and self.filter_init_max_tap <= 1:
            raise ValueError(
                f"`filter_init_max_tap` must exceed 1 (the centre tap is -1) or be None, got "
                f"{self.filter_init_max_tap}."
            )
        if self.js_log_base <= 1:
            raise ValueError(f"`js_log_base` must be greater than 1 (2 or e), got {self.js_log_base}.")
        if self.class_weights is not None and len(self.class_weights) != len(SONAR_LABELS):
            raise ValueError(f"`class_weights` needs one weight per label {SONAR_LABELS}, got {self.class_weights}.")
        if self.id2label != dict(enumerate(SONAR_LABELS)):
            raise ValueError(
                f"`id2label` must be {dict(enumerate(SONAR_LABELS))}, the label ids of every SONAR dataset, got "
                f"{self.id2label}."
            )
        if not 0 < self.window_hop_length <= self.max_length:
            raise ValueError(
                f"`window_hop_length` must be in (0, max_length={self.max_length}], got {self.window_hop_length}."
            )
        if not math.isfinite(self.decision_threshold):
            raise ValueError(f"`decision_threshold` must be a finite score, got {self.decision_threshold}.")
        if not (math.isfinite(self.calibration_scale) and self.calibration_scale >= 0):
            raise ValueError(f"`calibration_scale` must be finite and non-negative, got {self.calibration_scale}.")
        hidden_size = getattr(self.encoder_config, "hidden_size", None)
        if hidden_size is None:
            raise ValueError(f"`encoder_config` ({self.encoder_config.model_type}) has no `hidden_size`.")
        if self.uses_fusion and hidden_size % self.fusion_num_heads:
            raise ValueError(
                f"The encoder's hidden_size ({hidden_size}) must be divisible by `fusion_num_heads` "
                f"({self.fusion_num_heads})."
            )
        if len(self.aasist_filters) != 6 or self.aasist_filters[0][0] != 1:
            raise ValueError(
                f"`aasist_filters` must list 6 [in, out] channel pairs starting from 1 input channel, got "
                f"{self.aasist_filters}."
            )
        if min(self.mlp_hidden_sizes) < 1:
            raise ValueError(f"`mlp_hidden_sizes` must be positive widths, got {self.mlp_hidden_sizes}.")
        if len(self.aasist_gat_dims) != 2:
            raise ValueError(f"`aasist_gat_dims` must hold 2 sizes, got {self.aasist_gat_dims}.")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "SonarConfig":
        """
        Builds a named variant: `sonar-full`, `sonar-lite`, `baseline` (XLS-R + AASIST, no noise path), all at XLS-R
        300M size; `small` (a 2-layer, hidden-64 encoder that trains from scratch on a CPU: the main job's) or `tiny`
        (test sizes). `overrides` replace any field, e.g. `head="mlp"`.
        """
        if name not in SONAR_PRESETS:
            raise ValueError(f"Unknown SONAR preset {name!r}; choose one of {sorted(SONAR_PRESETS)}.")
        kwargs = {**SONAR_PRESETS[name], **overrides}
        encoder = kwargs.get("encoder_config")
        if isinstance(encoder, dict):
            encoder = dict(encoder)
            kwargs["encoder_config"] = AutoConfig.for_model(encoder.pop("model_type"), **encoder)
        return cls(**kwargs)

    @property
    def uses_fusion(self) -> bool:
        """Whether the cross-attention fusion is built: SONAR-Full, and SONAR-Lite on fused frames."""
        return self.noise_branch and (self.head == "aasist" or self.mlp_input == "fused_frames")

    @property
    def bonafide_id(self) -> int:
        return SONAR_BONAFIDE_ID

    @property
    def spoof_id(self) -> int:
        return SONAR_SPOOF_ID


__all__ = [
    "SONAR_BONAFIDE_ID",
    "SONAR_CUSTOM_PIPELINES",
    "SONAR_LABELS",
    "SONAR_PRESETS",
    "SONAR_SAMPLING_RATE",
    "SONAR_SPOOF_ID",
    "SONAR_WINDOW_LENGTH",
    "SonarConfig",
]
