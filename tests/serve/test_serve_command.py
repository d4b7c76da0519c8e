"""`effvid serve` as a user starts it, and the server on an exported model: it predicts as the
checkpoint does, and refuses in words what an exported file cannot do."""

import socket
import subprocess
import sys
import time

import httpx
import pytest

from effvid.cli import main
from effvid.serve import open_served_model
from tests.serve.conftest import client_of, upload


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.subprocess
def test_the_command_serves_the_page_and_the_api_on_loopback(causal_checkpoint, test_video):
    port = _free_port()
    command = [sys.executable, "-m", "effvid.cli", "serve", "--checkpoint",
               str(causal_checkpoint), "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "it did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        page = httpx.get(url)
        assert page.status_code == 200 and "<title>effvid</title>" in page.text
        assert httpx.get(f"{url}/page/page.js").status_code == 200
        answer = httpx.post(f"{url}/v1/predict", files=upload(test_video)).json()
        assert len(answer["top"]) == 5
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f"effvid serve: {url}" in server.stderr.read()


def test_the_command_wants_a_model_and_sane_limits(capsys):
    assert main(["serve"]) == 2
    assert "give --checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--checkpoint", "x.pth", "--max-streams", "0"])
    assert "--max-streams: must be an integer >= 1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def exported_clip(clip_checkpoint, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    path = tmp_path_factory.mktemp("exported") / "clip.onnx"
    assert main(["export", "--checkpoint", str(clip_checkpoint), "--output", str(path)]) == 0
    return path


def test_an_exported_model_serves_as_its_checkpoint(exported_clip, clip_checkpoint, test_video):
    with client_of(open_served_model(clip_checkpoint)) as client:
        expected = client.post("/v1/predict", files=upload(test_video)).json()
    with client_of(open_served_model(onnx=exported_clip)) as client:
        card = client.get("/v1/model").json()
        assert card["runtime"] == "onnxruntime" and not card["features"] and not card["explain"]
        assert "cannot stream" in card["stream_refusal"]
        answer = client.post("/v1/predict", files=upload(test_video)).json()
        assert [e["label"] for e in answer["top"]] == [e["label"] for e in expected["top"]]
        for got, want in zip(answer["top"], expected["top"], strict=True):
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)
        refused = client.post("/v1/explain", files=upload(test_video))
        assert refused.status_code == 400 and "--checkpoint" in refused.json()["error"]
        refused = client.post("/v1/features", files=upload(test_video))
        assert refused.status_code == 400 and "--checkpoint" in refused.json()["error"]
