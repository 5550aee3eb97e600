"""The model card (README.md) of a trained SONAR folder, shared by `train_sonar.py` and `release_sonar.py`."""

import json
import math
import os
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling_sonar import SonarConfig, sonar_verdict


CARD_INPUTS_FILE = "training_summary.json"
# The card shows the verdict at the scores where the spoof probability takes these values.
EXAMPLE_SPOOF_PROBABILITIES = (0.99, 0.9, 0.5, 0.1, 0.01)

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


def public_name(path_or_id: str | os.PathLike) -> str:
    """How a published file names a model, dataset or encoder: a local folder by its name, never by its path (which
    would leak the user's directories), and a Hub id (`ORG/NAME`, or `NAME`) as it is."""
    text = os.fspath(path_or_id)
    if os.path.exists(text) or text.startswith((".", "/", "~")) or text.count("/") > 1:
        return Path(text).expanduser().resolve().name
    return text


def _variant(config: SonarConfig) -> str:
    if not config.noise_branch:
        return "baseline (one encoder + AASIST, no filter bank, no JS loss)"
    return "SONAR-Full (AASIST head)" if config.head == "aasist" else "SONAR-Lite (MLP head)"


def render_model_card(config: SonarConfig, summary: dict, model_name: str) -> ModelCard:
    """Build the card from the model config and a training summary.

    `summary` holds `recipe` (argument values, see `RECIPE_KEYS`), `dev` (`eer` in percent, `threshold`, `step`,
    optionally `calibration` with the `ece` and `brier` of the spoof probability) and `results` (one dict per test
    set: `name`, `dataset`, `split`, `eer` in percent, optionally `min_tdcf`); the results become the card's
    model-index so the Hub shows the EER per test set. The verdicts shown come from `sonar_verdict`, as the
    pipeline's do, and a model marked `smoke_test` says so at the top.
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
    encoder_id = config.encoder_name_or_path
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-classification",
        license="apache-2.0",
        tags=["audio", "anti-spoofing", "deepfake-detection", "asvspoof", "sonar", "remote-code"]
        + (["smoke-test"] if config.smoke_test else []),
        datasets=[name for name in datasets if name.count("/") == 1 and not os.path.exists(name)] or None,
        metrics=["eer"],
        base_model=encoder_id if encoder_id and encoder_id.count("/") == 1 else None,  # a Hub model, not a folder
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
    threshold, scale = config.decision_threshold, config.calibration_scale
    # scores where p(spoof) = p, from p = sigmoid(scale * (threshold - score)); with scale 0 every score gives 0.5
    scores = [threshold - math.log(p / (1 - p)) / scale for p in EXAMPLE_SPOOF_PROBABILITIES] if scale else [threshold]
    examples = "\n".join(
        f"| {score:+.4f} | {verdict['text']} | {verdict['spoof_probability']:.4f} |"
        for score in scores
        for verdict in [sonar_verdict(score, config)]
    )
    calibration = dev.get("calibration")
    calibration_text = (
        f"On the development split its expected calibration error is {calibration['ece']:.4f} and its Brier score "
        f"{calibration['brier']:.4f}."
        if calibration
        else "It was not fitted on a development split."
    )
    smoke_test_text = (
        "> **Smoke test, not a detector.** This model was trained on the embedded demo corpus (a handful of speakers "
        "and signal-processing resyntheses) to check that training, evaluation and the Space run end to end. Its "
        "verdicts are close to chance.\n"
        if config.smoke_test
        else ""
    )
    encoder = config.encoder_config
    body = f"""
# {model_name}

{smoke_test_text}
A [SONAR](https://arxiv.org/abs/2511.21325) detector of synthetic (deepfake) speech: {_variant(config)}, encoders of
type `{encoder.model_type}` (hidden size {encoder.hidden_size}, {encoder.num_hidden_layers} layers)
{"cloned from `" + config.encoder_name_or_path + "`" if config.encoder_name_or_path else "trained from scratch"}.
SONAR contrasts a content view (the raw waveform) with a noise view (the residual of learnable, value-constrained
high-pass filters) through two encoders, cross-attention fusion and a Jensen-Shannon alignment loss.

## Usage

```python
from transformers import pipeline

detector = pipeline("audio-classification", model="{model_name}", trust_remote_code=True)
detector("recording.wav")  # [{{'label': 'bonafide', 'score': p}}, {{'label': 'spoof', 'score': 1 - p}}], verdict first
detector("recording.wav", return_timeline=True)  # also the score, the verdict in words and a per-window timeline
```

## Score, threshold, probability

The detection score is the **bona fide log-odds** `logits[bonafide] - logits[spoof]` (`outputs.scores`): higher means
more likely genuine, as in ASVspoof score files. Each recording is scored on windows of {config.max_length} samples
at {config.sampling_rate} Hz (shorter input is tiled; longer input is scored window by window and aggregated by
`{config.window_aggregation}`).

`config.decision_threshold` = **{threshold:.6g}** is the score at the equal error rate on the development split
({dev["eer"]:.2f}% EER at step {dev["step"]}): a recording scoring at or above it is judged bona fide. The spoof
probability is `sigmoid(a * (decision_threshold - score))` with `a = config.calibration_scale` = **{scale:.6g}**,
fitted on the development split, so it is 0.5 exactly at the threshold. {calibration_text}

The pipeline, the demo Space and `evaluate_sonar.py` all decide through `sonar_verdict` in `audio_sonar.py`, so
they agree. Its verdicts at a few scores:

| score | verdict | p(spoof) |
|---|---|---|
{examples}

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
- The probability is calibrated on the development split only: on other generators, channels or class priors it is
  not. Use this as one piece of evidence, never as the sole basis of a decision about a person.

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


__all__ = ["CARD_INPUTS_FILE", "CITATION", "public_name", "render_model_card", "write_model_card"]
