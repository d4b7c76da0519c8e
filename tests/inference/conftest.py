"""Checkpoints of a tiny VMF-XXS with the tiny demo data's classes, causal and not."""

import pytest

from tests.conftest import write_checkpoint


@pytest.fixture(scope="module")
def causal_checkpoint(tmp_path_factory, tiny_videos):
    classes = (tiny_videos / "classes.txt").read_text().split()
    return write_checkpoint(tmp_path_factory.mktemp("causal") / "causal.pth", classes, causal=True)


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory, tiny_videos):
    classes = (tiny_videos / "classes.txt").read_text().split()
    return write_checkpoint(tmp_path_factory.mktemp("clip") / "clip.pth", classes, causal=False)
