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


def made_by(**changes) -> dict:
    """A prediction file's provenance as `effvid predict` records it, with `changes`."""
    from effvid.data import Preprocessing
    from effvid.inference.outputs import provenance

    preprocessing = Preprocessing(4, 2, 32, 32, (0.5,) * 3, (0.25,) * 3).as_dict()
    model = {"model": "vmf_xxs", "model_args": {}, "class_names": ["jump", "run", "swim", "dive"],
             "preprocessing": preprocessing, "weights": "a.pth", "weights_sha256": "0" * 64,
             "runtime": "eager"}  # fmt: skip
    options = {"top_k": 3, "clips": 2, "window": None, "stride": None}
    fields = {**model, **options}
    return provenance(
        "predictions", {k: v for k, v in fields.items() if k not in changes} | changes, {}
    )
