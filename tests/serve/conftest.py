"""The served checkpoints (a tiny VMF-XXS, causal and not, with the tiny demo videos' classes),
an application on them, and videos that are broken in the ways uploads are."""

from pathlib import Path

import pytest

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
