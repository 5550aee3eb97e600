"""Convert In-the-Wild (Mueller et al. 2022, https://arxiv.org/abs/2203.16263) to a `DatasetDict`.

Source layout (`--root` is the unpacked `release_in_the_wild/`):

    meta.csv        header `file,speaker,label`, label `bona-fide` / `spoof`, e.g. `0.wav,Alec Guinness,spoof`
    0.wav ... 31778.wav

Output: one `test` split (the whole set is test data, 31,779 clips) with `audio` (16 kHz, stored as the file path:
nothing is decoded), `label` (`bonafide` 0 / `spoof` 1), `utt_id` (file name without `.wav`), `speaker` and
`system` (`-` for bona fide, `unknown` for spoof: the corpus names no generators).

    python dataset_scripts/in_the_wild.py --root /data/release_in_the_wild --output data/in_the_wild
"""

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

from datasets import DatasetDict

from dataset_scripts import common


LABELS = {"bona-fide": common.LABEL_IDS["bonafide"], "spoof": common.LABEL_IDS["spoof"]}
REQUIRED_COLUMNS = ("file", "speaker", "label")


def build_dataset(root: str | Path, skip_missing: bool = False, meta: str | Path | None = None) -> DatasetDict:
    """Read `meta.csv` and point each row at its wav file; no audio is decoded."""
    root = Path(root)
    meta = Path(meta) if meta is not None else root / "meta.csv"
    if not meta.is_file():
        raise common.ConversionError(f"No In-the-Wild meta.csv at {meta}")
    columns = {"audio": [], "label": [], "utt_id": [], "speaker": [], "system": []}
    files = []
    with open(meta, newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of `file`
        reader = csv.DictReader(f)
        missing_columns = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
        if missing_columns:
            raise common.ConversionError(f"{meta}: header {reader.fieldnames} lacks {missing_columns}")
        for row in reader:
            where = f"{meta}, line {reader.line_num}"
            if None in row or any(row[name] is None for name in REQUIRED_COLUMNS):
                raise common.ConversionError(f"{where}: expected {len(reader.fieldnames)} fields: {row}")
            label = common.parse_label(row["label"], LABELS, where)
            files.append(row["file"])
            columns["label"].append(label)
            columns["utt_id"].append(Path(row["file"]).stem)
            columns["speaker"].append(row["speaker"])
            columns["system"].append("-" if label == common.LABEL_IDS["bonafide"] else "unknown")
    if not files:
        raise common.ConversionError(f"{meta} has no rows")
    audio = common.list_audio_files([meta.parent])
    mask = common.check_missing(files, audio.__contains__, str(meta.parent), skip_missing)
    columns["audio"] = [audio.get(name) for name in files]
    return DatasetDict({"test": common.build_split(columns, mask, (), str(meta))})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser)
    return common.run_cli(parser, lambda args: build_dataset(args.root, args.skip_missing), argv)


if __name__ == "__main__":
    sys.exit(main())
