"""Ranks: who owns the run, and how ranks agree on one run id.

Read from the launcher's environment (torchrun, SLURM, MPI) so that no torch import is
needed to decide; torch.distributed is used only when it is already initialised.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

_RANK_VARS = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
_WORLD_VARS = ("WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def _dist() -> Any:
    """torch.distributed when it is imported and initialised, else None (no import here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist
    return None


def rank_info() -> tuple[int, int]:
    dist = _dist()
    if dist is not None:
        return dist.get_rank(), dist.get_world_size()
    rank = next((int(os.environ[v]) for v in _RANK_VARS if os.environ.get(v, "").isdigit()), 0)
    world = next((int(os.environ[v]) for v in _WORLD_VARS if os.environ.get(v, "").isdigit()), 1)
    return rank, world


def is_main_process() -> bool:
    """True on global rank 0, or when no launcher is involved."""
    return rank_info()[0] == 0


def shared_run_id(proposed: str | None) -> str:
    """One run id for every rank: rank 0's, broadcast or derived from the launcher's job."""
    explicit = os.environ.get("STEADYRUN_RUN_ID")
    if explicit:
        return explicit
    dist = _dist()
    if dist is not None:
        box = [proposed if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return str(box[0])
    job = (os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("SLURM_JOB_ID")
           or os.environ.get("OMPI_MCA_orte_ess_jobid") or os.environ.get("PMI_JOBID"))
    if job and job != "none":
        port = os.environ.get("MASTER_PORT", "")
        import hashlib  # here, not at import: it costs init ~3 ms

        digest = hashlib.sha256(f"{job}:{port}".encode()).digest()
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(alphabet[b % 36] for b in digest[:8])
    if proposed is None:
        raise RuntimeError("steadyrun: all_ranks=True needs torch.distributed initialised "
                           "before init(), or STEADYRUN_RUN_ID, or a launcher job id")
    return proposed


def all_reduce_metrics(metrics: Mapping[str, Any], op: str) -> dict[str, Any]:
    """Every rank calls this with the same keys; every rank gets the reduced values."""
    if op not in ("mean", "sum", "min", "max"):
        raise ValueError(f"steadyrun: reduce must be mean, sum, min or max, got {op!r}")
    dist = _dist()
    if dist is None:
        return dict(metrics)
    torch = sys.modules["torch"]  # torch.distributed is initialised: torch is imported

    keys = sorted(metrics)
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" \
        else torch.device("cpu")
    vals = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=device)
    red = {"mean": dist.ReduceOp.SUM, "sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN,
           "max": dist.ReduceOp.MAX}[op]
    dist.all_reduce(vals, op=red)
    if op == "mean":
        vals /= dist.get_world_size()
    return dict(zip(keys, vals.tolist(), strict=True))
