"""Training checkpoints on their own, without a training run: what is saved reads back whole,
what is not a training checkpoint is refused by name, and a failed save keeps the file there."""

import pytest
import torch

from effvid.models.weights import CheckpointError, CheckpointMetadata
from effvid.train.training_checkpoint import (
    TrainingCheckpoint,
    read_training_checkpoint,
    save_checkpoint,
)


def _checkpoint(epoch=3, ema=None):
    return TrainingCheckpoint(
        model={"w": torch.arange(6.0).view(2, 3)},
        epoch=epoch,
        state={"step": 12, "best_top1": 50.0, "history": [{"epoch": 1, "train_loss": 1.5}]},
        optimizer={"state": {}, "param_groups": [{"lr": 0.1}]},
        scheduler={"last_epoch": 12},
        scaler={},
        config={"model": {"name": "vmf_xxs", "args": {"causal": True}}},
        metadata=CheckpointMetadata(["a", "b"], {"num_frames": 4}, "vmf_xxs", {"causal": True}),
        ema=ema,
    )


@pytest.mark.parametrize("ema", [None, {"decay": 0.9, "weights": {"w": torch.ones(2, 3)}}])
def test_a_saved_checkpoint_reads_back_as_it_was(tmp_path, ema):
    saved = _checkpoint(ema=ema)
    path = save_checkpoint(saved, tmp_path / "run" / "last.pth")
    assert path == tmp_path / "run" / "last.pth" and [p.name for p in path.parent.iterdir()] == [
        "last.pth"
    ]  # no temporary file left beside it
    read = read_training_checkpoint(path)
    assert torch.equal(read.model["w"], saved.model["w"])
    assert (read.epoch, read.state, read.optimizer, read.scheduler, read.scaler, read.config) == (
        3, saved.state, saved.optimizer, saved.scheduler, saved.scaler, saved.config
    )  # fmt: skip
    assert read.metadata == saved.metadata
    if ema is None:
        assert read.ema is None
    else:
        assert read.ema["decay"] == 0.9 and torch.equal(read.ema["weights"]["w"], torch.ones(2, 3))
    content = torch.load(path, weights_only=True)
    assert content["format_version"] == 1 and content["class_names"] == ["a", "b"]
    assert read_training_checkpoint(path, mmap=True).epoch == 3


def test_an_older_checkpoint_without_config_or_ema_still_reads(tmp_path):
    content = _checkpoint().content()
    del content["config"], content["ema"], content["model_args"], content["model_name"]
    torch.save(content, tmp_path / "old.pth")
    read = read_training_checkpoint(tmp_path / "old.pth")
    assert read.config == {} and read.ema is None and read.epoch == 3


def test_what_is_not_a_training_checkpoint_is_refused_by_name(tmp_path):
    with pytest.raises(CheckpointError, match=r"^no checkpoint at .*nowhere\.pth$"):
        read_training_checkpoint(tmp_path / "nowhere.pth")
    (tmp_path / "folder.pth").mkdir()
    with pytest.raises(CheckpointError, match=r"^no checkpoint at .*folder\.pth$"):
        read_training_checkpoint(tmp_path / "folder.pth")
    torch.save({"w": torch.zeros(2)}, tmp_path / "weights.pth")
    message = r"weights\.pth is not an effvid training checkpoint \(no model, epoch, state, "
    with pytest.raises(CheckpointError, match=message + r"optimizer, scheduler, scaler\)$"):
        read_training_checkpoint(tmp_path / "weights.pth")
    content = _checkpoint().content()
    del content["scaler"]
    torch.save(content, tmp_path / "no_scaler.pth")
    with pytest.raises(CheckpointError, match=r"no_scaler\.pth is .* \(no scaler\)$"):
        read_training_checkpoint(tmp_path / "no_scaler.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    not_a_mapping = r"list\.pth is .* checkpoint \(not a mapping of named parts\)$"
    with pytest.raises(CheckpointError, match=not_a_mapping):
        read_training_checkpoint(tmp_path / "list.pth")


class _NotPlainData:
    """A Python object: torch.save writes it, a weights-only load refuses it."""


def test_a_save_that_cannot_be_read_back_keeps_the_previous_file(tmp_path):
    path = save_checkpoint(_checkpoint(epoch=1), tmp_path / "last.pth")
    before = path.read_bytes()
    unreadable = _checkpoint(epoch=2)
    unreadable.state["object"] = _NotPlainData()
    with pytest.raises(CheckpointError):
        save_checkpoint(unreadable, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pth"]
