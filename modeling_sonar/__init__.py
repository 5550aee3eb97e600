"""SONAR: Spectral-Contrastive Audio Residuals for generalizable deepfake speech detection."""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from .audio_sonar import load_audio, sonar_verdict
from .configuration_sonar import SONAR_LABELS, SONAR_PRESETS, SonarConfig
from .feature_extraction_sonar import SonarFeatureExtractor
from .modeling_sonar import SonarAudioClassifierOutput, SonarForAudioClassification, SonarModel, SonarModelOutput


__version__ = "0.1.0"

AutoConfig.register("sonar", SonarConfig)
AutoModel.register(SonarConfig, SonarModel)
AutoModelForAudioClassification.register(SonarConfig, SonarForAudioClassification)
AutoFeatureExtractor.register(SonarConfig, SonarFeatureExtractor)

# save_pretrained writes auto_map and copies the code, so a folder loads with trust_remote_code=True anywhere.
SonarConfig.register_for_auto_class()
SonarModel.register_for_auto_class("AutoModel")
SonarForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
SonarFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "SONAR_LABELS",
    "SONAR_PRESETS",
    "SonarAudioClassifierOutput",
    "SonarConfig",
    "SonarFeatureExtractor",
    "SonarForAudioClassification",
    "SonarModel",
    "SonarModelOutput",
    "load_audio",
    "sonar_verdict",
]
