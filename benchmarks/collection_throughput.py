"""Videos per second over a collection: the per-file loop against the batched pipeline.

    python benchmarks/collection_throughput.py [--videos 500] [--clips 10] [--threads 2]

The videos are the first `--videos` of the demo dataset's training split (real mp4 files, 16
frames of 64 px); the model VMF-XXS with the demo recipe's clips (8 frames every 2nd, 56 px
crops; weights at random: speed does not depend on them). Candidates, one after another in one
process (each a cold start of its pipeline), all with `--clips` clips per video:

- per-file loop: `Predictor.predict` on one file after another (decode, then model, per video);
- `effvid predict` pipeline with 1 and 2 DataLoader workers (decoding in parallel with the
  model, batches of 32 clips from several videos), eager PyTorch and ONNX Runtime;
- decode only (the pipeline's workers, no model) and model only (the batched model on clips
  already in memory), to say which one bounds the pipeline.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from effvid.data import EvalClips, Preprocessing, make_demo_data, read_list_file
from effvid.deploy.benchmark import fingerprint
from effvid.deploy.export import export_registered_model
from effvid.inference.collection import ClipRequest, CollectionDataset, predict_collection
from effvid.inference.predictor import Predictor
from effvid.models import create_model

PREPROCESSING = {
    "num_frames": 8,
    "sampling_rate": 2,
    "crop_size": 56,
    "short_side": 64,
    "mean": [0.5] * 3,
    "std": [0.25] * 3,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    demo = make_demo_data(progress=False)
    videos = [str(r.path) for r in read_list_file(demo.root / "train.txt").records][: args.videos]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "vmf_xxs.pth"
        classes = (demo.root / "classes.txt").read_text().split()
        torch.save(
            {
                "model": create_model("vmf_xxs", num_classes=len(classes)).state_dict(),
                "model_name": "vmf_xxs",
                "class_names": classes,
                "preprocessing": PREPROCESSING,
            },
            checkpoint,
        )
        onnx = export_registered_model(None, Path(folder) / "vmf_xxs.onnx", checkpoint=checkpoint)

        predictor = Predictor(checkpoint=checkpoint)
        start = time.perf_counter()
        for video in videos:
            predictor.predict(video, clips=args.clips)
        results["per-file loop (Predictor.predict)"] = time.perf_counter() - start

        request = ClipRequest(clips=args.clips)
        for label, workers, source in [
            ("pipeline, 1 worker", 1, {"checkpoint": checkpoint}),
            ("pipeline, 2 workers", 2, {"checkpoint": checkpoint}),
            ("pipeline, 2 workers, ONNX Runtime", 2, {"onnx": onnx.path}),
        ]:
            start = time.perf_counter()
            predict_collection(
                videos, request=request, workers=workers, progress=False, device="cpu", **source
            )
            results[label] = time.perf_counter() - start

        clips = EvalClips(Preprocessing.from_dict(PREPROCESSING))
        start = time.perf_counter()
        decoded = list(
            torch.utils.data.DataLoader(
                CollectionDataset(videos, clips, request), batch_size=None, num_workers=2
            )
        )
        results["decode only, 2 workers"] = time.perf_counter() - start
        batch = torch.cat([item.clips for item in decoded[:4]])
        start = time.perf_counter()
        for _ in range(len(videos) // 4):
            predictor.model(batch[: 4 * args.clips])
        results["model only, batches of 4 videos"] = time.perf_counter() - start

    environment = fingerprint("cpu", args.threads)
    print(
        f"`python benchmarks/collection_throughput.py --videos {args.videos} --clips "
        f"{args.clips}`; {environment['machine']}, {args.threads} threads, torch "
        f"{environment['torch']}, {environment['date']}\n"
    )
    naive = results["per-file loop (Predictor.predict)"]
    print("| candidate | seconds | videos/s | vs per-file loop |\n|---|---|---|---|")
    for label, seconds in results.items():
        print(f"| {label} | {seconds:.1f} | {len(videos) / seconds:.1f} | {naive / seconds:.2f}x |")


if __name__ == "__main__":
    main()
