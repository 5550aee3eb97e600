"""The project's layout, checked: what ships with a model needs only torch, transformers and numpy; the tooling is
never shipped; no script imports another script; no module imports another in a circle."""

import ast
import configparser
import subprocess
import sys
from pathlib import Path

from transformers.dynamic_module_utils import get_imports

from conftest import REPO_ROOT


SCRIPTS = {"train_sonar", "evaluate_sonar", "export_sonar", "release_sonar"}
PACKAGES = ("modeling_sonar", "sonar_training", "dataset_scripts")
# What `trust_remote_code` requires for the shipped code: httpx comes with transformers (through huggingface_hub).
SHIPPED_REQUIREMENTS = {"torch", "transformers", "numpy", "httpx"}
TRAINING_ONLY = ("accelerate", "datasets", "evaluate", "scipy", "matplotlib", "gradio", "sonar_training")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_imports(path: Path) -> set[str]:
    """Every first-party module `path` imports, at any depth of the file (functions included), resolved."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in SCRIPTS | set(PACKAGES):
                found.add(name)
    return found


def project_modules() -> dict[str, Path]:
    files = [REPO_ROOT / f"{script}.py" for script in SCRIPTS]
    for package in PACKAGES:
        files += sorted((REPO_ROOT / package).glob("*.py"))
    files += sorted((REPO_ROOT / "space").glob("*.py")) + sorted((REPO_ROOT / "bench").glob("*.py"))
    return {module_name(path): path for path in files}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        # `from package import name` may name a module of the package or a name defined in it
        graph[name] = {target for target in first_party_imports(path) if target in modules and target != name}
    return graph


def test_no_script_imports_another_script():
    importers = {name: sorted(targets & SCRIPTS) for name, targets in import_graph().items() if targets & SCRIPTS}
    assert not importers, f"scripts are command lines, not libraries: {importers}"


def test_nothing_imports_in_a_circle():
    graph, state, cycles = import_graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target) :] + [target] if target in trail else [node, target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, f"import cycles: {cycles}"


def test_shipped_code_needs_only_torch_transformers_and_numpy():
    """What `trust_remote_code` checks before loading a model (imports outside `try`), for every shipped file."""
    for path in sorted((REPO_ROOT / "modeling_sonar").glob("*.py")):
        extra = set(get_imports(path)) - SHIPPED_REQUIREMENTS - set(sys.stdlib_module_names)
        assert not extra, f"{path.name} requires {sorted(extra)} to load as remote code"
        assert not {t for t in first_party_imports(path) if not t.startswith("modeling_sonar")}, path.name


def test_the_base_install_is_inference_only():
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    packages = setup["options"]["packages"].split()
    assert packages == ["modeling_sonar", "sonar_training", "dataset_scripts"]
    required = {
        line.split(">")[0].split("=")[0].split("<")[0].strip()
        for line in setup["options"]["install_requires"].split("\n")
        if line.strip()
    }
    assert not required & {"accelerate", "datasets", "evaluate", "scipy", "matplotlib", "pyyaml", "gradio"}, required


def test_a_model_scores_a_file_without_any_training_dependency(tmp_path):
    """In a process where the training tooling cannot be imported, the package loads a saved model and its pipeline
    scores a file."""
    import soundfile as sf

    from conftest import make_speechlike
    from modeling_sonar import SonarConfig, SonarFeatureExtractor, SonarForAudioClassification

    SonarForAudioClassification(SonarConfig.from_preset("tiny", max_length=8000)).save_pretrained(tmp_path / "model")
    SonarFeatureExtractor().save_pretrained(tmp_path / "model")
    sf.write(tmp_path / "clip.flac", make_speechlike(1.0), 16000)
    script = f"""
import sys
for name in {TRAINING_ONLY!r}:
    sys.modules[name] = None  # as if not installed: importing it raises, find_spec says it is not there
from transformers import pipeline
import modeling_sonar
detector = pipeline("audio-classification", model=sys.argv[1], trust_remote_code=True)
print(detector(sys.argv[2], return_timeline=True)["label"])
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path / "clip.flac")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] in ("bonafide", "spoof")
