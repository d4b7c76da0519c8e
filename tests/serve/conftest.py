"""The served checkpoints (a tiny VMF-XXS, causal and not, with the tiny demo videos' classes),
an application on them, and videos that are broken in the ways uploads are."""

from pathlib import Path

import pytest
import torch

import effvid
from tests.conftest import write_checkpoint

pytest.importorskip("fastapi")


@pytest.fixture(scope="package")
def classes(tiny_videos) -> list[str]:
    return (tiny_videos / "classes.txt").read_text().split()


@pytest.fixture(scope="package")
def causal_checkpoint(tmp_path_factory, classes) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("serve") / "causal.pth", classes, causal=True)


@pytest.fixture(scope="package")
def clip_checkpoint(tmp_path_factory, classes) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("serve") / "clip.pth", classes, causal=False)


@pytest.fixture(scope="package")
def causal_model(causal_checkpoint):
    from effvid.serve import open_served_model

    return open_served_model(causal_checkpoint)


@pytest.fixture(scope="package")
def test_video(tiny_videos) -> Path:
    """A real 8-frame 32x32 mp4 of the demo data (0.67 s at 12 fps)."""
    return tiny_videos / "videos" / "test" / "00000.mp4"


def client_of(served, **limits):
    """A TestClient of an application on `served` with these `ServeLimits` changes."""
    from fastapi.testclient import TestClient

    from effvid.serve import ServeLimits
    from effvid.serve.app import create_app

    return TestClient(create_app(served, ServeLimits(**limits)))


@pytest.fixture
def client(causal_model):
    with client_of(causal_model) as client:
        yield client


def upload(path: Path, name: str | None = None) -> dict:
    """The `files` of a request that uploads `path`."""
    return {"video": (name or path.name, path.read_bytes(), "video/mp4")}


BOUNDARY = "effvid-test-boundary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart_body(data: bytes, name: str = "video.mp4") -> bytes:
    """A multipart/form-data body (boundary `BOUNDARY`) carrying `data` as the file `video`, to
    send in pieces without a Content-Length."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="video"; '
            f'filename="{name}"\r\n\r\n')  # fmt: skip
    return head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.fixture(scope="package")
def trained_checkpoint(tmp_path_factory, tiny_videos, classes) -> tuple[Path, dict[Path, str]]:
    """A causal VMF-XXS trained (in seconds) to tell two test videos of the tiny demo data apart,
    and those videos with their classes. Trained on clips of 16 steps spanning the video played
    in a loop, as a camera fed from it plays it, so that its streamed verdict holds over loops."""
    from effvid.data import EvalClips, Preprocessing, open_video

    picked: dict[int, Path] = {}
    for line in (tiny_videos / "test.txt").read_text().splitlines():
        path, label = line.split()
        picked.setdefault(int(label), tiny_videos / path)
    videos = list(picked.items())[:2]
    preprocessing = Preprocessing(
        num_frames=4, sampling_rate=2, crop_size=32, short_side=32, mean=(0.5,) * 3, std=(0.25,) * 3
    )
    clips = EvalClips(preprocessing)

    def looped(video: Path, loops: int) -> torch.Tensor:
        with open_video(video, short_side=32) as reader:
            frames = clips.read(reader, list(range(reader.info.num_frames)))
        return frames.repeat(1, loops, 1, 1)  # (3, loops * T, 32, 32)

    steps = 16
    sequences = torch.stack([looped(video, steps // 4 + 2) for _, video in videos])
    labels = torch.tensor([label for label, _ in videos])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small model: more threads only contend
    try:
        torch.manual_seed(0)
        model = effvid.create_model("vmf_xxs", num_classes=len(classes), causal=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
        for start in [0, 3, 6, 1, 4, 7, 2, 5, 0, 3, 6, 1]:
            clip = sequences[:, :, start : start + 2 * steps : 2]
            loss = torch.nn.functional.cross_entropy(model(clip), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():  # BatchNorm statistics of the final weights, for eval mode
            for module in model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.reset_running_stats()
                    module.momentum = None  # a plain average
            for start in range(8):
                model(sequences[:, :, start : start + 2 * steps : 2])
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("trained") / "two_videos.pth"
    torch.save(
        {"model": model.eval().state_dict(), "model_name": "vmf_xxs",
         "model_args": {"causal": True}, "class_names": classes,
         "preprocessing": preprocessing.as_dict()},
        path,
    )  # fmt: skip
    return path, {video: classes[label] for label, video in videos}
