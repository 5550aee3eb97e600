"""Plumbing shared by the converters: features, protocol parsing, missing-file checks, atomic output, CLI flags.

Every converter builds the same core columns: `audio` (`Audio(sampling_rate=16000)`, stored as a path, never decoded
here), `label` (`ClassLabel(names=["bonafide", "spoof"])`, the model's `id2label`), `utt_id`, `speaker` and `system`
(attack id, `-` for bona fide), then whatever further columns its protocol carries, as strings.
"""

import argparse
import logging
import os
import re
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value
from tqdm.auto import tqdm

from modeling_sonar.configuration_sonar import SONAR_BONAFIDE_ID, SONAR_LABELS, SONAR_SAMPLING_RATE, SONAR_SPOOF_ID


logger = logging.getLogger(__name__)

# The protocols' label words, as the model's label ids
LABEL_IDS = {"bonafide": SONAR_BONAFIDE_ID, "spoof": SONAR_SPOOF_ID}
CORE_COLUMNS = ["audio", "label", "utt_id", "speaker", "system"]
MAX_NAMES_SHOWN = 5


class ConversionError(ValueError):
    """Bad or incomplete input; the CLIs print the message and exit with status 1."""


def make_features(extra_columns: Sequence[str] = ()) -> Features:
    """Core features plus one string column per further protocol field."""
    return Features(
        {
            "audio": Audio(sampling_rate=SONAR_SAMPLING_RATE),
            "label": ClassLabel(names=list(SONAR_LABELS)),
            "utt_id": Value("string"),
            "speaker": Value("string"),
            "system": Value("string"),
            **{name: Value("string") for name in extra_columns},
        }
    )


def read_fields(path: str | Path, num_fields: int | Sequence[int], sep: str | None = None) -> list[list[str]]:
    """Split a protocol file into fields per non-blank line; a line with the wrong count names file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"Protocol file not found: {path}")
    allowed = (num_fields,) if isinstance(num_fields, int) else tuple(num_fields)
    rows = []
    with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of the first field
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.strip().split(sep)
            if len(fields) not in allowed:
                expected = " or ".join(map(str, allowed))
                raise ConversionError(
                    f"{path}, line {line_number}: expected {expected} fields, got {len(fields)}: {line.rstrip()!r}"
                )
            rows.append(fields)
    if not rows:
        raise ConversionError(f"Protocol file is empty: {path}")
    return rows


def parse_label(value: str, spellings: dict[str, int], where: str) -> int:
    """Map a label spelling to its class id; an unknown spelling names the value, where it is and what is allowed."""
    try:
        return spellings[value]
    except KeyError:
        raise ConversionError(f"{where}: unknown label {value!r}; expected one of {sorted(spellings)}") from None


def list_audio_files(folders: Iterable[str | Path]) -> dict[str, str]:
    """Map file name -> absolute path for the files directly inside `folders` (one listing, no per-file stat)."""
    found = {}
    for folder in folders:
        folder = Path(folder).resolve()
        if folder.is_dir():
            with os.scandir(folder) as entries:
                found.update({entry.name: str(folder / entry.name) for entry in entries})
    return found


def check_missing(wanted: Sequence[str], present: Callable[[str], bool], where: str, skip_missing: bool) -> list[bool]:
    """Which of `wanted` exist; without `skip_missing`, a missing file is an error giving the count and first names."""
    mask = [present(name) for name in tqdm(wanted, desc=f"Checking audio in {where}", disable=None, leave=False)]
    missing = [name for name, ok in zip(wanted, mask) if not ok]
    if missing:
        shown = ", ".join(missing[:MAX_NAMES_SHOWN]) + (", ..." if len(missing) > MAX_NAMES_SHOWN else "")
        message = f"{len(missing)} of {len(wanted)} audio files are missing in {where}: {shown}"
        if not skip_missing:
            raise ConversionError(message + "; pass --skip-missing to convert the rest")
        logger.warning("%s; skipped (--skip-missing)", message)
    return mask


def build_split(columns: dict[str, list], mask: Sequence[bool], extra_columns: Sequence[str], where: str) -> Dataset:
    """Dataset from column lists (audio as absolute paths), keeping the rows where `mask` is true."""
    if not all(mask):
        columns = {name: [v for v, keep in zip(values, mask) if keep] for name, values in columns.items()}
    if not columns["audio"]:
        raise ConversionError(f"No audio left to convert in {where}")
    features = make_features(extra_columns)
    # paths go in as strings and are cast in Arrow: per-row Audio.encode_example would dominate on In-the-Wild
    as_strings = Features({**features, "audio": Value("string")})
    dataset = Dataset.from_dict({name: columns[name] for name in features}, features=as_strings)
    return dataset.cast(features)


def _embed_audio(dataset: Dataset) -> Dataset:
    from datasets.table import embed_table_storage

    return dataset.with_format("arrow").map(embed_table_storage, batched=True, desc="Embedding audio").with_format()


def check_output_clear_of_inputs(output: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output that is, or contains, one of `inputs`: replacing it would delete them. Both sides are
    resolved first (symlinks, `..`, relative paths), so no spelling slips through; an output inside an input is fine.
    """
    output = Path(output).resolve()
    for item in inputs:
        item = Path(item).resolve()
        if item == output or output in item.parents:
            raise ConversionError(
                f"Output {output} is or contains the input {item}: writing it would replace the input; choose "
                "another output folder (one inside the input is fine)"
            )


def _audio_folders(dataset: DatasetDict) -> set[str]:
    """The folders of the audio files the dataset points at (its inputs), read from Arrow without decoding."""
    folders = set()
    for split_dataset in dataset.values():
        if "audio" not in split_dataset.column_names:
            continue
        paths = split_dataset.data.column("audio").combine_chunks().field("path").to_pylist()
        folders.update(os.path.dirname(path) for path in paths if path)
    return folders


_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(incomplete|old)-(?P<pid>\d+)-[0-9a-f]+")


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(output: Path) -> list[Path]:
    """Delete the temporary siblings of `output` (`.NAME.incomplete-PID-*`, `.NAME.old-PID-*`) left by runs that
    were killed (SIGKILL, power loss): those whose process is gone. A live writer's folder is left alone."""
    removed = []
    for path in output.parent.glob(f".{output.name}.*-*-*"):
        match = _TEMPORARY.fullmatch(path.name)
        if match and match["name"] == output.name and not _process_is_alive(int(match["pid"])):
            shutil.rmtree(path)
            removed.append(path)
    return removed


def _raise_system_exit(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def atomic_output(output: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path of `output` to write (not yet created); on success, move it into place.

    The temporary name carries the process id, so that a later run can tell the leftovers of a killed run from a
    live one's (`remove_stale_temporaries`, called here). SIGTERM is turned into `SystemExit` while writing, so that
    a terminated run removes its temporary folder; `output` is untouched unless everything was written, and an
    existing `output` is replaced only then.
    """
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    for path in remove_stale_temporaries(output):
        logger.info("Removed %s, left by an interrupted run", path)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = output.parent / f".{output.name}.incomplete-{tag}"
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _raise_system_exit) if on_main_thread else None
    try:
        yield tmp
        if output.exists():
            old = output.parent / f".{output.name}.old-{tag}"
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # a SIGTERM waits for both renames
            try:
                output.rename(old)
                tmp.rename(output)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            shutil.rmtree(old)
        else:
            tmp.rename(output)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)


def write_dataset(
    dataset: DatasetDict,
    output: str | Path,
    output_format: str = "disk",
    num_proc: int | None = None,
    embed_audio: bool = False,
    overwrite: bool = False,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Write to a temporary sibling folder and rename it to `output` only once everything is written.

    `disk` uses `save_to_disk` (datasets 5 embeds the audio bytes, so the folder is self-contained); `parquet` writes
    `{split}.parquet` with audio paths, or the bytes with `embed_audio`. `extra_files` maps relative names to text
    written alongside (e.g. the ASV scores). An interrupted run leaves `output` untouched (see `atomic_output`). An
    `output` that is or contains a folder of the dataset's audio is refused, even with `overwrite`.
    """
    output = Path(output).resolve()
    if output.exists() and not overwrite:
        raise ConversionError(f"Output {output} already exists; pass --overwrite to replace it")
    if output_format not in ("disk", "parquet"):
        raise ValueError(f"output_format must be 'disk' or 'parquet', got {output_format!r}")
    check_output_clear_of_inputs(output, _audio_folders(dataset))
    with atomic_output(output) as tmp:
        if output_format == "disk":
            dataset.save_to_disk(str(tmp), num_proc=num_proc)
        else:
            tmp.mkdir()
            for split, split_dataset in dataset.items():
                (_embed_audio(split_dataset) if embed_audio else split_dataset).to_parquet(
                    str(tmp / f"{split}.parquet")
                )
        for name, text in (extra_files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text, encoding="utf-8")
    return output


def push_dataset(dataset: DatasetDict, repo_id: str, private: bool = True, num_proc: int | None = None) -> None:
    """Push to the Hub as parquet with the audio bytes embedded (the Hub cannot follow local paths)."""
    dataset.push_to_hub(repo_id, private=private, num_proc=num_proc)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags every converter shares: input root, outputs and the bad-input switches."""
    parser.add_argument("--root", required=True, type=Path, help="folder holding the corpus in its official layout")
    parser.add_argument("--output", type=Path, help="output folder (written atomically)")
    parser.add_argument(
        "--format",
        choices=["disk", "parquet"],
        default="disk",
        help="disk: save_to_disk, audio embedded (default); parquet: one {split}.parquet per split",
    )
    parser.add_argument("--embed-audio", action="store_true", help="with --format parquet: embed the audio bytes")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push to this Hub dataset repo (private)")
    parser.add_argument("--public", action="store_true", help="with --push-to-hub: make the repo public")
    parser.add_argument("--num-proc", type=int, default=None, help="processes for writing")
    parser.add_argument("--skip-missing", action="store_true", help="drop protocol rows whose audio file is missing")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --output (never one that is or holds --root)"
    )


def run_cli(
    parser: argparse.ArgumentParser,
    build: Callable[[argparse.Namespace], DatasetDict],
    argv: Sequence[str] | None = None,
    extra_files: Callable[[argparse.Namespace], dict[str, str]] | None = None,
) -> int:
    """Parse, build, write and/or push; bad input prints its message and returns 1."""
    args = parser.parse_args(argv)
    if args.output is None and args.push_to_hub is None:
        parser.error("give --output DIR and/or --push-to-hub REPO_ID")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.output is not None:
            # every other path argument (--root, --csv, --keys) is an input
            inputs = [value for name, value in vars(args).items() if isinstance(value, Path) and name != "output"]
            check_output_clear_of_inputs(args.output, inputs)
            if args.output.exists() and not args.overwrite:
                raise ConversionError(f"Output {args.output} already exists; pass --overwrite to replace it")
        dataset = build(args)
        files = extra_files(args) if extra_files else None
        for split, split_dataset in dataset.items():
            labels = list(split_dataset["label"])
            print(f"{split}: {len(labels)} rows ({labels.count(0)} bonafide, {len(labels) - labels.count(0)} spoof)")
        if args.output is not None:
            path = write_dataset(
                dataset, args.output, args.format, args.num_proc, args.embed_audio, args.overwrite, files
            )
            print(f"Wrote {path}")
        if args.push_to_hub is not None:
            push_dataset(dataset, args.push_to_hub, private=not args.public, num_proc=args.num_proc)
            print(f"Pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    except ConversionError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    return 0
