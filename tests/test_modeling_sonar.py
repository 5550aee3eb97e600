"""SonarModel and SonarForAudioClassification: shapes, the filter constraint, the noise path, the fusion, the JS loss,
training, long audio and the verdict."""

import copy
import math

import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from conftest import make_speechlike
from modeling_sonar import SonarConfig, SonarFeatureExtractor, SonarForAudioClassification, SonarModel
from modeling_sonar.audio_sonar import sonar_verdict, sonar_windows
from modeling_sonar.modeling_sonar import (
    SonarCrossAttentionFusion,
    SonarResidualFilterBank,
    sonar_js_divergence,
    sonar_js_loss,
)


WINDOW = 8000  # 0.5 s windows keep the tiny model fast on CPU


def tiny_config(**overrides) -> SonarConfig:
    return SonarConfig.from_preset("tiny", max_length=WINDOW, window_hop_length=WINDOW // 2, **overrides)


def clips(n: int, seconds: float = WINDOW / 16000, seed: int = 0) -> torch.Tensor:
    return torch.stack([torch.from_numpy(make_speechlike(seconds, seed=seed + i)) for i in range(n)])


def calibrated(model: SonarForAudioClassification, inputs: torch.Tensor) -> SonarForAudioClassification:
    """
    Sets every BatchNorm's running statistics to the averages over `inputs`. A fresh model's activations are far
    smaller than the initial running variance of 1, so in eval mode it would score every input alike and comparisons
    between outputs would pass vacuously.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(inputs)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


@pytest.mark.parametrize("head", ["aasist", "mlp"])
@pytest.mark.parametrize("noise_branch", [True, False])
def test_output_shapes(head, noise_branch):
    model = SonarForAudioClassification(tiny_config(head=head, noise_branch=noise_branch)).eval()
    labels = torch.tensor([0, 1, 1])
    out = model(clips(3), labels=labels, output_embeddings=True)
    assert out.logits.shape == (3, 2) and out.scores.shape == (3,)
    torch.testing.assert_close(out.scores, out.logits[:, 0] - out.logits[:, 1])
    assert out.window_logits.shape == (3, 1, 2) and out.window_mask.all()
    assert out.content_embeddings.shape == (3, 16)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    weight = torch.tensor(model.config.class_weights) if model.config.class_weights else None
    torch.testing.assert_close(out.ce_loss, torch.nn.functional.cross_entropy(out.logits, labels, weight=weight))
    if noise_branch:
        assert out.js_divergence.shape == (3,) and out.noise_embeddings.shape == (3, 16)
        torch.testing.assert_close(out.loss, out.ce_loss + model.config.lambda_js * out.js_loss)
        torch.testing.assert_close(out.js_loss, sonar_js_loss(out.js_divergence, labels == 0))  # bona fide is 0
    else:
        assert out.js_divergence is None and out.js_loss is None
        torch.testing.assert_close(out.loss, out.ce_loss)


def test_base_model_outputs():
    model = SonarModel(tiny_config()).eval()
    out = model(clips(2))
    frames = out.content_hidden_states.shape[1]
    assert out.content_hidden_states.shape == out.noise_hidden_states.shape == out.fused_hidden_states.shape
    assert out.content_hidden_states.shape == (2, frames, 16) and frames == WINDOW // 320 - 1
    assert out.noise_waveform.shape == (2, WINDOW)


def assert_bayar(filters: torch.Tensor, centre: int):
    torch.testing.assert_close(filters[:, 0, centre], -torch.ones(filters.shape[0]))
    off_centre = filters[:, 0].sum(-1) - filters[:, 0, centre]
    torch.testing.assert_close(off_centre, torch.ones(filters.shape[0]), atol=1e-5, rtol=0)


def train_steps(model: SonarForAudioClassification, steps: int = 3, lr: float = 1e-2):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    inputs, labels = clips(4), torch.tensor([0, 1, 0, 1])
    for _ in range(steps):
        model(inputs, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.project_constraint()


def test_projection_constraint_holds_at_init_and_after_optimizer_steps():
    model = SonarForAudioClassification(tiny_config(constraint_mode="projection"))
    bank = model.sonar.filter_bank
    assert_bayar(bank.filters.detach(), bank.centre)
    before = bank.filters.detach().clone()
    train_steps(model)
    # more than the rounding of a repeated projection: the filters learn from the loss
    assert (before - bank.filters.detach()).abs().max() > 1e-3, "the filters should learn"
    assert_bayar(bank.filters.detach(), bank.centre)


def test_every_part_of_the_noise_path_gets_a_gradient():
    model = SonarForAudioClassification(tiny_config())
    model(clips(4), labels=torch.tensor([0, 1, 0, 1])).loss.backward()
    sonar = model.sonar
    parts = {
        "filter taps": sonar.filter_bank.filters,
        "filter mix": sonar.filter_bank.mix,
        "noise encoder": next(p for p in sonar.noise_encoder.parameters() if p.requires_grad),
        "fusion attention": sonar.fusion.attention.in_proj_weight,
        "fusion projection": sonar.fusion.projection.weight,
    }
    for name, parameter in parts.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"no gradient reaches the {name}"


def test_noise_encoder_reads_the_filter_bank_residual():
    model = SonarModel(tiny_config()).eval()
    inputs = clips(2)
    with torch.no_grad():
        out = model(inputs)
        residual = model.filter_bank(inputs)
        torch.testing.assert_close(out.noise_waveform, residual)
        torch.testing.assert_close(out.noise_hidden_states, model.noise_encoder(residual).last_hidden_state)
        raw_view = model.noise_encoder(inputs).last_hidden_state
        assert (out.noise_hidden_states - raw_view).abs().max() > 1e-3, "the noise encoder must not see the raw wave"
        # every filter sums to 0, so the residual of a constant signal is 0 away from the zero-padded edges
        flat = model.filter_bank(torch.full((1, 400), 0.3))
        torch.testing.assert_close(flat[:, 2:-2], torch.zeros(1, 396), atol=1e-5, rtol=0)


def test_fusion_attends_both_ways_with_one_attention():
    """A1 = MHA(q=content, k=v=noise), A2 = MHA(q=noise, k=v=content), one module; Linear(2D -> D) on [A1, A2]."""
    torch.manual_seed(0)
    fusion = SonarCrossAttentionFusion(tiny_config()).eval()
    content, noise = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    with torch.no_grad():
        content_to_noise = fusion.attention(content, noise, noise)[0]
        noise_to_content = fusion.attention(noise, content, content)[0]
        expected = fusion.projection(torch.cat([content_to_noise, noise_to_content], dim=-1))
        torch.testing.assert_close(fusion(content, noise), expected)
        assert (content_to_noise - noise_to_content).abs().max() > 1e-3  # the two directions differ


def test_forward_constraint_applies_the_released_codes_transform():
    model = SonarForAudioClassification(tiny_config(constraint_mode="forward"))
    bank = model.sonar.filter_bank
    train_steps(model)
    raw = bank.filters.detach().clone()
    model.project_constraint()
    assert torch.equal(raw, bank.filters.detach()), "projection must be off in forward mode"
    torch.testing.assert_close(bank.effective_filters(), raw - raw.sum(-1, keepdim=True))
    # the released transform is not Bayar's constraint: its kernels sum to (1 - length) * sum(w), not to 0
    torch.testing.assert_close(bank.effective_filters().sum(-1), (1 - raw.shape[-1]) * raw.sum(-1))
    assert bank.effective_filters().sum(-1).abs().min() > 1e-3


def largest_init_taps(seeds: int = 200, **overrides) -> torch.Tensor:
    """The bank's largest tap magnitude at initialisation (M = 30), one per seed."""
    config = SonarConfig(**overrides)
    largest = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        bank = SonarResidualFilterBank(config)
        bank.reset_parameters()
        if config.constraint_mode == "projection" and config.filter_init_max_tap is not None:  # redraws keep it
            assert_bayar(bank.filters.detach(), bank.centre)
        largest.append(bank.filters.abs().max())
    return torch.stack(largest)


def test_filter_init_safeguard_bounds_the_taps_over_many_seeds():
    guarded = largest_init_taps()
    assert guarded.max() <= SonarConfig().filter_init_max_tap == 10.0
    unguarded = largest_init_taps(filter_init_max_tap=None)  # the paper's rule alone
    assert (unguarded > 100).float().mean() > 0.05 and unguarded.median() > 2 * guarded.median()
    # without the projection there is nothing to guard: the N(0, 1) draw stays as it is
    forward = largest_init_taps(5, constraint_mode="forward")
    assert torch.equal(forward, largest_init_taps(5, constraint_mode="forward", filter_init_max_tap=None))


@pytest.mark.parametrize("weight_init, ratio", [("pytorch", 1 / 3**0.5), ("lecun_normal", 1.0)])
def test_weight_init_schemes(weight_init, ratio):
    """std(w) * sqrt(fan_in) over SONAR's own linear and convolution layers: 1/sqrt(3) for PyTorch's uniform default
    (the released code's), 1 for LeCun-normal; biases uniform in +-1/sqrt(fan_in) or zero."""
    model = SonarForAudioClassification(SonarConfig.from_preset("small", weight_init=weight_init))
    own = [
        m
        for name, m in model.named_modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)) and "_encoder." not in name
    ]
    assert len(own) > 50
    mha_out_proj = model.sonar.fusion.attention.out_proj
    scaled = torch.cat([m.weight.detach().flatten() * m.weight[0].numel() ** 0.5 for m in own])
    assert scaled.std().item() == pytest.approx(ratio, rel=0.03)
    # MultiheadAttention zeroes its output projection's bias, as PyTorch does
    biases = [(m.bias.detach(), m.weight[0].numel() ** -0.5) for m in own if not isinstance(m, type(mha_out_proj))]
    biases = [(b, bound) for b, bound in biases if b is not None]
    if weight_init == "pytorch":
        assert scaled.abs().max() <= 1 + 1e-6
        assert all(0 < b.abs().max() <= bound for b, bound in biases)
        assert not mha_out_proj.bias.any()
    else:
        assert all(not b.any() for b, _ in biases)


def test_sonar_lite_follows_the_released_per_frame_mlp():
    with torch.device("meta"):
        lite = SonarForAudioClassification(SonarConfig.from_preset("sonar-lite"))
    widths = [(layer.in_features, layer.out_features) for layer in lite.classifier.hidden]
    assert widths + [(lite.classifier.out_proj.in_features, 2)] == [(1024, 512), (512, 128), (128, 2)]
    assert lite.sonar.fusion is not None and lite.classifier.dropout.p == 0.0


@pytest.mark.parametrize("mlp_input", ["fused_frames", "pooled_views"])
def test_mlp_head_inputs(mlp_input):
    model = SonarForAudioClassification(tiny_config(head="mlp", mlp_input=mlp_input)).eval()
    assert (model.sonar.fusion is not None) == (mlp_input == "fused_frames")
    inputs = clips(2)
    with torch.no_grad():
        views = model.sonar(inputs)
        logits = model(inputs).logits
        head = model.classifier
        if mlp_input == "fused_frames":  # per-frame logits, averaged over the frames
            hidden = views.fused_hidden_states
            for layer in head.hidden:
                hidden = torch.relu(layer(hidden))
            expected = head.out_proj(hidden).mean(1)
        else:
            hidden = torch.cat([views.content_hidden_states.mean(1), views.noise_hidden_states.mean(1)], -1)
            for layer in head.hidden:
                hidden = torch.relu(layer(hidden))
            expected = head.out_proj(hidden)
    torch.testing.assert_close(logits, expected)


def test_no_constraint_leaves_filters_free():
    model = SonarForAudioClassification(tiny_config(constraint_mode="none"))
    bank = model.sonar.filter_bank
    train_steps(model)
    assert not torch.allclose(bank.filters[:, 0, bank.centre], -torch.ones(bank.filters.shape[0]))
    assert torch.equal(bank.effective_filters(), bank.filters)


def test_fixed_srm_filters_stay_fixed():
    model = SonarForAudioClassification(tiny_config(learnable_filters=False, num_filters=12))
    bank = model.sonar.filter_bank
    before = bank.filters.detach().clone()
    train_steps(model)
    assert torch.equal(before, bank.filters.detach())
    torch.testing.assert_close(before.sum(-1), torch.zeros(12, 1))  # every SRM kernel is high-pass
    assert before[0, 0].tolist() == [-1.0, 1.0, 0.0, 0.0, 0.0]
    assert before[9, 0].tolist() == [-1.0, 4.0, -6.0, 4.0, -1.0]


def test_js_divergence_properties():
    torch.manual_seed(0)
    a, b = torch.randn(4, 10, 16), torch.randn(4, 10, 16)
    torch.testing.assert_close(sonar_js_divergence(a, a), torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(sonar_js_divergence(a, b), sonar_js_divergence(b, a))
    far = sonar_js_divergence(100 * a, -100 * a)
    assert (far <= 1 + 1e-6).all() and (far > 0.9).all(), far
    natural = sonar_js_divergence(100 * a, -100 * a, log_base=torch.e)
    torch.testing.assert_close(natural, far * torch.log(torch.tensor(2.0)), atol=1e-5, rtol=1e-5)


def test_js_loss_gradient_pulls_bonafide_together_and_pushes_spoof_apart():
    torch.manual_seed(0)
    for label, direction in ((0, -1), (1, +1)):
        content = torch.randn(2, 10, 16, requires_grad=True)
        noise = torch.randn(2, 10, 16, requires_grad=True)
        before = sonar_js_divergence(content, noise).detach()
        loss = sonar_js_loss(sonar_js_divergence(content, noise), torch.full((2,), label == 0))
        loss.backward()
        with torch.no_grad():
            after = sonar_js_divergence(content - 0.5 * content.grad, noise - 0.5 * noise.grad)
        assert (direction * (after - before) > 0).all(), (label, before, after)


def test_tiny_model_overfits_a_handful_of_clips():
    torch.manual_seed(0)
    model = SonarForAudioClassification(tiny_config())
    inputs = clips(6)
    inputs[3:] = torch.sin(torch.linspace(0, 3000, WINDOW)) * 0.1 + 0.01 * torch.randn(3, WINDOW)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):  # with PyTorch's default init (the released code's) the loss settles after ~60 steps
        loss = model(inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.project_constraint()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses


def test_save_load_gives_identical_logits(tmp_path):
    model = calibrated(SonarForAudioClassification(tiny_config()), clips(4, seed=10))
    model.save_pretrained(tmp_path)
    loaded = SonarForAudioClassification.from_pretrained(tmp_path).eval()
    inputs = clips(3, seed=20)
    with torch.no_grad():
        torch.testing.assert_close(model(inputs).logits, loaded(inputs).logits, atol=0, rtol=0)
    base = SonarModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            base(inputs).fused_hidden_states, model.sonar(inputs).fused_hidden_states, atol=0, rtol=0
        )


def test_batched_equals_one_by_one_for_mixed_lengths():
    model = calibrated(SonarForAudioClassification(tiny_config()), clips(4, seed=10))
    extractor = SonarFeatureExtractor()
    waves = [make_speechlike(s, seed=i) for i, s in enumerate([0.3, 0.5, 1.3, 2.0])]
    with torch.no_grad():
        batch = model(**extractor(waves, sampling_rate=16000, return_tensors="pt"))
        singles = [model(**extractor(w, sampling_rate=16000, return_tensors="pt")) for w in waves]
    assert batch.window_mask.sum(-1).tolist() == [1, 1, 5, 7]
    torch.testing.assert_close(batch.logits, torch.cat([s.logits for s in singles]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batch.js_divergence, torch.cat([s.js_divergence for s in singles]))
    assert batch.logits.std(0).min() > 1e-3, "a calibrated model's outputs should depend on the input"


@pytest.mark.parametrize("aggregation", ["first", "mean", "max"])
def test_long_audio_window_aggregation(aggregation):
    model = calibrated(SonarForAudioClassification(tiny_config(window_aggregation=aggregation)), clips(4))
    wave = torch.from_numpy(make_speechlike(2.0, seed=3))
    windows = sonar_windows(wave, WINDOW, WINDOW // 2)
    with torch.no_grad():
        out = model(wave.unsqueeze(0))
        per_window = model(windows).logits
    torch.testing.assert_close(out.window_logits[0], per_window)
    scores = per_window[:, 0] - per_window[:, 1]
    expected = {"first": per_window[0], "mean": per_window.mean(0), "max": per_window[scores.argmin()]}[aggregation]
    torch.testing.assert_close(out.logits[0], expected)


def test_short_audio_is_tiled_to_one_window():
    model = SonarForAudioClassification(tiny_config()).eval()
    wave = torch.from_numpy(make_speechlike(0.2))
    tiled = wave.repeat(3)[:WINDOW]
    with torch.no_grad():
        torch.testing.assert_close(model(wave.unsqueeze(0)).logits, model(tiled.unsqueeze(0)).logits)


def test_shared_encoders_run_both_views_as_one_batch():
    shared = SonarForAudioClassification(tiny_config(share_encoders=True))
    separate = SonarForAudioClassification(tiny_config())
    assert shared.sonar.noise_encoder is shared.sonar.content_encoder
    encoder_size = sum(p.numel() for p in shared.sonar.content_encoder.parameters())
    assert sum(p.numel() for p in separate.parameters()) - sum(p.numel() for p in shared.parameters()) == encoder_size
    train_steps(shared, steps=1)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = SonarForAudioClassification(tiny_config())
    checkpointed = copy.deepcopy(model)
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.sonar.content_encoder.encoder.gradient_checkpointing
    inputs, labels = clips(2), torch.tensor([0, 1])
    for m in (model, checkpointed):
        torch.manual_seed(0)  # the same dropout masks in both
        m(inputs, labels=labels).loss.backward()
    for (name, expected), actual in zip(model.named_parameters(), checkpointed.parameters()):
        if expected.grad is not None:
            torch.testing.assert_close(actual.grad, expected.grad, atol=1e-6, rtol=1e-4, msg=name)
    assert model.sonar.filter_bank.filters.grad.abs().sum() > 0


def test_from_encoder_pretrained_clones_one_checkpoint_into_both_encoders(tmp_path):
    encoder_config = Wav2Vec2Config(**{k: v for k, v in tiny_config().encoder_config.to_dict().items()})
    encoder_config.layerdrop, encoder_config.mask_time_prob = 0.1, 0.05
    Wav2Vec2Model(encoder_config).save_pretrained(tmp_path / "encoder")
    model = SonarForAudioClassification.from_encoder_pretrained(tmp_path / "encoder", tiny_config())
    reference = Wav2Vec2Model.from_pretrained(tmp_path / "encoder").state_dict()
    for encoder in (model.sonar.content_encoder, model.sonar.noise_encoder):
        for name, tensor in encoder.state_dict().items():
            torch.testing.assert_close(tensor, reference[name], atol=0, rtol=0)
    assert model.sonar.content_encoder is not model.sonar.noise_encoder
    assert model.config.encoder_name_or_path == str(tmp_path / "encoder")
    assert (model.config.encoder_config.layerdrop, model.config.encoder_config.mask_time_prob) == (0.0, 0.0)
    assert_bayar(model.sonar.filter_bank.filters.detach(), model.sonar.filter_bank.centre)


def test_forward_rejects_wrong_shape():
    model = SonarForAudioClassification(tiny_config())
    with pytest.raises(ValueError, match=r"\(batch_size, samples\)"):
        model(torch.zeros(2, 1, WINDOW))


def test_forward_refuses_unknown_arguments():
    model = SonarForAudioClassification(tiny_config())
    with pytest.raises(TypeError, match="output_hidden_states"):
        model(clips(1), output_hidden_states=True)


def test_noise_waveform_is_the_filter_bank_on_the_whole_recording():
    """The noise view the Space plays and plots is the model's own filter bank on every sample of the input."""
    model = SonarForAudioClassification(tiny_config()).eval()
    wave = torch.from_numpy(make_speechlike(1.3, seed=2)).unsqueeze(0)
    with torch.no_grad():
        out = model(wave, output_noise_waveform=True)
        torch.testing.assert_close(out.noise_waveform, model.sonar.filter_bank(wave))
        assert model(wave).noise_waveform is None
        baseline = SonarForAudioClassification(tiny_config(noise_branch=False))
        assert baseline(wave, output_noise_waveform=True).noise_waveform is None
    assert out.noise_waveform.shape == wave.shape


def test_base_model_refuses_padded_recordings():
    model = SonarModel(tiny_config())
    mask = torch.ones(2, WINDOW, dtype=torch.long)
    model(clips(2), attention_mask=mask)
    mask[1, -10:] = 0
    with pytest.raises(ValueError, match="padded"):
        model(clips(2), attention_mask=mask)


def test_verdict_is_the_calibrated_probability_around_the_threshold():
    config = tiny_config(decision_threshold=1.5, calibration_scale=2.0)
    at_threshold = sonar_verdict(1.5, config)
    assert at_threshold["spoof_probability"] == 0.5 and at_threshold["label"] == "bonafide"
    below = sonar_verdict(1.0, config)
    assert below["label"] == "spoof" and below["spoof_probability"] == pytest.approx(1 / (1 + math.exp(-1.0)))
    above = sonar_verdict(2.5, config)
    assert above["label"] == "bonafide" and above["spoof_probability"] == pytest.approx(1 / (1 + math.exp(2.0)))
    assert above["bonafide_probability"] == 1 - above["spoof_probability"]
    assert above["text"] == "bona fide (real), probability 88.1%"
    assert below["text"] == "spoof (generated), probability 73.1%"
    # a score of 0 is bona fide under the argmax (the default threshold), spoof under this model's threshold
    assert sonar_verdict(0.0, tiny_config())["label"] == "bonafide" and sonar_verdict(0.0, config)["label"] == "spoof"
    assert (
        sonar_verdict(-1e4, config)["spoof_probability"] == 1.0
        and sonar_verdict(1e4, config)["spoof_probability"] == 0.0
    )
    assert sonar_verdict(-3.0, tiny_config(calibration_scale=0.0))["spoof_probability"] == 0.5
    assert "smoke-test model" in sonar_verdict(0.0, tiny_config(smoke_test=True))["text"]
    assert "smoke-test" not in below["text"]


def test_default_decision_is_the_softmax_argmax():
    model = calibrated(SonarForAudioClassification(tiny_config()), clips(4, seed=10))
    with torch.no_grad():
        out = model(clips(3, seed=20))
    for score, logits in zip(out.scores.tolist(), out.logits):
        verdict = sonar_verdict(score, model.config)
        softmax = logits.softmax(-1)
        assert verdict["spoof_probability"] == pytest.approx(softmax[1].item(), abs=1e-6)
        assert verdict["label"] == model.config.id2label[int(softmax.argmax())]


@pytest.mark.parametrize("name, value", [("decision_threshold", float("nan")), ("calibration_scale", -1.0)])
def test_config_refuses_a_bad_decision(name, value):
    with pytest.raises(ValueError, match=name):
        tiny_config(**{name: value})
