"""A run folder holds one run and is written by one training at a time: a rerun under another
recipe, other classes or another model is refused in one line naming the first difference and
the ways out; what may change on resume is declared once and does continue; a fresh start is
explicit; a second training of a folder being trained is refused at once."""

import logging
import shutil
from dataclasses import replace

import pytest
import yaml

from effvid.cli import main
from effvid.distributed import setup_distributed
from effvid.files import exclusive_lock
from effvid.train.config import DEFAULTS, load_config
from effvid.train.recipe_schema import MAY_CHANGE_ON_RESUME
from effvid.train.run_folder import RunFolderError, first_difference
from effvid.train.trainer import Trainer
from effvid.train.training_checkpoint import read_training_checkpoint, save_checkpoint
from tests.conftest import tiny_recipe, write_recipe


@pytest.fixture(autouse=True)
def effvid_logging():
    """`effvid train` sends the log to the stderr of its time (here a test's capture): each
    test leaves the logger as it found it."""
    logger = logging.getLogger("effvid")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:], logger.level = handlers, level


def _recipe(videos, run, **changes) -> dict:
    recipe = tiny_recipe(videos, run, **{"train__epochs": 1, "eval__clips": 1, **changes})
    recipe["model"]["args"] = {"causal": True}
    return recipe


@pytest.fixture(scope="module")
def trained(tiny_videos, tmp_path_factory):
    """A causal vmf_xxs run folder after its one epoch, never changed (tests copy it)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    Trainer(load_config(_recipe(tiny_videos, run)), setup_distributed("cpu"), progress=False).fit()
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


def _trainer(recipe, resume=True):
    return Trainer(load_config(recipe), setup_distributed("cpu"), resume=resume, progress=False)


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("changes", "key", "old", "new"),
    [
        ({"train__lr": 0.5}, "train.lr", "0.002", "0.5"),
        ({"data__flip": False}, "data.flip", "true", "false"),
        ({"train__seed": 3}, "train.seed", "0", "3"),
    ],
)
def test_a_rerun_under_another_recipe_is_refused_and_the_run_kept(
    tiny_videos, run, changes, key, old, new
):
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "last.pth", "best.pth")}
    with pytest.raises(RunFolderError) as error:
        _trainer(_recipe(tiny_videos, run, **changes))
    message = str(error.value)
    assert message.startswith(f"{run / 'last.pth'} was trained with {key}={old}, this recipe "
                              f"has {key}={new}: continue it with the recipe it was trained "
                              f"with ({run / 'config.yaml'}), write to another output.dir, or "
                              "discard it and start afresh (effvid train --restart)")  # fmt: skip
    assert "train.epochs" in message  # what may change, said
    assert {name: (run / name).read_bytes() for name in before} == before


def test_a_rerun_with_the_classes_in_another_order_is_refused(tiny_videos, run, tmp_path):
    names = (tiny_videos / "classes.txt").read_text().split()
    swapped = [names[1], names[0], *names[2:]]
    (tmp_path / "classes.txt").write_text("\n".join(swapped) + "\n")
    recipe = _recipe(tiny_videos, run)
    recipe["data"]["classes"] = str(tmp_path / "classes.txt")
    with pytest.raises(RunFolderError) as error:
        _trainer(recipe)
    # the classes file is a recipe key too; with the same path but another content, the
    # classes themselves are compared
    assert "data.classes" in str(error.value)
    (tiny_videos / "classes.txt").rename(tmp_path / "original.txt")
    try:
        (tiny_videos / "classes.txt").write_text("\n".join(swapped) + "\n")
        with pytest.raises(RunFolderError, match=rf"label 0 = '{names[0]}', the data now gives "
                           rf"10 classes with label 0 = '{names[1]}' \(classes added, removed or "
                           "in another order\\)"):  # fmt: skip
            _trainer(_recipe(tiny_videos, run))
    finally:
        (tmp_path / "original.txt").replace(tiny_videos / "classes.txt")


def test_a_rerun_with_another_model_is_one_line(tiny_videos, run, tmp_path, capsys):
    recipe = _recipe(tiny_videos, run)
    recipe["model"] = {"name": "x3d_xs"}
    assert main(["train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml"))]) == 2
    line = _one_line_error(capsys)
    assert 'was trained with model.name="vmf_xxs", this recipe has model.name="x3d_xs"' in line


def test_resuming_causal_weights_under_a_clip_recipe_is_refused(tiny_videos, run, tmp_path):
    """`--resume` of a causal run under a non-causal recipe wrote a best.pth whose recorded
    model was not its weights."""
    recipe = _recipe(tiny_videos, tmp_path / "other", train__epochs=2)
    recipe["model"]["args"] = {}
    with pytest.raises(RunFolderError, match=r"model.args.causal=true, this recipe has "
                       r"model.args.causal=\(not set\)"):  # fmt: skip
        _trainer(recipe, resume=run / "last.pth")
    assert not (tmp_path / "other" / "best.pth").exists()
    assert not (tmp_path / "other" / "config.yaml").exists()


def test_what_may_change_on_resume_does_and_the_run_continues(tiny_videos, run):
    recipe = _recipe(tiny_videos, run, train__epochs=2, eval__every=2, data__workers=1)
    trainer = _trainer(recipe)
    assert trainer.state.epoch == 1  # continued, not restarted
    trainer.fit()
    assert read_training_checkpoint(run / "last.pth").epoch == 2
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2


def test_fewer_epochs_than_the_run_has_trained_is_refused(tiny_videos, run):
    """config.yaml would otherwise record fewer epochs than the weights beside it had."""
    checkpoint = read_training_checkpoint(run / "last.pth")
    state = {**checkpoint.state, "epoch": 3}
    save_checkpoint(replace(checkpoint, epoch=3, state=state), run / "last.pth")  # a later run
    with pytest.raises(RunFolderError, match=r"last\.pth has trained 3 epochs, more than "
                       r"train\.epochs=2: give train\.epochs=3 or more"):  # fmt: skip
        _trainer(_recipe(tiny_videos, run, train__epochs=2))


def test_restart_discards_the_run_and_records_the_new_recipe(tiny_videos, run, tmp_path, capsys):
    recipe = _recipe(tiny_videos, run, train__lr=0.5)
    trainer = _trainer(recipe, resume=False)
    trainer.close()
    assert not (run / "last.pth").exists() and not (run / "best.pth").exists()
    assert (run / "metrics.jsonl").read_text() == ""
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 0.5


def test_a_second_training_of_a_folder_being_trained_is_refused(tiny_videos, run, tmp_path, capsys):
    recipe = write_recipe(_recipe(tiny_videos, run, train__epochs=2), tmp_path / "r.yaml")
    first = _trainer(yaml.safe_load(recipe.read_text()))
    try:
        assert main(["train", "--config", str(recipe)]) == 2
        err = capsys.readouterr().err
        # the error is the last line (progress log lines may come before it), never a traceback
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1] == (
            f"effvid: error: another effvid process is writing the run folder {run}: "
            "wait for it to finish, or write elsewhere"
        )
    finally:
        first.close()
    with exclusive_lock(run, "run folder"):  # given up by close()
        pass


def test_a_failed_training_gives_the_folder_up(tiny_videos, run, monkeypatch):
    trainer = _trainer(_recipe(tiny_videos, run, train__epochs=2))
    monkeypatch.setattr(Trainer, "train_one_epoch", lambda self, epoch: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        trainer.fit()
    with exclusive_lock(run, "run folder"):
        pass


def test_what_may_change_on_resume_names_recipe_keys():
    keys = {f"{section}.{key}" for section, values in DEFAULTS.items() for key in values}
    assert set(MAY_CHANGE_ON_RESUME) <= keys


def test_the_first_difference_is_found_outside_what_may_change():
    base = load_config(None)
    same = load_config(None, ["train.epochs=30", "data.workers=7", "output.dir=elsewhere"])
    assert first_difference(base, same) is None
    causal = load_config(None, ["model.args.causal=true", "train.lr=0.5"])
    assert first_difference(base, causal) == ("train.lr", 0.001, 0.5)
    old = {section: dict(values) for section, values in base.items()}
    del old["data"]["demo_videos"]  # recorded before the key existed: its default
    assert first_difference(old, base) is None
