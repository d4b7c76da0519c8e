"""One process per device, started by `torchrun` (or alone): rank, world size, collectives.

Without torchrun's environment variables everything degrades to a single process, so the same
code trains on a laptop CPU and on many GPUs across machines.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from effvid.errors import EffvidError


class DeviceUnavailableError(EffvidError, ValueError):
    """A device was asked for that this machine does not have."""


def wants_cuda(device: str | None) -> bool:
    """Whether to run on CUDA: `device` 'cpu' or 'cuda', default CUDA when available; 'cuda'
    on a machine without it is a DeviceUnavailableError."""
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("device 'cuda' was asked for but no CUDA device is available")
    return torch.cuda.is_available() if device is None else device == "cuda"


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistributedContext:
    """Join the process group torchrun describes (gloo on CPU, nccl on GPU), or run alone.

    `device`: 'cpu' or 'cuda'; default: CUDA when available.
    """
    use_cuda = wants_cuda(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank, world_size, local_rank, target)


def teardown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_gather_objects(value: object) -> list[object]:
    """Every process's `value`, in rank order (just `[value]` in a single process)."""
    if not dist.is_initialized():
        return [value]
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def all_reduce_mean(value: float) -> float:
    """The mean of a number over processes."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.item() / dist.get_world_size()
