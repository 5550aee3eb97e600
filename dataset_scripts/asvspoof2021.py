"""Convert the ASVspoof 2021 LA or DF evaluation set, joined with its official keys, to a `DatasetDict`.

Source layout (`--root`; `--keys` points at the key file when it lies elsewhere):

    ASVspoof2021_{LA,DF}_eval/flac/{UTT_ID}.flac        (DF also as ASVspoof2021_DF_eval_part0*/ASVspoof2021_DF_eval/)
    keys/{LA,DF}/CM/trial_metadata.txt                  (from {LA,DF}-keys-full.tar.gz; also searched one level down)
        LA: `SPEAKER UTT_ID CODEC TRANSMISSION ATTACK LABEL TRIM PHASE`
            e.g. `LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval`,
                 `LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim eval`
        DF: `SPEAKER UTT_ID CODEC SOURCE ATTACK LABEL TRIM PHASE VOCODER_TYPE TASK TEAM GENDER_PAIR LANGUAGE`
            e.g. `LA_0043 DF_E_2000026 mp3m4a asvspoof A09 spoof notrim eval traditional_vocoder - - - -`,
                 `TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive
                 Task1 team20 FF E` (one line)
        ATTACK is `bonafide` for bona fide trials; PHASE `eval`, `progress` or `hidden`; TRIM `notrim` or `trim`, in LA
        also `only_speech`. The last four DF columns (task, team, gender pair, language) are filled for the trials from
        the Voice Conversion Challenges (SOURCE `vcc2018` or `vcc2020`) and `-` otherwise.

Output: one `eval` split with `audio` (16 kHz), `label` (`bonafide` 0 / `spoof` 1), `utt_id`, `speaker`, `system`
(the attack; `-` for bona fide, as in every converter's output) and the key's further columns: LA `codec`,
`transmission`, `trim`, `phase`; DF `codec`, `source`, `trim`, `phase`, `vocoder_type`, `vcc_task`, `vcc_team`,
`vcc_gender_pair`, `vcc_language`. `--phase` keeps the `eval` rows by default, as published results do; `progress`,
`hidden` or `all` select others.

    python dataset_scripts/asvspoof2021.py --track DF --root /data/ASVspoof2021 --output data/asvspoof2021_df
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from datasets import DatasetDict

from dataset_scripts import common


KEY_COLUMNS = {
    "LA": ["speaker", "utt_id", "codec", "transmission", "system", "label", "trim", "phase"],
    "DF": [
        "speaker",
        "utt_id",
        "codec",
        "source",
        "system",
        "label",
        "trim",
        "phase",
        "vocoder_type",
        "vcc_task",
        "vcc_team",
        "vcc_gender_pair",
        "vcc_language",
    ],
}
PHASES = ("eval", "progress", "hidden", "all")


def find_keys(root: str | Path, track: str) -> Path:
    """The CM `trial_metadata.txt` for `track` under `root` (as unpacked, or one folder down, e.g. `DF-keys-full/`)."""
    root = Path(root)
    relative = Path("keys") / track / "CM" / "trial_metadata.txt"
    candidates = [root / relative, *sorted(root.glob(f"*/{relative}")), root / "trial_metadata.txt"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise common.ConversionError(
        f"No ASVspoof 2021 {track} keys under {root}: expected {relative}; or pass --keys FILE"
    )


def audio_folders(root: str | Path, track: str) -> list[Path]:
    """The flac folders of the eval set, whole or in the DF release's parts."""
    root = Path(root)
    name = f"ASVspoof2021_{track}_eval"
    return [root / name / "flac", *sorted(root.glob(f"{name}_part*/{name}/flac"))]


def build_dataset(
    root: str | Path,
    track: str,
    keys: str | Path | None = None,
    phase: str = "eval",
    skip_missing: bool = False,
) -> DatasetDict:
    """Join the key rows of `phase` with their flac files; no audio is decoded."""
    if track not in KEY_COLUMNS:
        raise common.ConversionError(f"Unknown track {track!r}; expected one of {list(KEY_COLUMNS)}")
    if phase not in PHASES:
        raise common.ConversionError(f"Unknown phase {phase!r}; expected one of {PHASES}")
    root = Path(root)
    if not root.is_dir():
        raise common.ConversionError(f"ASVspoof 2021 root {root} is not a folder")
    keys = Path(keys) if keys is not None else find_keys(root, track)
    names = KEY_COLUMNS[track]
    columns = {name: [] for name in ["audio", *names]}
    for line_number, fields in enumerate(common.read_fields(keys, len(names)), start=1):
        row = dict(zip(names, fields))
        row["label"] = common.parse_label(row["label"], common.LABEL_IDS, f"{keys}, line {line_number}")
        if row["system"] == "bonafide":  # the keys' attack of bona fide trials; `-` in every converter's output
            row["system"] = "-"
        if phase in ("all", row["phase"]):
            for name in names:
                columns[name].append(row[name])
    if not columns["utt_id"]:
        raise common.ConversionError(f"No rows with phase {phase!r} in {keys}")
    folders = audio_folders(root, track)
    if not any(folder.is_dir() for folder in folders):
        raise common.ConversionError(f"No audio folder for ASVspoof 2021 {track} under {root}: expected {folders[0]}")
    files = common.list_audio_files(folders)
    wanted = [f"{utt_id}.flac" for utt_id in columns["utt_id"]]
    mask = common.check_missing(wanted, files.__contains__, str(folders[0]), skip_missing)
    columns["audio"] = [files.get(name) for name in wanted]
    extra = [name for name in names if name not in ("speaker", "utt_id", "system", "label")]
    return DatasetDict({"eval": common.build_split(columns, mask, extra, str(keys))})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser)
    parser.add_argument("--track", choices=list(KEY_COLUMNS), required=True, help="LA or DF")
    parser.add_argument("--keys", type=Path, help="trial_metadata.txt (default: found under --root)")
    parser.add_argument("--phase", choices=PHASES, default="eval", help="key rows to keep (default: eval)")
    return common.run_cli(
        parser, lambda args: build_dataset(args.root, args.track, args.keys, args.phase, args.skip_missing), argv
    )


if __name__ == "__main__":
    sys.exit(main())
