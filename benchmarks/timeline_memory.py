"""Peak memory of `effvid predict --timeline` against the length of the video: it should not grow.

    python benchmarks/timeline_memory.py [--minutes 5 20 60] [--fps 8] [--workers 2]

The videos are made here with PyAV: 64x64 H.264 at `--fps` frames per second (8 by default:
a 2-second window then holds 16 frames, enough for the clip of 8 frames every 2nd, so the
window and stride logic runs as on any video), a bright square moving over a gradient. The
model is a VMF-XXS with random weights and the preprocessing of the demo recipe's clips (8
frames every 2nd, 56 px crops of frames with a 64 px short side). Each video is labelled by
`effvid predict VIDEO --timeline` (2-second windows every second, the defaults) in a process of
its own, one after another, with `--workers` decoding processes.

Two figures per run: the peak resident set of the largest process (the `effvid` process or one
of its decoding workers; exact, from `wait4`), and the peak of the summed proportional set
size of the whole process tree (sampled every 0.1 s from /proc/PID/smaps_rollup: pages shared
after the fork counted once). Writes benchmarks/results/timeline_memory.{json,md}.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from effvid.data import Preprocessing
from effvid.data.encoding import write_video
from effvid.deploy.benchmark import fingerprint
from effvid.inference.prediction_files import read_records
from effvid.models import create_model

# The demo recipe's clips, as benchmarks/collection_throughput.py measures them.
PREPROCESSING = Preprocessing(
    num_frames=8, sampling_rate=2, crop_size=56, short_side=64, mean=(0.5,) * 3, std=(0.25,) * 3
).as_dict()
CLASSES = [f"action {i}" for i in range(10)]
SIZE = 64
RESULTS = Path(__file__).parent / "results"


def moving_square(minutes: float, fps: int) -> Iterator[np.ndarray]:
    """`minutes` of 64x64 RGB frames at `fps`: a bright square moving over a gradient."""
    ramp = np.linspace(0, 160, SIZE, dtype=np.uint8)
    background = np.stack([np.tile(ramp, (SIZE, 1))] * 3, axis=-1)
    for index in range(round(minutes * 60 * fps)):
        image = background.copy()
        x, y = (index * 3) % (SIZE - 12), (index * 5) % (SIZE - 12)
        image[y : y + 12, x : x + 12] = 255
        yield image


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(pid: int) -> int:
    """The summed proportional set size of `pid` and all its descendants."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += _pss_kb(current)
        pending += _children(current)
    return total


def measure(command: list[str]) -> dict:
    """Run `command` to its end: its exit status, seconds, the largest process's peak RSS and
    the process tree's peak PSS (MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_pss_kb(process.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    errors = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{errors[-3000:]}")
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "peak_tree_pss_mib": round(peak[0] / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 20, 60])
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "vmf_xxs.pth"
        model = create_model("vmf_xxs", num_classes=len(CLASSES))
        torch.save(
            {"model": model.state_dict(), "model_name": "vmf_xxs", "model_args": {},
             "class_names": CLASSES, "preprocessing": PREPROCESSING},
            checkpoint,
        )  # fmt: skip
        for minutes in args.minutes:
            video = Path(folder) / f"{minutes:g}min.mp4"
            write_video(video, moving_square(minutes, args.fps), fps=args.fps,
                        options={"preset": "ultrafast"})  # fmt: skip
            frames = round(minutes * 60 * args.fps)
            output = Path(folder) / f"{minutes:g}min.jsonl"
            command = [sys.executable, "-m", "effvid.cli", "predict", str(video),
                       "--checkpoint", str(checkpoint), "--timeline", "--output", str(output),
                       "--workers", str(args.workers), "--device", "cpu"]  # fmt: skip
            result = measure(command)
            windows = sum(len(record["timeline"]) for record in read_records(output))
            rows.append({"minutes": minutes, "frames": frames, "windows": windows, **result})
            print(rows[-1], flush=True)
    first, last = rows[0], rows[-1]
    summary = {
        key: round(last[key] / first[key], 3) for key in ("peak_rss_mib", "peak_tree_pss_mib")
    }
    report = {
        "command": "python benchmarks/timeline_memory.py " + " ".join(sys.argv[1:]),
        "environment": fingerprint("cpu", args.threads),
        "fps": args.fps,
        "workers": args.workers,
        "preprocessing": PREPROCESSING,
        "runs": rows,
        f"ratio {last['minutes']:g} / {first['minutes']:g} min": summary,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "timeline_memory.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.output / "timeline_memory.md").write_text(_markdown(report))
    print(_markdown(report))


def _markdown(report: dict) -> str:
    environment = report["environment"]
    lines = [
        f"`{report['command'].strip()}`; {environment['machine']}, torch {environment['torch']}, "
        f"{environment['date']}; {report['fps']} fps, {report['workers']} decoding workers",
        "",
        "| minutes | frames | windows | seconds | peak RSS, largest process (MiB) "
        "| peak PSS, process tree (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["runs"]:
        lines.append(
            f"| {row['minutes']:g} | {row['frames']} | {row['windows']} | {row['seconds']} "
            f"| {row['peak_rss_mib']} | {row['peak_tree_pss_mib']} |"
        )
    ratio = next(value for key, value in report.items() if key.startswith("ratio"))
    key = next(key for key in report if key.startswith("ratio"))
    lines += [
        "",
        f"{key}: peak RSS x{ratio['peak_rss_mib']}, peak PSS x{ratio['peak_tree_pss_mib']} "
        "(goal: flat within 10%, at most x1.1).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
