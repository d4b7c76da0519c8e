"""Training end to end on real tiny videos: run folder, exact resume, checkpoint safety, DDP."""

import io
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from effvid.distributed import setup_distributed
from effvid.models.weights import CheckpointError
from effvid.train.evaluate import evaluate_checkpoint
from effvid.train.trainer import Trainer
from effvid.train.training_checkpoint import read_training_checkpoint, save_checkpoint
from tests.conftest import tiny_config, tiny_recipe, write_recipe


def _train(config, resume=False):
    trainer = Trainer(config, setup_distributed("cpu"), resume=resume, progress=False)
    trainer.fit()
    return trainer


def test_run_folder_holds_everything(tiny_videos, tmp_path):
    trainer = _train(tiny_config(tiny_videos, tmp_path / "run"))
    run = tmp_path / "run"
    for name in ("config.yaml", "classes.txt", "train.log", "metrics.jsonl", "last.pth",
                 "best.pth", "training_curves.png"):  # fmt: skip
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    assert "epoch 2 validation: top-1" in (run / "train.log").read_text()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert {"train_loss", "lr", "val_top1", "val_top5"} <= set(rows[-1])
    checkpoint = read_training_checkpoint(run / "last.pth")
    assert checkpoint.metadata.class_names == trainer.class_names
    assert len(trainer.class_names) == 10
    assert checkpoint.metadata.preprocessing["num_frames"] == 4
    assert checkpoint.metadata.model_name == "vmf_xxs" and checkpoint.epoch == 2


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_identical_weights(tiny_videos, tmp_path, monkeypatch):
    reference = _train(tiny_config(tiny_videos, tmp_path / "reference", train__epochs=3))

    interrupted_dir = tmp_path / "interrupted"
    config = tiny_config(tiny_videos, interrupted_dir, train__epochs=3)
    original_step = Trainer._optimizer_step

    def step_then_die(self):
        original_step(self)
        if self.state.epoch == 1 and self.state.step == self.steps_per_epoch + 2:
            raise _Interrupt  # mid-epoch 2, after its second step; last.pth is from epoch 1

    monkeypatch.setattr(Trainer, "_optimizer_step", step_then_die)
    with pytest.raises(_Interrupt):
        _train(config)
    monkeypatch.setattr(Trainer, "_optimizer_step", original_step)
    assert read_training_checkpoint(interrupted_dir / "last.pth").epoch == 1

    resumed = _train(config, resume=True)  # picks up the run folder's last.pth
    assert resumed.state.epoch == 3
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    history = [row["train_loss"] for row in resumed.state.history]
    assert history == [row["train_loss"] for row in reference.state.history]


def test_corrupted_checkpoint_is_refused_and_the_last_good_one_stays(
    tiny_videos, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    _train(tiny_config(tiny_videos, run, train__epochs=1))
    good = (run / "last.pth").read_bytes()

    def broken_save(content, handle, **kwargs):
        handle.write(b"half a checkpoint")  # as if the disk filled up mid-write

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        save_checkpoint(read_training_checkpoint(run / "last.pth"), run / "last.pth")
    monkeypatch.undo()
    assert (run / "last.pth").read_bytes() == good
    assert not list(run.glob(".*.tmp"))

    (run / "last.pth").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r"last\.pth is corrupted or truncated"):
        Trainer(tiny_config(tiny_videos, run, train__epochs=2), setup_distributed("cpu"))

    content = torch.load(io.BytesIO(good), weights_only=True)
    torch.save({**content, "state": _Interrupt()}, run / "last.pth")  # a pickled object
    with pytest.raises(CheckpointError, match=r"refusing to unpickle .*last\.pth"):
        Trainer(tiny_config(tiny_videos, run, train__epochs=2), setup_distributed("cpu"))


@pytest.mark.subprocess
def test_two_process_training_evaluates_every_video_once(tiny_videos, tmp_path):
    """torchrun, 2 processes, gloo: the run trains, and its distributed evaluation of the 5
    validation videos (padded to 6 items by the sampler) equals a 1-process evaluation."""
    run = tmp_path / "ddp"
    recipe = write_recipe(
        tiny_recipe(tiny_videos, run, eval__clips=1, train__epochs=2), tmp_path / "ddp.yaml"
    )
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "effvid.cli", "train", "--config", str(recipe),
               "--device", "cpu"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["train_loss"] > 0 for row in rows)
    assert "5 videos x 1 views" in (run / "train.log").read_text()

    config = tiny_config(tiny_videos, run, eval__clips=1)
    single = evaluate_checkpoint(config, run / "best.pth", split="val", progress=False)
    assert single.metrics()["videos"] == 5
    assert single.metrics()["top1"] == pytest.approx(max(row["val_top1"] for row in rows))

    # `effvid eval` under torchrun, with the recipe the checkpoint carries: one result line
    command = [*command[:-5], "eval", "--checkpoint", str(run / "best.pth"),
               "--output", str(tmp_path / "eval")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("val: top-1") == 1, result.stdout


def test_ema_weights_are_evaluated_kept_as_best_and_resumed(tiny_videos, tmp_path):
    config = tiny_config(tiny_videos, tmp_path / "ema", train__ema=0.5, eval__every=2)
    trainer = _train(config)
    ema_weights = trainer.ema.module.state_dict()
    assert trainer.evaluation_model() is trainer.ema.module
    best = read_training_checkpoint(tmp_path / "ema" / "best.pth")  # epoch 2, the only eval
    last = read_training_checkpoint(tmp_path / "ema" / "last.pth")
    for key, value in ema_weights.items():
        assert torch.equal(best.model[key], value), key
    assert not torch.equal(last.model["stem.0.weight"], best.model["stem.0.weight"])
    resumed = Trainer(config, setup_distributed("cpu"), resume=True, progress=False)
    for key, value in resumed.ema.module.state_dict().items():
        assert torch.equal(value, ema_weights[key]), key


@pytest.mark.parametrize("accumulation", [1, 2])
def test_gradient_accumulation_steps_once_per_group_of_batches(tiny_videos, tmp_path, accumulation):
    """22 training videos in batches of 4: 6 batches an epoch, one optimizer step per
    `accumulation` batches, and the schedule ends at its minimum after the last step."""
    config = tiny_config(tiny_videos, tmp_path / "run", train__accumulation=accumulation)
    trainer = _train(config)
    assert trainer.steps_per_epoch == 6 // accumulation
    assert trainer.state.step == 2 * trainer.steps_per_epoch
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(config["train"]["min_lr"])


def test_mixup_and_cutmix_train_on_soft_targets(tiny_videos, tmp_path):
    plain = _train(tiny_config(tiny_videos, tmp_path / "plain", train__epochs=1))
    mixed = _train(
        tiny_config(
            tiny_videos, tmp_path / "mixed", train__epochs=1, train__mixup=0.8, train__cutmix=1.0
        )
    )
    assert mixed.mixup is not None and plain.mixup is None
    loss = mixed.state.history[0]["train_loss"]
    assert math.isfinite(loss) and loss != plain.state.history[0]["train_loss"]


# A run killed (SIGKILL) at each point of an epoch's bookkeeping, then resumed with the same
# command: the finished run must equal an uninterrupted one. The kill happens in a child process
# whose trainer is patched to die at `point` of epoch `epoch`.
KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import effvid.train.trainer as trainer
from effvid.train.config import load_config
from effvid.distributed import setup_distributed

point, epoch, recipe = sys.argv[1], int(sys.argv[2]), sys.argv[3]
save, record = trainer.save_checkpoint, trainer.Trainer._record_epoch

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def save_or_die(checkpoint, path):
    name = Path(path).name
    if checkpoint.epoch == epoch and point == f"during {name}":
        Path(path).with_name(f".{name}.tmp").write_bytes(b"")  # what a cut-short write leaves
        die()
    save(checkpoint, path)
    if checkpoint.epoch == epoch and point == f"after {name}":
        die()

def record_or_die(self, row, is_best):
    record(self, row, is_best)
    if row["epoch"] == epoch and point == "after the log line":
        die()

trainer.save_checkpoint = save_or_die
trainer.Trainer._record_epoch = record_or_die
trainer.Trainer(load_config(recipe), setup_distributed("cpu"), progress=False).fit()
"""


@pytest.fixture(scope="module")
def uninterrupted(tiny_videos, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    return _train(tiny_config(tiny_videos, run, train__epochs=3)), run


@pytest.mark.parametrize(
    ("point", "epoch"),
    [
        ("during best.pth", 1),  # epoch 1 is always a new best
        ("after best.pth", 1),  # between best.pth and last.pth
        ("during last.pth", 2),
        ("after last.pth", 2),  # before the metrics row and the log line
        ("after the log line", 2),
    ],
)
@pytest.mark.subprocess
def test_a_run_killed_anywhere_finishes_like_an_uninterrupted_one(
    tiny_videos, tmp_path, uninterrupted, point, epoch
):
    reference, reference_run = uninterrupted
    run = tmp_path / "run"
    recipe = write_recipe(tiny_recipe(tiny_videos, run, train__epochs=3), tmp_path / "run.yaml")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, point, str(epoch), str(recipe)],
        capture_output=True,
        text=True,
        # the same threads as this process: the same arithmetic, so the same weights
        env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())},
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]

    resumed = _train(tiny_config(tiny_videos, run, train__epochs=3), resume=True)
    assert sorted(path.name for path in run.glob("*.pth")) == ["best.pth", "last.pth"]
    assert not list(run.glob(".*.tmp"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    best, reference_best = (read_training_checkpoint(r / "best.pth") for r in (run, reference_run))
    assert best.epoch == reference_best.epoch == resumed.state.best_epoch
    assert all(torch.equal(best.model[k], v) for k, v in reference_best.model.items())


def test_a_subclass_sets_the_objective_and_adds_epoch_columns(tiny_videos, tmp_path):
    """`Trainer.objective` is what is back-propagated (here nothing: the weights stay), while
    `train_loss` logs the loss; `epoch_metrics` adds columns to every epoch's row."""

    class Frozen(Trainer):
        calls = 0

        def objective(self, loss):
            Frozen.calls += 1
            return loss * 0.0

        def epoch_metrics(self):
            return {"objective_calls": float(Frozen.calls)}

    config = tiny_config(tiny_videos, tmp_path / "run", train__epochs=1, train__weight_decay=0.0)
    trainer = Frozen(config, setup_distributed("cpu"), resume=False, progress=False)
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    row = trainer.fit()[0]
    assert row["objective_calls"] == Frozen.calls == trainer.steps_per_epoch > 0
    assert row["train_loss"] > 0
    for name, value in trainer.model.named_parameters():
        assert torch.equal(value, before[name]), name
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert list(logged)[:6] == ["epoch", "train_loss", "train_top1", "lr", "train_seconds",
                                "objective_calls"]  # fmt: skip
