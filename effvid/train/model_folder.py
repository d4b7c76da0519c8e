"""Model folders of runs and checkpoints: what `effvid save-pretrained` and `effvid push-to-hub`
write (the folder format itself is `effvid.models.pretrained`).

A source is one of:

- a run folder (`output.dir` of `effvid train`): its `best.pth`, else its `last.pth`, with the
  recipe (kept in `config.json` as "recipe", so `effvid eval --checkpoint FOLDER` needs no
  `--config`) and a model card that reports the run: the model and its costs, the data and
  classes, the recipe, the metrics the folder records (best validation epoch, every
  `<split>_metrics.json` that `effvid eval` wrote there) with their test views, the checks
  effvid runs on the family, and how to reproduce and use it;
- a checkpoint file: an effvid one (it names its model and classes), or another one (e.g. an
  official DualFormer or Mobile-Former checkpoint) with the registered model named: its class
  names and preprocessing are then `effvid.models.official.official_metadata`'s, and when
  effvid knows none the folder has no class names and its card says so.
"""

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from effvid.errors import InputError
from effvid.models import get_model_card, load_model
from effvid.models.flops import count_params
from effvid.models.official import official_card_notes, official_metadata
from effvid.models.pretrained import (
    FolderConfig,
    is_model_folder,
    save_model_folder,
    usage_section,
)
from effvid.models.weights import CheckpointError, read_checkpoint
from effvid.train.config import dump_config
from effvid.train.training_checkpoint import TrainingCheckpoint, read_training_checkpoint

# What effvid's test suite checks of each family, for the "Checks" section of a card.
FAMILY_CHECKS = {
    "dualformer": "state dict, FLOPs and logits against the official DualFormer code on "
    "reference tensors, and its mmaction and 2-D ImageNet checkpoint layouts "
    "(tests/models/test_dualformer.py)",
    "mobile_former": "state dict, initialisation and outputs against the authors' "
    "Mobile-Former code on reference tensors (tests/models/test_mobile_former_parity.py)",
    "video_mobile_former": "inflation from the image Mobile-Former (a centre-inflated model "
    "equals the image model on each frame) and the ablation switches "
    "(tests/models/test_video_mobile_former.py)",
    "x3d": "state dict, FLOPs and outputs against PyTorchVideo's X3D (tests/models/test_x3d.py)",
}
RUN_CHECKPOINTS = ("best.pth", "last.pth")


def write_model_folder(
    source: Path,
    output: Path,
    *,
    model: str | None = None,
    overwrite: bool = False,
    reference: str | None = None,
) -> Path:
    """Write the model folder of `source` (a run folder or a checkpoint file, see the module
    docstring) at `output` and return it. `model`: the registered model of a checkpoint that
    does not name it; `overwrite`: replace an effvid model folder at `output`; `reference`: how
    the card's usage lines name the folder (default: `output`)."""
    source, output = Path(source), Path(output)
    if is_model_folder(source):
        raise InputError(
            f"{source} is already an effvid model folder: copy it, or push it as it is "
            "(effvid push-to-hub)"
        )
    run_dir, weights = _checkpoint_of(source)
    checkpoint = read_checkpoint(weights)
    training = _training_checkpoint(weights) if checkpoint.metadata.model_name else None
    network, report = load_model(model, checkpoint)
    class_names, preprocessing = report.class_names, report.preprocessing
    official = checkpoint.metadata.model_name is None
    notes = None
    if official:
        known = official_metadata(network.model_name, network.num_classes)
        if known is not None:
            class_names, preprocessing = known.class_names, known.preprocessing
            notes = official_card_notes(network.model_name, network.num_classes)
    recipe = training.config if training is not None and training.config else None
    config = FolderConfig(
        model_name=network.model_name,
        num_classes=network.num_classes,
        model_args=dict(network.model_args),
        class_names=class_names,
        preprocessing=preprocessing,
        recipe=recipe,
    )
    card = _model_card(
        config,
        params=count_params(network),
        weights=weights,
        run_dir=run_dir,
        training=training,
        official=official,
        official_notes=notes,
        reference=reference or str(output),
    )
    return save_model_folder(
        network,
        output,
        class_names=class_names,
        preprocessing=preprocessing,
        card=card,
        recipe=recipe,
        overwrite=overwrite,
    )


def push_to_hub(
    source: Path,
    repo_id: str,
    *,
    model: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload `source` (a model folder as it is, or a run folder or checkpoint made into one,
    see `write_model_folder`) to the Hugging Face Hub repository `repo_id` ('org/name');
    returns the commit's URL (see `effvid.models.hub.push_model_folder`)."""
    from effvid.models.hub import check_repo_id, push_model_folder

    check_repo_id(repo_id)
    options = {"private": private, "revision": revision, "commit_message": commit_message}
    if is_model_folder(source):
        return push_model_folder(source, repo_id, **options)
    with tempfile.TemporaryDirectory(prefix="effvid-push-") as temporary:
        folder = write_model_folder(
            source, Path(temporary) / "model", model=model, reference=f"hf-hub:{repo_id}"
        )
        return push_model_folder(folder, repo_id, **options)


def _checkpoint_of(source: Path) -> tuple[Path | None, Path]:
    """(run folder or None, the checkpoint file) of `source`."""
    if source.is_file():
        return None, source
    if not source.is_dir():
        raise InputError(f"{source} does not exist: give a run folder or a checkpoint file")
    for name in RUN_CHECKPOINTS:
        if (source / name).is_file():
            return source, source / name
    raise InputError(
        f"{source} is not a run folder with a trained epoch (no {' or '.join(RUN_CHECKPOINTS)}): "
        "give a run folder of effvid train or a checkpoint file"
    )


def _training_checkpoint(path: Path) -> TrainingCheckpoint | None:
    """The training checkpoint at `path`, or None if it is another kind of checkpoint."""
    if path.suffix == ".safetensors":
        return None
    try:
        return read_training_checkpoint(path)
    except CheckpointError:
        return None


# --- the model card ----------------------------------------------------------------------------


def _model_card(
    config: FolderConfig,
    *,
    params: int,
    weights: Path,
    run_dir: Path | None,
    training: TrainingCheckpoint | None,
    official: bool,
    official_notes: str | None,
    reference: str,
) -> str:
    """The markdown body of the folder's README.md. `official`: the weights come from a
    checkpoint that does not name its model; `official_notes`: what effvid knows of it, when it
    is an official release (`effvid.models.official.official_card_notes`)."""
    sections = [
        f"# {config.model_name}" + (f" trained on {_data_name(config)}" if config.recipe else ""),
        _model_section(config, params),
        _weights_section(weights, run_dir, training, official, official_notes),
        _data_section(config),
        _metrics_section(config, run_dir, training),
        _recipe_section(config),
        _checks_section(config),
        usage_section(reference, config.model_name),
    ]
    return "\n\n".join(section.strip() for section in sections if section) + "\n"


def _data_name(config: FolderConfig) -> str:
    data = config.recipe["data"]
    if data.get("format") == "demo":
        return "the effvid demo dataset"
    where = data.get("root") or data.get("train") or "its data"
    return f"{Path(str(where)).name} ({data.get('format')})"


def _model_section(config: FolderConfig, params: int) -> str:
    card = get_model_card(config.model_name)
    frames = f"{card.num_frames} frames of " if card.is_video else ""
    lines = [
        "## Model",
        "",
        f"- **{card.name}**, family {card.family}; reference code: {card.source}",
        f"- registered input: {frames}{card.input_size}x{card.input_size} pixels per view; "
        f"default test views {card.test_clips} clips x {card.test_crops} crops",
        f"- parameters: {params:,} ({params / 1e6:.2f} M, {config.num_classes} classes)",
        f"- multiply-adds per view: {card.flops_per_view / 1e9:.3f} G (the registered card, "
        f"{card.num_classes} classes), {card.flops_total / 1e9:.3f} G for the test views",
    ]
    trained = config.preprocessing or {}
    if not card.is_video and {"short_side", "crop_size"} <= set(trained):
        lines.append(
            f"- its input: short side {trained['short_side']}, centre crop "
            f"{trained['crop_size']}x{trained['crop_size']} (its preprocessing)"
        )
    elif {"num_frames", "sampling_rate", "crop_size"} <= set(trained):
        lines.append(
            f"- trained on: {trained['num_frames']} frames, one every {trained['sampling_rate']}, "
            f"{trained['crop_size']}x{trained['crop_size']} crops (its preprocessing, which "
            "effvid predict applies)"
        )
    if config.model_args:
        lines.append(
            f"- constructor arguments: `{json.dumps(config.model_args)}` (the card's costs "
            "are for the defaults)"
        )
    return "\n".join(lines)


def _weights_section(
    weights: Path,
    run_dir: Path | None,
    training: TrainingCheckpoint | None,
    official: bool,
    official_notes: str | None,
) -> str:
    if run_dir is not None and training is not None:
        state = training.state
        if weights.name == "best.pth":
            what = (
                f"`best.pth` of run folder `{run_dir}`: epoch {state.get('best_epoch')}, the "
                f"best validation top-1 ({_percent(state.get('best_top1'))})"
            )
        else:
            what = (
                f"`last.pth` of run folder `{run_dir}` (epoch {training.epoch}): the run has "
                "no best.pth"
            )
    elif official and official_notes:
        what = f"`{weights}`, an official checkpoint (converted to effvid)"
    elif official:
        what = f"`{weights}`, a checkpoint that does not name its model (converted to effvid)"
    else:
        what = f"the effvid checkpoint `{weights}`"
    return f"## Weights\n\nFrom {what}." + (f"\n\n{official_notes}" if official_notes else "")


def _percent(value: object) -> str:
    return f"{value:.2f}%" if isinstance(value, int | float) and value >= 0 else "not recorded"


def _data_section(config: FolderConfig) -> str:
    lines = ["## Data", ""]
    if config.recipe:
        data = dump_config(config.recipe["data"]).strip()
        lines += ["The recipe's data section:", "", "```yaml", data, "```", ""]
    if config.class_names:
        names = ", ".join(f"`{name}`" for name in config.class_names)
        lines.append(f"{config.num_classes} classes, in the order of the logits: {names}.")
    else:
        lines.append(
            f"This folder has no class names: its {config.num_classes} outputs are labelled "
            "by their index."
        )
    if config.preprocessing is None:
        lines.append(
            "It records no preprocessing: effvid feeds it the model card's (frames, crop, "
            "mean and std)."
        )
    return "\n".join(lines)


def _metrics_section(
    config: FolderConfig, run_dir: Path | None, training: TrainingCheckpoint | None
) -> str:
    if run_dir is None:
        return ""
    rows = []
    recipe_views = ""
    if config.recipe:
        evaluation = config.recipe.get("eval", {})
        recipe_views = f"{evaluation.get('clips')} clips x {evaluation.get('crops')} crops"
    best = _best_epoch_row(run_dir, training)
    if best is not None:
        rows.append(
            f"| validation, during training (epoch {best.get('epoch')}) | "
            f"{_number(best.get('val_top1'))} | {_number(best.get('val_top5'))} | - | - | "
            f"{recipe_views or '-'} |"
        )
    for path in sorted(run_dir.glob("*_metrics.json")):
        metrics = _read_json(path)
        if not isinstance(metrics, Mapping) or "top1" not in metrics:
            continue
        rows.append(
            f"| {path.name.removesuffix('_metrics.json')} (`{path.name}`) | "
            f"{_number(metrics.get('top1'))} | {_number(metrics.get('top5'))} | "
            f"{_number(metrics.get('mean_class_accuracy'))} | {metrics.get('videos', '-')} | "
            f"{metrics.get('views_per_video', '-')} per video |"
        )
    if not rows:
        return "## Metrics\n\nThe run folder records no evaluation."
    header = [
        "## Metrics",
        "",
        "As recorded in the run folder (accuracies in %; `effvid eval` writes "
        "`<split>_metrics.json` there, a reordered-time probe `<split>_<order>_metrics.json`).",
        "",
        "| evaluation | top-1 | top-5 | mean class accuracy | videos | test views |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + rows)


def _best_epoch_row(run_dir: Path, training: TrainingCheckpoint | None) -> dict | None:
    """The metrics.jsonl row of the epoch the weights hold (best epoch, else the last)."""
    if training is None:
        return None
    epoch = training.state.get("best_epoch") or training.epoch
    rows = [_read_json_line(line) for line in _lines(run_dir / "metrics.jsonl")]
    found = [row for row in rows if isinstance(row, dict) and row.get("epoch") == epoch]
    return found[-1] if found and "val_top1" in found[-1] else None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _read_json_line(line: str) -> object:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _number(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _recipe_section(config: FolderConfig) -> str:
    if not config.recipe:
        return ""
    return (
        "## Recipe\n\nThe resolved training recipe (also in `config.json`). To train it again, "
        "save it as `recipe.yaml` (with data paths of your machine) and run "
        "`effvid train --config recipe.yaml`.\n\n"
        f"```yaml\n{dump_config(config.recipe).strip()}\n```"
    )


def _checks_section(config: FolderConfig) -> str:
    card = get_model_card(config.model_name)
    family = FAMILY_CHECKS.get(card.family)
    lines = [
        "## Checks",
        "",
        "effvid's test suite checks every registered model's parameters and multiply-adds "
        "against its card (tests/models/test_registry.py)"
        + (f", and for the {card.family} family: {family}." if family else "."),
    ]
    return "\n".join(lines)
