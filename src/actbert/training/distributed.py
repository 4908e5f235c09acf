"""Process-group setup and teardown from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

gloo on CPU, NCCL on GPU. Without those variables everything runs as a single process and the helpers
below are no-ops, so the training loop has one code path.
"""
from __future__ import annotations

import datetime
import gc
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False  # we created the process group, so we destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's variables; (0, 1, 0) when they are absent."""
    try:
        rank = int(os.environ.get("RANK", 0))
        world = int(os.environ.get("WORLD_SIZE", 1))
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError as exc:
        raise ValueError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({exc})") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local


def pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} was asked for but CUDA is not available on this machine")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def setup(device: str = "auto", timeout_min: float = 30.0) -> DistInfo:
    """Join the process group described by the environment (idempotent). NCCL needs one GPU per rank."""
    rank, world, local = env_world()
    dev = pick_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world == 1:
        return DistInfo(0, 1, 0, dev, False)
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, dev, False)
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={world} but {var} is not set: start the job with torchrun")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(minutes=timeout_min))
    return DistInfo(rank, world, local, dev, True)


def teardown(info: DistInfo, *objects_to_drop: object) -> None:
    """Leave the process group cleanly.

    environment.md: about 1 gloo run in 6 aborted at exit ("terminate called without an active exception")
    until the DDP model and optimizer were released, garbage collected, and all ranks met at a barrier before
    destroy_process_group(). Callers pass nothing here but must `del` their own references first.
    """
    del objects_to_drop
    gc.collect()
    if info.initialized_here and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean over ranks (in place on a copy); identity in one process."""
    if not info.distributed:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.distributed:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast_object(obj, info: DistInfo):
    """Rank 0's `obj` on every rank (used to share one error message so all ranks stop together)."""
    if not info.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def free_port() -> int:
    """An unused TCP port on this host, for MASTER_PORT of a self-spawned local job."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_env(rank: int, world_size: int, port: int) -> dict[str, str]:
    """torchrun's variables for rank `rank` of a single-machine job (what `--nproc` spawning sets)."""
    return {"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
