"""The VMF study: do Video Mobile-Former's global tokens buy accuracy at equal FLOPs?

    python research/vmf_tokens/study.py          # tune, train the final seeds, report
    python research/vmf_tokens/study.py --phase report   # the report from finished runs
    python research/vmf_tokens/study.py --device cuda --workers 8    # on a GPU

Everything below was fixed before the runs (ABLATIONS.md says why):

- Two tasks of the built-in demo data (real mp4 clips of handwritten digits), 8 frames a clip:
  `local`, ten time-ordered actions of two digits (`effvid make-demo-data`), 56 px crops of
  64 px frames; `global`, eight relations between a cue and a probe digit far apart in space
  and in time (`--task global`), 64 px views of 80 px frames, 24 frames sampled every third.
  Each trains on the first TRAIN_VIDEOS of its training split (classes balanced), tunes on its
  validation split (450 videos) and is tested once on its test split (450 videos, one view).
- Arms: VMF-XXS (3 tokens per clip) as the authors' blocks have it, and with `token_identity`
  (the remedy for collapsing tokens); its 3D-CNN alone (`global_branch=False`) widened to the
  same multiply-adds; X3D-XS and a reduced DualFormer scaled in width to the same multiply-adds;
  the image Mobile-Former 52M per frame (TSN average, no temporal modelling); VMF-XS.
- The same tuning budget and rule for every arm and task: AdamW, the learning rates in `LRS`,
  weight decay 0.05, one epoch of warm-up, EPOCHS epochs, seed 0; the learning rate with the
  highest final validation top-1 is kept (a tie goes to the smaller). The kept seed-0 run is the
  first of the final seeds, which then differ only by their seed.
- Paired seeds: a seed fixes the initial weights, the order of the training clips and their
  augmentation (drawn in the data-loading process), identical for every arm.
- The comparison that decides the claim, per task: VMF-XXS minus its 3D-CNN alone, the mean of
  the per-seed differences of test top-1 with its 95% t-interval over FINAL_SEEDS seeds.

Runs go to `--out`/<task>/<arm>/lr<lr>_seed<k>; a finished run (its result.json) is not run
again, and a stopped run continues from its last checkpoint: the study resumes where it stopped.
"""

import argparse
import functools
import json
import math
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import register  # noqa: F401  (the study's tasks, arms and remedies, before any recipe)
import torch
from study_trainer import StudyTrainer

from effvid.data import read_list_file
from effvid.data.frame_cache import build_frame_cache
from effvid.distributed import setup_distributed
from effvid.models import create_model
from effvid.models.flops import count_flops, count_params
from effvid.models.mobile_former import MOBILE_FORMER_CONFIGS, BlockSpec
from effvid.train import recipe_data
from effvid.train.config import load_config
from effvid.train.evaluate import evaluate_checkpoint

LRS = (1e-4, 4e-4, 1.6e-3)
EPOCHS = 5
TRAIN_VIDEOS = 1200
FINAL_SEEDS = 5  # the key pair and the remedy; the other arms get OTHER_SEEDS
OTHER_SEEDS = 3
DEMO_VIDEOS = 3000
KEY_PAIR = ("vmf_xxs", "cnn")  # the comparison that decides the claim
# Every paired comparison reported, first minus second (decided before the runs).
COMPARISONS = [
    KEY_PAIR,
    ("vmf_xxs_identity", "cnn"),
    ("vmf_xxs_identity", "vmf_xxs"),
    ("vmf_xxs", "x3d"),
    ("vmf_xxs", "dualformer"),
    ("vmf_xxs", "tsn"),
    ("vmf_xs", "vmf_xxs"),
]
DUALFORMER_DIMS, DUALFORMER_HEADS = (32, 64, 128, 256), (1, 2, 4, 8)  # reduced, before widening
# Relative cost of a run, to start the longest first (2 processes share the machine).
RUN_COST = {"vmf_xs": 4, "vmf_xxs": 2, "vmf_xxs_identity": 2}


@dataclass(frozen=True)
class Task:
    name: str
    label: str
    data: dict  # the recipe's data section for this task
    chance: float

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, 3, self.data["num_frames"], self.data["crop_size"], self.data["crop_size"])


_COMMON_DATA = {
    "format": "demo",
    "demo_videos": DEMO_VIDEOS,
    "num_frames": 8,
    "crop_aspect": [0.9, 1.1],
    "flip": True,
    "mean": [0.5] * 3,
    "std": [0.25] * 3,
    "workers": 1,
    "frame_cache": True,
}
TASKS = {
    "local": Task(
        "local",
        "local: actions of two digits",
        {
            **_COMMON_DATA,
            "demo_task": "local",
            "sampling_rate": 2,
            "crop_size": 56,
            "short_side": 64,
            "crop_area": [0.7, 1.0],
        },
        chance=10.0,
    ),
    "global": Task(
        "global",
        "global: relations far apart in space and time",
        {
            **_COMMON_DATA,
            "demo_task": "global",
            "sampling_rate": 3,
            "crop_size": 64,
            "short_side": 64,
            "crop_area": [0.9, 1.0],
        },
        chance=12.5,
    ),
}


# --- the arms ---------------------------------------------------------------------------------


def _flops(name: str, args: dict, shape: tuple[int, ...]) -> int:
    with torch.device("meta"):
        return count_flops(create_model(name, num_classes=10, **args), shape).total


def match_width(
    name: str, widened: Callable[[float], dict], target: int, shape: tuple[int, ...]
) -> tuple[float, dict]:
    """The width factor (steps of 0.01 from 0.3 to 1.6) whose model comes closest to `target`
    multiply-adds; a bisection, since the cost grows with the width."""
    factors = [0.3 + step / 100 for step in range(131)]
    low, high = 0, len(factors) - 1
    while high - low > 1:
        middle = (low + high) // 2
        if _flops(name, widened(factors[middle]), shape) < target:
            low = middle
        else:
            high = middle
    best = min((low, high), key=lambda i: abs(_flops(name, widened(factors[i]), shape) - target))
    return factors[best], widened(factors[best])


def _width(channels: int, factor: float, multiple: int = 1) -> int:
    return max(multiple, round(channels * factor / multiple) * multiple)


def widened_cnn(factor: float, table_name: str = "52m") -> dict:
    """A VMF's table (VMF-XXS's by default, Mobile-Former 52M) without its global branch, every
    conv width x factor."""
    table = MOBILE_FORMER_CONFIGS[table_name]
    lite = BlockSpec(*table["lite_block"])
    return {
        "global_branch": False,
        "stem_channels": _width(table["stem_channels"], factor),
        "lite_block": [lite.expansion, _width(lite.out_channels, factor), lite.stride],
        "blocks": [[e, _width(c, factor), s] for e, c, s in table["blocks"]],
    }


def widened_x3d(factor: float) -> dict:
    """X3D-XS with its stem and stage widths x factor (its depth, expansion and head kept)."""
    return {
        "stem_channels": _width(24, factor),
        "stage_channels": tuple(_width(c, factor) for c in (24, 48, 96, 192)),
    }


def reduced_dualformer(shape: tuple[int, ...]) -> Callable[[float], dict]:
    """A four-stage DualFormer for 8-frame clips of `shape`: patches of 2 x side/8 pixels give
    4 x 8 x 8 tokens, then 4x4x4, 4x2x2, 4x1x1; local windows then global attention in every
    stage (the grids are too small for the pooled pyramid); widths 32-256 x factor."""
    frames, side = shape[2], shape[-1]

    def widened(factor: float) -> dict:
        return {
            "video_size": (frames, side, side),
            "patch_size": (2, side // 8, side // 8),
            "embed_dims": tuple(
                _width(d, factor, heads)
                for d, heads in zip(DUALFORMER_DIMS, DUALFORMER_HEADS, strict=True)
            ),
            "num_heads": DUALFORMER_HEADS,
            "depths": (2, 2, 2, 2),
            "local_sizes": ((2, 4, 4),) * 4,
            "fine_pysizes": ((4, 8, 8), (4, 4, 4), (4, 2, 2), (4, 1, 1)),
        }

    return widened


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    model: str
    args: dict
    seeds: int


@functools.cache
def study_arms(shape: tuple[int, ...], other_seeds: int = OTHER_SEEDS) -> tuple[Arm, ...]:
    """The arms at a task's input `shape`, those of matched cost matched to VMF-XXS there;
    `other_seeds` final seeds for the arms outside the key pair and the remedy (a width search
    per matched arm: built once per input)."""
    target = _flops("vmf_xxs", {}, shape)
    cnn_factor, cnn = match_width("vmf_xxs", widened_cnn, target, shape)
    x3d_factor, x3d = match_width("x3d_xs", widened_x3d, target, shape)
    df_factor, dualformer = match_width("dualformer_t", reduced_dualformer(shape), target, shape)
    return (
        Arm(
            "vmf_xxs",
            "VMF-XXS (authors' blocks)",
            "vmf_xxs",
            {"token_identity": False},
            FINAL_SEEDS,
        ),
        Arm(
            "vmf_xxs_identity",
            "VMF-XXS, token identity",
            "vmf_xxs",
            {"token_identity": True},
            FINAL_SEEDS,
        ),
        Arm("cnn", f"its 3D-CNN alone, widths x{cnn_factor:.2f}", "vmf_xxs", cnn, FINAL_SEEDS),
        Arm("x3d", f"X3D-XS, widths x{x3d_factor:.2f}", "x3d_xs", x3d, other_seeds),
        Arm(
            "dualformer",
            f"DualFormer, reduced, widths x{df_factor:.2f}",
            "dualformer_t",
            dualformer,
            other_seeds,
        ),
        Arm("tsn", "Mobile-Former 52M per frame (TSN)", "tsn_mobileformer_52m", {}, other_seeds),
        Arm("vmf_xs", "VMF-XS (authors' blocks)", "vmf_xs", {"token_identity": False}, other_seeds),
    )


def arms_by_task(other_seeds: int = OTHER_SEEDS) -> dict[str, tuple[Arm, ...]]:
    """`study_arms` at each task's input."""
    return {task: study_arms(TASKS[task].input_shape, other_seeds) for task in TASKS}


@functools.cache
def cnn_at_vmf_xs(shape: tuple[int, ...]) -> Arm:
    """The key pair's CNN at the second VMF size: VMF-XS's table (Mobile-Former 96M) without its
    global branch, widened to VMF-XS's multiply-adds at `shape` (not an arm of this study; run
    by demo_pair.py)."""
    target = _flops("vmf_xs", {}, shape)
    factor, args = match_width("vmf_xs", lambda f: widened_cnn(f, "96m"), target, shape)
    label = f"VMF-XS's 3D-CNN alone, widths x{factor:.2f}"
    return Arm("cnn_xs", label, "vmf_xs", args, OTHER_SEEDS)


# --- the runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    task: str
    arm: Arm
    lr: float
    seed: int
    out: Path
    data: dict  # resolved: list files of the generated dataset, the training subset
    device: str
    threads: int
    epochs: int = EPOCHS

    @property
    def run_dir(self) -> Path:
        return self.out / self.task / self.arm.name / f"lr{self.lr:g}_seed{self.seed}"

    def config(self) -> dict:
        return load_config(
            {
                "model": {"name": self.arm.model, "args": self.arm.args},
                "data": self.data,
                "train": {
                    "epochs": self.epochs,
                    "batch_size": 16,
                    "lr": self.lr,
                    "weight_decay": 0.05,
                    "warmup_epochs": 1,
                    "min_lr": self.lr / 100,
                    "seed": self.seed,
                },
                "eval": {"clips": 1, "crops": 1, "every": 1},
                "output": {"dir": str(self.run_dir)},
            }
        )


def run_job(job: Job) -> dict:
    """Train and test one arm, learning rate and seed (or read the result of an earlier run)."""
    result_file = job.run_dir / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    torch.set_num_threads(job.threads)
    config = job.config()
    start = time.perf_counter()
    trainer = StudyTrainer(config, setup_distributed(job.device), progress=False)
    history = trainer.fit()
    train_seconds = time.perf_counter() - start
    test = evaluate_checkpoint(config, job.run_dir / "last.pth", split="test", progress=False)
    shape = TASKS[job.task].input_shape
    correct = (test.scores.argmax(dim=1) == test.labels).tolist()
    result = {
        "task": job.task,
        "arm": job.arm.name,
        "label": job.arm.label,
        "model": job.arm.model,
        "args": job.arm.args,
        "lr": job.lr,
        "seed": job.seed,
        "epochs": job.epochs,
        "input": list(shape[1:]),
        "mflops_per_view": count_flops(trainer.model.cpu(), shape).total / 1e6,
        "params_m": count_params(trainer.model) / 1e6,
        "val_top1": history[-1]["val_top1"],
        "val_curve": [row.get("val_top1") for row in history],
        "test_top1": test.metrics()["top1"],
        "test_correct": dict(zip(test.video_ids, correct, strict=True)),
        "token_cosine": [row.get("token_cosine") for row in history],
        "attention_correlation": [row.get("attention_correlation") for row in history],
        "train_seconds": round(train_seconds, 1),
        "machine": _machine(job.device),
    }
    result_file.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _machine(device: str, threads: bool = True) -> str:
    """The device, and on the CPU this process's threads (`threads`) and torch's version."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    from effvid.deploy.benchmark import fingerprint

    info = fingerprint(device, torch.get_num_threads())
    used = f", {info['threads']} thread(s)" if threads else ""
    return f"{info['machine']}{used}, torch {info['torch']}"


def prepare_data(out: Path, progress: bool = True) -> dict[str, dict]:
    """Per task: the generated dataset as list files, the training subset, and the frame caches
    built before any run starts (runs in parallel must not build the same cache)."""
    resolved = {}
    for name, task in TASKS.items():
        data = recipe_data.demo_data_section(load_config({"data": task.data})["data"], progress)
        lines = Path(data["train"]).read_text().splitlines()[:TRAIN_VIDEOS]
        subset = out / name / f"train_{TRAIN_VIDEOS}.txt"
        subset.parent.mkdir(parents=True, exist_ok=True)
        subset.write_text("\n".join(lines) + "\n")
        data["train"] = str(subset)
        classes = (Path(data["root"]) / "classes.txt").read_text().split()
        cache_root = Path(os.environ.get("EFFVID_CACHE_DIR") or Path.home() / ".cache/effvid")
        for split in ("train", "val", "test"):
            videos = read_list_file(data[split], data["root"], classes=classes)
            build_frame_cache(videos, cache_root, progress=progress)
        resolved[name] = data
    return resolved


def _priority(job: Job) -> tuple:
    """The key pair first, then the remedy, then the other arms (if the study is cut short, the
    comparisons that decide are the ones finished); within each, the longest runs first."""
    group = 0 if job.arm.name in KEY_PAIR else 1 if job.arm.seeds == FINAL_SEEDS else 2
    return (group, -RUN_COST.get(job.arm.name, 1) * (1 + (job.task == "global")))


def run_all(jobs: list[Job], workers: int) -> list[dict]:
    """Run `jobs` in `workers` processes (a fresh one per run: each sets its own threads and
    starts its own data-loading process), the longest arms first."""
    if not jobs:
        return []
    jobs = sorted(jobs, key=_priority)
    start, results = time.perf_counter(), []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        for future in as_completed([pool.submit(run_job, job) for job in jobs]):
            result = future.result()
            results.append(result)
            elapsed = time.perf_counter() - start
            print(
                f"[{len(results)}/{len(jobs)} in {elapsed / 60:.0f} min] {result['task']} "
                f"{result['arm']} lr {result['lr']:g} seed {result['seed']}: val "
                f"{result['val_top1']:.1f} test {result['test_top1']:.1f}",
                flush=True,
            )
    return results


def _tuning_runs(results: list[dict], task: str, arm: str) -> list[dict]:
    """The seed-0 runs of an arm; where tuning was recorded (`--tuning-recorded`), the record."""
    tuned = [r for r in results if r["task"] == task and r["arm"] == arm and r["seed"] == 0]
    return [r for r in tuned if r.get("recorded")] or tuned


def chosen_lr(results: list[dict], task: str, arm: str) -> float:
    """The rule: highest final validation top-1 of the seed-0 tuning runs; ties: smaller lr."""
    tuned = _tuning_runs(results, task, arm)
    return max(sorted(tuned, key=lambda r: r["lr"]), key=lambda r: r["val_top1"])["lr"]


def recorded_tuning(path: Path) -> list[dict]:
    """Tuning results recorded from runs whose folders are gone (`--tuning-recorded`)."""
    return [{**row, "recorded": True} for row in json.loads(path.read_text())["runs"]]


def _key(run: "Job | dict") -> tuple:
    """(task, arm, lr, seed) of a job or a result."""
    if isinstance(run, Job):
        return (run.task, run.arm.name, run.lr, run.seed)
    return (run["task"], run["arm"], run["lr"], run["seed"])


# --- the report -------------------------------------------------------------------------------


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of the t confidence interval of the mean."""
    from scipy.stats import t

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.inf
    half = t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, half


def summarise(results: list[dict], arms: dict[str, tuple[Arm, ...]]) -> dict:
    """Per task: the tuning table, every arm's final seeds, and the paired differences."""
    report = {}
    for task in TASKS:
        rows, tuning = [], []
        for arm in arms[task]:
            runs = [r for r in results if r["task"] == task and r["arm"] == arm.name]
            if not runs:
                continue
            lr = chosen_lr(results, task, arm.name)
            tuning.append(
                {
                    "arm": arm.name,
                    "val_top1": {
                        f"{r['lr']:g}": r["val_top1"] for r in _tuning_runs(results, task, arm.name)
                    },
                    "chosen_lr": lr,
                }
            )
            trained = [r for r in runs if r["lr"] == lr and not r.get("recorded")]
            final = sorted(trained, key=lambda r: r["seed"])
            if any(r.get("recorded") for r in runs):
                tuning[-1]["rerun_val_top1"] = final[0]["val_top1"] if final else None
            top1 = [r["test_top1"] for r in final]
            rows.append(
                {
                    "arm": arm.name,
                    "label": arm.label,
                    "lr": lr,
                    "seeds": [r["seed"] for r in final],
                    "test_top1": top1,
                    "mean": statistics.fmean(top1),
                    "std": statistics.stdev(top1) if len(top1) > 1 else 0.0,
                    "mflops_per_view": final[0]["mflops_per_view"],
                    "params_m": final[0]["params_m"],
                    "train_seconds": statistics.fmean(r["train_seconds"] for r in final),
                    "val_last_gain": statistics.fmean(
                        r["val_curve"][-1] - r["val_curve"][-2] for r in final
                    ),
                    "token_cosine": final[0]["token_cosine"][-1],
                    "attention_correlation": final[0]["attention_correlation"][-1],
                }
            )
        report[task] = {"tuning": tuning, "arms": rows, "paired": _paired(rows)}
    return report


def _paired(rows: list[dict]) -> list[dict]:
    """The pre-registered comparisons (`COMPARISONS`), seed by seed, with 95% t-intervals."""
    by_arm = {row["arm"]: row for row in rows}
    comparisons = []
    for first, second in COMPARISONS:
        if first not in by_arm or second not in by_arm:
            continue
        a, b = by_arm[first], by_arm[second]
        seeds = sorted(set(a["seeds"]) & set(b["seeds"]))
        differences = [
            a["test_top1"][a["seeds"].index(s)] - b["test_top1"][b["seeds"].index(s)] for s in seeds
        ]
        mean, half = t_interval(differences)
        comparisons.append(
            {
                "first": first,
                "second": second,
                "seeds": seeds,
                "differences": differences,
                "mean": mean,
                "half_width": half,
                "decides_claim": (first, second) == KEY_PAIR,
            }
        )
    return comparisons


def markdown(report: dict) -> str:
    lines = []
    for task, part in report.items():
        lines += [
            f"### Task `{task}`: {TASKS[task].label} (chance {TASKS[task].chance:g}%)",
            "",
            "| arm | model | lr | MFLOPs/view | params (M) | test top-1 %, mean ± std | "
            "per seed | last-epoch val gain | token cosine | attention corr. | train s/run |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in part["arms"]:
            seeds = ", ".join(f"{v:.1f}" for v in row["test_top1"])
            tokens = (
                f"{row['token_cosine']:.2f} | {row['attention_correlation']:.2f}"
                if row["token_cosine"] is not None
                else "- | -"
            )
            lines.append(
                f"| {row['arm']} | {row['label']} | {row['lr']:g} | "
                f"{row['mflops_per_view']:.1f} | {row['params_m']:.2f} | "
                f"{row['mean']:.1f} ± {row['std']:.1f} | {seeds} | "
                f"{row['val_last_gain']:+.1f} | {tokens} | {row['train_seconds']:.0f} |"
            )
        lines += [
            "",
            "Paired differences of test top-1 (first minus second, same seeds):",
            "",
            "| first | second | seeds | per seed | mean | 95% interval |",
            "|---|---|---|---|---|---|",
        ]
        for c in part["paired"]:
            per_seed = ", ".join(f"{d:+.1f}" for d in c["differences"])
            mark = " (decides the claim)" if c["decides_claim"] else ""
            lines.append(
                f"| {c['first']}{mark} | {c['second']} | {len(c['seeds'])} | {per_seed} | "
                f"{c['mean']:+.1f} | {c['mean'] - c['half_width']:+.1f} to "
                f"{c['mean'] + c['half_width']:+.1f} |"
            )
        lines += [
            "",
            "Tuning (seed 0, final validation top-1 per learning rate):",
            "",
            "| arm | " + " | ".join(f"lr {lr:g}" for lr in LRS) + " | kept | kept lr run again |",
            "|---|" + "---|" * (len(LRS) + 2),
        ]
        for row in part["tuning"]:
            values = " | ".join(f"{row['val_top1'].get(f'{lr:g}', float('nan')):.1f}" for lr in LRS)
            rerun = row.get("rerun_val_top1")
            again = "-" if rerun is None else f"{rerun:.1f}"
            lines.append(f"| {row['arm']} | {values} | {row['chosen_lr']:g} | {again} |")
        lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Accuracy vs multiply-adds per view, one panel per task, mean ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, len(report), figsize=(6 * len(report), 5), squeeze=False)
    for axes, (task, part) in zip(panels[0], report.items(), strict=True):
        for row, marker in zip(part["arms"], "*os^DvP", strict=False):
            axes.errorbar(
                row["mflops_per_view"],
                row["mean"],
                yerr=row["std"],
                fmt=marker,
                markersize=12 if marker == "*" else 8,
                capsize=3,
                label=row["label"],
            )
        axes.axhline(TASKS[task].chance, color="gray", linestyle=":", label="chance")
        axes.set_xscale("log")
        axes.set_xlabel("MFLOPs (multiply-adds) per view, log scale")
        axes.set_ylabel("test top-1 (%), mean ± std over seeds")
        axes.set_title(TASKS[task].label, fontsize=10)
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["all", "tune", "final", "report"], default="all")
    parser.add_argument("--out", type=Path, default=Path("runs/study"))
    parser.add_argument("--report", type=Path, default=Path(__file__).parent / "results/study")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--arms", nargs="+", help="only these arms (default: all)")
    parser.add_argument(
        "--tuning-recorded",
        type=Path,
        help="a JSON of seed-0 validation top-1 values recorded from earlier tuning runs whose "
        "folders are gone: those tuning runs are not run again, and the seed-0 run at the kept "
        "learning rate becomes a final run (its validation top-1 checks the record)",
    )
    parser.add_argument(
        "--other-seeds",
        type=int,
        default=OTHER_SEEDS,
        help="seeds of the arms outside the key pair and the remedy",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    data = prepare_data(args.out)
    arms = arms_by_task(args.other_seeds)
    if args.arms:
        arms = {t: [arm for arm in every if arm.name in args.arms] for t, every in arms.items()}
    threads = 1 if args.device == "cuda" else max(1, (os.cpu_count() or 1) // args.workers)
    results = []
    if args.phase in ("all", "tune", "final", "report"):
        tuning = [
            Job(t, arm, lr, 0, args.out, data[t], args.device, threads)
            for t in args.tasks
            for arm in arms[t]
            for lr in LRS
        ]
        recorded = recorded_tuning(args.tuning_recorded) if args.tuning_recorded else []
        recorded_keys = {_key(r) for r in recorded}
        tuning = [j for j in tuning if _key(j) not in recorded_keys]
        done = [j for j in tuning if (j.run_dir / "result.json").exists()]
        todo = tuning if args.phase in ("all", "tune") else done
        results = recorded + run_all(todo, args.workers)
    if args.phase in ("all", "final", "report"):
        finals = []
        for t in args.tasks:
            for arm in arms[t]:
                if not any(r["task"] == t and r["arm"] == arm.name for r in results):
                    continue
                lr = chosen_lr(results, t, arm.name)
                # seed 0 at the kept rate is its tuning run, unless only its record is left
                first = 0 if (t, arm.name, lr, 0) in recorded_keys else 1
                finals += [
                    Job(t, arm, lr, seed, args.out, data[t], args.device, threads)
                    for seed in range(first, arm.seeds)
                ]
        if args.phase == "report":
            finals = [j for j in finals if (j.run_dir / "result.json").exists()]
        results += run_all(finals, args.workers)
    report = summarise(results, arms)
    results = [r for r in results if not r.get("recorded")]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.with_suffix(".json").write_text(
        json.dumps({"report": report, "runs": results}, indent=1) + "\n"
    )
    text = markdown(report)
    args.report.with_suffix(".md").write_text(text)
    plot(report, args.report.with_suffix(".png"))
    print(text)
    print(f"study: {len(results)} runs, {(time.perf_counter() - start) / 60:.1f} min wall")


if __name__ == "__main__":
    main()
