#!/usr/bin/env python
"""Release a trained SONAR model, and optionally its Space, on the Hugging Face Hub in one command.

    python release_sonar.py --model_dir outputs/sonar-full/model --repo_id ORG/sonar-full \
        --space_dir space --space_id ORG/sonar-full-demo \
        --results "ASVspoof 2021 DF=outputs/eval-21df/summary.json" \
        --results "In-the-Wild=outputs/eval-itw/summary.json"
    python release_sonar.py --model_dir outputs/tiny_demo/model --repo_id ORG/sonar-tiny-demo --dry-run release/

`--results NAME=SUMMARY` (a `summary.json` of `evaluate_sonar.py`) adds a test set to the model card and its
model-index, so the Hub shows the EER per test set. The model repository gets the model folder (weights, config with
`decision_threshold`, code, feature extractor, card, curves); the Space repository gets the Space folder and the
variable `SONAR_MODEL=REPO_ID`. Checkpoints, caches and bytecode are never uploaded. `--dry-run OUT` uploads
nothing: it copies exactly the files that would be uploaded into `OUT/model` and `OUT/space` and writes the plan to
`OUT/plan.json`. The token comes from `hf auth login` or `HF_TOKEN`.

The model folder is only read: `--results` renders the card into the upload copy (`OUT/model`, or a temporary copy
that is uploaded), never into the folder's own README.md. OUT must lie outside the model and Space folders (not
them, not a folder holding them, not inside them) and be new, empty or an earlier dry run, whose copies it replaces.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sonar_training.release import release


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, type=Path, help="model folder written by train_sonar.py")
    parser.add_argument("--repo_id", required=True, help="model repository, ORG/NAME")
    parser.add_argument("--space_dir", type=Path, help="Space folder to upload too (e.g. space)")
    parser.add_argument("--space_id", help="Space repository, ORG/NAME-demo")
    parser.add_argument("--private", action="store_true", help="create the repositories as private")
    parser.add_argument(
        "--results", action="append", default=[], metavar="NAME=SUMMARY", help="test set to add to the card"
    )
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", type=Path, metavar="OUT", help="copy, don't upload")
    args = parser.parse_args(argv)
    try:
        plan = release(
            args.model_dir,
            args.repo_id,
            args.space_dir,
            args.space_id,
            args.private,
            dry_run=args.dry_run,
            results=args.results,
        )
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    verb = f"Would upload (copied to {args.dry_run})" if args.dry_run else "Uploaded"
    for repo in plan["repos"]:
        print(
            f"{verb} {len(repo['files'])} files to {repo['repo_type']} {repo['repo_id']}: {', '.join(repo['files'])}"
        )
    for name, value in plan["space_variables"].items():
        print(f"Space variable {name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
