"""The tooling that trains, scores, exports and publishes SONAR models; none of it ships with the weights.

`modeling_sonar` is what a saved model carries; this package is what `train_sonar.py`, `evaluate_sonar.py`,
`export_sonar.py` and `release_sonar.py` are made of:

- `arguments`: the training script's arguments and their checks;
- `data`: loading converted datasets and batching them (`SonarCollator`);
- `sampling`: which rows each epoch reads (balanced epochs, replayable on resume);
- `rawboost`: the RawBoost augmentation;
- `recipe`: argument files, class weights, the learning-rate schedule;
- `checkpoints`: `checkpoint-{step}` folders and the training state;
- `metrics`: EER, min t-DCF, calibration; `asv_scores`: the ASV scores the t-DCF needs;
- `scoring`: score files, the summary of a scored split, verdicts; `plots`: the figures;
- `model_card`: the README.md of a model folder; `release`: publishing it on the Hub; `onnx_export`: the ONNX
  export.
"""
