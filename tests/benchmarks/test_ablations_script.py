"""benchmarks/ablations.py: the matched-FLOPs CNN, the arms and the report (training is covered
by tests/engine; the study itself is run by hand, see benchmarks/ABLATIONS.md)."""

import importlib.util
from pathlib import Path

import pytest
import torch

from effvid import count_flops, create_model

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "ablations.py"
SHAPE = (1, 3, 8, 56, 56)


@pytest.fixture(scope="module")
def ablations():
    spec = importlib.util.spec_from_file_location("ablations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cnn_only_arm_matches_the_vmf_flops(ablations):
    factor, args = ablations.match_cnn_width("vmf_xxs", "52m", SHAPE)
    assert 1.0 < factor < 1.2 and args["global_branch"] is False
    with torch.device("meta"):
        vmf = count_flops(create_model("vmf_xxs", num_classes=10), SHAPE).total
        cnn = count_flops(create_model("vmf_xxs", num_classes=10, **args), SHAPE).total
    assert cnn == pytest.approx(vmf, rel=0.01)


def test_every_arm_builds_and_runs_at_the_study_input(ablations):
    arms = ablations.study_arms(SHAPE)
    assert [a.name for a in arms] == [
        "vmf_xxs", "tokens_1", "tokens_6", "tokens_12", "frame_tokens", "cnn_only", "x3d_xs",
        "dualformer",
    ]  # fmt: skip
    for arm in arms:
        config = ablations.arm_config(arm, seed=0, epochs=3, videos=2400, run_dir=Path("r"))
        model = create_model(arm.model, num_classes=10, **arm.args).eval()
        with torch.no_grad():
            assert model(torch.zeros(arm.input_shape(config))).shape == (1, 10)


def test_report_table_and_plot(ablations, tmp_path):
    results = [
        {"arm": arm, "label": arm, "seed": seed, "gflops_per_view": 0.04, "params_m": 2.5,
         "test_top1": top1, "train_seconds": 100.0}
        for arm, scores in [("vmf_xxs", [40.0, 50.0]), ("cnn_only", [45.0, 45.0])]
        for seed, top1 in enumerate(scores)
    ]  # fmt: skip
    rows = ablations.summarise(results)
    assert rows[0]["mean"] == 45.0 and rows[0]["std"] == pytest.approx(7.071, abs=1e-3)
    table = ablations.markdown_table(rows)
    assert (
        "| vmf_xxs | vmf_xxs | 40.0 | 2.50 | 45.0 ± 7.1 | 40.0-50.0 | 40.0, 50.0 | 100 |" in table
    )
    ablations.plot(rows, tmp_path / "plot.png", "title")
    assert (tmp_path / "plot.png").stat().st_size > 10_000
