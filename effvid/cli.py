"""The `effvid` command. Thin: it parses arguments and calls the library."""

import argparse
import dataclasses
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from effvid.errors import EffvidError, InputError
from effvid.inference import EXPORT_FORMATS, RUNTIMES
from effvid.tables import TABLE_STYLES, render_table
from effvid.train.time_order import TIME_ORDERS
from effvid.version import __version__

# Every command imports what it needs when it runs: `effvid --help` and `effvid --version` load
# neither torch nor PyAV nor any model.


def _models(args: argparse.Namespace) -> int:
    from effvid.deploy.model_table import model_table

    rows = model_table(args.pattern, measure=args.flops)
    if not rows:
        print(f"no registered model matches {args.pattern!r}", file=sys.stderr)
        return 1
    text = render_table(rows, args.format)
    if args.output:
        args.output.write_text(text)
        print(f"wrote {len(rows)} models to {args.output}")
        return 0
    print(text, end="")
    if args.format == "table":
        source = "counted now" if args.flops else "from the model cards"
        print(f"\nFLOPs are multiply-adds ({source}); total = per view x test views.")
    return 0


def _card(args: argparse.Namespace) -> int:
    from effvid.models import get_model_card

    card = get_model_card(args.name)
    for field in dataclasses.fields(card):
        print(f"{field.name:>16}: {getattr(card, field.name)}")
    print(f"{'input_shape':>16}: {card.input_shape}")
    print(f"{'flops_total':>16}: {card.flops_total} ({card.test_views} views)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from effvid.deploy.export import export_registered_model

    if args.stream:
        from effvid.deploy.stream_export import export_registered_stream

        if args.checkpoint is None:
            raise InputError("--stream exports a causal VMF checkpoint: give --checkpoint")
        print(export_registered_stream(
            args.model, args.output, format=_export_format(args.runtime),
            checkpoint=args.checkpoint, chunk=args.chunk, tolerance=args.tolerance,
        ))  # fmt: skip
        return 0
    videos = []
    if args.calibration:
        from effvid.inference.collection import collect_videos

        videos = collect_videos(args.calibration)[: args.calibration_clips]
    print(export_registered_model(
        args.model, args.output, format=_export_format(args.runtime), checkpoint=args.checkpoint,
        batch=args.batch, dynamic_batch=not args.static_batch, frames=args.frames,
        size=args.size, tolerance=args.tolerance, check_videos=args.check_video,
        int8=args.int8, bf16=args.bf16, calibration=videos, check_data=args.check_data,
        limits={"min_agreement": args.min_agreement, "max_accuracy_drop": args.max_accuracy_drop},
    ))  # fmt: skip
    return 0


def _export_format(runtime: str) -> str:
    """The file format for `--runtime` (`onnxruntime` names the ONNX format too)."""
    return "onnx" if runtime == "onnxruntime" else runtime


def _bench(args: argparse.Namespace) -> int:
    from effvid.deploy.benchmark import append_csv, benchmark_model
    from effvid.models import create_model, get_model_card

    card = get_model_card(args.model)
    result = benchmark_model(
        create_model(args.model),
        card.batch_shape(args.batch, args.frames, args.size),
        name=args.model,
        runtime=args.runtime,
        dtype=args.dtype,
        device=args.device or ("cuda" if _cuda_available() else "cpu"),
        threads=args.threads,
        warmup=args.warmup,
        runs=args.runs,
    )
    print(result)
    print(f"appended to {append_csv(result, args.csv)}")
    return 0


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged, not to the one it was made with
    (a caller may redirect or capture stderr, and close it, between two commands)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _show_progress_logs(is_main: bool = True) -> None:
    """Log lines of effvid on stderr: INFO from the main process, warnings from the others."""
    logger = logging.getLogger("effvid")
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    if not logger.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def _train(args: argparse.Namespace) -> int:
    from effvid.distributed import setup_distributed, teardown_distributed
    from effvid.train.config import load_config
    from effvid.train.trainer import Trainer

    config = load_config(args.config, args.overrides)
    context = setup_distributed(args.device)
    _show_progress_logs(context.is_main)
    resume = args.resume if args.resume is not None else not args.restart
    try:
        Trainer(config, context, resume=resume).fit()
    finally:
        teardown_distributed()
    if context.is_main:
        print(f"run folder: {config['output']['dir']}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from effvid.distributed import setup_distributed, teardown_distributed
    from effvid.train.config import load_config, recipe_of_checkpoint
    from effvid.train.evaluate import evaluate_checkpoint, summarize

    recipe = args.config or recipe_of_checkpoint(args.checkpoint)
    config = load_config(recipe, args.overrides)
    context = setup_distributed()
    _show_progress_logs(context.is_main)
    output = args.output or Path(config["output"]["dir"])
    try:
        results = evaluate_checkpoint(
            config, args.checkpoint, split=args.split, output=output, time_order=args.time_order
        )
    finally:
        teardown_distributed()
    if context.is_main:
        print(f"{args.split}: {summarize(results.metrics())}; results in {output}")
    return 0


def _save_pretrained(args: argparse.Namespace) -> int:
    from effvid.train.model_folder import write_model_folder

    folder = write_model_folder(
        args.source, args.output, model=args.model, overwrite=args.overwrite
    )
    print(f"wrote model folder {folder}")
    return 0


def _push_to_hub(args: argparse.Namespace) -> int:
    from effvid.train.model_folder import push_to_hub

    url = push_to_hub(
        args.source, args.repo_id, model=args.model, private=args.private,
        revision=args.revision, commit_message=args.commit_message,
    )  # fmt: skip
    print(f"pushed to {url}; use it as --checkpoint hf-hub:{args.repo_id}")
    return 0


def _request(args: argparse.Namespace):
    from effvid.inference.collection import ClipRequest

    if args.timeline:
        return ClipRequest(clips=None, window=args.window, stride=args.stride)
    return ClipRequest(clips=args.clips)


def _record_lines(record: dict) -> list[str]:
    def top(entries: list[dict]) -> str:
        return ", ".join(f"{entry['label']} {entry['score']:.3f}" for entry in entries)

    if "timeline" in record:
        return [f"{record['video']} [{w['start']:.1f}-{w['end']:.1f} s]: {top(w['top'])}"
                for w in record["timeline"]]  # fmt: skip
    return [f"{record['video']}: {top(record['top'])}"]


def _predict(args: argparse.Namespace) -> int:
    import json

    from effvid.inference.collection import predict_collection

    if args.checkpoint is None and args.onnx is None:
        raise InputError("give --checkpoint (and --model if it does not name it) or --onnx")
    records: list[dict] = []

    def show(record: dict) -> None:
        if args.json:
            records.append(record)
        elif args.output is None:
            print("\n".join(_record_lines(record)), flush=True)

    summary = predict_collection(
        args.videos,
        onnx=args.onnx,
        runtime=args.runtime,
        output=args.output,
        top_k=args.top_k,
        on_record=show,
        **_collection_options(args),
    )
    if args.json:
        print(json.dumps(records, indent=1))
    return _collection_status(summary)


def _features(args: argparse.Namespace) -> int:
    from effvid.inference.collection import extract_features

    summary = extract_features(
        args.videos,
        args.output,
        layer=args.layer,
        per_clip=args.per_clip,
        **_collection_options(args),
    )
    return _collection_status(summary, f"; features in {args.output}")


def _collection_options(args: argparse.Namespace) -> dict:
    """What `predict` and `features` pass alike (see `_collection_arguments`)."""
    return {
        "model": args.model,
        "checkpoint": args.checkpoint,
        "request": _request(args),
        "root": args.root,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "device": args.device,
        "overwrite": args.overwrite,
    }


def _collection_status(summary, where: str = "") -> int:
    """The unreadable videos and the summary on stderr; exit status 1 if any failed."""
    for video, reason in summary.failed:
        print(f"unreadable: {video}: {reason}", file=sys.stderr)
    print(f"{summary}{where}", file=sys.stderr)
    return 1 if summary.failed else 0


def _stream(args: argparse.Namespace) -> int:
    from effvid.inference.live import LiveRecognizer, run_stream

    if args.checkpoint is None and args.onnx is None:
        raise InputError("give --checkpoint (a causal VMF) or --onnx (effvid export --stream)")
    recognizer = LiveRecognizer(
        args.checkpoint, model=args.model, onnx=args.onnx, runtime=args.runtime,
        window=args.window,
    )  # fmt: skip
    summary = run_stream(
        args.source,
        recognizer,
        output=args.output,
        log=sys.stdout if args.json else None,
        changes=sys.stderr if args.json else sys.stdout,
    )
    print(summary, file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _explain(args: argparse.Namespace) -> int:
    from effvid.explain import explain_video

    bridge = args.bridge if args.bridge == "mean" else int(args.bridge)
    explanation = explain_video(
        args.video,
        args.model,
        args.checkpoint,
        method=args.method,
        bridge=bridge,
        target=args.target,
    )
    written = explanation.save(args.out, animation=args.format, fps=args.fps)
    print(explanation.title)
    for path in written:
        print(f"wrote {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from effvid.demo import run_demo

    _show_progress_logs()
    result = run_demo(args.out, args.overrides, device=args.device)
    return 0 if result["top1"] > 0 else 1


def _make_demo_data(args: argparse.Namespace) -> int:
    from effvid.data import make_demo_data

    given = {"videos": args.videos, "task": args.task, "num_frames": args.num_frames,
             "frame_size": args.frame_size, "seed": args.seed}  # fmt: skip
    parameters = {name: value for name, value in given.items() if value is not None}
    demo = make_demo_data(args.out, workers=args.workers, **parameters)
    print(demo.summary())
    return 0


def _check_videos(args: argparse.Namespace) -> int:
    from effvid.data import check_dataset

    report = check_dataset(
        args.target, video_root=args.root, workers=args.workers, report_path=args.report
    )
    print(report.summary())
    for check in report.broken[:20]:
        print(f"  {check.path}: {check.error}")
    if len(report.broken) > 20:
        print(f"  ... {len(report.broken) - 20} more in {args.report}")
    return 1 if report.broken else 0


def _serve(args: argparse.Namespace) -> int:
    from effvid.serve import ServeLimits, open_served_model
    from effvid.serve.server import serve

    if args.checkpoint is None and args.onnx is None:
        raise InputError("give --checkpoint (and --model if it does not name it) or --onnx")
    limits = ServeLimits(
        max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration,
        max_pixels=args.max_pixels, max_request_clips=args.max_request_clips,
        max_streams=args.max_streams,
        request_timeout_s=args.request_timeout, batch_wait_ms=args.batch_wait_ms,
        batch_clips=args.batch_clips,
    )  # fmt: skip
    served = open_served_model(
        args.checkpoint, model=args.model, onnx=args.onnx, stream_onnx=args.stream_onnx,
        runtime=args.runtime, window=args.window,
    )  # fmt: skip
    if served.stream_refusal:
        print(served.stream_refusal, file=sys.stderr)
    print(f"effvid serve: http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    serve(served, limits, host=args.host, port=args.port, decode_threads=args.decode_threads)
    return 0


class _HelpWithDefaults(argparse.HelpFormatter):
    """Each option's help ends with its default, unless it has none or the help names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default in (None, False, [], argparse.SUPPRESS)
        if unset or not action.option_strings or "default" in text:
            return text
        return f"{text} (default: %(default)s)".strip()


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (status 2, as argparse) and every option's
    default shown in its help."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpWithDefaults)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: type, minimum: float, strict: bool) -> float:
    noun = "an integer" if kind is int else "a number"
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise argparse.ArgumentTypeError(f"must be {noun} {relation} {minimum:g}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, 1, strict=False)


def non_negative_int(text: str) -> int:
    return _number(text, int, 0, strict=False)


def positive_float(text: str) -> float:
    return _number(text, float, 0.0, strict=True)


def non_negative_float(text: str) -> float:
    return _number(text, float, 0.0, strict=False)


def fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text}")
    return value


def _runtime_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        choices=[*RUNTIMES, "onnx"],
        help="what runs the model: eager PyTorch for --checkpoint; for an exported file its "
        "own (.onnx: ONNX Runtime, or openvino; .xml: OpenVINO; .pte: ExecuTorch)",
    )


def _collection_arguments(parser: argparse.ArgumentParser) -> None:
    """What `predict` and `features` share: the inputs, the model, the clips, the pipeline."""
    parser.add_argument(
        "videos", nargs="+", type=Path, help="video files, folders, list or annotation files"
    )
    parser.add_argument("--root", type=Path, help="folder the annotation files' videos are in")
    parser.add_argument("--model", help="registered model name (default: the checkpoint's)")
    parser.add_argument(
        "--checkpoint", type=Path, help="trained weights: a file, a model folder or hf-hub:org/name"
    )
    parser.add_argument(
        "--clips",
        type=positive_int,
        default=None,
        help="clips spread over each video (default: the model card's test views)",
    )
    parser.add_argument("--timeline", action="store_true", help="clips along time, in windows")
    parser.add_argument(
        "--window", type=positive_float, default=2.0, help="timeline window, seconds"
    )
    parser.add_argument("--stride", type=positive_float, default=1.0, help="timeline step, seconds")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="clips per batch")
    parser.add_argument(
        "--workers", type=non_negative_int, default=2, help="decoding processes (0: in-process)"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if available")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output of effvid that another model, checkpoint or options "
        "made, instead of refusing it (a file effvid did not write is never replaced)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="effvid", description="Efficient video recognition.")
    parser.add_argument("--version", action="version", version=f"effvid {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the registered models with their costs")
    models.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'vmf_*'")
    models.add_argument("--format", choices=TABLE_STYLES, default="table", help="table style")
    models.add_argument(
        "--flops", action="store_true", help="count params and FLOPs now instead of reading cards"
    )
    models.add_argument("--output", type=Path, help="write the table to this file")
    models.set_defaults(run=_models)

    card = commands.add_parser("card", help="print the model card of one registered model")
    card.add_argument("name")
    card.set_defaults(run=_card)

    export = commands.add_parser(
        "export", help="export a model for a runtime (ONNX, OpenVINO, ExecuTorch) and check it"
    )
    export.add_argument(
        "--runtime",
        choices=[*EXPORT_FORMATS, "onnxruntime"],
        default="onnx",
        help="the file: .onnx (ONNX Runtime, OpenVINO), .xml+.bin (OpenVINO), .pte (ExecuTorch)",
    )
    export.add_argument("--model", help="registered model name (default: the checkpoint's)")
    export.add_argument("--checkpoint", type=Path, help="weights (and class names) to export")
    export.add_argument("--output", type=Path, help="the file (default: <model>.<suffix>)")
    export.add_argument("--batch", type=positive_int, default=1, help="example batch size")
    export.add_argument("--static-batch", action="store_true", help="fix the batch axis")
    export.add_argument(
        "--frames", type=positive_int, help="clip length (default: the model card's)"
    )
    export.add_argument("--size", type=positive_int, help="crop size (default: the model card's)")
    export.add_argument(
        "--tolerance", type=positive_float, default=1e-4, help="max |exported - eager| logit"
    )
    export.add_argument(
        "--check-video",
        type=Path,
        action="append",
        default=[],
        help="also compare on a clip of this real video (repeatable)",
    )
    export.add_argument(
        "--int8",
        action="store_true",
        help="also write an int8 copy (<output>.int8.<suffix>), calibrated on --calibration "
        "(ONNX without it: dynamic int8)",
    )
    export.add_argument(
        "--bf16", action="store_true", help="also write a bf16 copy (OpenVINO, on a bf16 CPU)"
    )
    export.add_argument(
        "--check-data",
        type=Path,
        help="labelled videos (folder per class or annotation file) the copies are checked on",
    )
    export.add_argument(
        "--min-agreement",
        type=fraction,
        default=0.99,
        help="top-1 agreement with fp32 a copy needs",
    )
    export.add_argument(
        "--max-accuracy-drop",
        type=non_negative_float,
        default=1.0,
        help="accuracy points a copy may lose",
    )
    export.add_argument(
        "--calibration",
        type=Path,
        nargs="+",
        default=[],
        help="real videos (files, folders, list files) to calibrate the int8 copy on",
    )
    export.add_argument(
        "--calibration-clips", type=positive_int, default=64, help="videos used to calibrate"
    )
    export.add_argument(
        "--stream", action="store_true", help="the streaming step of a causal VMF instead"
    )
    export.add_argument("--chunk", type=positive_int, default=1, help="frames per streaming step")
    export.set_defaults(run=_export)

    bench = commands.add_parser("bench", help="measure latency and throughput of a model")
    bench.add_argument("--model", required=True, help="registered model name")
    bench.add_argument("--batch", type=positive_int, default=1, help="clips per call")
    bench.add_argument("--threads", type=positive_int, help="intra-op threads (default: torch's)")
    bench.add_argument(
        "--runtime",
        choices=["eager", "compile", "onnxruntime", "openvino", "executorch"],
        default="eager",
        help="what runs it (executorch: a program of the deployable form, batch fixed)",
    )
    bench.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="precision")
    bench.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if available")
    bench.add_argument(
        "--frames", type=positive_int, help="clip length (default: the model card's)"
    )
    bench.add_argument("--size", type=positive_int, help="crop size (default: the model card's)")
    bench.add_argument("--warmup", type=non_negative_int, default=3, help="untimed calls first")
    bench.add_argument("--runs", type=positive_int, default=10, help="timed calls")
    bench.add_argument("--csv", type=Path, default=Path("effvid_bench.csv"), help="results file")
    bench.set_defaults(run=_bench)

    train = commands.add_parser("train", help="train a model from a recipe")
    train.add_argument("--config", type=Path, help="recipe YAML (see configs/)")
    train.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.lr=3e-4")
    start = train.add_mutually_exclusive_group()
    start.add_argument(
        "--resume",
        type=Path,
        help="continue the run of this training checkpoint (under the recipe it was trained "
        "with; by default a run continues from its folder's last.pth)",
    )
    start.add_argument(
        "--restart",
        action="store_true",
        help="start afresh: discard the run folder's checkpoints and metrics, even those of "
        "another recipe",
    )
    train.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if available")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="multi-view evaluation of a trained checkpoint")
    evaluate.add_argument(
        "--config", type=Path, help="the recipe (default: the one the checkpoint was trained with)"
    )
    evaluate.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="trained weights (file, model folder, hf-hub:)",
    )
    evaluate.add_argument("overrides", nargs="*", help="section.key=value, e.g. eval.clips=4")
    evaluate.add_argument("--split", default="val", choices=["val", "test"], help="which split")
    evaluate.add_argument("--output", type=Path, help="results folder (default: output.dir)")
    evaluate.add_argument(
        "--time-order",
        choices=TIME_ORDERS,
        default="forward",
        help="probe what the model takes from time: clips reversed, frames shuffled, or one "
        "frame repeated",
    )
    evaluate.set_defaults(run=_eval)

    save = commands.add_parser(
        "save-pretrained",
        help="a run folder or checkpoint as a model folder (weights, config, model card)",
    )
    save.add_argument("source", type=Path, help="a run folder (its best.pth) or a checkpoint")
    save.add_argument("output", type=Path, help="the model folder to write")
    save.add_argument(
        "--model", help="registered model of a checkpoint that does not name it (official ones)"
    )
    save.add_argument(
        "--overwrite", action="store_true", help="replace an effvid model folder at OUTPUT"
    )
    save.set_defaults(run=_save_pretrained)

    push = commands.add_parser(
        "push-to-hub", help="upload a model folder (or a run, a checkpoint) to the Hugging Face Hub"
    )
    push.add_argument("source", type=Path, help="a model folder, a run folder or a checkpoint")
    push.add_argument("repo_id", help="the Hub repository, org/name (created if absent)")
    push.add_argument(
        "--model", help="registered model of a checkpoint that does not name it (official ones)"
    )
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument(
        "--revision", "--branch", dest="revision", help="branch to commit to (default: main)"
    )
    push.add_argument("--commit-message", help="the commit's message")
    push.set_defaults(run=_push_to_hub)

    predict = commands.add_parser("predict", help="label videos, a few or a whole collection")
    _collection_arguments(predict)
    predict.add_argument(
        "--exported", "--onnx", dest="onnx", type=Path, help="an exported model file instead"
    )
    _runtime_argument(predict)
    predict.add_argument("--top-k", type=positive_int, default=5, help="classes per record")
    predict.add_argument(
        "--output", type=Path, help="write records as they come (.jsonl or .csv); reruns resume"
    )
    predict.add_argument("--json", action="store_true", help="one JSON document on stdout")
    predict.set_defaults(run=_predict)

    features = commands.add_parser("features", help="embed videos into a feature store")
    _collection_arguments(features)
    features.add_argument("--output", type=Path, required=True, help="the store's folder")
    features.add_argument(
        "--layer",
        choices=["pre_logits", "tokens", "logits"],
        default="pre_logits",
        help="pre-logits (default), the global tokens (Mobile-Former family) or the logits",
    )
    features.add_argument(
        "--per-clip", action="store_true", help="one row per clip along the video, not the mean"
    )
    features.set_defaults(run=_features)

    stream = commands.add_parser("stream", help="recognise actions live, frame by frame")
    stream.add_argument(
        "source",
        help="a video file, a camera (v4l2:/dev/video0, avfoundation:0, dshow:video=NAME) or "
        "a stream URL",
    )
    stream.add_argument("--checkpoint", type=Path, help="a causal VMF (model.args.causal=true)")
    stream.add_argument("--model", help="registered model name (default: the checkpoint's)")
    stream.add_argument(
        "--exported", "--onnx", dest="onnx", type=Path,
        help="an exported streaming step (effvid export --stream)",
    )  # fmt: skip
    _runtime_argument(stream)
    stream.add_argument(
        "--window",
        type=positive_int,
        help="steps whose mean logits give the label (default: the model's clip length)",
    )
    stream.add_argument("--json", action="store_true", help="every step as JSON lines on stdout")
    stream.add_argument("--output", type=Path, help="write the labelled video here (.mp4)")
    stream.set_defaults(run=_stream)

    explain = commands.add_parser("explain", help="heat maps of what a model looks at")
    explain.add_argument("video", type=Path)
    explain.add_argument("--model", help="registered model name (default: the checkpoint's)")
    explain.add_argument("--checkpoint", required=True, type=Path, help="trained weights")
    explain.add_argument(
        "--method",
        default="auto",
        choices=["auto", "tokens", "grad-cam"],
        help="tokens: global-token attention (Mobile-Former family); grad-cam: any model; "
        "auto: tokens where the model has them",
    )
    explain.add_argument(
        "--bridge",
        default="mean",
        help="'mean' of all Mobile->Former bridges or an index (-1: last)",
    )
    explain.add_argument("--target", help="class Grad-CAM explains (default: the predicted one)")
    explain.add_argument("--out", type=Path, default=Path("."), help="folder for the pictures")
    explain.add_argument("--format", default="gif", choices=["gif", "mp4"], help="animation")
    explain.add_argument(
        "--fps", type=positive_float, default=4.0, help="animation frames per second"
    )
    explain.set_defaults(run=_explain)

    demo = commands.add_parser(
        "demo", help="the demo: make demo data, train, evaluate and predict on it"
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder")
    demo.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="default: the CPU, as measured"
    )
    demo.add_argument(
        "overrides", nargs="*", help="changes to the demo recipe, e.g. train.epochs=2"
    )
    demo.set_defaults(run=_demo)

    make_demo = commands.add_parser("make-demo-data", help="generate the built-in demo dataset")
    make_demo.add_argument("--out", type=Path, help="folder (default: a cache folder)")
    make_demo.add_argument("--videos", type=positive_int, help="number of videos")
    make_demo.add_argument(
        "--task",
        help="a registered demo task (default: local, ten time-ordered actions of two digits)",
    )
    make_demo.add_argument("--num-frames", type=positive_int, help="frames per video")
    make_demo.add_argument("--frame-size", type=positive_int, help="even frame side, pixels")
    make_demo.add_argument("--seed", type=non_negative_int, help="generation seed (default: 0)")
    make_demo.add_argument("--workers", type=positive_int, help="processes (default: one per core)")
    make_demo.set_defaults(run=_make_demo_data)

    check = commands.add_parser("check-videos", help="decode every video, report broken ones")
    check.add_argument("target", type=Path, help="a folder of videos or an annotation file")
    check.add_argument("--root", type=Path, help="folder the annotation's paths are relative to")
    check.add_argument("--workers", type=positive_int, help="processes (default: one per core)")
    check.add_argument("--report", type=Path, default=Path("broken_videos.tsv"), help="report file")
    check.set_defaults(run=_check_videos)

    serve = commands.add_parser(
        "serve", help="recognise videos over HTTP, and live from a browser's camera"
    )
    serve.add_argument("--checkpoint", type=Path, help="trained weights (causal: also streams)")
    serve.add_argument("--model", help="registered model name (default: the checkpoint's)")
    serve.add_argument(
        "--exported", "--onnx", dest="onnx", type=Path, help="an exported clip model instead"
    )
    serve.add_argument("--stream-onnx", type=Path, help="an exported streaming step (--stream)")
    _runtime_argument(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=non_negative_int, default=8000, help="port")
    serve.add_argument(
        "--window", type=positive_int, help="stream steps per verdict (default: clip length)"
    )
    serve.add_argument("--max-upload-mb", type=positive_float, default=64.0, help="upload size")
    serve.add_argument(
        "--max-duration", type=positive_float, default=300.0, help="longest video, seconds"
    )
    serve.add_argument(
        "--max-pixels", type=positive_int, default=3840 * 2160, help="largest frame, pixels"
    )
    serve.add_argument(
        "--max-request-clips", type=positive_int, default=64, help="clips read from one upload"
    )
    serve.add_argument("--max-streams", type=positive_int, default=4, help="camera streams at once")
    serve.add_argument(
        "--request-timeout", type=positive_float, default=60.0, help="seconds per request"
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=lambda text: _number(text, float, 0.0, strict=False),
        default=5.0,
        help="wait for requests to batch (0: none)",
    )
    serve.add_argument(
        "--batch-clips", type=positive_int, default=32, help="clips per model call (1: no batching)"
    )
    serve.add_argument(
        "--decode-threads", type=positive_int, default=2, help="threads decoding uploads"
    )
    serve.set_defaults(run=_serve)
    return parser


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# Errors that describe bad input: effvid's own, and the operating system's for files and disks.
# Anything else (a ValueError or TypeError from deep inside, say) is a bug and keeps its traceback.
USER_ERRORS = (EffvidError, OSError)


# The exit status of a command stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2.
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as error:
        if os.environ.get("EFFVID_DEBUG"):
            raise
        print(f"effvid: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if os.environ.get("EFFVID_DEBUG"):
            raise
        # Every output keeps what was complete (records, checkpoints, shards are written whole).
        print(
            f"effvid: interrupted: {args.command} stopped; what it wrote is kept, and the same "
            "command resumes it",
            file=sys.stderr,
        )
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
