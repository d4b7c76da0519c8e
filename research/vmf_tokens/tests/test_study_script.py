"""study.py: arms of matched cost at both tasks' inputs, the tuning rule, the paired intervals
and the report (training is covered by effvid's tests/train; the study is run by hand, see
ABLATIONS.md)."""

import json
from pathlib import Path

import pytest
import torch

from effvid import count_flops, create_model
from vmf_tokens.tests import load_script

pytestmark = pytest.mark.research
SCRIPT = Path(__file__).parents[1] / "study.py"


@pytest.fixture(scope="module")
def study():
    return load_script("study")


@pytest.mark.parametrize("task", ["local", "global"])
def test_matched_arms_cost_what_vmf_xxs_costs_and_every_arm_runs(study, task):
    shape = study.TASKS[task].input_shape
    arms = {arm.name: arm for arm in study.study_arms(shape)}
    assert list(arms) == ["vmf_xxs", "vmf_xxs_identity", "cnn", "x3d", "dualformer", "tsn",
                          "vmf_xs"]  # fmt: skip
    target = study._flops("vmf_xxs", {}, shape)
    for name in ("cnn", "x3d", "dualformer"):
        assert study._flops(arms[name].model, arms[name].args, shape) == pytest.approx(
            target, rel=0.03
        ), name
    for arm in arms.values():
        model = create_model(arm.model, num_classes=8, **arm.args).eval()
        with torch.no_grad():
            assert model(torch.zeros(shape)).shape == (1, 8), arm.name
    with torch.device("meta"):
        vmf = create_model("vmf_xxs", num_classes=8)
        assert count_flops(vmf, shape).total == pytest.approx(target, rel=1e-3)


def _result(task, arm, lr, seed, val, test):
    return {"task": task, "arm": arm, "label": arm, "lr": lr, "seed": seed, "val_top1": val,
            "val_curve": [val - 5, val], "test_top1": test, "mflops_per_view": 40.0,
            "params_m": 2.5, "train_seconds": 100.0, "token_cosine": [0.5, 0.9],
            "attention_correlation": [0.2, 0.8]}  # fmt: skip


def test_tuning_rule_paired_intervals_and_report(study, tmp_path):
    results = [
        _result("local", "vmf_xxs", lr, 0, val, 50.0)
        for lr, val in [(1e-4, 40.0), (4e-4, 60.0), (1.6e-3, 60.0)]
    ] + [_result("local", "cnn", lr, 0, val, 40.0) for lr, val in [(1e-4, 55.0), (4e-4, 50.0)]]
    assert study.chosen_lr(results, "local", "vmf_xxs") == 4e-4  # a tie goes to the smaller
    assert study.chosen_lr(results, "local", "cnn") == 1e-4
    for seed, (a, b) in enumerate([(52.0, 41.0), (49.0, 43.0), (51.0, 39.0)], start=1):
        results += [_result("local", "vmf_xxs", 4e-4, seed, 0, a),
                    _result("local", "cnn", 1e-4, seed, 0, b)]  # fmt: skip
    report = study.summarise(results, study.arms_by_task())
    key = next(c for c in report["local"]["paired"] if c["decides_claim"])
    assert key["differences"] == [10.0, 11.0, 6.0, 12.0]
    mean, half = study.t_interval(key["differences"])
    assert (key["mean"], key["half_width"]) == (mean, half) and mean == 9.75
    assert half == pytest.approx(3.182 * 2.63 / 2, rel=1e-3)  # t(3) x sd / sqrt(4)
    text = study.markdown(report)
    assert "| vmf_xxs (decides the claim) | cnn | 4 | +10.0, +11.0, +6.0, +12.0 | +9.8 |" in text
    study.plot(report, tmp_path / "study.png")
    assert (tmp_path / "study.png").stat().st_size > 10_000


def test_recorded_tuning_picks_the_rate_and_its_rerun_is_the_first_final_seed(study, tmp_path):
    path = tmp_path / "recorded.json"
    rows = [{"task": "local", "arm": "cnn", "lr": lr, "seed": 0, "val_top1": val}
            for lr, val in [(1e-4, 30.0), (4e-4, 50.0), (1.6e-3, 45.0)]]  # fmt: skip
    path.write_text(json.dumps({"note": "lost runs", "runs": rows}))
    results = study.recorded_tuning(path)
    assert all(r["recorded"] for r in results)
    # the rerun of the kept rate scores lower than another rate's record: the record decides
    results += [_result("local", "cnn", 4e-4, seed, 40.0, 60.0 + seed) for seed in range(3)]
    assert study.chosen_lr(results, "local", "cnn") == 4e-4
    report = study.summarise(results, study.arms_by_task())["local"]
    (row,) = report["arms"]
    assert row["seeds"] == [0, 1, 2] and row["test_top1"] == [60.0, 61.0, 62.0]
    (tuning,) = report["tuning"]
    assert tuning["val_top1"] == {"0.0001": 30.0, "0.0004": 50.0, "0.0016": 45.0}
    assert tuning["rerun_val_top1"] == 40.0


@pytest.fixture(scope="module")
def demo_pair():
    """The script, loaded once: its study's arms (width searches) are built once per input."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPT.parent))
        yield load_script("demo_pair")


def test_demo_pair_reads_each_relation_of_the_global_task_off_the_predicted_class(
    demo_pair, tmp_path
):
    """On the global task the pair's report gives, besides top-1, how often each of the three
    relations (colour, size, height) of the predicted class is right, paired like top-1."""
    predicted = {  # (label, prediction) per test video, for each arm
        "vmf_xxs": [("same_colour_larger_higher", "other_colour_larger_higher"),
                    ("other_colour_smaller_lower", "other_colour_smaller_higher")],
        "cnn": [("same_colour_larger_higher", "same_colour_larger_higher"),
                ("other_colour_smaller_lower", "same_colour_larger_lower")],
    }  # fmt: skip
    for arm, rows in predicted.items():
        for seed in range(2):
            folder = tmp_path / arm / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({"top1": 50.0 * (arm == "cnn")}))
            videos = [{"label": label, "predicted": guess} for label, guess in rows]
            (folder / "test_predictions.json").write_text(json.dumps(videos))
    result, table = demo_pair.report("global", tmp_path, {"vmf_xxs": [], "cnn": [], "x3d": []})
    assert result["test_accuracy"]["vmf_xxs"] == {
        "top1": [0.0, 0.0], "colour": [50.0, 50.0], "size": [100.0, 100.0], "height": [50.0] * 2
    }  # fmt: skip
    assert result["test_accuracy"]["cnn"]["size"] == [50.0, 50.0]
    assert "x3d" not in result["test_accuracy"]  # no finished run
    assert result["difference"]["cnn"]["size"]["mean"] == 50.0
    assert "| vmf_xxs | colour | 50.0 | 0.0 | 50.0, 50.0 |" in table


@pytest.mark.parametrize("task", ["local", "global", "global_relative"])
def test_demo_pair_overrides_build_the_cnn_alone_at_vmf_xxs_cost_on_the_task(demo_pair, task):
    """demo_pair.py passes its arms to `effvid demo` as recipe overrides: they must
    survive the recipe parser, build the global-branch-free CNN at VMF-XXS's MACs on the task's
    input, and on the global task read that task's data at each arm's study-picked rate."""
    from effvid.train.config import load_config

    arms = demo_pair.arm_overrides(task)
    configs = {arm: load_config("demo", overrides) for arm, overrides in arms.items()}
    data = configs["cnn"]["data"]
    assert data["demo_task"] == task == configs["vmf_xxs"]["data"]["demo_task"]
    if task == "local":
        assert arms["vmf_xxs"] == [] and configs["cnn"]["train"]["lr"] == 2e-3
    else:
        assert (data["crop_size"], data["sampling_rate"]) == (64, 3)
        assert configs["vmf_xxs"]["train"]["lr"] == 4e-4 and configs["cnn"]["train"]["lr"] == 1.6e-3
        assert (configs["cnn"]["eval"]["clips"], configs["cnn"]["eval"]["crops"]) == (1, 1)
    shape = (1, 3, data["num_frames"], data["crop_size"], data["crop_size"])
    model = configs["cnn"]["model"]
    cnn = create_model(model["name"], num_classes=10, **model["args"])
    vmf = create_model("vmf_xxs", num_classes=10)
    assert not any(name.endswith("global_block") for name, _ in cnn.named_modules())
    assert any(name.endswith("global_block") for name, _ in vmf.named_modules())
    assert count_flops(cnn, shape).total == pytest.approx(count_flops(vmf, shape).total, rel=0.03)


def test_demo_pair_pairs_the_seeds_run_after_a_probe_apart(demo_pair, tmp_path):
    """With `fresh_from`, the seeds run before the pair was decided on (a probe) are left out of
    a second paired interval, besides the one over every seed."""
    for arm, top1 in {"vmf_xxs": [60.0, 50.0, 52.0, 51.0], "cnn": [50.0, 50.0, 50.0, 50.0]}.items():
        for seed, value in enumerate(top1):
            folder = tmp_path / arm / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({"top1": value}))
    result, table = demo_pair.report("local", tmp_path, {"vmf_xxs": [], "cnn": []}, 1)
    difference = result["difference"]["cnn"]["top1"]
    assert difference["per_seed"] == [10.0, 0.0, 2.0, 1.0] and difference["mean"] == 3.25
    assert difference["fresh"]["per_seed"] == [0.0, 2.0, 1.0]
    assert difference["fresh"]["mean"] == 1.0 and difference["fresh"]["first_seed"] == 1
    assert "paired over seeds 1-3: +1.00 points" in table


def test_demo_pair_reads_seeds_whose_run_folders_are_gone_from_the_earlier_report(
    demo_pair, tmp_path
):
    """runs/ is not kept: seeds an earlier report recorded are read from it, not run again, and
    paired with the seeds run since; a run folder, where there is one, wins over the record."""
    earlier = {"vmf_xxs": {"top1": [60.0, 50.0]}, "cnn": {"top1": [50.0, 50.0]}}
    for arm, top1 in {"vmf_xxs": [99.0, 50.0, 52.0], "cnn": [0.0, 50.0, 50.0]}.items():
        for seed in (1, 2):  # seed 0's folders are gone
            folder = tmp_path / arm / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({"top1": top1[seed]}))
    result, _ = demo_pair.report("local", tmp_path, {"vmf_xxs": [], "cnn": []}, earlier=earlier)
    assert result["test_accuracy"]["vmf_xxs"]["top1"] == [60.0, 50.0, 52.0]
    assert result["difference"]["cnn"]["top1"]["per_seed"] == [10.0, 0.0, 2.0]
    assert demo_pair.seeds_to_run(4, earlier["cnn"]) == [2, 3]


def test_demo_pair_refuses_an_arm_without_a_study_picked_rate_on_the_global_task(demo_pair):
    """The per-frame model runs on the local task at the demo's rate (the study's grid picked
    its top rate for it there, as for the pair); on the global task the study recorded no pick
    for it, so it is refused rather than run at the demo's rate."""
    from effvid.train.config import load_config

    local = demo_pair.arm_overrides("local", ("tsn", "vmf_xs"))
    assert load_config("demo", local["tsn"])["model"]["name"] == "tsn_mobileformer_52m"
    assert load_config("demo", local["vmf_xs"])["train"]["lr"] == 2e-3
    assert "tsn" not in demo_pair.arms_of("global") and "x3d" in demo_pair.arms_of("global")
    with pytest.raises(SystemExit, match="no learning rate for tsn on global_relative"):
        demo_pair.arm_overrides("global_relative", ("tsn",))


def test_demo_pair_pairs_the_cnn_alone_at_the_second_size_with_vmf_xs(demo_pair, tmp_path):
    """The key pair at the second size: `cnn_xs` is VMF-XS's CNN (no global branch) widened to
    VMF-XS's MACs on the local task, and the report gives VMF-XS minus it, not VMF-XXS minus it."""
    from effvid.train.config import load_config

    model = load_config("demo", demo_pair.arm_overrides("local", ("cnn_xs",))["cnn_xs"])["model"]
    cnn = create_model(model["name"], num_classes=10, **model["args"])
    vmf = create_model("vmf_xs", num_classes=10)
    assert not any(name.endswith("global_block") for name, _ in cnn.named_modules())
    shape = (1, 3, 8, 56, 56)
    assert count_flops(cnn, shape).total == pytest.approx(count_flops(vmf, shape).total, rel=0.03)
    runs = {"vmf_xxs": [90.0, 92.0], "vmf_xs": [95.0, 97.0], "cnn_xs": [94.0, 94.0]}
    for arm, top1 in runs.items():
        for seed, value in enumerate(top1):
            folder = tmp_path / arm / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({"top1": value}))
    arms = {"vmf_xxs": [], "vmf_xs": [], "cnn_xs": []}
    result, table = demo_pair.report("local", tmp_path, arms)
    assert result["difference"]["cnn_xs"]["top1"]["per_seed"] == [1.0, 3.0]
    assert result["difference"]["vmf_xs"]["top1"]["per_seed"] == [-5.0, -5.0]
    assert "VMF-XS minus cnn_xs, top1, paired over seeds 0-1: +2.00 points" in table


def test_demo_pair_runs_the_second_size_pair_on_the_global_task_at_study_picked_rates(
    demo_pair,
):
    """On the global task VMF-XS runs at the rate the study's rule picks from its recorded
    tuning runs (its first round; 1.6e-3 there), and its CNN alone, which the study never
    tuned, at the CNN alone's pick; VMF-XXS keeps its own pick."""
    from effvid.train.config import load_config

    arms = demo_pair.arm_overrides("global", ("vmf_xxs", "cnn", "vmf_xs", "cnn_xs"))
    rates = {arm: load_config("demo", arms[arm])["train"]["lr"] for arm in arms}
    assert rates == {"vmf_xxs": 4e-4, "cnn": 1.6e-3, "vmf_xs": 1.6e-3, "cnn_xs": 1.6e-3}
    assert load_config("demo", arms["cnn_xs"])["model"]["args"]["global_branch"] is False
    at_one_rate = demo_pair.arm_overrides("global", ("vmf_xs",), lr=4e-4)["vmf_xs"]
    assert load_config("demo", at_one_rate)["train"]["lr"] == 4e-4
    names = [path.name for path in demo_pair.report_files("_global_lr0.0004")]
    assert names == ["demo_pair_global_lr0.0004.json", "demo_pair_global_lr0.0004.md"]


def test_demo_pair_splits_the_cpu_cores_among_runs_at_once(demo_pair, tmp_path, monkeypatch):
    """`--jobs 2` on a 2-core CPU runs two one-thread runs, not two runs fighting over both
    cores; on a GPU, or one run at a time, the threads are left to torch."""
    launched = []
    monkeypatch.setattr(demo_pair.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(
        demo_pair.subprocess, "run", lambda command, check, env: launched.append(env)
    )
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for device, jobs in [("cpu", 2), ("cpu", 1), ("cuda", 8)]:
        demo_pair.run_seed("cnn", [], 0, tmp_path, device, jobs)
    assert [env.get("OMP_NUM_THREADS") for env in launched] == ["1", None, None]


def test_demo_pair_report_records_the_runs_device(demo_pair, tmp_path, monkeypatch):
    """A GPU report names the GPU, not the CPU that wrote it; a CPU report names the machine
    but not the report's own thread count (its runs are other processes, --jobs splits them)."""
    monkeypatch.setattr(demo_pair.study.torch.cuda, "get_device_name", lambda: "NVIDIA H200")
    on_gpu, _ = demo_pair.report("local", tmp_path, {"vmf_xxs": []}, device="cuda")
    on_cpu, _ = demo_pair.report("local", tmp_path, {"vmf_xxs": []})
    assert on_gpu["machine"] == "NVIDIA H200"
    assert "thread" not in on_cpu["machine"] and "torch" in on_cpu["machine"]


def test_the_committed_report_is_what_its_runs_give(study):
    """results/study.{json,md} follow from the runs they hold and the recorded tuning, as the
    study's command (README: `--arms vmf_xxs vmf_xxs_identity cnn x3d dualformer --other-seeds
    1`) summarises them: byte for byte."""
    results = SCRIPT.parent / "results"
    stored = json.loads((results / "study.json").read_text())
    recorded = study.recorded_tuning(results / "study_tuning_recorded.json")
    names = ("vmf_xxs", "vmf_xxs_identity", "cnn", "x3d", "dualformer")
    arms = {t: [a for a in every if a.name in names] for t, every in study.arms_by_task(1).items()}
    report = study.summarise(recorded + stored["runs"], arms)
    text = json.dumps({"report": report, "runs": stored["runs"]}, indent=1) + "\n"
    assert text == (results / "study.json").read_text()
    assert study.markdown(report) == (results / "study.md").read_text()
