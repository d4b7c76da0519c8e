"""The study trains with `StudyTrainer`: effvid's Trainer plus the remedies' diversity term and
the token measures every epoch; `effvid_study.py` is effvid's command line with the study's
pieces registered."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from relation_scenes import CLASSES
from study_trainer import StudyTrainer

from effvid.distributed import setup_distributed
from effvid.train.config import load_config

pytestmark = pytest.mark.research
pytest.importorskip("sklearn", reason="the demo dataset draws its digits from scikit-learn")
STUDY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory) -> Path:
    """30 real mp4 clips of 8 frames at 32x32 (train 22, val 4, test 4)."""
    from effvid.data import make_demo_data

    root = tmp_path_factory.mktemp("tiny_demo")
    make_demo_data(root, videos=30, num_frames=8, frame_size=32, progress=False, workers=1)
    return root


def _config(videos: Path, run_dir: Path, args: dict) -> dict:
    return load_config(
        {
            "model": {"name": "vmf_xxs", "args": args},
            "data": {
                "format": "list",
                "train": str(videos / "train.txt"),
                "val": str(videos / "val.txt"),
                "root": str(videos),
                "classes": str(videos / "classes.txt"),
                "num_frames": 4,
                "sampling_rate": 2,
                "crop_size": 32,
                "short_side": 32,
                "workers": 0,
            },
            "train": {"epochs": 1, "batch_size": 4, "lr": 2e-3, "warmup_epochs": 0.5},
            "eval": {"clips": 1, "crops": 1},
            "output": {"dir": str(run_dir)},
        }
    )


def test_the_diversity_term_is_added_to_the_loss_it_trains_on(tiny_videos, tmp_path):
    """`token_diversity` reaches the optimiser: the same run with a large weight ends with
    distinct tokens (3 tokens: -0.5 is the least cosine they can have); the token measures are
    columns of metrics.jsonl."""
    rows = {}
    for weight in (0.0, 5.0):
        config = _config(tiny_videos, tmp_path / f"w{weight}", {"token_diversity": weight})
        trainer = StudyTrainer(config, setup_distributed("cpu"), resume=False, progress=False)
        rows[weight] = trainer.fit()[0]
    assert rows[5.0]["token_cosine"] < 0 < rows[0.0]["token_cosine"]
    logged = json.loads((tmp_path / "w5.0" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"token_cosine", "attention_correlation"} <= set(logged)


def test_a_model_without_tokens_gets_no_token_columns(tiny_videos, tmp_path):
    config = _config(tiny_videos, tmp_path / "cnn", {"global_branch": False})
    trainer = StudyTrainer(config, setup_distributed("cpu"), resume=False, progress=False)
    assert trainer.epoch_metrics() == {}
    loss = torch.tensor(1.5)
    assert trainer.objective(loss) is loss


def test_the_entry_point_runs_effvid_with_the_study_registered(tmp_path):
    """`effvid_study.py make-demo-data --task global_relative` generates the study's task,
    which effvid alone does not know."""
    out = tmp_path / "relative"
    command = [sys.executable, str(STUDY / "effvid_study.py"), "make-demo-data", "--out", str(out)]
    options = ["--task", "global_relative", "--videos", "24", "--num-frames", "6"]
    subprocess.run([*command, *options, "--frame-size", "32", "--workers", "1"], check=True)
    assert (out / "classes.txt").read_text().split() == list(CLASSES)


def test_use_study_trainer_makes_effvids_commands_train_with_it(monkeypatch):
    from study_trainer import use_study_trainer

    import effvid.demo
    import effvid.train.trainer

    monkeypatch.setattr(effvid.demo, "Trainer", effvid.demo.Trainer)
    monkeypatch.setattr(effvid.train.trainer, "Trainer", effvid.train.trainer.Trainer)
    use_study_trainer()
    assert effvid.demo.Trainer is StudyTrainer is effvid.train.trainer.Trainer
