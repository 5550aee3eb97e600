"""The command-line arguments of `train_sonar.py`: three dataclasses read by `HfArgumentParser`, a `--config` file of
defaults (YAML or JSON), and every check that needs no data, so that a bad flag fails before anything is created."""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from modeling_sonar import SONAR_PRESETS, SonarConfig

from .recipe import LR_SCHEDULES, load_config_file
from .sampling import SPOOF_DRAWS


@dataclass
class ModelArguments:
    preset: str = field(
        default="sonar-full",
        metadata={"help": "SonarConfig preset: the architecture and encoder size.", "choices": sorted(SONAR_PRESETS)},
    )
    encoder_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Encoder checkpoint cloned into both encoders (the paper: facebook/wav2vec2-xls-r-300m). Default: "
            "the preset's encoder, randomly initialised."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "SonarConfig fields as JSON, e.g. '{\"lambda_js\": 0.8}' (a mapping in a YAML config)."},
    )
    class_weights: list[float] | None = field(
        default=None,
        metadata={
            "help": "Cross-entropy weights (bonafide spoof). Default: inverse training-split priors, normalised; "
            "the released code used 0.9 0.1."
        },
    )


@dataclass
class DataArguments:
    dataset: str = field(
        default="demo",
        metadata={
            "help": "A converted dataset (save_to_disk or parquet folder), a Hub dataset id, or `demo` for the "
            "embedded demo corpus (built into data/ on first use)."
        },
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dev_split: str | None = field(
        default=None, metadata={"help": "Split for the dev EER and early stopping. Default: validation or dev."}
    )
    eval_split: str | None = field(
        default=None, metadata={"help": "Split scored by the best model at the end. Default: eval or test, if any."}
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Samples per training and scoring window. Default: the config's (64,600, the paper's)."},
    )
    random_crop: bool = field(
        default=False, metadata={"help": "Train on a random window instead of the first (the paper: first)."}
    )
    rawboost_algo: int = field(default=4, metadata={"help": "RawBoost algorithm 0-8 (0 none; 4, the paper's: 1+2+3)."})
    augment_full_clip: bool = field(
        default=True,
        metadata={
            "help": "RawBoost on the whole clip, then cut or tile it (the released code); false cuts the window first."
        },
    )
    augment_dev: bool = field(
        default=True,
        metadata={
            "help": "Apply --rawboost_algo to the dev split too, one fixed draw per clip (the released code augments "
            "its dev set); false scores clean dev clips."
        },
    )
    balanced_sampling: bool = field(
        default=True,
        metadata={
            "help": "Epochs of all bona fide plus as many random spoof rows (the released code); else all rows."
        },
    )
    balanced_spoof_draw: str = field(
        default="once",
        metadata={
            "help": "Draw the balanced epochs' spoof rows once for the whole run (the released code) or every epoch.",
            "choices": list(SPOOF_DRAWS),
        },
    )
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers decoding and augmenting, per process."})


@dataclass
class SonarTrainingArguments:
    output_dir: str = field(default="outputs/sonar", metadata={"help": "Checkpoints, logs and the model folder."})
    per_device_train_batch_size: int = field(default=28, metadata={"help": "Clips per process and micro-batch."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Clips per process when scoring."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimiser step."})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW peak learning rate."})
    min_learning_rate: float = field(default=1e-8, metadata={"help": "Bottom of the cosine (the paper: 1e-8)."})
    lr_scheduler_type: str = field(
        default="cosine_per_epoch",
        metadata={
            "help": "cosine_per_epoch: a cosine over --lr_cycle_epochs epochs, stepped each epoch (the released "
            "code); cosine: over the whole run, stepped each optimiser step.",
            "choices": list(LR_SCHEDULES),
        },
    )
    lr_cycle_epochs: int = field(
        default=50, metadata={"help": "Epochs from the peak to the bottom for cosine_per_epoch (the released: 50)."}
    )
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float | None = field(
        default=None, metadata={"help": "Clip the gradient norm to this when gradients sync (the paper: no clipping)."}
    )
    num_train_epochs: int = field(default=100, metadata={"help": "Epochs, unless early stopping ends training."})
    max_steps: int | None = field(
        default=None, metadata={"help": "Optimiser steps in total; overrides num_train_epochs (cosine over it)."}
    )
    eval_steps: int | None = field(
        default=None, metadata={"help": "Also compute the dev EER every this many steps (always at epoch ends)."}
    )
    early_stopping_patience: int | None = field(
        default=3, metadata={"help": "Stop after this many dev evaluations without a better EER; None never stops."}
    )
    mixed_precision: str | None = field(
        default=None,
        metadata={"help": "no, fp16 or bf16. Default: accelerate config's.", "choices": ["no", "fp16", "bf16"]},
    )
    seed: int = field(default=42, metadata={"help": "Seeds initialisation, sampling, augmentation and dropout."})
    report_to: str = field(
        default="tensorboard", metadata={"help": "Trackers, comma-separated (tensorboard, wandb, ...) or none."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log losses, lr and throughput every this many steps."})
    checkpointing_steps: int | None = field(
        default=500, metadata={"help": "Save the training state every this many steps; None never."}
    )
    checkpoints_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "`latest` (in output_dir; none yet starts afresh) or a checkpoint folder."}
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Upload the model folder at the end."})
    hub_model_id: str | None = field(default=None, metadata={"help": "Repository for --push_to_hub (ORG/NAME)."})
    hub_private: bool = field(default=True, metadata={"help": "Create the Hub repository as private."})


ARGUMENT_CLASSES = (ModelArguments, DataArguments, SonarTrainingArguments)


def parse_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, SonarTrainingArguments]:
    """Dataclass arguments: defaults, then the `--config` file, then the command line."""
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    parser.add_argument("--config", help="YAML or JSON file of argument values; command-line flags override it.")
    config_args, _ = parser.parse_known_args(argv)
    if config_args.config:
        parser.set_defaults(**load_config_file(config_args.config, ARGUMENT_CLASSES))
    model_args, data_args, args, _ = parser.parse_args_into_dataclasses(argv)
    validate_args(model_args, data_args, args)
    return model_args, data_args, args


def _looks_local(name: str) -> bool:
    """A path rather than a Hub id (`ORG/NAME` or `NAME`): what `load_sonar_dataset` refuses to look up."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).exists()


def validate_args(model_args: ModelArguments, data_args: DataArguments, args: SonarTrainingArguments) -> None:
    """Every check that needs no data, run before anything is created: a `ValueError` naming the argument.

    Whether the dataset has the train and dev splits is checked when it is loaded (`load_splits`), which `main` does
    before it creates the output folder.
    """
    if model_args.preset not in SONAR_PRESETS:  # a --config file bypasses argparse's choices
        raise ValueError(f"--preset {model_args.preset!r} is unknown; choose one of {sorted(SONAR_PRESETS)}")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0, got {args.learning_rate}")
    if not 0 <= args.min_learning_rate <= args.learning_rate:
        raise ValueError(
            f"--min_learning_rate must be in [0, learning_rate={args.learning_rate}], got {args.min_learning_rate}"
        )
    if args.weight_decay < 0:
        raise ValueError(f"--weight_decay must be >= 0, got {args.weight_decay}")
    if args.max_grad_norm is not None and not args.max_grad_norm > 0:
        raise ValueError(f"--max_grad_norm must be > 0 (or None), got {args.max_grad_norm}")
    for name in (
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "num_train_epochs",
        "logging_steps",
    ):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in (
        "max_steps",
        "eval_steps",
        "checkpointing_steps",
        "checkpoints_total_limit",
        "early_stopping_patience",
        "lr_cycle_epochs",
    ):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1 (or None), got {getattr(args, name)!r}")
    if data_args.max_length is not None and data_args.max_length < 1:
        raise ValueError(f"--max_length must be at least 1, got {data_args.max_length}")
    if data_args.num_workers < 0:
        raise ValueError(f"--num_workers must be >= 0, got {data_args.num_workers}")
    if data_args.rawboost_algo not in range(9):
        raise ValueError(f"--rawboost_algo must be in 0..8, got {data_args.rawboost_algo}")
    if args.push_to_hub and not args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id ORG/NAME")
    if model_args.config_overrides is not None:
        try:
            overrides = json.loads(model_args.config_overrides)
        except json.JSONDecodeError as error:
            raise ValueError(f"--config_overrides {model_args.config_overrides!r} is not JSON: {error}") from None
        if not isinstance(overrides, dict):
            raise ValueError(f"--config_overrides must be a JSON object, got {model_args.config_overrides!r}")
    try:
        config_from_args(model_args, data_args)
    except ValueError as error:
        given = {"preset": model_args.preset, "config_overrides": model_args.config_overrides}
        given["max_length"] = data_args.max_length
        named = ", ".join(f"--{name} {value}" for name, value in given.items() if value is not None)
        raise ValueError(f"{named}: {error}") from None
    for name, value in (
        ("encoder_name_or_path", model_args.encoder_name_or_path),
        ("resume_from_checkpoint", None if args.resume_from_checkpoint == "latest" else args.resume_from_checkpoint),
    ):
        if value is not None and _looks_local(value) and not Path(value).expanduser().is_dir():
            raise ValueError(f"--{name} {value!r} is not a folder")
    if data_args.dataset != "demo" and _looks_local(data_args.dataset) and not Path(data_args.dataset).is_dir():
        raise ValueError(f"--dataset {data_args.dataset!r} is not a folder (convert one with dataset_scripts/)")


def config_from_args(model_args: ModelArguments, data_args: DataArguments) -> SonarConfig:
    """The preset with the overrides and the window length (`ValueError` for a combination the config refuses)."""
    overrides = json.loads(model_args.config_overrides) if model_args.config_overrides else {}
    if data_args.max_length is not None:
        overrides["max_length"] = data_args.max_length
    return SonarConfig.from_preset(model_args.preset, **overrides)


__all__ = [
    "ARGUMENT_CLASSES",
    "DataArguments",
    "ModelArguments",
    "SonarTrainingArguments",
    "config_from_args",
    "parse_args",
    "validate_args",
]
