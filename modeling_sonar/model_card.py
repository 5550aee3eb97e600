"""The model card (README.md) of a trained SONAR folder, shared by `train_sonar.py` and `release_sonar.py`.

Not imported by `modeling_sonar.py`, so it never ships with the weights.
"""

import json
import os
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .configuration_sonar import SonarConfig


CARD_INPUTS_FILE = "training_summary.json"

CITATION = """@article{sonar2025,
  title={{SONAR}: Spectral-Contrastive Audio Residuals for Generalizable Deepfake Detection},
  journal={arXiv preprint arXiv:2511.21325},
  year={2025},
  url={https://arxiv.org/abs/2511.21325}
}"""

RECIPE_KEYS = (
    "dataset",
    "preset",
    "encoder_name_or_path",
    "max_length",
    "rawboost_algo",
    "augment_full_clip",
    "augment_dev",
    "balanced_sampling",
    "balanced_spoof_draw",
    "random_crop",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_processes",
    "learning_rate",
    "min_learning_rate",
    "lr_scheduler_type",
    "lr_cycle_epochs",
    "weight_decay",
    "max_grad_norm",
    "num_train_epochs",
    "max_steps",
    "early_stopping_patience",
    "mixed_precision",
    "seed",
)


def _variant(config: SonarConfig) -> str:
    if not config.noise_branch:
        return "baseline (one encoder + AASIST, no filter bank, no JS loss)"
    return "SONAR-Full (AASIST head)" if config.head == "aasist" else "SONAR-Lite (MLP head)"


def render_model_card(config: SonarConfig, summary: dict, model_name: str) -> ModelCard:
    """Build the card from the model config and a training summary.

    `summary` holds `recipe` (argument values, see `RECIPE_KEYS`), `dev` (`eer` in percent, `threshold`, `step`) and
    `results` (one dict per test set: `name`, `dataset`, `split`, `eer` in percent, optionally `min_tdcf`); the
    results become the card's model-index so the Hub shows the EER per test set.
    """
    recipe, dev, results = summary["recipe"], summary["dev"], summary.get("results", [])
    eval_results = [
        EvalResult(
            task_type="audio-classification",
            task_name="Deepfake speech detection",
            dataset_type=result["dataset"],
            dataset_name=result["name"],
            dataset_split=result["split"],
            metric_type="eer",
            metric_name="EER (%)",
            metric_value=round(result["eer"], 4),
        )
        for result in results
    ]
    datasets = sorted({recipe["dataset"]} | {result["dataset"] for result in results})
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-classification",
        license="apache-2.0",
        tags=["audio", "anti-spoofing", "deepfake-detection", "asvspoof", "sonar", "remote-code"],
        datasets=[name for name in datasets if name.count("/") == 1 and not os.path.exists(name)] or None,
        metrics=["eer"],
        base_model=config.encoder_name_or_path,
        model_name=model_name,
        eval_results=eval_results or None,
    )
    rows = "\n".join(
        f"| {r['name']} | {r['split']} | {r['eer']:.2f} | "
        f"{'-' if r.get('min_tdcf') is None else format(r['min_tdcf'], '.4f')} |"
        for r in results
    )
    results_table = (
        "| test set | split | EER (%) | min t-DCF |\n|---|---|---|---|\n" + rows
        if results
        else "No test set evaluated."
    )
    recipe_lines = "\n".join(f"| `{key}` | `{recipe[key]}` |" for key in RECIPE_KEYS if key in recipe)
    threshold = config.to_dict().get("decision_threshold")
    threshold_text = "not set" if threshold is None else f"{threshold:.6g}"
    encoder = config.encoder_config
    body = f"""
# {model_name}

A [SONAR](https://arxiv.org/abs/2511.21325) detector of synthetic (deepfake) speech: {_variant(config)}, encoders of
type `{encoder.model_type}` (hidden size {encoder.hidden_size}, {encoder.num_hidden_layers} layers)
{"cloned from `" + config.encoder_name_or_path + "`" if config.encoder_name_or_path else "trained from scratch"}.
SONAR contrasts a content view (the raw waveform) with a noise view (the residual of learnable, value-constrained
high-pass filters) through two encoders, cross-attention fusion and a Jensen-Shannon alignment loss.

## Usage

```python
from transformers import pipeline

detector = pipeline("audio-classification", model="{model_name}", trust_remote_code=True)
detector("recording.wav")  # [{{'label': 'bonafide', 'score': ...}}, {{'label': 'spoof', 'score': ...}}]
```

## Score and decision threshold

The detection score is the **bona fide log-odds** `logits[bonafide] - logits[spoof]` (`outputs.scores`): higher means
more likely genuine, as in ASVspoof score files. Each recording is scored on windows of {config.max_length} samples
at {config.sampling_rate} Hz (shorter input is tiled; longer input is scored window by window and aggregated by
`{config.window_aggregation}`).

`config.decision_threshold` = **{threshold_text}**: the score at the equal
error rate on the development split ({dev["eer"]:.2f}% EER at step {dev["step"]}). Accept as bona fide when
`score >= decision_threshold`. The pipeline's softmax instead thresholds at 0; the two differ when the classes were
weighted or the dev data differ from yours: calibrate on your own data before deciding anything that matters.

## Results

{results_table}

Development-set EER: {dev["eer"]:.2f}% (best of training, used for early stopping and the threshold).

## Training recipe

Trained with `train_sonar.py` (Accelerate). Loss: class-weighted cross-entropy (weights {config.class_weights}) +
{config.lambda_js} x Jensen-Shannon alignment loss (log base {config.js_log_base:g}); filter constraint by
`{config.constraint_mode}`; AdamW with cosine decay; dev EER each epoch, early stopping, best checkpoint kept.

| argument | value |
|---|---|
{recipe_lines}

## Limitations

- A detector trained on one corpus generalises imperfectly to unseen generators, languages, codecs and channels; the
  EERs above hold for the listed test sets only.
- Models trained on the embedded demo corpus are smoke tests of the pipeline, not detectors.
- Scores are not calibrated probabilities. Use this as one piece of evidence, never as the sole basis of a decision
  about a person.

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def write_model_card(model_dir: str | os.PathLike, summary: dict, model_name: str) -> Path:
    """Write `README.md` and keep the card's inputs in `training_summary.json` (so a release can add test sets)."""
    model_dir = Path(model_dir)
    config = SonarConfig.from_pretrained(model_dir)
    (model_dir / CARD_INPUTS_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    render_model_card(config, summary, model_name).save(model_dir / "README.md")
    return model_dir / "README.md"


__all__ = ["CARD_INPUTS_FILE", "CITATION", "render_model_card", "write_model_card"]
