"""Convert ASVspoof 2019 LA (train/dev/eval) to a `DatasetDict`.

Source layout (`--root` is the official `LA/` folder, or `sonar-mini/LA`, or the demo corpus' `LA/`):

    ASVspoof2019_LA_{train,dev,eval}/flac/{UTT_ID}.flac
    ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt, ...dev.trl.txt, ...eval.trl.txt
        lines `SPEAKER UTT_ID - SYSTEM LABEL`, SYSTEM `-` for bona fide, LABEL `bonafide` / `spoof`
    ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt   (optional, for min t-DCF)
        lines `CM_KEY ASV_KEY SCORE`: CM_KEY `bonafide` or the attack (`A01`-`A19`), ASV_KEY `target` / `nontarget`
        for bona fide trials and `spoof` for the others, e.g. `bonafide target 2.17`, `A07 spoof -0.42`

Output: one split per protocol present (`train`, `dev`, `eval`) with columns `audio` (16 kHz), `label`
(`bonafide` 0 / `spoof` 1), `utt_id`, `speaker`, `system` (A01-A19, `-` for bona fide). The protocol's third field
is always `-` in LA and is dropped. With `--asv-scores`, the ASV score files are checked and written next to the
dataset as `asv_scores/{split}.txt` in the official three-column format (read them back with `read_asv_scores`).

    python dataset_scripts/asvspoof2019_la.py --root ../shared/data/sonar-mini/LA --output data/sonar-mini
"""

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from datasets import DatasetDict

from dataset_scripts import common


SPLITS = {
    "train": ("ASVspoof2019_LA_train", "ASVspoof2019.LA.cm.train.trn.txt"),
    "dev": ("ASVspoof2019_LA_dev", "ASVspoof2019.LA.cm.dev.trl.txt"),
    "eval": ("ASVspoof2019_LA_eval", "ASVspoof2019.LA.cm.eval.trl.txt"),
}
PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"
ASV_SCORES_DIR = "ASVspoof2019_LA_asv_scores"
ASV_SCORES_FILE = "ASVspoof2019.LA.asv.{split}.gi.trl.scores.txt"
ASV_KEYS = ("target", "nontarget", "spoof")
ATTACK = re.compile(r"A\d\d")


def available_splits(root: str | Path) -> list[str]:
    """Splits whose CM protocol file exists under `root`."""
    return [split for split, (_, protocol) in SPLITS.items() if (Path(root) / PROTOCOL_DIR / protocol).is_file()]


def build_split_dataset(root: str | Path, split: str, skip_missing: bool = False):
    """One split: protocol rows joined with `ASVspoof2019_LA_{split}/flac/{UTT_ID}.flac`."""
    root = Path(root)
    audio_dir, protocol_name = SPLITS[split]
    protocol = root / PROTOCOL_DIR / protocol_name
    columns = {"audio": [], "label": [], "utt_id": [], "speaker": [], "system": []}
    for line_number, (speaker, utt_id, _, system, label) in enumerate(common.read_fields(protocol, 5), start=1):
        columns["label"].append(common.parse_label(label, common.LABEL_IDS, f"{protocol}, line {line_number}"))
        columns["utt_id"].append(utt_id)
        columns["speaker"].append(speaker)
        columns["system"].append(system)
    files = common.list_audio_files([root / audio_dir / "flac"])
    names = [f"{utt_id}.flac" for utt_id in columns["utt_id"]]
    mask = common.check_missing(names, files.__contains__, str(root / audio_dir / "flac"), skip_missing)
    columns["audio"] = [files.get(name) for name in names]
    return common.build_split(columns, mask, (), str(protocol))


def build_dataset(root: str | Path, splits: Sequence[str] | None = None, skip_missing: bool = False) -> DatasetDict:
    """Convert the splits present under `root` (or exactly `splits`) without decoding any audio."""
    root = Path(root)
    if not root.is_dir():
        raise common.ConversionError(f"ASVspoof 2019 LA root {root} is not a folder")
    present = available_splits(root)
    if splits is None:
        if not present:
            expected = ", ".join(f"{PROTOCOL_DIR}/{protocol}" for _, protocol in SPLITS.values())
            raise common.ConversionError(f"No ASVspoof 2019 LA protocol under {root}: expected any of {expected}")
        splits = present
    for split in splits:
        if split not in SPLITS:
            raise common.ConversionError(f"Unknown split {split!r}; ASVspoof 2019 LA has {list(SPLITS)}")
        if split not in present:
            raise common.ConversionError(f"Split {split!r} has no protocol {root / PROTOCOL_DIR / SPLITS[split][1]}")
    return DatasetDict({split: build_split_dataset(root, split, skip_missing) for split in splits})


def read_asv_scores(path: str | Path) -> list[tuple[str, str, float]]:
    """Parse an ASV score file into `(cm_key, asv_key, score)` rows, checking keys and numbers.

    The CM key must agree with the ASV key: `bonafide` for target and nontarget trials, an attack for spoof trials.
    """
    rows = []
    for line_number, (cm_key, asv_key, score) in enumerate(common.read_fields(path, 3), start=1):
        where = f"{path}, line {line_number}"
        if asv_key not in ASV_KEYS:
            raise common.ConversionError(f"{where}: unknown ASV key {asv_key!r}; expected one of {ASV_KEYS}")
        if not (ATTACK.fullmatch(cm_key) if asv_key == "spoof" else cm_key == "bonafide"):
            expected = "an attack A01-A19" if asv_key == "spoof" else "'bonafide'"
            raise common.ConversionError(
                f"{where}: a {asv_key} trial has CM key {cm_key!r} (first column), not {expected}"
            )
        try:
            rows.append((cm_key, asv_key, float(score)))
        except ValueError:
            raise common.ConversionError(f"{where}: score {score!r} is not a number") from None
    return rows


def asv_score_files(root: str | Path, splits: Sequence[str]) -> dict[str, str]:
    """`asv_scores/{split}.txt` contents for the dev/eval splits converted, from the official ASV score files."""
    files = {}
    for split in splits:
        path = Path(root) / ASV_SCORES_DIR / ASV_SCORES_FILE.format(split=split)
        if split != "train" and path.is_file():
            rows = read_asv_scores(path)
            files[f"asv_scores/{split}.txt"] = "".join(f"{cm} {asv} {score!r}\n" for cm, asv, score in rows)
    if not files:
        raise common.ConversionError(
            f"--asv-scores: no {ASV_SCORES_FILE.format(split='{dev,eval}')} in {root / ASV_SCORES_DIR}"
        )
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser)
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), help="splits to convert (default: all present)")
    parser.add_argument(
        "--asv-scores",
        action="store_true",
        help="also write the official ASV scores as asv_scores/{split}.txt (for min t-DCF)",
    )

    def extra_files(args):
        if not args.asv_scores:
            return {}
        return asv_score_files(args.root, args.splits or available_splits(args.root))

    return common.run_cli(
        parser, lambda args: build_dataset(args.root, args.splits, args.skip_missing), argv, extra_files
    )


if __name__ == "__main__":
    sys.exit(main())
