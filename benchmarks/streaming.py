"""Live video: what a new frame costs when streaming, against recomputing a sliding clip, and
how accurate the streaming model is on the demo test videos.

    python benchmarks/streaming.py speed [--threads 2] [--rounds 30]
    python benchmarks/streaming.py accuracy CAUSAL_RUN CLIP_RUN [--window N]

`speed`: for vmf_xxs and vmf_xs at their model card's frame size, batch 1: the causal model's
streaming step on one new frame (its state carried), against the card's model on the last 8
frames, recomputed for every new frame; eager PyTorch (BatchNorms folded) and ONNX Runtime (the
exported step with its state as inputs, against the exported clip model). Interleaved rounds in
one process; then each candidate's peak memory growth on its own (Linux VmHWM), and the size of
the streaming state.

`accuracy`: CAUSAL_RUN and CLIP_RUN are demo run folders (`effvid demo --out ...`, the first with
`model.args.causal=true`). Every demo test video is streamed frame by frame (every `sampling
rate`-th frame, as `effvid stream` does) through the causal model; the label after its last
frame is compared with the truth, and with the clip model's multi-view label (2 clips x 3
crops, the demo's test protocol). Also: after how many model frames the label settles (stays
the same to the end).
"""

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

import effvid
from effvid.deploy.benchmark import PeakMemory, fingerprint, interleaved_times
from effvid.deploy.onnx_export import export_onnx
from effvid.deploy.stream_export import export_stream_step
from effvid.inference.exported_files import ExportedStep
from effvid.inference.onnx_runtime import OnnxRunner
from effvid.models.fusion import fold_batchnorm

MODELS = ["vmf_xxs", "vmf_xs"]


def _speed_candidates(folder: Path, threads: int) -> dict:
    calls, states = {}, {}
    for name in MODELS:
        card = effvid.get_model_card(name)
        size, frames = card.input_size, card.num_frames
        frame = torch.randn(1, 3, 1, size, size)
        clip = torch.randn(1, 3, frames, size, size)
        causal = effvid.create_model(name, causal=True).eval()
        causal = fold_batchnorm(causal, frame)
        state = causal.init_stream(1)
        with torch.inference_mode():
            causal.stream_step(clip, state)  # a stream already under way
        states[name] = state.numel() * 4 / 2**20

        def stream(model=causal, state=state, frame=frame):
            with torch.inference_mode():
                model.stream_step(frame, state)

        clip_model = fold_batchnorm(effvid.create_model(name).eval(), clip)

        def recompute(model=clip_model, clip=clip):
            with torch.inference_mode():
                model(clip)

        calls[(name, "eager", "stream one frame")] = stream
        calls[(name, "eager", "recompute 8-frame clip")] = recompute
        step = export_stream_step(causal, folder / f"{name}_step.onnx", frame_size=size)
        stream_onnx = OnnxStreamCall(ExportedStep(step.path, threads=threads), frame.numpy())
        clip_file = export_onnx(
            clip_model, folder / f"{name}.onnx", clip.shape, dynamic_batch=False
        )
        clip_runner = OnnxRunner(clip_file, threads=threads)
        calls[(name, "ORT", "stream one frame")] = stream_onnx
        array = clip.numpy()
        calls[(name, "ORT", "recompute 8-frame clip")] = lambda r=clip_runner, a=array: r(a)
    return calls, states


class OnnxStreamCall:
    """One new frame through an exported streaming step, its state carried between calls."""

    def __init__(self, stream: ExportedStep, frame) -> None:
        self.stream, self.frame = stream, frame
        self.state = stream.init_state()

    def __call__(self) -> None:
        self.state = self.stream(self.frame, self.state)[1]


def speed(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        calls, states = _speed_candidates(Path(folder), args.threads)
        times = interleaved_times(calls, args.rounds, warmup=3)
        memory = {}
        for key, call in calls.items():
            meter = PeakMemory("cpu")
            meter.start()
            for _ in range(5):
                call()
            memory[key] = meter.peak_mb()
    environment = fingerprint("cpu", args.threads)
    print(
        f"`python benchmarks/streaming.py speed --threads {args.threads} --rounds "
        f"{args.rounds}`; {environment['machine']}, torch {environment['torch']}, onnxruntime "
        f"{environment['onnxruntime']}, {environment['date']}\n"
    )
    print("| model | runtime | per new frame | median ms | min ms | peak memory growth MB |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for key in calls:
        medians[key] = statistics.median(times[key])
        grown = "" if memory[key] is None else f"{memory[key]:.0f}"
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {medians[key]:.2f} | {min(times[key]):.2f} | "
            f"{grown} |"
        )
    print("\n| model | runtime | stream / recompute | streaming state MB |\n|---|---|---|---|")
    for name in MODELS:
        for runtime in ("eager", "ORT"):
            ratio = (
                medians[(name, runtime, "stream one frame")]
                / medians[(name, runtime, "recompute 8-frame clip")]
            )
            print(f"| {name} | {runtime} | {ratio:.2f} | {states[name]:.2f} |")


def accuracy(args: argparse.Namespace) -> None:
    from effvid.data import open_video
    from effvid.inference.live import LiveRecognizer
    from effvid.train import recipe_data
    from effvid.train.evaluate import evaluate_checkpoint
    from effvid.train.training_checkpoint import read_training_checkpoint

    causal = args.causal_run / "best.pth"
    config = read_training_checkpoint(causal).config
    data = recipe_data.demo_data_section(config["data"], progress=False)
    test = recipe_data.read_split(data, "test")
    clip_config = read_training_checkpoint(args.clip_run / "best.pth").config
    clip_results = evaluate_checkpoint(
        clip_config, args.clip_run / "best.pth", split="test", progress=False
    )
    clip_top1 = clip_results.metrics()["top1"]
    correct, settle = 0, []
    recognizer = LiveRecognizer(causal, window=args.window)
    stride = recognizer.preprocessing.sampling_rate
    for record in test.records:
        recognizer.restart()  # every test video is a stream of its own
        with open_video(record.path, short_side=recognizer.preprocessing.short_side) as reader:
            frames = reader.read(range(0, reader.info.num_frames, stride)).frames.numpy()
        labels = [
            recognizer.push(frame, seconds=0.0, frame=i).label for i, frame in enumerate(frames)
        ]
        correct += labels[-1] == test.classes[record.label]
        last_change = max(
            (i for i in range(1, len(labels)) if labels[i] != labels[i - 1]), default=0
        )
        settle.append(last_change + 1)
    stream_top1 = 100 * correct / len(test.records)
    print(f"{len(test.records)} demo test videos; verdict over the last {recognizer.window} steps")
    print(f"streaming causal model, label after the last frame: top-1 {stream_top1:.2f}%")
    print(f"clip model, {clip_results.views_per_video} views: top-1 {clip_top1:.2f}%")
    print(
        f"difference {stream_top1 - clip_top1:+.2f} points; the label settles after "
        f"{statistics.median(settle):.0f} model frames (median; mean {statistics.fmean(settle):.1f}"
        f", of {len(frames)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fast = commands.add_parser("speed")
    fast.add_argument("--threads", type=int, default=2)
    fast.add_argument("--rounds", type=int, default=30)
    fast.set_defaults(run=speed)
    good = commands.add_parser("accuracy")
    good.add_argument("causal_run", type=Path)
    good.add_argument("clip_run", type=Path)
    good.add_argument("--window", type=int, help="default: the model's clip length")
    good.set_defaults(run=accuracy)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
