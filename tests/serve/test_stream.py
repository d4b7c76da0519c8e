"""`WS /v1/stream`: a causal checkpoint labels a client's frames as `effvid stream` labels the
same video, each connection with its own state; a clip model is refused in words; a frame that
is not a picture is answered with an error and the stream goes on; streams are counted."""

import io
import json

import av
import numpy as np
import pytest
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from effvid.data.decoding import frame_to_rgb
from effvid.inference.live import LiveRecognizer, run_stream
from tests.serve.conftest import client_of


def _pictures(video, format: str = "PNG") -> list[bytes]:
    """Every frame of `video`, full size, as one encoded picture each."""
    pictures = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            buffer = io.BytesIO()
            Image.fromarray(frame_to_rgb(frame)).save(buffer, format=format)
            pictures.append(buffer.getvalue())
    return pictures


def _stream(socket, pictures: list[bytes]) -> list[dict]:
    answers = []
    for picture in pictures:
        socket.send_bytes(picture)
        answers.append(socket.receive_json())
    return answers


def test_streamed_verdicts_equal_effvid_stream_on_the_same_frames(
    client, causal_checkpoint, test_video
):
    log = io.StringIO()  # every step of `effvid stream --json`
    run_stream(str(test_video), LiveRecognizer(causal_checkpoint), log=log, changes=io.StringIO())
    expected = [json.loads(line) for line in log.getvalue().splitlines()]
    pictures = _pictures(test_video)
    with client.websocket_connect("/v1/stream") as socket:
        hello = socket.receive_json()
        assert hello["ready"] and hello["short_side"] == 32 and hello["sampling_rate"] == 2
        answers = _stream(socket, pictures)
    steps = [answer for answer in answers if answer["step"]]
    assert [a["frame"] for a in steps] == [r["frame"] for r in expected] == [0, 2, 4, 6]
    verdicts = [(reading["label"], reading["score"]) for reading in expected]
    assert [(a["label"], a["score"]) for a in steps] == verdicts
    # Between steps a frame keeps the last verdict.
    assert [a["label"] for a in answers[1::2]] == [a["label"] for a in steps]


def test_each_connection_has_its_own_state(client, test_video):
    pictures = _pictures(test_video)
    with client.websocket_connect("/v1/stream") as first:
        first.receive_json()
        alone = _stream(first, pictures)
        with client.websocket_connect("/v1/stream") as second:
            second.receive_json()
            interleaved = []
            for picture in pictures:  # the first goes on while the second starts afresh
                first.send_bytes(picture)
                first.receive_json()
                second.send_bytes(picture)
                interleaved.append(second.receive_json())
    strip = lambda answers: [(a["label"], a["score"]) for a in answers]  # noqa: E731
    assert strip(interleaved) == strip(alone)


def test_a_clip_model_is_refused_in_words(clip_checkpoint):
    from effvid.serve import open_served_model

    with client_of(open_served_model(clip_checkpoint)) as client:
        with client.websocket_connect("/v1/stream") as socket:
            message = socket.receive_json()["error"]
            assert "not causal" in message and "model.args.causal=true" in message
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
        assert closed.value.code == 1008
        assert client.get("/healthz").status_code == 200


def test_malformed_frames_are_answered_and_the_stream_goes_on(causal_model, test_video):
    big = io.BytesIO()
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(big, format="PNG")
    bad = {
        b"not a picture": "must be one picture",
        _pictures(test_video, "BMP")[0]: "must be one picture",  # not a format it takes
        big.getvalue(): "300x300: at most",
        b"\x00" * 5000: "a frame of 5 kB",
    }
    good = _pictures(test_video)[0]
    with (
        client_of(causal_model, max_pixels=200 * 200, max_frame_kb=4) as client,
        client.websocket_connect("/v1/stream") as socket,
    ):
        socket.receive_json()
        for data, words in bad.items():
            socket.send_bytes(data)
            assert words in socket.receive_json()["error"]
        socket.send_text("hello")
        assert "binary message" in socket.receive_json()["error"]
        socket.send_bytes(good)
        assert socket.receive_json()["frame"] == 0  # the bad ones were skipped


def test_streams_beyond_the_limit_are_refused(causal_model, test_video):
    with client_of(causal_model, max_streams=1) as client:
        with client.websocket_connect("/v1/stream") as first:
            assert first.receive_json()["ready"]
            with client.websocket_connect("/v1/stream") as second:
                assert "its limit" in second.receive_json()["error"]
                with pytest.raises(WebSocketDisconnect) as closed:
                    second.receive_json()
                assert closed.value.code == 1013
        with client.websocket_connect("/v1/stream") as again:  # the slot is free again
            assert again.receive_json()["ready"]


def test_an_idle_stream_is_closed(causal_model):
    with (
        client_of(causal_model, request_timeout_s=0.2) as client,
        client.websocket_connect("/v1/stream") as socket,
    ):
        socket.receive_json()
        assert "no frame for 0.2 s" in socket.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect):
            socket.receive_json()
