"""Decoded frames of a dataset split, kept in one memory-mapped file: decode once, train many
epochs (recipe key `data.frame_cache`).

For datasets of small, short videos (the built-in demo data, or any set that fits on disk
decoded), decoding is the biggest cost of an epoch after the model itself. `build_frame_cache`
decodes every video of a `VideoList` once, in parallel processes, into

    <folder>/frames.u8       every frame of every video, uint8 RGB, one after another
    <folder>/index.json      per video: byte offset, frames, height, width, fps, timestamps,
                             or the reason it could not be decoded

and `FrameCache` serves clips from it through the reader interface of `open_video`
(`info`, `read(frame_indices)`), so `VideoDataset` reads the same frames with or without it.
The file is memory-mapped: DataLoader workers and processes share the operating system's copy.
A video that cannot be decoded stays unreadable in the cache (`VideoDecodeError` with the
original reason), and counts for the bad-video policy as it would without the cache.

The folder name is a hash of the videos (paths, sizes, modification times) and the decode size:
a changed dataset gets a new cache, an unchanged one is reused.
"""

import hashlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from effvid.data.annotations.records import VideoList
from effvid.data.decoding import ClipReader, DecodedClip, VideoDecodeError, VideoInfo
from effvid.data.progress import progress_bar
from effvid.data.staging import publish, staging_folder
from effvid.data.video_files import open_video

INDEX_VERSION = 1


def _decode_whole(task: tuple[str, int | None, float]) -> tuple[np.ndarray | None, dict]:
    """Every frame of one video (uint8 (T, H, W, 3)) and its index entry, or None and the reason."""
    path, short_side, frame_folder_fps = task
    try:
        with open_video(path, short_side=short_side, frame_folder_fps=frame_folder_fps) as reader:
            clip = reader.read(range(reader.info.num_frames))
            fps = reader.info.fps
    except VideoDecodeError as error:
        return None, {"path": path, "error": error.reason}
    frames = clip.frames.numpy()
    count, height, width, _ = frames.shape
    timestamps = clip.timestamps.tolist()
    entry = {"path": path, "frames": count, "height": height, "width": width, "fps": fps,
             "timestamps": timestamps}  # fmt: skip
    return frames, entry


def cache_folder(videos: VideoList, short_side: int | None, cache_root: str | Path) -> Path:
    """Where the cache of these videos at this size lives (a hash of both)."""
    digest = hashlib.sha256(f"{INDEX_VERSION} {short_side}".encode())
    for record in videos.records:
        stat = Path(record.path).stat()
        digest.update(f"{record.path} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return Path(cache_root) / f"frames-{digest.hexdigest()[:16]}"


def build_frame_cache(
    videos: VideoList,
    cache_root: str | Path,
    *,
    short_side: int | None = None,
    frame_folder_fps: float = 30.0,
    workers: int | None = None,
    progress: bool = True,
) -> "FrameCache":
    """Decode every video of `videos` (short side resized to `short_side`, if given) into a cache
    under `cache_root`, or reuse the one already there. Returns it open."""
    folder = cache_folder(videos, short_side, cache_root)
    if (folder / "index.json").is_file():
        return FrameCache(folder)
    partial = staging_folder(folder)
    partial.mkdir(parents=True)
    tasks = [(str(record.path), short_side, frame_folder_fps) for record in videos.records]
    entries, offset = [], 0
    bar = progress_bar(len(tasks), "decoding once", enabled=progress, unit="video")
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    with (
        multiprocessing.get_context().Pool(workers) as pool,
        (partial / "frames.u8").open("wb") as data,
    ):
        for frames, entry in pool.imap(_decode_whole, tasks, chunksize=8):
            if frames is not None:
                entry["offset"] = offset
                data.write(np.ascontiguousarray(frames).tobytes())
                offset += frames.nbytes
            entries.append(entry)
            bar.update()
    bar.close()
    index = {"version": INDEX_VERSION, "short_side": short_side, "videos": entries}
    (partial / "index.json").write_text(json.dumps(index))
    publish(partial, folder, done=lambda: (folder / "index.json").is_file())
    return FrameCache(folder)


@dataclass(frozen=True)
class _Entry:
    path: str
    offset: int
    shape: tuple[int, int, int, int]
    info: VideoInfo
    timestamps: tuple[float, ...]


class FrameCache:
    """A built cache: `reader(path)` gives a reader for one of its videos."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        index = json.loads((self.folder / "index.json").read_text())
        self._entries: dict[str, _Entry | str] = {}
        for entry in index["videos"]:
            if "error" in entry:
                self._entries[entry["path"]] = entry["error"]
                continue
            shape = (entry["frames"], entry["height"], entry["width"], 3)
            info = VideoInfo(entry["frames"], entry["fps"], entry["frames"] / entry["fps"],
                             entry["width"], entry["height"])  # fmt: skip
            self._entries[entry["path"]] = _Entry(
                entry["path"], entry["offset"], shape, info, tuple(entry["timestamps"])
            )
        self._frames: np.ndarray | None = None  # mapped on first read, in the reading process

    def __contains__(self, path: str | Path) -> bool:
        return str(path) in self._entries

    def __getstate__(self) -> dict:  # workers map the file themselves
        return {**self.__dict__, "_frames": None}

    def _mapped(self) -> np.ndarray:
        if self._frames is None:
            path = self.folder / "frames.u8"
            size = path.stat().st_size
            self._frames = (
                np.memmap(path, dtype=np.uint8, mode="r", shape=(size,))
                if size
                else (np.zeros(0, np.uint8))
            )
        return self._frames

    def reader(self, path: str | Path) -> "CachedVideo":
        entry = self._entries[str(path)]
        if isinstance(entry, str):
            raise VideoDecodeError(path, entry)
        return CachedVideo(entry, self._mapped())


class CachedVideo(ClipReader):
    """One cached video, read like an open video file (the same frames, the same timestamps)."""

    def __init__(self, entry: _Entry, frames: np.ndarray) -> None:
        self.path = entry.path
        self.info = entry.info
        self._timestamps = entry.timestamps
        size = int(np.prod(entry.shape))
        self._video = frames[entry.offset : entry.offset + size].reshape(entry.shape)

    def read(self, frame_indices: Sequence[int]) -> DecodedClip:
        last = self.info.num_frames - 1
        indices = [min(index, last) for index in frame_indices]
        frames = torch.from_numpy(np.ascontiguousarray(self._video[indices]))
        times = torch.tensor([self._timestamps[i] for i in indices], dtype=torch.float64)
        return DecodedClip(frames, times)

    def count_decodable_frames(self) -> int:
        return self.info.num_frames
