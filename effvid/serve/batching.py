"""Requests that arrive together go through the model as one batch.

Each request hands in its clips (n, 3, T, S, S); the first one of a batch waits `wait_s` for
others, then the clips of as many whole requests as fit in `max_clips` run in one call of the
model function on the model's own thread, and each request gets its rows of every output back.
The event loop never runs the model: it only gathers, hands over and splits.

    request clips (n_i, 3, T, S, S) -> cat -> function -> {name: (sum n_i, ...)} -> split by n_i
"""

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from effvid.inference.collection import ClipFunction


@dataclass
class _Waiting:
    clips: torch.Tensor
    future: asyncio.Future


class ClipBatcher:
    """Batches of clips from concurrent requests through `function` on `executor`."""

    def __init__(
        self, function: ClipFunction, executor: Executor, *, wait_s: float, max_clips: int
    ) -> None:
        self.function = function
        self.executor = executor
        self.wait_s = wait_s
        self.max_clips = max_clips
        self.waiting: list[_Waiting] = []
        self.worker: asyncio.Task | None = None
        self.calls = 0  # model calls so far, and the requests they served
        self.requests = 0

    async def __call__(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """This request's outputs: {name: (n, ...)} for its n clips."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(_Waiting(clips, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    def _next_group(self) -> list[_Waiting]:
        """Whole requests from the front of the queue, up to `max_clips` clips (at least one
        request); requests given up on (timed out, disconnected) are dropped."""
        self.waiting = [entry for entry in self.waiting if not entry.future.done()]
        group, count = [], 0
        while self.waiting and (not group or count + len(self.waiting[0].clips) <= self.max_clips):
            group.append(self.waiting.pop(0))
            count += len(group[-1].clips)
        return group

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting:
            await asyncio.sleep(self.wait_s)
            group = self._next_group()
            if not group:
                continue
            clips = torch.cat([entry.clips for entry in group])
            try:
                outputs = await loop.run_in_executor(self.executor, self.function, clips)
            except Exception as error:  # each request reports it; the batcher goes on
                for entry in group:
                    if not entry.future.done():
                        entry.future.set_exception(error)
                continue
            self.calls += 1
            self.requests += len(group)
            start = 0
            for entry in group:
                end = start + len(entry.clips)
                if not entry.future.done():
                    entry.future.set_result({k: v[start:end] for k, v in outputs.items()})
                start = end
