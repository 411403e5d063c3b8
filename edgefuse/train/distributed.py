"""Multi-process training with torch.distributed (launched by `torchrun`).

We use the existing engine: `torch.nn.parallel.DistributedDataParallel` and
`DistributedSampler`. DynMM's grouped-by-path forward leaves the depth stages of the
paths no sample took without gradient in a step, so dynamic models are wrapped with
`find_unused_parameters=True` (DDP then marks them ready instead of waiting forever).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistContext:
    """Join the process group torchrun describes (RANK/WORLD_SIZE/LOCAL_RANK); a single
    process without torchrun gets a trivial context. NCCL on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        return DistContext(device=device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local, device)


def wrap_model(model: torch.nn.Module, ctx: DistContext, dynamic: bool) -> torch.nn.Module:
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # Unused parameters: dynamic paths (above), and the gate in stage I, whose random
    # decisions carry no gradient to it.
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=dynamic)


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def sync_buffers(model: torch.nn.Module, ctx: DistContext) -> None:
    """Broadcast rank 0's buffers (BN running statistics). DDP broadcasts them at the start of
    each forward, so after the last step of an epoch every rank still holds its own update;
    syncing makes all ranks hold exactly the model rank 0 saves."""
    if ctx.enabled:
        for b in model.buffers():
            dist.broadcast(b, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
