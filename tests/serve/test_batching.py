"""Requests arriving together share model calls, with the answers each would get alone; without
batching each has its own call; a slow upload does not hold up the others."""

import asyncio
import time

import httpx
import pytest

from effvid.serve import ServeLimits
from effvid.serve.app import create_app
from tests.serve.conftest import MULTIPART, multipart_body


async def _post_together(app, requests: list) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
        return await asyncio.gather(*(client.post("/v1/predict", **r) for r in requests))


@pytest.mark.parametrize("batch_clips, calls", [(32, 1), (1, 4)])
def test_requests_arriving_together_share_a_model_call(causal_model, test_video, batch_clips,
                                                       calls):  # fmt: skip
    app = create_app(causal_model, ServeLimits(batch_wait_ms=300, batch_clips=batch_clips))
    data = test_video.read_bytes()
    requests = [{"files": {"video": (f"v{i}.mp4", data)}, "params": {"clips": 1 + i % 2}}
                for i in range(4)]  # fmt: skip
    answers = asyncio.run(_post_together(app, requests))
    batcher = app.state.server.batchers["logits"]
    assert (batcher.calls, batcher.requests) == (calls, 4)
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
