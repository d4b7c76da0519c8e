"""Whether each model converts to LiteRT (the former TensorFlow Lite) with litert-torch, as it
is and in its deployable form (`effvid.deploy.deployable`: BatchNorms folded, 3-D convolutions
as 2-D ones), what the XNNPACK delegate takes of the flatbuffer, how close the interpreter is
to eager PyTorch, and how fast; each model and form in a process of its own, since the converter
can crash its process.

Of the converters on PyPI only litert-torch 0.10.0 (torch < 2.15) and 0.9.4 (torch < 2.14)
accept torch 2.13; litert-torch 0.8.0 to 0.9.3 and ai-edge-torch up to 0.7.1 pin torch below
2.13, and ai-edge-torch 0.7.2 is an empty package that depends on litert-torch. litert-torch
pins pydantic and typing_extensions below effvid's development environment (through xdsl, which
ai-edge-litert[model-utils] pins) and brings jax and transformers, so it gets a virtual
environment of its own:

    python3.11 -m venv /tmp/litert-venv
    /tmp/litert-venv/bin/pip install torch==2.13.0
    /tmp/litert-venv/bin/pip install -e . --no-deps
    /tmp/litert-venv/bin/pip install numpy safetensors av pyyaml pydantic tqdm filelock
    /tmp/litert-venv/bin/pip install torch==2.13.0 litert-torch==0.10.0
    /tmp/litert-venv/bin/python benchmarks/litert_probe.py [--models x3d_xs vmf_xxs vmf_xs]
        [--forms plain deployable deployable-int8] [--threads 2] [--rounds 20]
        [--out benchmarks/results/litert]

Each model at its model card's input, batch 1, fp32, random weights:
`litert_torch.convert(model, (clip,))`, then the flatbuffer with a custom metadata entry
added (`with_metadata`, read back by `read_metadata`). Reported per model and form: whether
it converts (the first lines of the error if not), the operators of the flatbuffer by kind,
those left outside the XNNPACK delegate (recovered from the delegate nodes' inputs and
outputs), max |LiteRT - eager| on the logits with and without the delegate, and the median
latency of each against the eager model (BatchNorms folded, as deployed), interleaved round by
round. The form `deployable-int8` is the deployable form quantised by litert-torch's own PT2E
quantizer (static, per-channel symmetric weights, calibrated on `CALIBRATION_CLIPS` random
clips): its difference is against the fp32 eager model and measures quantisation, not
conversion. The load average before and after is recorded: the timings mean little on a machine
that other work shares.
"""

import argparse
import collections
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import traceback
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

import effvid
from effvid.deploy.benchmark import fingerprint, interleaved_times
from effvid.deploy.deployable import deployable
from effvid.models.fusion import fold_batchnorm

MODELS = ["x3d_xs", "vmf_xxs", "vmf_xs"]
FORMS = ["plain", "deployable", "deployable-int8"]
INTERPRETERS = ("xnnpack", "builtin")  # LiteRT with its default delegate, with its kernels only
METADATA_NAME = "effvid.model_info"
CALIBRATION_CLIPS = 4


def error_summary(error: BaseException) -> str:
    """The first non-empty line of an error, and the converter's line naming the ops it
    could not lower, where there is one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    keep = lines[:1] + [line for line in lines[1:] if "ops:" in line][:1]
    return f"{type(error).__name__}: {' / '.join(keep)}"[:300]


def with_metadata(flatbuffer: bytes, entries: dict[str, bytes]) -> bytes:
    """The flatbuffer with `entries` added to its `metadata` table (name -> a buffer of bytes),
    the field the TFLite schema has for data the runtime ignores."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    model.metadata = model.metadata or []
    for name, data in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(flatbuffer: bytes) -> dict[str, bytes]:
    """Every metadata entry of a flatbuffer, name -> bytes, without unpacking the model."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(flatbuffer, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        data = model.Buffers(entry.Buffer()).DataAsNumpy()
        entries[entry.Name().decode()] = b"" if isinstance(data, int) else data.tobytes()
    return entries


def operator_kinds(flatbuffer: bytes) -> collections.Counter:
    """How many operators of each kind the flatbuffer's subgraphs hold."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    return collections.Counter(
        flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
        for subgraph in model.subgraphs
        for op in subgraph.operators
    )


def outside_delegate(interpreter) -> tuple[int, collections.Counter]:
    """The delegate nodes of an interpreter with a delegate applied, and the operators left
    outside them by kind. A delegate node replaces a partition of nodes and takes its inputs
    and outputs: walking back from its outputs through the producing nodes, up to its inputs,
    finds exactly the partition; what no partition holds runs on LiteRT's own kernels."""
    nodes = interpreter._get_ops_details()  # every node of the model, then the delegate nodes
    delegates = [node for node in nodes if node["op_name"] == "DELEGATE"]
    producer = {}
    for node in nodes:
        if node["op_name"] != "DELEGATE":
            producer |= dict.fromkeys(node["outputs"], node)
    taken = set()
    for delegate in delegates:
        boundary, pending = set(delegate["inputs"]), list(delegate["outputs"])
        while pending:
            tensor = pending.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node["index"] in taken:
                continue
            taken.add(node["index"])
            pending.extend(int(t) for t in node["inputs"] if t >= 0)
    outside = collections.Counter(
        node["op_name"]
        for node in nodes
        if node["op_name"] != "DELEGATE" and node["index"] not in taken
    )
    return len(delegates), outside


def interpreter_call(flatbuffer: bytes, threads: int, xnnpack: bool):
    """The interpreter and a call clip -> logits (float numpy) on it, with the default delegate
    (XNNPACK) or with LiteRT's built-in kernels only. An integer input or output (a quantised
    model's) is quantised or dequantised with the scale and zero point the flatbuffer gives."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(
        model_content=flatbuffer, num_threads=threads, experimental_op_resolver_type=resolver
    )
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(clip: np.ndarray) -> np.ndarray:
        if source["dtype"] != np.float32:
            scale, zero_point = source["quantization"]
            limits = np.iinfo(source["dtype"])
            clip = np.round(clip / scale + zero_point).clip(limits.min, limits.max)
        interpreter.set_tensor(source["index"], clip.astype(source["dtype"]))
        interpreter.invoke()
        logits = interpreter.get_tensor(target["index"])
        if target["dtype"] != np.float32:
            scale, zero_point = target["quantization"]
            logits = (logits.astype(np.float32) - zero_point) * scale
        return logits

    return interpreter, run


def quantised(network: torch.nn.Module, clip: torch.Tensor, generator: torch.Generator):
    """`network` prepared, calibrated and converted by torchao's PT2E flow with litert-torch's
    quantizer, and the conversion config that goes with it."""
    from litert_torch.quantize.pt2e_quantizer import (
        PT2EQuantizer,
        get_symmetric_quantization_config,
    )
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    prepared = prepare_pt2e(torch.export.export(network, (clip,)).module(), quantizer)
    with torch.no_grad():
        for _ in range(CALIBRATION_CLIPS):
            prepared(torch.randn(clip.shape, generator=generator))
    return convert_pt2e(prepared, fold_quantize=False), QuantConfig(pt2e_quantizer=quantizer)


def measure(name: str, form: str, threads: int, rounds: int) -> dict:
    import litert_torch

    card = effvid.get_model_card(name)
    torch.manual_seed(0)  # the same random weights for every form of a model
    model = effvid.create_model(name).eval()
    generator = torch.Generator().manual_seed(0)
    clip = torch.randn(card.input_shape, generator=generator)
    eager = fold_batchnorm(model, clip)
    network, options = model, {}
    if form != "plain":
        network = deployable(model, clip).eval()
    if form == "deployable-int8":
        network, options["quant_config"] = quantised(network, clip, generator)
    row = {"model": name, "form": form}
    try:
        flatbuffer = litert_torch.convert(network, (clip,), **options).model_content()
    except Exception as error:  # the converter's own error types (ValueError, RuntimeError...)
        row["converted"] = False
        row["error"] = error_summary(error)
        row["error_at"] = traceback.extract_tb(error.__traceback__)[-1].name
        return row
    info = json.dumps({"name": name, "input_shape": list(card.input_shape)}).encode()
    flatbuffer = with_metadata(flatbuffer, {METADATA_NAME: info})
    kinds = operator_kinds(flatbuffer)
    row |= {
        "converted": True,
        "flatbuffer_mb": round(len(flatbuffer) / 2**20, 2),
        "metadata_read_back": read_metadata(flatbuffer).get(METADATA_NAME) == info,
        "operators": sum(kinds.values()),
        "operator_kinds": dict(kinds.most_common()),
    }
    array = clip.numpy()
    with torch.inference_mode():
        expected = model(clip).numpy()
        row["max_abs_logit"] = float(np.abs(expected).max())  # the scale of the differences
        calls = {"eager": lambda: eager(clip)}
        for key in INTERPRETERS:
            try:
                interpreter, run = interpreter_call(flatbuffer, threads, xnnpack=key == "xnnpack")
                logits = run(array)
            except (RuntimeError, ValueError) as error:  # a kernel refuses the model, or its input
                row[f"{key}_error"] = error_summary(error)
                continue
            if key == "xnnpack":
                row["input_output_dtypes"] = [
                    details[0]["dtype"].__name__
                    for details in (
                        interpreter.get_input_details(),
                        interpreter.get_output_details(),
                    )
                ]
                row["delegate_nodes"], outside = outside_delegate(interpreter)
                row["outside_xnnpack"] = dict(outside.most_common())
            row[f"max_abs_difference_{key}"] = float(np.abs(logits - expected).max())
            calls[key] = functools.partial(run, array)
        times = interleaved_times(calls, rounds)
    medians = {key: statistics.median(values) for key, values in times.items()}
    for key, median in medians.items():
        row[f"{key}_ms"] = round(median, 2)
        row[f"{key}_over_eager"] = round(median / medians["eager"], 2)
    return row


def measure_apart(name: str, form: str, threads: int, rounds: int) -> dict:
    """`measure` in a process of its own: the converter can crash its process (a segmentation
    fault in its MLIR passes), and then the row names the signal and the stage it stopped in."""
    command = [sys.executable, __file__, "--child", name, form]
    command += ["--threads", str(threads), "--rounds", str(rounds)]
    done = subprocess.run(command, capture_output=True, text=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and rows:
        return json.loads(rows[-1])
    output = (done.stdout + done.stderr).splitlines()
    stages = [line.split("[START]", 1)[1].strip() for line in output if "[START]" in line]
    if done.returncode < 0:
        cause = f"the process was killed by {signal.Signals(-done.returncode).name}"
    else:
        cause = f"the process exited with status {done.returncode}: {output[-1] if output else ''}"
    stage = f" in '{stages[-1]}'" if stages else ""
    return {"model": name, "form": form, "converted": False, "error": cause + stage}


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| model | form | converts | operators | XNNPACK partitions | outside XNNPACK | "
        "max abs diff XNNPACK / built-in (max abs logit) | XNNPACK ms | built-in ms | eager ms | "
        "XNNPACK / eager |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if not row["converted"]:
            lines.append(f"| {row['model']} | {row['form']} | no: {row['error']} ||||||||| |")
            continue
        outside = row.get("outside_xnnpack")
        if outside is not None:
            outside = ", ".join(f"{op} {n}" for op, n in outside.items()) or "nothing"
        cells = {"outside": outside or row.get("xnnpack_error")}
        for key in INTERPRETERS:
            difference = row.get(f"max_abs_difference_{key}")
            cells[key] = "fails" if difference is None else f"{difference:.1e}"
            cells[f"{key}_ms"] = row.get(f"{key}_ms", row.get(f"{key}_error"))
        lines.append(
            f"| {row['model']} | {row['form']} | yes | {row['operators']} | "
            f"{row.get('delegate_nodes', '')} | {cells['outside']} | {cells['xnnpack']} / "
            f"{cells['builtin']} ({row['max_abs_logit']:.1e}) | {cells['xnnpack_ms']} | "
            f"{cells['builtin_ms']} | {row['eager_ms']} | {row.get('xnnpack_over_eager', '')} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=FORMS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/litert"))
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "FORM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(args.threads)
        print(json.dumps(measure(*args.child, args.threads, args.rounds)), flush=True)
        return
    load_before = os.getloadavg()[0]
    rows = []
    for name in args.models:
        for form in args.forms:
            rows.append(measure_apart(name, form, args.threads, args.rounds))
            print(json.dumps(rows[-1]), flush=True)
    packages = ("litert-torch", "ai-edge-litert", "litert-converter", "torchao")
    environment = fingerprint("cpu", args.threads) | {p: version(p) for p in packages}
    environment["load_average_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    environment["rounds"] = args.rounds
    options = ["--models", *args.models, "--forms", *args.forms, "--threads", str(args.threads)]
    environment["command"] = " ".join(
        ["python benchmarks/litert_probe.py", *options, "--rounds", str(args.rounds)]
    )
    result = {"rows": rows, "environment": environment}
    text = report(result)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


def report(result: dict) -> str:
    """The Markdown page of a result: its conditions, the table, the operators by kind."""
    rows, environment = result["rows"], result["environment"]
    load = environment["load_average_1min"]
    lines = [
        f"`{environment['command']}`; {environment['machine']}, {environment['threads']} "
        f"thread(s) (PyTorch and the LiteRT interpreter), batch 1, median of "
        f"{environment['rounds']} interleaved rounds; torch {environment['torch']}, litert-torch "
        f"{environment['litert-torch']}, ai-edge-litert {environment['ai-edge-litert']}, "
        f"litert-converter {environment['litert-converter']}, torchao {environment['torchao']}, "
        f"{environment['date']}; load average {load[0]} before, {load[1]} after. Differences "
        "are against the eager model's logits (fp32, random weights); eager is timed with its "
        "BatchNorms folded.",
    ]
    if max(load) > int(environment["threads"]):
        lines.append(
            "\n**The machine was shared (load average above the threads used): the timings are "
            "not a measure of speed.** Eager PyTorch suffers most (its OpenMP threads wait on "
            "one another when one of them is descheduled), so the ratios to eager flatter LiteRT."
        )
    lines += [
        "",
        *table(rows),
        "",
        "Operators of each flatbuffer:",
        "",
        *(
            f"- {row['model']} {row['form']}: "
            + ", ".join(f"{op} {n}" for op, n in row["operator_kinds"].items())
            for row in rows
            if row["converted"]
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
