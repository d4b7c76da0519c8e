"""The key pair of the study on the main job's recipe: VMF-XXS against its 3D-CNN alone widened
to equal multiply-adds, each trained and tested by `effvid demo` (all 2100 training videos of a
demo task, the demo recipe's schedule), seed by seed.

    python research/vmf_tokens/demo_pair.py [--task local|global] [--seeds 5] [--out DIR]
    python research/vmf_tokens/demo_pair.py --arms x3d --seeds 3   # X3D-XS at equal MACs
    python research/vmf_tokens/demo_pair.py --arms tsn vmf_xs --seeds 3   # per-frame, VMF-XS
    python research/vmf_tokens/demo_pair.py --arms cnn_xs --seeds 3   # CNN at VMF-XS's MACs
    python research/vmf_tokens/demo_pair.py --task global --arms vmf_xs cnn_xs --seeds 3 --jobs 2
    python research/vmf_tokens/demo_pair.py --task global --epochs 20 --seeds 1   # longer
    python research/vmf_tokens/demo_pair.py --task global --epochs 20 --seeds 5 --fresh-from 1
    python research/vmf_tokens/demo_pair.py --task global_relative --epochs 20   # relative
    python research/vmf_tokens/demo_pair.py --task global --epochs 20 --seeds 40 --device cuda \
        --jobs 8

Written down before the runs. Local task: both arms get the demo recipe unchanged and no tuning
(the study's local-task grid picked the same rate, 1.6e-3, for both), 6 test views. Global task:
the demo recipe with the study's global-task input (8 frames every 3rd, 64 px views of 80 px
frames, crops of 90-100% of the area) and each arm at the learning rate the study's grid and
rule picked for it on that task (research/vmf_tokens/results/study.json: VMF-XXS 4e-4, CNN 1.6e-3),
one test view (the 24-frame clip at 64 px: every other view would be the same pixels). Seed k
of both arms has the same initial generator state and the same clip order; the paired
difference VMF-XXS minus CNN alone (test top-1, 95% t-interval over seeds) decides the claim on
each task. The global task's relative version (`global_relative`, not in the 5-epoch study) runs
like the global task: its input, one view, and the rates the study picked on the global task.
X3D-XS (widths matched to VMF-XXS's MACs), the per-frame model (TSN) and VMF-XS, the study's
other arms, run the same way (on the local task the study's grid picked its top rate for each,
as for the pair; the reduced DualFormer, whose pick was the lowest rate, is not an arm here).
The key pair at the second size: VMF-XS against its CNN alone widened to VMF-XS's MACs
(`cnn_xs`, paired with VMF-XS; on the global task VMF-XS at its study-picked rate, `cnn_xs`,
never tuned, at the CNN alone's).
Resumable: a seed whose run folder holds metrics.json, or which the last report recorded (run
folders are not kept), is read, not run again. The report (every arm's finished seeds, VMF-XXS
minus each other arm paired over the seeds both have) goes to
research/vmf_tokens/results/demo_pair[_<task>][_e<epochs>].{md,json}. `--fresh-from K`: seeds 0..K-1
were run before the pair was decided on (a probe), so the report also pairs seeds K.. alone.
On a GPU (`--device cuda`, `--jobs N` runs at once) the report gets its own `_cuda` name: its
runs are not paired with the CPU's; so does a run of every arm at one rate (`--lr R`, `_lr<R>`),
a departure from the picks. On the CPU `--jobs N` splits the cores among N runs.
"""

import argparse
import dataclasses
import functools
import itertools
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import register  # noqa: F401  (the study's tasks, arms and remedies, before any recipe)
import relation_scenes
import study  # study.py, beside this script

from effvid.train.config import load_config

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ENTRY_POINT = HERE / "effvid_study.py"  # effvid's command line with the study's pieces
STUDY_REPORT = RESULTS / "study.json"
STUDY_TUNING_RECORDED = RESULTS / "study_tuning_recorded.json"
ARMS = ("vmf_xxs", "cnn", "x3d", "tsn", "vmf_xs", "cnn_xs")  # the key pair, X3D-XS, others
# Each arm is paired with VMF-XXS, but for the CNN alone at the second size, paired with VMF-XS.
PAIRED_WITH = {"cnn_xs": "vmf_xs"}
TUNED_AS = {"cnn_xs": "cnn"}  # an arm the study never tuned: the rate of its family's pick
_GLOBAL = study.TASKS["global"]
TASKS = {
    **study.TASKS,
    "global_relative": dataclasses.replace(
        _GLOBAL, name="global_relative", data={**_GLOBAL.data, "demo_task": "global_relative"}
    ),
}
TUNED_ON = {"local": "local", "global": "global", "global_relative": "global"}


def is_global(task: str) -> bool:
    """A task of cue-probe relations (relation_scenes): one view, three relations per class."""
    return TUNED_ON[task] == "global"


def _settings(section: str, values: dict) -> list[str]:
    return [f"{section}.{key}={json.dumps(value)}" for key, value in values.items()]


def task_overrides(task: str) -> list[str]:
    """`effvid demo` overrides that turn the demo recipe (the local task) into `task`'s runs:
    the study's input for that task and, on the global task, one test view."""
    recipe = load_config("demo")["data"]
    data = {k: v for k, v in TASKS[task].data.items() if k != "demo_videos"}
    changed = {key: value for key, value in data.items() if recipe[key] != value}
    views = {"clips": 1, "crops": 1} if is_global(task) else {}
    return _settings("data", changed) + _settings("eval", views)


@functools.cache
def study_rates(task: str) -> dict[str, float]:
    """The learning rate the study's grid and rule picked for each arm on `task` (for the
    relative global task: on the global task): from its report or, for VMF-XS (tuned in the
    study's first round of runs only), by the same rule from its recorded tuning runs; the CNN alone
    at VMF-XS's MACs, which the study never tuned, runs at the CNN alone's pick."""
    tuned_on = TUNED_ON[task]
    report = json.loads(STUDY_REPORT.read_text())["report"][tuned_on]
    rates = {row["arm"]: row["chosen_lr"] for row in report["tuning"]}
    recorded = study.recorded_tuning(STUDY_TUNING_RECORDED)
    for arm in {row["arm"] for row in recorded if row["task"] == tuned_on} - rates.keys():
        rates[arm] = study.chosen_lr(recorded, tuned_on, arm)
    return rates | {arm: rates[like] for arm, like in TUNED_AS.items() if like in rates}


def arms_of(task: str) -> tuple[str, ...]:
    """The arms that can run on `task`: on a global task, those the study picked a rate for."""
    if not is_global(task):
        return ARMS
    rates = study_rates(task)
    return tuple(arm for arm in ARMS if arm in rates)


def arm_overrides(
    task: str = "local",
    names: tuple[str, ...] = study.KEY_PAIR,
    epochs: int | None = None,
    lr: float | None = None,
) -> dict[str, list[str]]:
    """`effvid demo` overrides per arm of the study (`names`), each at VMF-XXS's MACs on
    `task`'s input as the study builds it; on the global task each at its study-picked rate;
    `epochs` replaces the recipe's schedule length, `lr` every arm's rate."""
    shape = TASKS[task].input_shape
    arms = {arm.name: arm for arm in [*study.study_arms(shape), study.cnn_at_vmf_xs(shape)]}
    rates = study_rates(task) if is_global(task) else {}
    runnable = arms_of(task)
    overrides = {}
    for name in names:
        if name not in runnable:
            raise SystemExit(f"demo_pair: the study picked no learning rate for {name} on {task}")
        arm = arms[name]
        model = [f"model.name={arm.model}"] if arm.model != "vmf_xxs" else []
        args = {k: v for k, v in arm.args.items() if (k, v) != ("token_identity", False)}
        rate = lr or rates.get(name)
        schedule = [f"train.epochs={epochs}"] if epochs else []
        overrides[name] = [
            *task_overrides(task), *model, *_settings("model.args", args),
            *([f"train.lr={rate}"] if rate else []), *schedule
        ]  # fmt: skip
    return overrides


def run_seed(
    arm: str, overrides: list[str], seed: int, out: Path, device: str = "cpu", jobs: int = 1
) -> None:
    """One `effvid demo` run (through `effvid_study.py`); on the CPU, with `jobs` runs at once,
    each gets its share of the cores as threads, so that the runs do not fight over all of
    them."""
    folder = out / arm / f"seed{seed}"
    if not (folder / "metrics.json").exists():
        command = [sys.executable, str(ENTRY_POINT), "demo", "--out", str(folder)]
        environment = dict(os.environ)
        if device == "cpu" and jobs > 1:
            environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
        subprocess.run(
            [*command, "--device", device, f"train.seed={seed}", *overrides],
            check=True,
            env=environment,
        )


# The global task's class is three relations of the probe to the cue (relation_scenes.FACTORS).
RELATIONS = dict(
    zip(relation_scenes.CLASSES, itertools.product(*relation_scenes.FACTORS), strict=True)
)
RELATION_NAMES = ("colour", "size", "height")


def measures(task: str, folder: Path) -> dict[str, float]:
    """A finished run's test top-1 and, on the global task, the test accuracy (%) of each of
    its three relations, read off the predicted class."""
    values = {"top1": json.loads((folder / "metrics.json").read_text())["top1"]}
    if is_global(task):
        rows = json.loads((folder / "test_predictions.json").read_text())
        for i, name in enumerate(RELATION_NAMES):
            hits = [RELATIONS[r["label"]][i] == RELATIONS[r["predicted"]][i] for r in rows]
            values[name] = 100 * sum(hits) / len(hits)
    return values


def finished(
    task: str, out: Path, arm: str, recorded: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """`measures` of `arm`'s finished seeds 0, 1, ... up to the first one missing; a seed whose
    run folder is gone is read from `recorded` (an earlier report's measures of this arm)."""
    recorded = recorded or {}
    runs = []
    while True:
        folder = out / arm / f"seed{len(runs)}"
        if (folder / "metrics.json").exists():
            runs.append(measures(task, folder))
        elif len(runs) < _recorded_seeds(recorded):
            runs.append({key: values[len(runs)] for key, values in recorded.items()})
        else:
            break
    return {key: [run[key] for run in runs] for key in (runs[0] if runs else {})}


def _recorded_seeds(recorded: dict[str, list[float]]) -> int:
    return min((len(values) for values in recorded.values()), default=0)


def seeds_to_run(seeds: int, recorded: dict[str, list[float]]) -> list[int]:
    """Of seeds 0..`seeds`-1, those an earlier report of the arm has not recorded."""
    return list(range(_recorded_seeds(recorded), seeds))


def paired(per_seed: list[float], first_seed: int = 0) -> dict:
    """The paired differences of seeds `first_seed`.. : per seed, mean, 95% half-width."""
    mean, half = study.t_interval(per_seed[first_seed:])
    return {"per_seed": per_seed[first_seed:], "mean": mean, "half_width": half}


def report(
    task: str,
    out: Path,
    arms: dict[str, list[str]],
    fresh_from: int = 0,
    earlier: dict[str, dict[str, list[float]]] | None = None,
    device: str = "cpu",
) -> tuple[dict, str]:
    """Every arm's measures over its finished seeds (those whose run folders are gone read from
    `earlier`, an earlier report's test_accuracy), and VMF-XXS minus each other arm in each
    measure, paired over the seeds both have (95% t-interval; the CNN alone at VMF-XS's
    MACs: VMF-XS minus it); with `fresh_from` K > 0 also over seeds K.. alone (those not
    chosen after a look at the earlier ones)."""
    earlier = earlier or {}
    results = {arm: finished(task, out, arm, earlier.get(arm)) for arm in arms}
    results = {arm: values for arm, values in results.items() if values}
    lines = ["| arm | test accuracy of | mean | sd | per seed |", "|---|---|---|---|---|"]
    for arm, by_measure in results.items():
        for measure, values in by_measure.items():
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            seeds = ", ".join(f"{v:.1f}" for v in values)
            lines.append(
                f"| {arm} | {measure} | {statistics.fmean(values):.1f} | {spread:.1f} | {seeds} |"
            )
    differences = {}
    for arm in results:
        reference = PAIRED_WITH.get(arm, "vmf_xxs")
        if arm == "vmf_xxs" or reference not in results:
            continue
        for measure, values in results[arm].items():
            pairs = list(zip(results[reference][measure], values, strict=False))
            if len(pairs) < 2:
                continue
            per_seed = [a - b for a, b in pairs]
            subsets = {"all": 0, "fresh": fresh_from} if fresh_from else {"all": 0}
            for subset, first in subsets.items():
                if len(per_seed) - first < 2:
                    continue
                difference = paired(per_seed, first) | {"from": reference}
                mean, half = difference["mean"], difference["half_width"]
                if subset == "all":
                    differences.setdefault(arm, {})[measure] = difference
                else:
                    differences[arm][measure]["fresh"] = difference | {"first_seed": first}
                seeds = f"seeds {first}-{len(per_seed) - 1}"
                lines.append(
                    f"\n{reference.upper().replace('_', '-')} minus {arm}, {measure}, "
                    f"paired over {seeds}: "
                    f"{mean:+.2f} points (95% CI {mean - half:+.2f} to {mean + half:+.2f})"
                )
    result = {
        "task": task,
        # the runs' threads are not the report's: one share of the cores per run at once
        "machine": study._machine(device, threads=False),
        "overrides": {arm: arms[arm] for arm in results},
        "test_accuracy": results,
        "difference": differences,
    }
    return result, "\n".join(lines) + "\n"


def report_files(suffix: str) -> tuple[Path, Path]:
    """The report's .json and .md for a run's name suffix (which may hold a dot: `_lr0.0004`)."""
    name = f"demo_pair{suffix}"
    return RESULTS / f"{name}.json", RESULTS / f"{name}.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="local")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(study.KEY_PAIR))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0.. to run for these arms")
    parser.add_argument("--epochs", type=int, help="another schedule length than the recipe's")
    parser.add_argument(
        "--lr", type=float, help="one learning rate for every arm, not the picked ones"
    )
    parser.add_argument("--out", type=Path, help="default: runs/demo_pair[_global]")
    parser.add_argument(
        "--fresh-from", type=int, default=0, help="also pair seeds from this one on alone"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at a time (2 on 2 cores, 8 on a GPU)"
    )
    args = parser.parse_args()
    suffix = (
        ("" if args.task == "local" else f"_{args.task}")
        + (f"_e{args.epochs}" if args.epochs else "")
        + (f"_lr{args.lr:g}" if args.lr else "")  # a departure from the picks: reported apart
        + ("_cuda" if args.device == "cuda" else "")  # never paired with the CPU's runs
    )
    out = args.out or Path(f"runs/demo_pair{suffix}")
    report_file, table_file = report_files(suffix)
    earlier = json.loads(report_file.read_text())["test_accuracy"] if report_file.exists() else {}
    arms = arm_overrides(args.task, tuple(args.arms), args.epochs, args.lr)
    to_run = {arm: seeds_to_run(args.seeds, earlier.get(arm, {})) for arm in arms}
    # seed by seed: an interrupted study is paired so far
    runs = [(arm, seed) for seed in range(args.seeds) for arm in arms if seed in to_run[arm]]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(
            pool.map(
                lambda run: run_seed(run[0], arms[run[0]], run[1], out, args.device, args.jobs),
                runs,
            )
        )
    every_arm = arm_overrides(args.task, arms_of(args.task), args.epochs, args.lr)
    result, table = report(args.task, out, every_arm, args.fresh_from, earlier, args.device)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report_file.write_text(json.dumps(result, indent=2) + "\n")
    table_file.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
