"""SonarConfig: presets, validation with messages that name the field, and the round trip through config.json."""

import pytest
import torch
from transformers import AutoConfig, Wav2Vec2Config

from modeling_sonar import SONAR_LABELS, SonarConfig, SonarForAudioClassification


def test_defaults_follow_the_paper():
    config = SonarConfig()
    assert (config.num_filters, config.filter_length, config.constraint_mode) == (30, 5, "projection")
    assert (config.lambda_js, config.js_log_base, config.max_length) == (1.0, 2.0, 64600)
    assert (config.head, config.share_encoders, config.noise_branch) == ("aasist", False, True)
    assert config.id2label == {0: "bonafide", 1: "spoof"} and config.bonafide_id == 0 and config.spoof_id == 1
    # where the paper is silent, the released code: published AASIST block, PyTorch init, per-frame Lite MLP
    assert (config.aasist_preactivation, config.weight_init, config.filter_init_max_tap) == (False, "pytorch", 10.0)
    assert (config.mlp_input, config.mlp_hidden_sizes, config.mlp_dropout) == ("fused_frames", [512, 128], 0.0)
    encoder = config.encoder_config
    assert isinstance(encoder, Wav2Vec2Config)
    assert (encoder.hidden_size, encoder.num_hidden_layers, encoder.num_attention_heads) == (1024, 24, 16)
    assert (encoder.layerdrop, encoder.mask_time_prob, encoder.apply_spec_augment) == (0.0, 0.0, False)


@pytest.mark.parametrize("name", ["sonar-full", "sonar-lite", "baseline", "tiny"])
def test_presets_build(name):
    config = SonarConfig.from_preset(name)
    assert tuple(config.id2label.values()) == SONAR_LABELS
    assert SonarConfig.from_preset("sonar-lite").head == "mlp"
    assert SonarConfig.from_preset("baseline").noise_branch is False


def test_preset_overrides_and_unknown_name():
    assert SonarConfig.from_preset("tiny", head="mlp", num_filters=10).num_filters == 10
    with pytest.raises(ValueError, match="Unknown SONAR preset 'huge'"):
        SonarConfig.from_preset("huge")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"constraint_mode": "clip"}, "constraint_mode"),
        ({"head": "transformer"}, "head"),
        ({"window_aggregation": "median"}, "window_aggregation"),
        ({"filter_length": 4}, "filter_length"),
        ({"num_filters": 0}, "num_filters"),
        ({"js_log_base": 1.0}, "js_log_base"),
        ({"class_weights": [1.0]}, "class_weights"),
        ({"window_hop_length": 0}, "window_hop_length"),
        ({"fusion_num_heads": 3}, "fusion_num_heads"),
        ({"id2label": {0: "real", 1: "fake"}}, "id2label"),
        ({"mlp_input": "cls"}, "mlp_input"),
        ({"mlp_hidden_sizes": [16, 0]}, "mlp_hidden_sizes"),
        ({"weight_init": "xavier"}, "weight_init"),
        ({"filter_init_max_tap": 0.5}, "filter_init_max_tap"),
        ({"head": "mlp", "fusion_num_heads": 3}, "fusion_num_heads"),
    ],
)
def test_invalid_fields_raise_value_error_naming_them(overrides, message):
    with pytest.raises(ValueError, match=message):
        SonarConfig.from_preset("tiny", **overrides)


def test_round_trip_and_auto_config(tmp_path):
    import modeling_sonar  # noqa: F401  registers the Auto classes

    config = SonarConfig.from_preset("tiny", lambda_js=0.8, js_log_base=2.718281828, constraint_mode="forward")
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, SonarConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert loaded.encoder_config.hidden_size == 16
    assert set(loaded.auto_map) == {"AutoConfig", "AutoModel", "AutoModelForAudioClassification"}


def test_full_size_builds_from_config_alone_with_about_650m_parameters():
    config = SonarConfig.from_preset("sonar-full")
    with torch.device("meta"):
        model = SonarForAudioClassification(config)
    total = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.sonar.content_encoder.parameters())
    assert 310e6 < encoder < 320e6, encoder
    assert 620e6 < total < 660e6, total
