#!/usr/bin/env python
"""Export a trained SONAR model to ONNX for ONNX Runtime: `onnx/model.onnx` (fp32) and, with `--int8`,
`onnx/model_int8.onnx` (dynamic int8 quantisation), beside the model's own files.

    python export_sonar.py --model outputs/sonar-full/model --output outputs/sonar-full/model-onnx --int8
    python export_sonar.py --model org/sonar-xlsr --output sonar-xlsr-onnx

The output folder is the model folder's files (weights, config, code, feature extractor, card) plus `onnx/`, as
Hugging Face repositories carry ONNX weights: `release_sonar.py --model_dir OUT` uploads both, and the pipeline runs
either (`backend="onnx"` or `"onnx-int8"`). The export holds one window of `max_length` samples with a dynamic batch
and outputs `logits`, `scores` (bona fide log-odds) and `js_divergence`; it is refused unless its scores match
PyTorch's within 1e-3 on test windows. Needs the `onnx` extra: `pip install -e ".[onnx]"`.
"""

import argparse
import importlib.util
import json
import sys


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved SONAR model folder or a Hub repository id")
    parser.add_argument("--output", required=True, help="the folder to write (not inside the model folder)")
    parser.add_argument("--int8", action="store_true", help="also write onnx/model_int8.onnx (dynamic int8)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    args = parser.parse_args(argv)
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f'export_sonar.py: error: {", ".join(missing)} not installed; pip install -e ".[onnx]"')

    from sonar_training.onnx_export import export_sonar

    try:
        report = export_sonar(args.model, args.output, int8=args.int8, overwrite=args.overwrite)
    except ValueError as error:
        sys.exit(f"export_sonar.py: error: {error}")
    for backend, parity in report.items():
        print(f"{backend}: max |score difference| against PyTorch {parity['max_abs_score_diff']:.2e}, "
              f"same labels: {parity['same_labels']}")  # fmt: skip
    print(f"Wrote {args.output}")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
