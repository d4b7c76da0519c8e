"""Data pipeline throughput on one core: decoding dense clips, transforms, and the whole dataset.

    python benchmarks/data_throughput.py [--videos 4] [--repeats 5] [--workers 2]

Writes 10-second 320x240 30 fps H.264 videos (x264 defaults, a keyframe at most every 250 frames,
and a variant with one every 30) to a temporary folder, then measures, single-threaded:

- dense 8x8 clips (8 frames, 8 apart, a random start) read with seeking (`VideoReader.read`),
  against decoding every frame of the video and keeping 8 (what a naive loader does);
- the training transform (short-side jitter 256-320, random 224 crop, flip, RandAugment,
  normalise) and the test transform (short side 224, normalise, 3 crops) on decoded clips;
- `VideoDataset` items (decode + transform), and a DataLoader with `--workers` processes.

Every figure is the median of `--repeats` runs: the machine is shared and noisy. Prints a markdown
report (machine, versions, tables) for `benchmarks/DATA_RESULTS.md`.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

from effvid.data import (
    DenseSampler,
    EvalTransform,
    RandAugment,
    TrainTransform,
    VideoDataset,
    VideoList,
    VideoReader,
    VideoRecord,
    crop_view,
    write_video,
)

NUM_FRAMES, SAMPLING_RATE = 8, 8
SECONDS, FPS, HEIGHT, WIDTH = 10, 30, 240, 320


def moving_scene(seed: int) -> np.ndarray:
    """uint8 (300, 240, 320, 3): textured shapes drifting over a gradient, with sensor noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    frames = np.empty((SECONDS * FPS, HEIGHT, WIDTH, 3), dtype=np.uint8)
    phase = rng.uniform(0, 6, size=3)
    for t in range(len(frames)):
        shift = 2.0 * t
        rows = 90 * np.cos((ys - shift / 2) / 23)
        pattern = [128 + np.sin((xs + shift) / (17 + 5 * c) + phase[c]) * rows for c in range(3)]
        frame = np.stack(pattern, -1) + rng.normal(0, 6, size=(HEIGHT, WIDTH, 1))
        frames[t] = np.clip(frame, 0, 255)
    return frames


def write_videos(folder: Path, count: int, keyframe_interval: int | None) -> list[Path]:
    options = {"x264-params": f"keyint={keyframe_interval}"} if keyframe_interval else {}
    paths = []
    for index in range(count):
        path = folder / f"video{index}_gop{keyframe_interval or 'default'}.mp4"
        write_video(path, moving_scene(index), fps=FPS, options=options)
        paths.append(path)
    return paths


def dense_clip(num_video_frames: int, rng: np.random.Generator) -> list[int]:
    sampler = DenseSampler(num_frames=NUM_FRAMES, sampling_rate=SAMPLING_RATE)
    generator = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    return sampler.frame_indices(num_video_frames, generator=generator)


def read_with_seeking(path: Path, indices: list[int]) -> int:
    with VideoReader(path) as video:
        video.read(indices)
        return video.decoded_frames


def read_everything(path: Path, indices: list[int], *, convert_all: bool = True) -> int:
    """The naive way: decode every frame (converting each to RGB, or only the wanted ones)."""
    wanted = set(indices)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        frames = [
            frame.to_ndarray(format="rgb24") if convert_all or number in wanted else None
            for number, frame in enumerate(container.decode(stream))
        ]
    np.stack([frames[min(i, len(frames) - 1)] for i in indices])
    return len(frames)


def median_rates(runs: dict[str, Callable[[], int]], repeats: int) -> dict[str, float]:
    """Median items per second of each run; the runs take turns, so that a burst of load from
    another process slows all of them rather than one."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            items = run()
            rates[name].append(items / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def measure_decoding(paths: list[Path], clips: int, repeats: int) -> list[str]:
    readers = {
        "seek + decode forward (effvid)": read_with_seeking,
        "decode all, RGB for all": read_everything,
        "decode all, RGB for the 8": partial(read_everything, convert_all=False),
    }
    decoded: dict[str, list[int]] = {name: [] for name in readers}

    def clips_read_by(name: str) -> Callable[[], int]:
        def run() -> int:
            rng = np.random.default_rng(0)
            for clip in range(clips):
                path = paths[clip % len(paths)]
                decoded[name].append(readers[name](path, dense_clip(SECONDS * FPS, rng)))
            return clips

        return run

    rates = median_rates({name: clips_read_by(name) for name in readers}, repeats)
    return [
        f"| {name} | {rates[name]:.1f} | {statistics.mean(decoded[name]):.0f} |" for name in readers
    ]


def measure_transforms(path: Path, clips: int, repeats: int) -> list[str]:
    with VideoReader(path) as video:
        frames = video.read(range(0, 64, SAMPLING_RATE)).frames  # (8, 240, 320, 3)
    test = EvalTransform(short_side=224)

    def three_crops(frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        clip, label = test(frames, label)
        return torch.stack([crop_view(clip, 224, view, 3) for view in range(3)]), label

    transforms = {
        "train: scale jitter, crop 224, flip, normalise": TrainTransform(
            crop_size=224, scale_jitter=(256, 320)
        ),
        "train: + RandAugment (2 ops, magnitude 9)": TrainTransform(
            crop_size=224, scale_jitter=(256, 320), randaugment=RandAugment()
        ),
        "test: short side 224, normalise, 3 crops": three_crops,
    }

    def clips_through(transform: Callable) -> Callable[[], int]:
        def run() -> int:
            for _ in range(clips):
                transform(frames, 0)
            return clips

        return run

    rates = median_rates({name: clips_through(t) for name, t in transforms.items()}, repeats)
    return [f"| {name} | {rate:.1f} |" for name, rate in rates.items()]


def measure_dataset(paths: list[Path], clips: int, repeats: int, workers: int) -> list[str]:
    videos = VideoList([VideoRecord(p, 0, p.stem) for p in paths], ["scene"], "benchmark")
    transform = TrainTransform(crop_size=224, scale_jitter=(256, 320), randaugment=RandAugment())
    sampler = DenseSampler(num_frames=NUM_FRAMES, sampling_rate=SAMPLING_RATE)
    dataset = VideoDataset(videos, sampler=sampler, transform=transform)

    def one_process() -> int:
        for index in range(clips):
            dataset[index % len(dataset)]
        return clips

    repeated = torch.utils.data.ConcatDataset([dataset] * (4 * clips // len(dataset) + 1))

    def loader_rate() -> float:
        batches = iter(DataLoader(repeated, batch_size=8, num_workers=workers, shuffle=True))
        next(batches)  # the workers' start-up is not throughput
        start = time.perf_counter()
        count = sum(len(batch[1]) for batch in batches)
        return count / (time.perf_counter() - start)

    single = median_rates({"one process": one_process}, repeats)["one process"]
    parallel = statistics.median(loader_rate() for _ in range(max(1, repeats // 2)))
    return [
        f"| VideoDataset item (decode + train transform), 1 process | {single:.1f} |",
        f"| DataLoader, {workers} worker processes, batch 8 (after start-up) | {parallel:.1f} |",
    ]


def machine_report() -> list[str]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; load average at start: {load}",
        f"- torch threads: {torch.get_num_threads()}; decoder threads: 1 (VideoReader's setting)",
        f"- Python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__} "
        f"(FFmpeg {av.ffmpeg_version_info}), numpy {np.__version__}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--clips", type=int, default=40, help="clips per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = ["## Machine", "", *machine_report(), ""]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        by_gop = {gop: write_videos(Path(folder), args.videos, gop) for gop in (None, 30)}
        print(f"wrote test videos in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        for gop, paths in by_gop.items():
            label = "x264 defaults (keyframe every <= 250 frames)" if gop is None else "GOP 30"
            report += [
                f"## Dense {NUM_FRAMES}x{SAMPLING_RATE} clips, 10 s 320x240 videos, {label}",
                "",
                "| method | clips/s (1 core) | frames decoded per clip |",
                "|---|---|---|",
                *measure_decoding(paths, args.clips, args.repeats),
                "",
            ]
        report += [
            "## Transforms on a decoded 8x240x320 clip",
            "",
            "| transform | clips/s (1 core) |",
            "|---|---|",
            *measure_transforms(by_gop[None][0], args.clips, args.repeats),
            "",
            "## Whole pipeline (x264-default videos, 8x8 clips, train transform with RandAugment)",
            "",
            "| setting | clips/s |",
            "|---|---|",
            *measure_dataset(by_gop[None], args.clips, args.repeats, args.workers),
        ]
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
