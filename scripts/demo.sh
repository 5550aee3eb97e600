#!/usr/bin/env bash
# The main job: the tiny SONAR model on the embedded demo corpus, end to end on a CPU in minutes. It builds the demo
# corpus, trains (accelerate, one CPU process), scores the eval split with evaluate_sonar.py, writes the Hub-ready
# model folder and plots, and prints the verdict for example recordings through pipeline("audio-classification").
#
#   bash scripts/demo.sh                      # outputs/tiny_demo/{model,eval,eval_results}, then the verdicts
#   bash scripts/demo.sh --max_steps 20       # extra flags go to train_sonar.py
#
# A smoke test of the pipeline, not a detector: the demo corpus is a handful of speakers and signal-processing
# "generators". Uses .venv/ when present, else python and accelerate from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

if [[ -x .venv/bin/python ]]; then BIN=.venv/bin/; else BIN=; fi
OUT=${OUT:-outputs/tiny_demo}
DATASET=data/demo_dataset

echo "== 1/4 demo corpus and its conversion"
"${BIN}python" dataset_scripts/make_demo_corpus.py --output data/demo_corpus
if [[ ! -f $DATASET/dataset_dict.json ]]; then
    "${BIN}python" dataset_scripts/asvspoof2019_la.py --root data/demo_corpus/LA --output "$DATASET"
fi

echo "== 2/4 training (configs/tiny_demo.yaml)"
rm -rf "$OUT"
"${BIN}accelerate" launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
    train_sonar.py --config configs/tiny_demo.yaml --dataset "$DATASET" --output_dir "$OUT" "$@"

echo "== 3/4 evaluation of the eval split"
"${BIN}python" evaluate_sonar.py --model "$OUT/model" --dataset "$DATASET" --split eval --output_dir "$OUT/eval"

echo "== 4/4 verdicts through pipeline(\"audio-classification\")"
"${BIN}python" - "$OUT" "$DATASET" <<'PYTHON'
import json
import sys
from pathlib import Path

from transformers import pipeline

from modeling_sonar import SONAR_LABELS, load_audio
from sonar_training.data import load_sonar_dataset

out, dataset = Path(sys.argv[1]), sys.argv[2]
model_dir = out / "model"
# the plain call builds SONAR's own pipeline (config.custom_pipelines), whose verdict is `sonar_verdict`'s
detector = pipeline("audio-classification", model=str(model_dir), trust_remote_code=True)
eval_split = load_sonar_dataset(dataset, "eval")
labels = eval_split["label"][:]
for truth in SONAR_LABELS:  # the first bona fide and the first spoof recording of the eval split
    row = eval_split[labels.index(SONAR_LABELS.index(truth))]
    result = detector(load_audio(row["audio"]), return_timeline=True)
    print(f"{row['utt_id']} (truly {truth}): {result['verdict']}; score {result['score']:+.6f}, "
          f"p(spoof) {result['spoof_probability']:.6f}")
summary = json.loads((out / "eval" / "summary.json").read_text())
state = json.loads((out / "trainer_state.json").read_text())
print(f"dev EER {state['best_eer']:.2f}% (step {state['best_step']}), eval EER {summary['eer']:.2f}% "
      f"({summary['num_bonafide']} bona fide, {summary['num_spoof']} spoof), eval calibration: ECE "
      f"{summary['calibration']['ece']:.3f}, Brier {summary['calibration']['brier']:.3f}; model folder: {model_dir}")
PYTHON

echo "== done in $(( $(date +%s) - start )) s"
