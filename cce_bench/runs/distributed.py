"""Scale-out on torch.distributed: one process per GPU under torchrun or srun, each taking a shard.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; srun sets SLURM_PROCID,
SLURM_NTASKS and SLURM_LOCALID (MASTER_ADDR defaults to the node srun was started from). Shards are
whole batches (batch k goes to rank k mod world), so every batch is computed exactly as a single
process computes it and the merged tables equal the single-process ones.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, batch_index: int) -> bool:
        return batch_index % self.world == self.rank


def current_shard() -> Shard:
    env = os.environ
    if "WORLD_SIZE" in env and "RANK" in env:
        return Shard(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return Shard(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
    return Shard()


def start(shard: Shard, device: torch.device) -> None:
    if shard.world == 1 or dist.is_initialized():
        return
    os.environ.setdefault("MASTER_ADDR", os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
    os.environ.setdefault("MASTER_PORT", str(29500 + int(os.environ.get("SLURM_JOB_ID", "0")) % 1000))
    os.environ.setdefault("RANK", str(shard.rank))
    os.environ.setdefault("WORLD_SIZE", str(shard.world))
    # gloo for the barriers even on GPUs: they carry no tensors worth NCCL, and hours-long shards need a long timeout
    dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world, timeout=timedelta(hours=48))


def barrier(shard: Shard) -> None:
    if shard.world > 1 and dist.is_initialized():
        dist.barrier()


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
