"""Finding and opening videos, whether stored as encoded files or as frame folders."""

import os
from pathlib import Path

from effvid.data.decoding import VIDEO_EXTENSIONS, ClipReader, VideoReader
from effvid.data.frame_folders import IMAGE_EXTENSIONS, FrameFolderReader


def open_video(
    path: str | Path, *, short_side: int | None = None, frame_folder_fps: float = 30.0
) -> ClipReader:
    """A reader for an encoded video file, or for a frame folder when `path` is a directory."""
    if Path(path).is_dir():
        return FrameFolderReader(path, fps=frame_folder_fps, short_side=short_side)
    return VideoReader(path, short_side=short_side)


def find_videos(root: str | Path) -> list[Path]:
    """Every video below `root`, sorted: files with a video suffix, and folders holding images;
    hidden files and folders (`.ipynb_checkpoints`, `._clip.mp4`) are not videos."""
    found = []
    for folder, subfolders, all_names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        names = [name for name in all_names if not name.startswith(".")]
        suffixes = {name: os.path.splitext(name)[1].lower() for name in names}
        found += [Path(folder, name) for name in names if suffixes[name] in VIDEO_EXTENSIONS]
        if IMAGE_EXTENSIONS.intersection(suffixes.values()):
            found.append(Path(folder))
    return sorted(found)
