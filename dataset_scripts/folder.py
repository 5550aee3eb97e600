"""Convert a folder of your own recordings plus a CSV of labels to a `DatasetDict`.

Source layout (`--root`; `--csv` defaults to `ROOT/metadata.csv`):

    metadata.csv    header with at least `file,label`; `file` relative to ROOT (sub-folders allowed) or absolute;
                    label `bonafide` (also `bona-fide`, `bona fide`, `real`, `genuine`) or `spoof` (also `fake`)
                    optional columns: `split` (rows grouped into those splits), `utt_id` (default: file name
                    without extension), `speaker`, `system` (default `-`); any other column is kept as a string
    any audio soundfile reads (wav, flac, ogg, mp3) or FFmpeg decodes

Output: the splits named in the `split` column, else one `--split` (default `test`), with `audio` (16 kHz),
`label` (`bonafide` 0 / `spoof` 1), `utt_id`, `speaker`, `system` and the further CSV columns.

    python dataset_scripts/folder.py --root my_recordings --output data/my_recordings
"""

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from datasets import DatasetDict

from dataset_scripts import common


LABEL_WORDS = {"bonafide": ("bonafide", "bona-fide", "bona fide", "real", "genuine"), "spoof": ("spoof", "fake")}
LABELS = {word: common.LABEL_IDS[label] for label, words in LABEL_WORDS.items() for word in words}


def build_dataset(
    root: str | Path, csv_path: str | Path | None = None, split: str = "test", skip_missing: bool = False
) -> DatasetDict:
    """Read the CSV and point each row at its file under `root`; no audio is decoded."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise common.ConversionError(f"Folder {root} does not exist")
    csv_path = Path(csv_path) if csv_path is not None else root / "metadata.csv"
    if not csv_path.is_file():
        raise common.ConversionError(f"No label CSV at {csv_path}: write one with columns file,label")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets often write a byte-order mark
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if "file" not in header or "label" not in header:
            raise common.ConversionError(f"{csv_path}: header {header} needs the columns 'file' and 'label'")
        extra = [name for name in header if name not in (*common.CORE_COLUMNS, "file", "split")]
        rows = []
        for row in reader:
            where = f"{csv_path}, line {reader.line_num}"
            if None in row or any(value is None for value in row.values()):
                raise common.ConversionError(f"{where}: expected {len(header)} fields: {row}")
            row["label"] = common.parse_label(row["label"].strip().lower(), LABELS, where)
            rows.append(row)
    if not rows:
        raise common.ConversionError(f"{csv_path} has no rows")
    splits: dict[str, list[dict]] = {}
    for row in rows:
        splits.setdefault(row.get("split") or split, []).append(row)
    split_datasets = {}
    for name, split_rows in splits.items():
        paths = [str(root / row["file"]) for row in split_rows]
        mask = common.check_missing(paths, os.path.isfile, f"{root} (split {name})", skip_missing)
        columns = {
            "audio": paths,
            "label": [row["label"] for row in split_rows],
            "utt_id": [row.get("utt_id") or Path(row["file"]).stem for row in split_rows],
            "speaker": [row.get("speaker") or "-" for row in split_rows],
            "system": [row.get("system") or "-" for row in split_rows],
            **{column: [row[column] for row in split_rows] for column in extra},
        }
        split_datasets[name] = common.build_split(columns, mask, extra, f"{csv_path} (split {name})")
    return DatasetDict(split_datasets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser)
    parser.add_argument("--csv", type=Path, help="label CSV (default: ROOT/metadata.csv)")
    parser.add_argument("--split", default="test", help="split name when the CSV has no split column")
    return common.run_cli(parser, lambda args: build_dataset(args.root, args.csv, args.split, args.skip_missing), argv)


if __name__ == "__main__":
    sys.exit(main())
