"""A store of video embeddings (`effvid features`): sharded safetensors files and an index, so
that one video's features load without reading the others.

    <store>/store.json           model, layer, pooling, preprocessing, checkpoint and its sha256
    <store>/index.jsonl          per video: shard file, tensor key, shape, clip spans (seconds)
    <store>/shard-*.safetensors  the tensors, `videos_per_shard` videos a file

A shard is written (to a temporary name, then renamed) before its videos enter the index, so the
index only ever names complete shards: a rerun after a kill redoes the videos of the shard that
was being filled, and nothing else. Under torchrun each process writes its own shards and its
own part of the index (`index.jsonl.part-R-of-W`), merged by rank 0 at the end.

    store = FeatureStore("features/")
    embedding, spans = store.load("videos/v001.mp4")   # (clips or 1, ...) and [(start, end)]
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from effvid.errors import InputError
from effvid.files import atomic_write

INDEX = "index.jsonl"
MANIFEST = "store.json"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def indexed_videos(folder: Path) -> list[str]:
    """Videos in the index and in every part of it."""
    videos = []
    for index in [folder / INDEX, *sorted(folder.glob(f"{INDEX}.part-*-of-*"))]:
        if index.exists():
            lines = index.read_text(encoding="utf-8").splitlines()
            videos += [json.loads(line)["video"] for line in lines if line.strip()]
    return videos


class FeatureWriter:
    """Buffers videos' tensors and writes them `videos_per_shard` at a time."""

    def __init__(
        self,
        folder: str | Path,
        manifest: dict,
        *,
        index_name: str = INDEX,
        shard_prefix: str = "shard",
        videos_per_shard: int = 64,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.folder.glob(".*.tmp"):  # a shard a kill cut short
            leftover.unlink()
        manifest_path = self.folder / MANIFEST
        if manifest_path.exists():
            written = json.loads(manifest_path.read_text())
            if written != manifest:
                raise InputError(
                    f"{self.folder} holds features of another model, layer or preprocessing: "
                    "use another folder"
                )
        else:
            manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        self.index = self.folder / index_name
        self.prefix = shard_prefix
        self.videos_per_shard = videos_per_shard
        self.done = set(indexed_videos(self.folder))
        self.pending: list[tuple[str, torch.Tensor, list[tuple[float, float]]]] = []

    def add(self, video: str, features: torch.Tensor, spans: Sequence[tuple[float, float]]) -> None:
        self.pending.append((video, features.contiguous(), list(spans)))
        if len(self.pending) >= self.videos_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        number = sum(1 for _ in self.folder.glob(f"{self.prefix}-*.safetensors"))
        shard = f"{self.prefix}-{number:05d}.safetensors"
        tensors = {f"v{i}": features for i, (_, features, _) in enumerate(self.pending)}
        with atomic_write(self.folder / shard) as temporary:
            save_file(tensors, temporary)
        with self.index.open("a", encoding="utf-8") as handle:
            for i, (video, features, spans) in enumerate(self.pending):
                entry = {"video": video, "shard": shard, "key": f"v{i}",
                         "shape": list(features.shape), "spans": spans}  # fmt: skip
                handle.write(json.dumps(entry) + "\n")
        self.done.update(video for video, _, _ in self.pending)
        self.pending = []


class FeatureStore:
    """Read a store: `videos`, `manifest`, `load(video)`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not (self.folder / INDEX).exists():
            raise FileNotFoundError(f"{self.folder} has no {INDEX}: not a feature store")
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        lines = (self.folder / INDEX).read_text(encoding="utf-8").splitlines()
        self.entries = {entry["video"]: entry for entry in map(json.loads, filter(None, lines))}

    @property
    def videos(self) -> list[str]:
        return list(self.entries)

    def load(self, video: str) -> tuple[torch.Tensor, list[tuple[float, float]]]:
        """One video's features and the spans (seconds) of the clips they come from; only that
        tensor is read from its shard."""
        entry = self.entries[str(video)]
        with safe_open(self.folder / entry["shard"], framework="pt") as shard:
            features = shard.get_tensor(entry["key"])
        return features, [tuple(span) for span in entry["spans"]]
