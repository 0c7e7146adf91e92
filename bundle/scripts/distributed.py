"""Training in several processes launched by torchrun (one per GPU, or several on the CPU): the process group
and the wrapper of every trained network (``configs/multi_gpu_train.yaml``)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from ignite import distributed as idist
from monai.data import DistributedSampler
from torch import nn

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class ProcessGroup:
    """Joins the process group that torchrun describes in the environment: NCCL when CUDA is available, each
    process on the GPU of its ``LOCAL_RANK``; gloo on the CPU. ``rank``, ``world_size`` and ``device`` say
    where this process stands; ``data_parallel(module)`` wraps a trained network in
    ``DistributedDataParallel``."""

    def __init__(self, timeout_minutes: float = 60.0) -> None:
        missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
        if missing:
            raise RuntimeError(
                f"multi_gpu_train.yaml runs under torchrun, but {', '.join(missing)} is not set: launch it with "
                "torchrun --nproc_per_node N -m monai.bundle run training --config_file \"[..., "
                "'bundle/configs/multi_gpu_train.yaml']\"."
            )
        local_rank = int(os.environ["LOCAL_RANK"])
        if torch.cuda.is_available():
            if local_rank >= torch.cuda.device_count():
                raise RuntimeError(
                    f"process {local_rank} of this node has no GPU: {torch.cuda.device_count()} visible; start "
                    "at most that many processes per node (--nproc_per_node)."
                )
            self.device = torch.device("cuda", local_rank)
            torch.cuda.set_device(self.device)
            backend = "nccl"
        else:
            self.device = torch.device("cpu")
            backend = "gloo"
        self._store = None
        if not dist.is_initialized():
            # the rendezvous's key-value store: where destroy() meets, outside the backend's connections
            timeout = datetime.timedelta(minutes=timeout_minutes)
            self._store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
            dist.init_process_group(backend, store=self._store, rank=rank, world_size=world_size, timeout=timeout)
        # ignite (checkpoints, metrics) sets up its view of the group with a collective on first use: here, in
        # every process at once, not later in only the processes whose handlers happen to need it
        idist.sync()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    def data_parallel(self, module: nn.Module) -> nn.parallel.DistributedDataParallel:
        """``module`` (on this process's device) in ``DistributedDataParallel``: rank 0's parameters are copied
        to every process, and gradients are averaged over the processes in every backward pass.

        Every parameter must take part in every backward pass, which holds for the shared body: its two
        pathways run through the same UNet. Separate pathway UNets leave one pathway's parameters out of some
        passes, which ``DistributedDataParallel`` cannot average, so they are refused."""
        if getattr(module, "shared_body", True) is False:
            raise ValueError(
                "multi-GPU training needs network_def#shared_body true: with one UNet per pathway, one "
                "pathway's parameters take no part in some backward passes, and their gradients cannot be averaged."
            )
        device_ids = [self.device] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

    def barrier(self) -> None:
        dist.barrier()

    def destroy(self) -> None:
        """Leave the group together. A process that tears gloo down closes its connections, and a peer whose
        last message is still on its way can abort (gloo issue 155, "barrier followed by context destruction"),
        so after the last barrier every process also waits, on the rendezvous store, until all of them have
        returned from it: by then every message has arrived."""
        if not dist.is_initialized():
            return
        dist.barrier()
        if self._store is not None:
            if self._store.add("processes_done", 1) == self.world_size:
                self._store.set("all_processes_done", "1")
            self._store.wait(["all_processes_done"])
        dist.destroy_process_group()


def evaluation_sampler(dataset: Sequence, split: str, allow_empty: bool = False) -> DistributedSampler | None:
    """Each process's share of an evaluation split, in order and without repeats: MONAI's metrics gather
    the shares, so every image counts once. A split with fewer images than processes is refused (a
    process without images cannot take part), unless it has none and ``allow_empty`` (a dataset without a
    test split, which the test stage skips): then there is nothing to share out."""
    world_size = dist.get_world_size()
    if allow_empty and len(dataset) == 0:
        return None
    if len(dataset) < world_size:
        raise ValueError(
            f"the {split} split has {len(dataset)} images, fewer than the {world_size} processes of this run: "
            "run fewer processes, or give the split more images."
        )
    return DistributedSampler(dataset, shuffle=False, even_divisible=False)


def is_distributed() -> bool:
    """Whether this process is one of several in a process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """Rank 0 of a process group, or a process that runs alone."""
    return not is_distributed() or dist.get_rank() == 0


class MainProcessHandlers:
    """The handlers that only the main process attaches: logs, TensorBoard, figures, progress and the files
    written once per run. A member is a handler, or a callable that makes one (``_mode_: callable`` in the
    config) where making it already writes something (a TensorBoard writer creates its file), so that the
    other processes make none of those.

    Args:
        handlers: the handlers, or callables returning one, attached in this order.
        main_process: whether this process is the main one; elsewhere nothing is attached.
    """

    def __init__(self, handlers: Sequence, main_process: bool = True) -> None:
        self.handlers = list(handlers)
        self.main_process = main_process

    def attach(self, engine) -> None:
        if not self.main_process:
            return
        for handler in self.handlers:
            (handler if hasattr(handler, "attach") else handler()).attach(engine)
