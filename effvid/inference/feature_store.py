"""A store of video embeddings (`effvid features`): sharded safetensors files and an index, so
that one video's features load without reading the others.

    <store>/store.json           the store's provenance (`effvid.inference.outputs`): model,
                                 weights and their SHA-256, preprocessing, layer, pooling, views
    <store>/index.jsonl          per video: shard file, tensor key, shape, clip spans (seconds)
    <store>/shard-*.safetensors  the tensors, `videos_per_shard` videos (at most
                                 `bytes_per_shard` bytes) a file

A shard is written (to a temporary name, then renamed) before its videos enter the index, so the
index only ever names complete shards: a rerun after a kill redoes the videos of the shard that
was being filled, and nothing else (a half-written last index line is cut off). Under torchrun
each process writes its own shards and its own part of the index (`index.jsonl.part-R-of-W`),
merged by rank 0 at the end. A folder that is not an effvid store, or a store of another
provenance, is never written into (`--overwrite` replaces one of effvid's own stores).

    store = FeatureStore("features/")
    embedding, spans = store.load("videos/v001.mp4")   # (clips or 1, ...) and [(start, end)]
"""

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from effvid.files import atomic_write
from effvid.inference.outputs import (
    check_continuation,
    corrupt_line,
    foreign_error,
    json_lines,
    legacy_error,
)

INDEX = "index.jsonl"
MANIFEST = "store.json"
KIND = "features"
WAY_OUT = "write to another --output folder, or add --overwrite to replace it"
BAD_VIDEOS = "bad_videos.tsv"
LOCK = ".lock"  # `effvid.files.exclusive_lock` of the folder
LEFTOVERS = ".*.partial-*"  # what `effvid.files.atomic_write` leaves when a kill strikes


def _index_files(folder: Path) -> list[Path]:
    return [folder / INDEX, *sorted(folder.glob(f"{INDEX}.part-*-of-*"))]


def _index_entries(index: Path) -> Iterator[dict]:
    """The entries of one index file, each checked to name its video (file:line otherwise)."""
    with index.open(encoding="utf-8") as handle:
        lines = enumerate((line for line in handle if line.endswith("\n")), start=1)
        for number, entry in json_lines(index, lines):
            if not isinstance(entry.get("video"), str) or "shard" not in entry:
                raise corrupt_line(index, number, "not an index entry (no video and shard)")
            yield entry


def indexed_videos(folder: Path) -> list[str]:
    """Videos in the index and in every part of it."""
    return [
        entry["video"]
        for index in _index_files(folder)
        if index.exists()
        for entry in _index_entries(index)
    ]


def _cut_partial_line(index: Path) -> None:
    """Cut off a last index line that a kill left without its newline."""
    if not index.exists():
        return
    with index.open("r+b") as handle:
        size = end = handle.seek(0, os.SEEK_END)
        while end > 0:  # backwards, a block at a time, to the last newline
            start = max(0, end - (1 << 16))
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end < size:
            handle.truncate(end)


def _store_files(folder: Path) -> list[Path]:
    """What `effvid features` writes into a store (a lock file aside)."""
    patterns = [MANIFEST, f"{INDEX}*", "shard-*.safetensors", LEFTOVERS, BAD_VIDEOS]
    return [path for pattern in patterns for path in folder.glob(pattern)]


def check_owner(folder: Path) -> None:
    """ForeignOutputError if `folder` is a file, or a folder with files but no store.json
    (checked before anything, even a lock file, is written into it)."""
    if folder.exists() and not folder.is_dir():
        raise foreign_error(folder, "a feature store", "features")
    others = [path for path in folder.iterdir() if path.name != LOCK] if folder.exists() else []
    if others and not (folder / MANIFEST).exists():
        raise foreign_error(folder, "a feature store", "features")


def claim_store(folder: Path, provenance: Mapping, *, overwrite: bool = False) -> None:
    """Make `folder` a store of `provenance`, or check that it is one: ForeignOutputError for a
    folder (or file) that is not an effvid store; OutputMismatchError for a store of another
    provenance, unless `overwrite` (then its files are removed first)."""
    check_owner(folder)
    manifest = folder / MANIFEST
    if manifest.exists():
        try:
            written = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            raise foreign_error(folder, "a feature store", "features") from None
        if overwrite:
            for path in _store_files(folder):
                path.unlink()
        elif not isinstance(written, dict) or "effvid" not in written:
            raise legacy_error(folder, WAY_OUT)
        else:
            check_continuation(folder, written, provenance, WAY_OUT)
            return
    with atomic_write(manifest) as temporary:
        temporary.write_text(json.dumps(dict(provenance), indent=1) + "\n", encoding="utf-8")


class FeatureWriter:
    """Buffers videos' tensors and writes them `videos_per_shard` at a time, or as soon as
    they hold `bytes_per_shard` bytes (long videos' per-clip features)."""

    def __init__(
        self,
        folder: str | Path,
        provenance: Mapping,
        *,
        overwrite: bool = False,
        index_name: str = INDEX,
        shard_prefix: str = "shard",
        videos_per_shard: int = 64,
        bytes_per_shard: int = 1 << 28,
    ) -> None:
        self.folder = Path(folder)
        claim_store(self.folder, provenance, overwrite=overwrite)
        for leftover in self.folder.glob(f".{shard_prefix}-*.partial-*"):  # cut short by a kill
            leftover.unlink()
        self.index = self.folder / index_name
        _cut_partial_line(self.index)
        self.prefix = shard_prefix
        self.videos_per_shard = videos_per_shard
        self.bytes_per_shard = bytes_per_shard
        self.done = set(indexed_videos(self.folder))
        self.pending: list[tuple[str, torch.Tensor, list[tuple[float, float]]]] = []
        self.pending_bytes = 0

    def add(self, video: str, features: torch.Tensor, spans: Sequence[tuple[float, float]]) -> None:
        self.pending.append((video, features.contiguous(), list(spans)))
        self.pending_bytes += features.numel() * features.element_size()
        if len(self.pending) >= self.videos_per_shard or self.pending_bytes >= self.bytes_per_shard:
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
        self.pending_bytes = 0


class FeatureStore:
    """Read a store: `videos`, `manifest`, `load(video)`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not (self.folder / INDEX).exists():
            raise FileNotFoundError(f"{self.folder} has no {INDEX}: not a feature store")
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        self.entries = {entry["video"]: entry for entry in _index_entries(self.folder / INDEX)}

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
