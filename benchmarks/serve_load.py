"""`effvid serve` under load on 127.0.0.1: concurrent clients uploading a video, with and without
request batching, then concurrent camera streams.

    python benchmarks/serve_load.py [--clients 8] [--seconds 20] [--rounds 2] [--streams 2]
                                    [--stream-seconds 10] [--checkpoint CKPT]

For each server configuration (batching: requests wait up to 5 ms and share model calls of up
to 32 clips; none: one request per model call), `effvid serve` is started as its own process on
a free port of 127.0.0.1, warmed up, then `--clients` clients post the same video to
`/v1/predict` in a loop for `--seconds` seconds: requests per second, latency p50 and p99,
errors (any answer but 200), and the server's resident memory (VmRSS) before and after each of
`--rounds` equal parts of the run (flat: no growth from one round to the next). Then
`--streams` clients each stream the video's frames (JPEG, looped) to `/v1/stream`, one frame
after the previous answer, for `--stream-seconds`: frames per second each, errors, memory.

The model: `--checkpoint`, or a causal VMF-XXS with random weights and the demo recipe's input
(8 frames, every 2nd, 56-px crops of a 64-px short side); the video: 16 frames of 64x64 at
12 fps, as a demo clip. Everything is bounded by time and uses only loopback addresses. Writes
benchmarks/results/serve_load.{json,md}.
"""

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

import effvid
from effvid.data import write_video
from effvid.deploy.benchmark import fingerprint

RESULTS = Path(__file__).parent / "results"
HOST = "127.0.0.1"
CONFIGURATIONS = {
    "batching": ["--batch-wait-ms", "5", "--batch-clips", "32"],
    "none": ["--batch-wait-ms", "0", "--batch-clips", "1"],
}
DEMO_INPUT = {"num_frames": 8, "sampling_rate": 2, "crop_size": 56, "short_side": 64,
              "mean": [0.5] * 3, "std": [0.25] * 3}  # fmt: skip


def demo_like_checkpoint(path: Path) -> Path:
    model = effvid.create_model("vmf_xxs", num_classes=10, causal=True)
    torch.save({"model": model.state_dict(), "model_name": "vmf_xxs",
                "model_args": {"causal": True}, "class_names": [f"class_{i}" for i in range(10)],
                "preprocessing": DEMO_INPUT}, path)  # fmt: skip
    return path


def moving_square_video(path: Path, frames: int = 16, size: int = 64) -> Path:
    """A square crossing the frame: 16 frames of 64x64 at 12 fps."""
    pictures = []
    for t in range(frames):
        picture = np.full((size, size, 3), 40, np.uint8)
        left = 4 + 3 * t
        picture[20:36, left : left + 16] = (230, 200, 40)
        pictures.append(picture)
    write_video(path, pictures, fps=12)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(checkpoint: Path, options: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "effvid.cli", "serve", "--checkpoint", str(checkpoint),
               "--host", HOST, "--port", str(port), *options]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start within 120 s")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def combined(parts: list[dict]) -> dict:
    """The figures of the parts of a run as one."""
    latencies = [latency for part in parts for latency in part["latencies"]]
    elapsed = sum(part["elapsed_s"] for part in parts)
    return {
        "requests": len(latencies), "errors": sum(part["errors"] for part in parts),
        "first_errors": [error for part in parts for error in part["first_errors"]][:3],
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
    }  # fmt: skip


async def upload_load(url: str, video: bytes, clients: int, seconds: float) -> dict:
    """`clients` loops posting the video until `seconds` have passed."""
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        end = time.monotonic() + seconds

        async def one_client() -> None:
            while time.monotonic() < end:
                start = time.monotonic()
                try:
                    answer = await client.post("/v1/predict", files={"video": ("v.mp4", video)})
                    if answer.status_code != 200:
                        errors.append(f"{answer.status_code}: {answer.text[:100]}")
                        continue
                except httpx.HTTPError as error:
                    errors.append(repr(error))
                    continue
                latencies.append((time.monotonic() - start) * 1000)

        began = time.monotonic()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.monotonic() - began
    return {"latencies": latencies, "elapsed_s": elapsed, "errors": len(errors),
            "first_errors": errors[:3]}  # fmt: skip


def jpeg_frames(video: Path) -> list[bytes]:
    import av
    from PIL import Image

    pictures = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            buffer = io.BytesIO()
            Image.fromarray(frame.to_ndarray(format="rgb24")).save(buffer, format="JPEG")
            pictures.append(buffer.getvalue())
    return pictures


async def stream_load(url: str, frames: list[bytes], streams: int, seconds: float) -> dict:
    """`streams` camera streams, each sending the next frame after the previous answer."""
    from websockets.asyncio.client import connect

    address = url.replace("http://", "ws://") + "/v1/stream"
    end = time.monotonic() + seconds

    async def one_stream() -> tuple[int, int, float]:
        answered = errors = 0
        async with connect(address, max_size=2**20) as socket_:
            json.loads(await socket_.recv())  # ready
            began = time.monotonic()
            while time.monotonic() < end:
                await socket_.send(frames[answered % len(frames)])
                reply = json.loads(await socket_.recv())
                errors += "error" in reply
                answered += 1
            return answered, errors, time.monotonic() - began

    results = await asyncio.gather(*(one_stream() for _ in range(streams)))
    return {
        "frames_per_s_each": [round(count / elapsed, 1) for count, _, elapsed in results],
        "errors": sum(errors for _, errors, _ in results),
    }


def measure(checkpoint: Path, video: Path, args: argparse.Namespace) -> dict:
    data = video.read_bytes()
    results = {}
    for name, options in CONFIGURATIONS.items():
        server, url = start_server(checkpoint, options)
        try:
            asyncio.run(upload_load(url, data, args.clients, 3))  # warm-up, not counted
            memory = [round(resident_mb(server.pid), 1)]
            parts = []
            for _ in range(args.rounds):
                seconds = args.seconds / args.rounds
                parts.append(asyncio.run(upload_load(url, data, args.clients, seconds)))
                memory.append(round(resident_mb(server.pid), 1))
            load = combined(parts) | {"rss_mb": memory}
            results[name] = load
            print(name, load, flush=True)
            if name == "batching" and args.streams:
                frames = jpeg_frames(video)
                asyncio.run(stream_load(url, frames, args.streams, 2))  # warm-up
                before = resident_mb(server.pid)
                streams = asyncio.run(stream_load(url, frames, args.streams, args.stream_seconds))
                streams |= {"rss_before_mb": round(before, 1),
                            "rss_after_mb": round(resident_mb(server.pid), 1)}  # fmt: skip
                results["streams"] = streams
                print("streams", streams, flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def markdown(results: dict, command: str, machine: dict) -> str:
    header = "| server | clients | requests/s | p50 ms | p99 ms | requests | errors | RSS MB: "
    lines = [f"`{command}`; {machine['machine']}, torch {machine['torch']}, {machine['date']}", "",
             header + "before, after each round |", "|" + "---|" * 8]  # fmt: skip
    for name in CONFIGURATIONS:
        r = results[name]
        lines.append(
            f"| {name} | {results['clients']} | {r['requests_per_s']} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['requests']} | {r['errors']} | "
            f"{', '.join(map(str, r['rss_mb']))} |"
        )
    if "streams" in results:
        s = results["streams"]
        each = ", ".join(str(rate) for rate in s["frames_per_s_each"])
        lines += ["", "| camera streams | frames/s each | errors | RSS before MB | RSS after MB |",
                  "|---|---|---|---|---|",
                  f"| {len(s['frames_per_s_each'])} | {each} | {s['errors']} | "
                  f"{s['rss_before_mb']} | {s['rss_after_mb']} |"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2, help="memory is read after each")
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    parser.add_argument("--checkpoint", type=Path, help="default: a demo-like random VMF-XXS")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or demo_like_checkpoint(Path(folder) / "causal.pth")
        video = moving_square_video(Path(folder) / "clip.mp4")
        results = measure(checkpoint, video, args)
    results |= {"clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
                "stream_seconds": args.stream_seconds}  # fmt: skip
    machine = fingerprint("cpu", torch.get_num_threads())
    command = "python benchmarks/serve_load.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"command": command, "machine": machine, "results": results}, indent=1) + "\n"
    )
    args.out.with_suffix(".md").write_text(markdown(results, command.strip(), machine))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
