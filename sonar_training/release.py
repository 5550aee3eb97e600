"""Publishing a trained SONAR model, and its Space, on the Hugging Face Hub: what is uploaded (never checkpoints or
caches), the card with test-set results rendered into the upload copy, and dry runs that copy instead of uploading.
`release_sonar.py` is its command line; `train_sonar.py --push_to_hub` uploads with the same filter."""

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects

from modeling_sonar import SonarConfig

from .checkpoints import CHECKPOINT_PREFIX, PARTIAL_PREFIX
from .model_card import CARD_INPUTS_FILE, public_name, render_model_card


# Checkpoints (and a checkpoint being written) are named by `checkpoints.py`; they never leave the machine.
IGNORE_PATTERNS = [
    f"{CHECKPOINT_PREFIX}*",
    f"{CHECKPOINT_PREFIX}*/**",
    f"{PARTIAL_PREFIX}{CHECKPOINT_PREFIX}*",
    "**/__pycache__/**",
    "__pycache__/**",
    "*.pyc",
    ".git/**",
    ".cache/**",
    "**/.ipynb_checkpoints/**",
    "flagged/**",
    ".gradio/**",
]
REQUIRED_MODEL_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")


def files_to_upload(folder: Path) -> list[str]:
    """Relative paths `upload_folder(..., ignore_patterns=IGNORE_PATTERNS)` sends, found with the same filter."""
    paths = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS))


def render_results_card(model_dir: Path, results: Sequence[str], model_name: str) -> dict[str, str]:
    """The card files (`README.md` and its inputs) with the test sets `NAME=SUMMARY_JSON` added (or replaced, by
    name), as text for the upload copy: the model folder itself is left as it is."""

    inputs_path = model_dir / CARD_INPUTS_FILE
    if not inputs_path.is_file():
        raise ValueError(f"--results needs {inputs_path}, which train_sonar.py writes next to the model")
    summary = json.loads(inputs_path.read_text(encoding="utf-8"))
    for item in results:
        name, separator, path = item.partition("=")
        if not separator or not Path(path).is_file():
            raise ValueError(f"--results {item!r}: expected NAME=PATH to an evaluate_sonar.py summary.json")
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        entry = {
            "name": name,
            "dataset": public_name(result.get("dataset", name)),  # summaries of older versions held local paths
            "split": result.get("split") or "test",
            "eer": result["eer"],
            "min_tdcf": result.get("min_tdcf"),
        }
        summary["results"] = [r for r in summary.get("results", []) if r["name"] != name] + [entry]
    card = render_model_card(SonarConfig.from_pretrained(model_dir), summary, model_name)
    return {CARD_INPUTS_FILE: json.dumps(summary, indent=2) + "\n", "README.md": str(card)}


def check_dry_run_folder(out: Path, released: Sequence[Path]) -> None:
    """Refuse an OUT that overlaps a released folder (is it, holds it or lies inside it: the dry run would replace
    or change that folder), or that holds files other than an earlier dry run's (which it replaces)."""
    resolved = out.resolve()
    for folder in released:
        folder = folder.resolve()
        if resolved == folder or resolved in folder.parents or folder in resolved.parents:
            raise ValueError(
                f"--dry-run {out} overlaps {folder}, which is being released: the dry run never writes into, or "
                "replaces, the folders it copies; choose a folder outside them"
            )
    if resolved.exists() and not (
        resolved.is_dir() and (not any(resolved.iterdir()) or (resolved / "plan.json").is_file())
    ):
        raise ValueError(f"--dry-run {out} exists and is not an earlier dry run (no plan.json): choose a new folder")


def copy_upload(folder: Path, files: Sequence[str], target: Path, replaced: dict[str, str]) -> Path:
    """Copy `files` of `folder` into a fresh `target`, with the texts of `replaced` instead of those files."""
    if target.exists():
        shutil.rmtree(target)
    for relative in files:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        if relative not in replaced:
            shutil.copy2(folder / relative, target / relative)
    for relative, text in replaced.items():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_text(text, encoding="utf-8", newline="")
    return target


def release(
    model_dir: str | Path,
    repo_id: str,
    space_dir: str | Path | None = None,
    space_id: str | None = None,
    private: bool = False,
    dry_run: str | Path | None = None,
    api: HfApi | None = None,
    results: Sequence[str] = (),
) -> dict:
    """Upload the model folder (and the Space folder), or with `dry_run` copy what would be uploaded. Returns the
    plan: per repository, its id, type and files.

    `results` (`NAME=SUMMARY_JSON`) re-renders the card with those test sets, named `repo_id`, in a copy of the model
    folder that is uploaded instead (or in the dry run's copy); the model folder itself is never written.
    """
    model_dir = Path(model_dir)
    missing = [name for name in REQUIRED_MODEL_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ValueError(f"{model_dir} is not a trained SONAR model folder: it lacks {missing}")
    if (space_dir is None) != (space_id is None):
        raise ValueError("--space_dir and --space_id go together")
    uploads = [{"name": "model", "repo_id": repo_id, "repo_type": "model", "folder": model_dir}]
    if space_dir is not None:
        space_dir = Path(space_dir)
        if not (space_dir / "app.py").is_file():
            raise ValueError(f"{space_dir} is not a Space folder: it has no app.py")
        uploads.append({"name": "space", "repo_id": space_id, "repo_type": "space", "folder": space_dir})
    if dry_run is not None:
        check_dry_run_folder(Path(dry_run), [upload["folder"] for upload in uploads])
    replaced = {"model": render_results_card(model_dir, results, repo_id) if results else {}, "space": {}}
    plan = {
        "private": private,
        "repos": [
            {**{k: str(v) for k, v in upload.items()}, "files": files_to_upload(upload["folder"])}
            for upload in uploads
        ],
        "space_variables": {"SONAR_MODEL": repo_id} if space_id else {},
    }

    if dry_run is not None:
        dry_run = Path(dry_run)
        for upload, repo in zip(uploads, plan["repos"]):
            copy_upload(upload["folder"], repo["files"], dry_run / upload["name"], replaced[upload["name"]])
        (dry_run / "plan.json").write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
        return plan

    api = api or HfApi()
    with tempfile.TemporaryDirectory(prefix="sonar-release-") as staging:
        for upload, repo in zip(uploads, plan["repos"]):
            folder = upload["folder"]
            if replaced[upload["name"]]:  # the upload copy with the new card
                folder = copy_upload(folder, repo["files"], Path(staging) / upload["name"], replaced[upload["name"]])
            extra = {"space_sdk": "gradio"} if upload["repo_type"] == "space" else {}
            api.create_repo(upload["repo_id"], repo_type=upload["repo_type"], private=private, exist_ok=True, **extra)
            api.upload_folder(
                repo_id=upload["repo_id"],
                repo_type=upload["repo_type"],
                folder_path=folder,
                ignore_patterns=IGNORE_PATTERNS,
                commit_message=f"Release SONAR {upload['name']} folder",
            )
    if space_id:
        api.add_space_variable(space_id, "SONAR_MODEL", repo_id)
    return plan


__all__ = ["IGNORE_PATTERNS", "REQUIRED_MODEL_FILES", "files_to_upload", "release", "render_results_card"]
