"""Tests for dataset_scripts/: converters on sonar-mini and on tiny trees built here, bad input, the demo corpus."""

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dataset_scripts import asvspoof2019_la, asvspoof2021, folder, in_the_wild, make_demo_corpus  # noqa: E402
from dataset_scripts.common import LABEL_IDS, ConversionError, make_features, write_dataset  # noqa: E402
from modeling_sonar import (
    SonarConfig,  # noqa: E402
    load_audio,  # noqa: E402
)
from modeling_sonar.configuration_sonar import SONAR_LABELS  # noqa: E402
from sonar_training.data import load_sonar_dataset  # noqa: E402


REPO = Path(__file__).resolve().parents[1]
SONAR_MINI = REPO.parent / "shared" / "data" / "sonar-mini"


def _write_clip(path: Path, num_samples: int = 800) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(num_samples, 0.1, dtype=np.float32), 16000, subtype="PCM_16")


def _read_protocol(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------ ASVspoof 2019 LA


@pytest.fixture
def la2019(tmp_path):
    """A tiny official-layout LA tree: train (2 bona fide, 3 spoof) and dev (1 + 1), plus ASV dev scores."""
    root = tmp_path / "LA"
    protocols = {
        "train": [
            "LA_0079 LA_T_1 - - bonafide",
            "LA_0079 LA_T_2 - A01 spoof",
            "LA_0080 LA_T_3 - A02 spoof",
            "LA_0080 LA_T_4 - - bonafide",
            "LA_0081 LA_T_5 - A06 spoof",
        ],
        "dev": ["LA_0069 LA_D_1 - - bonafide", "LA_0069 LA_D_2 - A03 spoof"],
    }
    for split, lines in protocols.items():
        _, name = asvspoof2019_la.SPLITS[split]
        (root / "ASVspoof2019_LA_cm_protocols").mkdir(parents=True, exist_ok=True)
        (root / "ASVspoof2019_LA_cm_protocols" / name).write_text("\n".join(lines) + "\n")
        for line in lines:
            _write_clip(root / f"ASVspoof2019_LA_{split}" / "flac" / f"{line.split()[1]}.flac")
    scores = root / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt"
    scores.parent.mkdir()
    scores.write_text("bonafide target 1.5\nbonafide nontarget -2.25\nA03 spoof -0.5\n")  # CM key, ASV key, score
    return root


def test_label_words_map_to_the_models_label_ids():
    config = SonarConfig()
    assert {word: config.id2label[i] for word, i in LABEL_IDS.items()} == {"bonafide": "bonafide", "spoof": "spoof"}
    assert make_features()["label"].names == [config.id2label[i] for i in range(len(SONAR_LABELS))]


def test_2019_la_columns_and_features(la2019):
    dataset = asvspoof2019_la.build_dataset(la2019)
    assert set(dataset) == {"train", "dev"}
    train = dataset["train"]
    assert train.column_names == ["audio", "label", "utt_id", "speaker", "system"]
    assert train.features["label"].names == list(SONAR_LABELS) == ["bonafide", "spoof"]
    assert train.features["audio"].sampling_rate == 16000
    assert train["label"] == [0, 1, 1, 0, 1]
    assert train["system"] == ["-", "A01", "A02", "-", "A06"]
    assert train["speaker"][2] == "LA_0080"
    row = train.cast_column("audio", train.features["audio"].__class__(decode=False))[1]
    assert row["audio"]["path"].endswith("ASVspoof2019_LA_train/flac/LA_T_2.flac")
    assert load_audio(row["audio"]).shape == (800,)


def test_2019_la_missing_files_count_names_and_skip(la2019):
    for name in ("LA_T_2", "LA_T_5"):
        (la2019 / "ASVspoof2019_LA_train" / "flac" / f"{name}.flac").unlink()
    with pytest.raises(ConversionError, match=r"2 of 5 audio files are missing.*LA_T_2\.flac, LA_T_5\.flac.*--skip"):
        asvspoof2019_la.build_dataset(la2019)
    dataset = asvspoof2019_la.build_dataset(la2019, skip_missing=True)
    assert dataset["train"]["utt_id"] == ["LA_T_1", "LA_T_3", "LA_T_4"]


def test_2019_la_malformed_line_names_file_and_line(la2019):
    protocol = la2019 / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"
    protocol.write_text("LA_0069 LA_D_1 - - bonafide\nLA_0069 LA_D_2 A03 spoof\n")
    with pytest.raises(ConversionError, match=r"ASVspoof2019\.LA\.cm\.dev\.trl\.txt, line 2: expected 5 fields"):
        asvspoof2019_la.build_dataset(la2019)


def test_2019_la_unknown_label_is_named(la2019):
    protocol = la2019 / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"
    protocol.write_text("LA_0069 LA_D_1 - - bona-fide\n")
    with pytest.raises(ConversionError, match=r"line 1: unknown label 'bona-fide'"):
        asvspoof2019_la.build_dataset(la2019)


def test_2019_la_protocol_with_byte_order_mark(la2019):
    protocol = la2019 / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"
    protocol.write_text("\ufeffLA_0069 LA_D_1 - - bonafide\nLA_0069 LA_D_2 - A03 spoof\n", encoding="utf-8")
    assert asvspoof2019_la.build_dataset(la2019, splits=["dev"])["dev"]["speaker"] == ["LA_0069", "LA_0069"]


def test_2019_la_empty_or_absent_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="No ASVspoof 2019 LA protocol under"):
        asvspoof2019_la.build_dataset(tmp_path / "empty")
    with pytest.raises(ConversionError, match="is not a folder"):
        asvspoof2019_la.build_dataset(tmp_path / "absent")


def test_2019_la_split_selection(la2019):
    assert list(asvspoof2019_la.build_dataset(la2019, splits=["dev"])) == ["dev"]
    with pytest.raises(ConversionError, match="'eval' has no protocol"):
        asvspoof2019_la.build_dataset(la2019, splits=["eval"])


def test_2019_la_cli_writes_dataset_and_asv_scores(la2019, tmp_path, capsys):
    output = tmp_path / "out"
    assert asvspoof2019_la.main(["--root", str(la2019), "--output", str(output), "--asv-scores"]) == 0
    assert "train: 5 rows (2 bonafide, 3 spoof)" in capsys.readouterr().out
    loaded = load_sonar_dataset(str(output))
    assert loaded["dev"]["utt_id"] == ["LA_D_1", "LA_D_2"]
    assert load_audio(loaded["train"][0]["audio"]).shape == (800,)  # bytes embedded: readable without the source
    rows = asvspoof2019_la.read_asv_scores(output / "asv_scores" / "dev.txt")
    assert rows == [("bonafide", "target", 1.5), ("bonafide", "nontarget", -2.25), ("A03", "spoof", -0.5)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary folder left behind
    # an existing output is kept unless --overwrite
    assert asvspoof2019_la.main(["--root", str(la2019), "--output", str(output)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert asvspoof2019_la.main(["--root", str(la2019), "--output", str(output), "--overwrite"]) == 0
    assert not (output / "asv_scores").exists()


@pytest.mark.parametrize(
    "line, message",
    [
        ("LA_0069 target 1.5", "a target trial has CM key 'LA_0069' .first column., not 'bonafide'"),
        ("bonafide spoof 1.5", "a spoof trial has CM key 'bonafide' .first column., not an attack"),
        ("A07 bonafide 1.5", "unknown ASV key 'bonafide'"),
        ("A07 spoof high", "score 'high' is not a number"),
    ],
)
def test_2019_la_asv_scores_bad_lines(tmp_path, line, message):
    path = tmp_path / "scores.txt"
    path.write_text(f"bonafide target 2.0\n{line}\n")
    with pytest.raises(ConversionError, match=f"line 2: {message}"):
        asvspoof2019_la.read_asv_scores(path)


def test_2019_la_cli_parquet(la2019, tmp_path):
    output = tmp_path / "pq"
    assert asvspoof2019_la.main(["--root", str(la2019), "--output", str(output), "--format", "parquet"]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["dev.parquet", "train.parquet"]
    loaded = load_sonar_dataset(str(output), split="train")
    assert loaded.num_rows == 5 and loaded.features["label"].names == list(SONAR_LABELS)
    assert load_audio(loaded[0]["audio"]).shape == (800,)
    embedded = tmp_path / "pq_embedded"
    args = ["--root", str(la2019), "--output", str(embedded), "--format", "parquet", "--embed-audio"]
    assert asvspoof2019_la.main(args) == 0
    assert load_sonar_dataset(str(embedded), split="dev")[0]["audio"]["bytes"]


def test_2019_la_cli_bad_input_exits_nonzero_with_message(la2019, tmp_path, capsys):
    (la2019 / "ASVspoof2019_LA_dev" / "flac" / "LA_D_2.flac").unlink()
    assert asvspoof2019_la.main(["--root", str(la2019), "--output", str(tmp_path / "out")]) == 1
    assert "1 of 2 audio files are missing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_interrupted_write_leaves_nothing(la2019, tmp_path, monkeypatch):
    dataset = asvspoof2019_la.build_dataset(la2019)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(dataset), "save_to_disk", fail)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(dataset, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.skipif(not SONAR_MINI.is_dir(), reason=f"sonar-mini corpus not found at {SONAR_MINI}")
def test_2019_la_on_sonar_mini_matches_protocols():
    dataset = asvspoof2019_la.build_dataset(SONAR_MINI / "LA")
    assert set(dataset) == {"train", "dev"}  # sonar-mini ships no eval split
    for split, expected_rows in (("train", 1312), ("dev", 386)):
        protocol = _read_protocol(
            SONAR_MINI / "LA" / "ASVspoof2019_LA_cm_protocols" / asvspoof2019_la.SPLITS[split][1]
        )
        converted = dataset[split]
        assert converted.num_rows == len(protocol) == expected_rows
        assert converted["utt_id"] == [fields[1] for fields in protocol]
        assert converted["speaker"] == [fields[0] for fields in protocol]
        assert converted["system"] == [fields[3] for fields in protocol]
        assert converted["label"] == [list(SONAR_LABELS).index(fields[4]) for fields in protocol]
    assert dataset["train"]["label"].count(0) == 345 and dataset["dev"]["label"].count(0) == 122


# ------------------------------------------------------------------ ASVspoof 2021 LA / DF

# Lines in the layout of the released keys, `keys/{LA,DF}/CM/trial_metadata.txt`. LA_E_9332881, LA_E_7294490,
# DF_E_2000026, DF_E_2000013, DF_E_2000024 and DF_E_2000011 are verbatim; the others follow the same layout (the
# VCC 2018 row with its task, team, gender pair and language filled, as the keys have them).
LA2021_KEYS = [
    "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
    "LA_0020 LA_E_5013670 none loc_tx bonafide bonafide notrim progress",
    "LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim eval",
    "LA_0010 LA_E_4187390 opus mad_tx A19 spoof trim hidden",
    "LA_0013 LA_E_5658320 pstn sin_tx A13 spoof only_speech hidden",
]
DF2021_KEYS = [
    "LA_0043 DF_E_2000026 mp3m4a asvspoof A09 spoof notrim eval traditional_vocoder - - - -",
    "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive "
    "Task1 team20 FF E",
    "LA_0044 DF_E_2000031 nocodec asvspoof bonafide bonafide notrim progress bonafide - - - -",
    "VCC2TM1 DF_E_2000145 high_ogg vcc2018 SPO-N13 spoof notrim eval neural_vocoder_autoregressive SPO N13 MM E",
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
    "LA_0045 DF_E_2000052 nocodec asvspoof bonafide bonafide notrim eval bonafide - - - -",
    "TGF1 DF_E_2000024 mp3m4a vcc2020 Task2-team12 spoof notrim eval traditional_vocoder Task2 team12 FF G",
]


def _make_2021(root: Path, track: str, lines: list[str], parts: bool = False) -> Path:
    keys = root / f"{track}-keys-full" / "keys" / track / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("\n".join(lines) + "\n")
    name = f"ASVspoof2021_{track}_eval"
    for i, line in enumerate(lines):
        base = root / f"{name}_part0{i % 2}" / name if parts else root / name
        _write_clip(base / "flac" / f"{line.split()[1]}.flac")
    return keys


def test_2021_la_columns_and_default_eval_phase(tmp_path):
    _make_2021(tmp_path, "LA", LA2021_KEYS)
    evaluation = asvspoof2021.build_dataset(tmp_path, "LA")["eval"]
    assert evaluation.column_names == [
        "audio",
        "label",
        "utt_id",
        "speaker",
        "system",
        "codec",
        "transmission",
        "trim",
        "phase",
    ]
    assert evaluation["utt_id"] == ["LA_E_9332881", "LA_E_7294490"]
    assert evaluation["label"] == [1, 0] and evaluation["system"] == ["A07", "-"]  # the keys' `bonafide` attack -> `-`
    assert evaluation["codec"] == ["alaw", "g722"] and evaluation["transmission"] == ["ita_tx", "loc_tx"]
    assert asvspoof2021.build_dataset(tmp_path, "LA", phase="all")["eval"].num_rows == 5
    hidden = asvspoof2021.build_dataset(tmp_path, "LA", phase="hidden")["eval"]
    assert hidden["utt_id"] == ["LA_E_4187390", "LA_E_5658320"] and hidden["trim"] == ["trim", "only_speech"]
    assert asvspoof2021.build_dataset(tmp_path, "LA", phase="progress")["eval"]["utt_id"] == ["LA_E_5013670"]


def test_2021_df_columns_and_split_parts(tmp_path):
    _make_2021(tmp_path, "DF", DF2021_KEYS, parts=True)
    evaluation = asvspoof2021.build_dataset(tmp_path, "DF")["eval"]
    assert evaluation["utt_id"] == ["DF_E_2000026", "DF_E_2000013", "DF_E_2000145", "DF_E_2000052", "DF_E_2000024"]
    assert evaluation["source"] == ["asvspoof", "vcc2020", "vcc2018", "asvspoof", "vcc2020"]
    assert evaluation["vocoder_type"][:4] == [
        "traditional_vocoder",
        "neural_vocoder_nonautoregressive",
        "neural_vocoder_autoregressive",
        "bonafide",
    ]
    assert evaluation["system"] == ["A09", "Task1-team20", "SPO-N13", "-", "Task2-team12"]
    assert evaluation["label"] == [1, 1, 1, 0, 1]
    assert evaluation["vcc_task"] == ["-", "Task1", "SPO", "-", "Task2"]
    assert evaluation["vcc_team"] == ["-", "team20", "N13", "-", "team12"]
    assert evaluation["vcc_gender_pair"] == ["-", "FF", "MM", "-", "FF"]
    assert evaluation["vcc_language"] == ["-", "E", "E", "-", "G"]


def test_2021_bad_inputs(tmp_path):
    keys = _make_2021(tmp_path, "LA", LA2021_KEYS)
    (tmp_path / "ASVspoof2021_LA_eval" / "flac" / "LA_E_7294490.flac").unlink()
    with pytest.raises(ConversionError, match=r"1 of 2 audio files are missing.*LA_E_7294490\.flac"):
        asvspoof2021.build_dataset(tmp_path, "LA")
    assert asvspoof2021.build_dataset(tmp_path, "LA", skip_missing=True)["eval"]["utt_id"] == ["LA_E_9332881"]
    keys.write_text(LA2021_KEYS[0] + "\nLA_0009 LA_E_2 alaw A07 spoof notrim eval\n")
    with pytest.raises(ConversionError, match=r"trial_metadata\.txt, line 2: expected 8 fields, got 7"):
        asvspoof2021.build_dataset(tmp_path, "LA")
    keys.write_text("LA_0009 LA_E_1 alaw ita_tx A07 fake notrim eval\n")
    with pytest.raises(ConversionError, match="unknown label 'fake'"):
        asvspoof2021.build_dataset(tmp_path, "LA")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="No ASVspoof 2021 DF keys"):
        asvspoof2021.build_dataset(tmp_path / "empty", "DF")
    keys.write_text("\n".join(LA2021_KEYS) + "\n")
    with pytest.raises(ConversionError, match="No audio folder"):
        asvspoof2021.build_dataset(tmp_path / "empty", "LA", keys=keys)


def test_2021_cli(tmp_path, capsys):
    keys = _make_2021(tmp_path / "src", "DF", DF2021_KEYS)
    args = ["--root", str(tmp_path / "src"), "--track", "DF", "--keys", str(keys), "--output", str(tmp_path / "out")]
    assert asvspoof2021.main([*args, "--phase", "all"]) == 0
    assert load_sonar_dataset(str(tmp_path / "out"), split="eval").num_rows == 7


# ------------------------------------------------------------------ In-the-Wild


def _make_itw(root: Path, rows: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.csv").write_text("file,speaker,label\n" + "\n".join(rows) + "\n")
    for row in rows:
        _write_clip(root / row.split(",")[0])
    return root


def test_itw_columns(tmp_path):
    root = _make_itw(
        tmp_path / "release_in_the_wild",
        ["0.wav,Alec Guinness,spoof", "1.wav,Alec Guinness,bona-fide", "2.wav,Barack Obama,spoof"],
    )
    test = in_the_wild.build_dataset(root)["test"]
    assert test.column_names == ["audio", "label", "utt_id", "speaker", "system"]
    assert test["label"] == [1, 0, 1] and test["utt_id"] == ["0", "1", "2"]
    assert test["speaker"][2] == "Barack Obama" and test["system"] == ["unknown", "-", "unknown"]


def test_itw_meta_with_byte_order_mark(tmp_path):
    root = _make_itw(tmp_path / "itw", ["0.wav,Alec Guinness,spoof", "1.wav,Alec Guinness,bona-fide"])
    (root / "meta.csv").write_text(
        "\ufefffile,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n"
    )
    assert in_the_wild.build_dataset(root)["test"]["label"] == [1, 0]


def test_itw_bad_inputs(tmp_path):
    root = _make_itw(tmp_path / "itw", ["0.wav,A,spoof", "1.wav,A,bona-fide", "2.wav,B,spoof"])
    (root / "1.wav").unlink()
    with pytest.raises(ConversionError, match=r"1 of 3 audio files are missing.*1\.wav"):
        in_the_wild.build_dataset(root)
    assert in_the_wild.build_dataset(root, skip_missing=True)["test"]["utt_id"] == ["0", "2"]
    (root / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n2.wav,B\n")
    with pytest.raises(ConversionError, match=r"meta\.csv, line 3: expected 3 fields"):
        in_the_wild.build_dataset(root)
    (root / "meta.csv").write_text("file,speaker,label\n0.wav,A,bonafide\n")
    with pytest.raises(ConversionError, match=r"line 2: unknown label 'bonafide'.*bona-fide"):
        in_the_wild.build_dataset(root)
    (root / "meta.csv").write_text("file,label\n0.wav,spoof\n")
    with pytest.raises(ConversionError, match=r"lacks \['speaker'\]"):
        in_the_wild.build_dataset(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="No In-the-Wild meta.csv"):
        in_the_wild.build_dataset(tmp_path / "empty")


# ------------------------------------------------------------------ generic folder


def test_folder_with_splits_and_extra_columns(tmp_path):
    for name in ("a.wav", "sub/b.flac", "c.wav"):
        _write_clip(tmp_path / name)
    (tmp_path / "metadata.csv").write_text(
        "file,label,split,speaker,device\na.wav,Real,train,me,phone\nsub/b.flac,fake,train,tts,laptop\n"
        "c.wav,bonafide,test,you,phone\n"
    )
    dataset = folder.build_dataset(tmp_path)
    assert set(dataset) == {"train", "test"}
    assert dataset["train"]["label"] == [0, 1] and dataset["train"]["utt_id"] == ["a", "b"]
    assert dataset["train"]["device"] == ["phone", "laptop"] and dataset["test"]["speaker"] == ["you"]
    assert dataset["train"]["system"] == ["-", "-"]


def test_folder_csv_with_byte_order_mark(tmp_path):
    _write_clip(tmp_path / "a.wav")
    (tmp_path / "metadata.csv").write_text("\ufefffile,label\na.wav,spoof\n", encoding="utf-8")
    assert folder.build_dataset(tmp_path)["test"]["label"] == [1]


def test_folder_bad_inputs(tmp_path):
    _write_clip(tmp_path / "a.wav")
    (tmp_path / "metadata.csv").write_text("file,label\na.wav,spoof\nmissing.wav,spoof\n")
    with pytest.raises(ConversionError, match="1 of 2 audio files are missing.*missing.wav"):
        folder.build_dataset(tmp_path)
    assert folder.build_dataset(tmp_path, split="eval", skip_missing=True)["eval"].num_rows == 1
    (tmp_path / "metadata.csv").write_text("file,label\na.wav,maybe\n")
    with pytest.raises(ConversionError, match="unknown label 'maybe'"):
        folder.build_dataset(tmp_path)
    (tmp_path / "metadata.csv").write_text("path,label\na.wav,spoof\n")
    with pytest.raises(ConversionError, match="needs the columns 'file' and 'label'"):
        folder.build_dataset(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="No label CSV"):
        folder.build_dataset(tmp_path / "empty")


# ------------------------------------------------------------------ the output never replaces an input


@pytest.fixture
def recordings(tmp_path):
    """A folder of two recordings and their metadata.csv, as `folder.py` reads it."""
    root = tmp_path / "rec"
    for name in ("a.wav", "b.wav"):
        _write_clip(root / name)
    (root / "metadata.csv").write_text("file,label\na.wav,bonafide\nb.wav,spoof\n")
    return root


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_that_is_or_holds_the_root_is_refused(recordings, tmp_path, capsys, overwrite):
    before = _files(recordings)
    (tmp_path / "link").symlink_to(recordings)
    relative = Path(os.path.relpath(recordings))
    spellings = [  # (--root, --output): the same folder, or one holding it, however spelled
        (recordings, recordings),
        (recordings, tmp_path),
        (recordings, tmp_path / "link"),
        (tmp_path / "link", recordings),
        (tmp_path / "link", tmp_path),
        (recordings, recordings / ".." / "rec"),
        (relative, recordings),
        (recordings, relative),
    ]
    for root, output in spellings:
        args = ["--root", str(root), "--output", str(output)] + (["--overwrite"] if overwrite else [])
        assert folder.main(args) == 1, (root, output)
        assert "is or contains the input" in capsys.readouterr().err
        assert _files(recordings) == before
    # the label CSV is an input too, wherever it lies
    (tmp_path / "labels").mkdir()
    (recordings / "metadata.csv").rename(tmp_path / "labels" / "metadata.csv")
    csv_args = ["--root", str(recordings), "--csv", str(tmp_path / "labels" / "metadata.csv")]
    assert folder.main([*csv_args, "--output", str(tmp_path / "labels"), "--overwrite"]) == 1
    assert (tmp_path / "labels" / "metadata.csv").is_file()
    # an output inside the root, or beside it, is fine
    assert folder.main([*csv_args, "--output", str(recordings / "converted")]) == 0
    assert folder.main([*csv_args, "--output", str(tmp_path / "converted")]) == 0
    assert load_sonar_dataset(str(recordings / "converted"), split="test").num_rows == 2


def test_write_dataset_refuses_to_replace_the_audio_folder(recordings):
    dataset = folder.build_dataset(recordings)
    with pytest.raises(ConversionError, match="is or contains the input"):
        write_dataset(dataset, recordings.parent, overwrite=True)
    with pytest.raises(ConversionError, match="is or contains the input"):
        write_dataset(dataset, recordings, output_format="parquet", overwrite=True)
    assert _files(recordings) == ["a.wav", "b.wav", "metadata.csv"]


# The converter as a user runs it, except that writing stalls once the temporary folder is complete.
STALLED_CONVERTER = """
import sys, time
from datasets import DatasetDict
from dataset_scripts import folder

save_to_disk = DatasetDict.save_to_disk

def stalled(self, path, **kwargs):
    save_to_disk(self, path, **kwargs)
    print("written", flush=True)
    time.sleep(120)

DatasetDict.save_to_disk = stalled
sys.exit(folder.main(sys.argv[1:]))
"""


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".incomplete-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("kill_signal", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_conversion_leaves_nothing_a_rerun_does_not_clean(recordings, tmp_path, kill_signal):
    output = tmp_path / "out"
    args = ["--root", str(recordings), "--output", str(output)]
    process = subprocess.Popen(
        [sys.executable, "-c", STALLED_CONVERTER, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not lines or lines[-1] not in ("written\n", ""):  # "" at the end of the output: it did not stall
            lines.append(process.stdout.readline())
        assert lines[-1] == "written\n", "".join(lines)
        assert _leftovers(tmp_path) and not output.exists()  # killed mid-write
        process.send_signal(kill_signal)
        assert process.wait(timeout=60) == (128 + signal.SIGTERM if kill_signal == signal.SIGTERM else -kill_signal)
    finally:
        process.kill()
        process.wait()
    assert not output.exists()
    if kill_signal == signal.SIGTERM:
        assert _leftovers(tmp_path) == []  # cleaned on the way out
    else:
        assert len(_leftovers(tmp_path)) == 1  # SIGKILL cannot be caught: the next run cleans it
    # a live run's temporary folder is not touched (this test process is alive)
    live = tmp_path / f".out.incomplete-{os.getpid()}-0123abcd"
    live.mkdir()
    assert folder.main(args) == 0
    assert _leftovers(tmp_path) == [live.name]
    assert load_sonar_dataset(str(output), split="test")["utt_id"] == ["a", "b"]


# ------------------------------------------------------------------ scripts run directly


@pytest.mark.parametrize("script", ["asvspoof2019_la", "asvspoof2021", "in_the_wild", "folder", "make_demo_corpus"])
def test_scripts_run_directly_with_help(script):
    result = subprocess.run(
        [sys.executable, f"dataset_scripts/{script}.py", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--output" in result.stdout


def test_script_run_directly_fails_on_empty_root(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "dataset_scripts/in_the_wild.py",
            "--root",
            str(tmp_path / "empty"),
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "No In-the-Wild meta.csv" in result.stderr


# ------------------------------------------------------------------ demo corpus


@pytest.fixture(scope="module")
def demo_corpus(tmp_path_factory):
    return make_demo_corpus.make_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus", seed=0)


def test_demo_corpus_layout_and_balance(demo_corpus):
    dataset = asvspoof2019_la.build_dataset(demo_corpus / "LA")
    assert set(dataset) == {"train", "dev", "eval"}
    total = sum(split.num_rows for split in dataset.values())
    assert 100 <= total <= 300
    for split in dataset.values():
        assert set(split["label"]) == {0, 1}
        assert set(split["system"]) - {"-"} <= set(make_demo_corpus.SYSTEMS)
    clip = load_audio(
        dataset["train"].cast_column("audio", dataset["train"].features["audio"].__class__(decode=False))[0]["audio"]
    )
    assert 1.5 * 16000 < clip.shape[0] < 5 * 16000 and np.max(np.abs(clip)) <= 1


def test_demo_corpus_splits_by_utterance(demo_corpus):
    with open(demo_corpus / "sources.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    splits_of_utterance = {}
    for row in rows:
        splits_of_utterance.setdefault((row["source"], row["offset_s"]), set()).add(row["split"])
    assert all(len(splits) == 1 for splits in splits_of_utterance.values())


def test_demo_corpus_is_idempotent(demo_corpus, capsys):
    before = sorted(p.stat().st_mtime_ns for p in (demo_corpus / "LA").rglob("*.flac"))
    assert make_demo_corpus.main(["--output", str(demo_corpus)]) == 0
    assert "train 140 clips" in capsys.readouterr().out
    assert sorted(p.stat().st_mtime_ns for p in (demo_corpus / "LA").rglob("*.flac")) == before
