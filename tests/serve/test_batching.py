"""Requests arriving together share model calls, with the answers each would get alone; without
batching each has its own call; a slow upload does not hold up the others."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from effvid.serve import ServeLimits
from effvid.serve.app import create_app
from effvid.serve.batching import ClipBatcher
from tests.serve.conftest import MULTIPART, multipart_body


def _batched(sizes: list[int], max_clips: int, function=None) -> tuple[list, list[int]]:
    """Requests of `sizes` clips each (clip i of request r filled with r), handed in together:
    what each gets back, and the number of clips of each model call."""
    calls = []

    def identity(clips: torch.Tensor) -> dict[str, torch.Tensor]:
        calls.append(len(clips))
        return {"rows": clips.flatten(1)[:, 0]}

    async def run():
        with ThreadPoolExecutor(1) as model_thread:
            batcher = ClipBatcher(function or identity, model_thread, wait_s=0.01,
                                  max_clips=max_clips)  # fmt: skip
            requests = [batcher(torch.full((n, 3, 1, 1, 1), float(r))) for r, n in enumerate(sizes)]
            return await asyncio.gather(*requests, return_exceptions=True)

    return asyncio.run(run()), calls


@pytest.mark.parametrize(
    "max_clips, calls", [(32, [6]), (3, [3, 3]), (2, [1, 2, 1, 2]), (1, [1, 2, 1, 2])]
)
def test_whole_requests_share_calls_up_to_the_clip_limit(max_clips, calls):
    answers, made = _batched([1, 2, 1, 2], max_clips)
    assert made == calls  # a request is never split, nor left out for a later one
    assert [a["rows"].tolist() for a in answers] == [[0.0], [1.0, 1.0], [2.0], [3.0, 3.0]]


def test_a_failing_call_fails_its_requests_and_the_batcher_goes_on():
    def fails_on_two(clips):
        if len(clips) == 2:
            raise RuntimeError("out of memory")
        return {"rows": clips.flatten(1)[:, 0]}

    answers, _ = _batched([1, 2, 1], 2, fails_on_two)
    assert isinstance(answers[1], RuntimeError)
    assert answers[0]["rows"].tolist() == [0.0] and answers[2]["rows"].tolist() == [2.0]


async def _post_together(app, requests: list) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
        return await asyncio.gather(*(client.post("/v1/predict", **r) for r in requests))


@pytest.mark.parametrize("batch_clips", [32, 1])
def test_requests_arriving_together_share_a_model_call(causal_model, test_video, batch_clips):
    # The first request waits up to 1.5 s for the others (their upload and decoding).
    app = create_app(causal_model, ServeLimits(batch_wait_ms=1500, batch_clips=batch_clips))
    data = test_video.read_bytes()
    requests = [{"files": {"video": (f"v{i}.mp4", data)}, "params": {"clips": 1 + i % 2}}
                for i in range(4)]  # fmt: skip
    answers = asyncio.run(_post_together(app, requests))
    batcher = app.state.server.batchers["logits"]
    assert batcher.requests == 4
    assert batcher.calls == 4 if batch_clips == 1 else batcher.calls < 4
    alone = create_app(causal_model, ServeLimits(batch_clips=1))
    for request, answer in zip(requests, answers, strict=True):
        (single,) = asyncio.run(_post_together(alone, [request]))
        expected = single.json()["top"]
        assert [e["label"] for e in answer.json()["top"]] == [e["label"] for e in expected]
        for got, want in zip(answer.json()["top"], expected, strict=True):
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)


def test_a_slow_upload_does_not_hold_up_the_others(causal_model, test_video):
    app = create_app(causal_model, ServeLimits(batch_wait_ms=1))
    data = test_video.read_bytes()
    body = multipart_body(data, "slow.mp4")
    finished = {}

    async def trickle():
        for start in range(0, len(body), 500):
            yield body[start : start + 500]
            await asyncio.sleep(0.2)

    async def timed(name, client, **request):
        answer = await client.post("/v1/predict", **request)
        finished[name] = time.monotonic()
        return answer

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            slow = asyncio.create_task(timed("slow", client, content=trickle(), headers=MULTIPART))
            await asyncio.sleep(0.1)
            fast = [timed(f"fast{i}", client, files={"video": ("f.mp4", data)}) for i in range(3)]
            return await asyncio.gather(slow, *fast)

    answers = asyncio.run(run())
    assert [a.status_code for a in answers] == [200] * 4
    assert max(finished[f"fast{i}"] for i in range(3)) < finished["slow"] - 0.5
