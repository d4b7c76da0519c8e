"""`effvid serve`'s HTTP API in process (FastAPI's TestClient) on real little videos: the same
records as the command line, the model card, features and explanations, and every kind of bad
input answered with a 4xx and one line, the server serving on afterwards."""

import base64
import io
import json
import pickle

import pytest
import torch
from PIL import Image

from effvid.cli import main
from effvid.data import write_video
from effvid.inference.feature_store import FeatureStore
from tests.data.videos import write_indexed_video
from tests.serve.conftest import MULTIPART, client_of, multipart_body, upload


def _predict_json(video, checkpoint, capsys, *options) -> dict:
    """The record `effvid predict --json` prints for one video."""
    capsys.readouterr()
    status = main(["predict", str(video), "--checkpoint", str(checkpoint), "--json",
                   "--workers", "0", *options])  # fmt: skip
    assert status == 0
    (record,) = json.loads(capsys.readouterr().out)
    return record


def _still_serving(client, video) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.post("/v1/predict", files=upload(video)).status_code == 200


def test_health_and_model_card(client, classes):
    assert client.get("/healthz").json() == {"status": "ok"}
    card = client.get("/v1/model").json()
    assert card["model"] == "vmf_xxs" and card["runtime"] == "eager"
    assert card["class_names"] == classes
    assert card["preprocessing"]["num_frames"] == 4 and card["preprocessing"]["crop_size"] == 32
    assert card["streaming"] and card["features"] and card["explain"]
    assert card["limits"]["max_streams"] == 4


@pytest.mark.parametrize(
    "query, options",
    [
        ("", []),
        ("?top_k=3&clips=3", ["--top-k", "3", "--clips", "3"]),
        ("?timeline=true&window=0.3&stride=0.2", ["--timeline", "--window", "0.3",
                                                   "--stride", "0.2"]),
    ],
)  # fmt: skip
def test_predict_gives_the_record_of_effvid_predict_json(
    client, causal_checkpoint, test_video, capsys, query, options
):
    answer = client.post(f"/v1/predict{query}", files=upload(test_video, "folder/clip.mp4"))
    assert answer.status_code == 200
    expected = _predict_json(test_video, causal_checkpoint, capsys, *options)
    assert answer.json() == {**expected, "video": "clip.mp4"}  # the name only, no folder


def test_features_equal_those_of_effvid_features(client, causal_checkpoint, test_video, tmp_path):
    for per_clip in (False, True):
        answer = client.post(f"/v1/features?per_clip={per_clip}", files=upload(test_video))
        assert answer.status_code == 200
        store = tmp_path / f"store_{per_clip}"
        per_clip_option = ["--per-clip"] if per_clip else []
        main(["features", str(test_video), "--checkpoint", str(causal_checkpoint), "--output",
              str(store), "--workers", "0", *per_clip_option])  # fmt: skip
        features, spans = FeatureStore(store).load(str(test_video))
        served = torch.tensor(answer.json()["features"])
        assert served.shape == features.flatten(1).shape
        torch.testing.assert_close(served, features.flatten(1), atol=1e-4, rtol=1e-4)
        assert answer.json()["spans"] == [[round(a, 3), round(b, 3)] for a, b in spans]


def test_explain_gives_the_token_attention_animation(client, classes, test_video):
    answer = client.post("/v1/explain", files=upload(test_video)).json()
    assert answer["method"] == "tokens" and answer["label"] in classes
    with Image.open(io.BytesIO(base64.b64decode(answer["gif"]))) as animation:
        assert animation.format == "GIF" and animation.n_frames == 4  # one per clip frame


def test_a_clip_model_serves_but_refuses_to_stream(clip_checkpoint, test_video):
    from effvid.serve import open_served_model

    with client_of(open_served_model(clip_checkpoint)) as client:
        card = client.get("/v1/model").json()
        assert not card["streaming"] and "not causal" in card["stream_refusal"]
        assert str(clip_checkpoint.parent) not in card["stream_refusal"]
        assert client.post("/v1/predict", files=upload(test_video)).status_code == 200


# --- bad input: a 4xx with one line, never a 500, and the server serves on ---


def _bad_uploads(folder, video):
    """name -> (bytes of an upload, words its refusal has)."""
    good = video.read_bytes()
    cut_mkv = write_indexed_video(folder / "long.mkv", 60, fps=12)
    huge = folder / "huge.mp4"
    write_video(huge, [torch.zeros(2304, 4096, 3, dtype=torch.uint8).numpy()],
                options={"preset": "ultrafast"})  # fmt: skip
    return {
        "text.mp4": (b"this is not a video\n" * 20, "cannot decode 'text.mp4'"),
        "pickle.mp4": (pickle.dumps({"a": [1, 2]}), "cannot decode 'pickle.mp4'"),
        "empty.mp4": (b"", "cannot decode 'empty.mp4'"),
        "truncated.mp4": (good[: len(good) // 2], "cannot decode 'truncated.mp4'"),
        "truncated.mkv": (cut_mkv.read_bytes()[: cut_mkv.stat().st_size // 2],
                          "cannot decode 'truncated.mkv'"),
        "huge.mp4": (huge.read_bytes(), "4096x2304: the server takes at most"),
    }  # fmt: skip


def test_bad_videos_get_a_422_with_one_line(client, test_video, tmp_path):
    for name, (data, words) in _bad_uploads(tmp_path, test_video).items():
        for endpoint in ("/v1/predict", "/v1/predict?timeline=true", "/v1/features"):
            answer = client.post(endpoint, files={"video": (name, data)})
            assert answer.status_code == 422, (name, endpoint, answer.text)
            message = answer.json()["error"]
            assert words in message and "\n" not in message, message
            assert "effvid-upload" not in message  # the server's own paths stay its own
    _still_serving(client, test_video)


def _chunks(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_limits_on_size_duration_clips_and_time(causal_model, test_video):
    data = test_video.read_bytes()
    with client_of(causal_model, max_upload_mb=1000 / 2**20) as client:
        answer = client.post("/v1/predict", files=upload(test_video))
        assert answer.status_code == 413 and "larger than" in answer.json()["error"]
        # No Content-Length: counted while it arrives.
        answer = client.post(
            "/v1/predict", content=_chunks(multipart_body(data)), headers=MULTIPART
        )
        assert answer.status_code == 413 and "larger than" in answer.json()["error"]
        assert client.get("/healthz").status_code == 200
    with client_of(causal_model, max_duration_s=0.5) as client:
        answer = client.post("/v1/predict", files=upload(test_video))
        assert answer.status_code == 422
        assert answer.json()["error"] == (
            f"'{test_video.name}' lasts 0.7 s: the server takes at most 0.5 s"
        )
    with client_of(causal_model, max_request_clips=3) as client:
        answer = client.post("/v1/predict?timeline=true&window=0.2&stride=0.1",
                             files=upload(test_video))  # fmt: skip
        assert answer.status_code == 422
        assert answer.json()["error"] == (
            f"'{test_video.name}' would take 7 clips: the server reads at most 3 a request "
            "(ask for fewer clips or a longer stride)"
        )
        assert client.post("/v1/predict?clips=3", files=upload(test_video)).status_code == 200
        assert client.post("/v1/predict?clips=4", files=upload(test_video)).status_code == 422
    with client_of(causal_model, request_timeout_s=1e-4) as client:
        answer = client.post("/v1/predict", files=upload(test_video))
        assert answer.status_code == 408 and "longer than" in answer.json()["error"]


@pytest.mark.parametrize(
    "request_arguments, status, words",
    [
        ({"json": {"video": "x"}}, 400, "multipart/form-data"),
        ({"data": {"video": "/etc/hostname"}}, 400, "multipart/form-data"),
        ({"files": {"other": ("a.mp4", b"123")}}, 400, "no file in the form field 'video'"),
        ({"content": b"--xyz\r\ngarbage", "headers": {"content-type":
          "multipart/form-data; boundary=xyz"}}, 400, ""),
        ({"files": {"video": ("a.mp4", b"1")}, "params": {"top_k": 0}}, 422, "top_k"),
        ({"files": {"video": ("a.mp4", b"1")}, "params": {"clips": "many"}}, 422, "clips"),
        ({"files": {"video": ("a.mp4", b"1")}, "params": {"window": -1}}, 422, "window"),
    ],
)  # fmt: skip
def test_malformed_requests_get_a_4xx_with_one_line(client, test_video, request_arguments,
                                                    status, words):  # fmt: skip
    answer = client.post("/v1/predict", **request_arguments)
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]
    assert words in message and "\n" not in message and "Traceback" not in message
    _still_serving(client, test_video)


def test_a_path_named_in_a_multipart_text_field_is_not_read(client, test_video):
    # Were the server to open a path it is given, this would be a valid video.
    answer = client.post("/v1/predict", files={"video": (None, str(test_video))})
    assert answer.status_code == 400
    assert answer.json()["error"] == "the request carries no file in the form field 'video'"


def test_unknown_routes_layers_and_methods(client, test_video):
    assert client.get("/nothing").json() == {"error": "Not Found"}
    assert client.get("/v1/predict").status_code == 405
    answer = client.post("/v1/features?layer=secret", files=upload(test_video))
    assert answer.status_code == 422 and "layer must be one of" in answer.json()["error"]
    assert client.get("/page/../../../etc/hostname").status_code == 404
