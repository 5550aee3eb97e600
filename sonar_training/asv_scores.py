"""The automatic speaker verification (ASV) scores the min t-DCF needs, read from the official ASVspoof files, and the
t-DCF formula results on a corpus are published with."""

import os
import re

import numpy as np


ASV_KEYS = ("target", "nontarget", "spoof")
ASVSPOOF2021_PHASES = ("eval", "progress", "hidden", "all")
ASVSPOOF2019_LA_UTT_ID = re.compile(r"LA_[TDE]_\d+")


def read_asv_scores(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target, nontarget and spoof scores of an ASV score file (key in one column, score in the last).

    Covers the ASVspoof 2019 `CM_KEY ASV_KEY SCORE` files (`ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt`, whose
    first column is `bonafide` or the attack `A01`-`A19`) and the six-column files of the revised t-DCF package.
    """
    scores = {key: [] for key in ASV_KEYS}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            key = next((value for value in fields[:-1] if value in scores), None)
            if key is None:
                message = f"{path}:{number}: no key among {ASV_KEYS} before the score in {line.strip()!r}"
                if len(fields) == 3:
                    message += ": an ASVspoof 2021 score.txt has none, pass its ASV/trial_metadata.txt as --asv_keys"
                raise ValueError(message)
            scores[key].append(_parse_score(fields[-1], path, number))
    return tuple(np.asarray(scores[key]) for key in ASV_KEYS)


def read_asvspoof2021_asv_scores(
    score_path: str | os.PathLike, keys_path: str | os.PathLike, phase: str = "eval"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Target, nontarget and spoof scores of the official ASVspoof 2021 LA ASV scores, restricted to one phase.

    `score_path` is `ASV/ASVTorch_Kaldi/score.txt` (`ASV_SPEAKER TRIAL SCORE`), `keys_path` its key,
    `ASV/trial_metadata.txt` (`SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM PHASE`, e.g.
    `LA_0007-alaw-ita_tx LA_E_5013670-alaw-ita_tx alaw ita_tx bonafide nontarget notrim eval`). A trial is scored
    against several enrolled speakers, so its name repeats: like the official package, the two files are joined line
    by line; each line's speaker and trial must agree, which catches files out of step. The official package then
    keeps the rows of one phase (`--subset`); without that filter the t-DCF silently mixes in the progress and hidden
    trials.

    Args:
        score_path, keys_path: the two official files.
        phase: `eval`, `progress`, `hidden`, or `all` to keep every row.
    """
    if phase not in ASVSPOOF2021_PHASES:
        raise ValueError(f"ASV phase must be one of {ASVSPOOF2021_PHASES}, got {phase!r}")
    with open(score_path, encoding="utf-8-sig") as file:  # -sig: a byte-order mark is not part of the first speaker
        score_lines = [(number, line.split()) for number, line in enumerate(file, start=1) if line.strip()]
    with open(keys_path, encoding="utf-8-sig") as file:
        key_lines = [(number, line.split()) for number, line in enumerate(file, start=1) if line.strip()]
    if len(score_lines) != len(key_lines):
        raise ValueError(
            f"{score_path} has {len(score_lines)} trials and its keys {keys_path} {len(key_lines)}: they must be the "
            "official ASV score.txt and trial_metadata.txt of the same track, complete"
        )
    scores = {key: [] for key in ASV_KEYS}
    for (score_number, score_fields), (key_number, key_fields) in zip(score_lines, key_lines):
        if len(score_fields) != 3:
            raise ValueError(f"{score_path}:{score_number}: expected `ASV_SPEAKER TRIAL SCORE`, got {score_fields}")
        if len(key_fields) != 8:
            raise ValueError(
                f"{keys_path}:{key_number}: expected 8 fields `SPEAKER TRIAL CODEC TRANSMISSION ATTACK KEY TRIM "
                f"PHASE`, got {len(key_fields)}"
            )
        if score_fields[:2] != key_fields[:2]:
            raise ValueError(
                f"{score_path}:{score_number} scores {' '.join(score_fields[:2])!r} but {keys_path}:{key_number} "
                f"keys {' '.join(key_fields[:2])!r}: the files are out of step"
            )
        key, trial_phase = key_fields[5], key_fields[7]
        if key not in scores:
            raise ValueError(f"{keys_path}:{key_number}: unknown ASV key {key!r}; expected one of {ASV_KEYS}")
        if phase in ("all", trial_phase):
            scores[key].append(_parse_score(score_fields[2], score_path, score_number))
    empty = [key for key in ASV_KEYS if not scores[key]]
    if empty:
        raise ValueError(f"{keys_path} has no {'/'.join(empty)} trial in phase {phase!r}")
    return tuple(np.asarray(scores[key]) for key in ASV_KEYS)


def _parse_score(value: str, path: str | os.PathLike, number: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{path}:{number}: score {value!r} is not a number") from None


def default_tdcf_variant(column_names: list[str], utt_ids: list[str], asv_keys_given: bool = False) -> str:
    """The t-DCF formula results on this corpus are published with: `2019` for ASVspoof 2019 LA, else `2021`.

    ASVspoof 2019 LA results report the legacy formula of its challenge; ASVspoof 2021 LA, and the revised
    `tDCF_python_v2` package for everything since, the 2021 one. A set counts as ASVspoof 2019 LA when its utterance
    ids are `LA_T_`/`LA_D_`/`LA_E_` numbers (the 2019 converter's output, sonar-mini and the demo corpus) and nothing
    marks it as ASVspoof 2021, whose LA eval ids look the same: its ASV keys (`--asv_keys`) or the key columns the
    2021 converter writes (`phase`, `transmission`).
    """
    if asv_keys_given or {"phase", "transmission"} & set(column_names):
        return "2021"
    if utt_ids and all(ASVSPOOF2019_LA_UTT_ID.fullmatch(utt_id) for utt_id in utt_ids):
        return "2019"
    return "2021"


__all__ = [
    "ASVSPOOF2021_PHASES",
    "ASV_KEYS",
    "default_tdcf_variant",
    "read_asv_scores",
    "read_asvspoof2021_asv_scores",
]
