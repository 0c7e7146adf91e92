"""One training step as MONAI's ``SupervisedTrainer`` takes it, for trainers with several loss terms and
optimizers: batches through the engine's ``prepare_batch``, mixed precision from the engine's ``amp`` flag,
its ``GradScaler``, and MONAI's iteration events."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys, convert_to_tensor


def plain_batch(engine: SupervisedTrainer, batchdata: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(images, labels)`` of a batch through ``engine.prepare_batch`` on the engine's device, as plain
    tensors; labels are ``None`` for a batch without them."""
    images, labels = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
    return convert_to_tensor(images, track_meta=False), (
        None if labels is None else convert_to_tensor(labels, track_meta=False)
    )


def autocast(engine: SupervisedTrainer) -> torch.autocast:
    """The forward pass's precision: with ``engine.amp``, autocast on the engine's device type with
    ``engine.amp_kwargs`` (torch's default dtype there: float16 on CUDA, bfloat16 on the CPU); else none."""
    device = torch.device(engine.state.device)
    return torch.autocast(device.type, enabled=bool(engine.amp), **engine.amp_kwargs)


def backward(engine: SupervisedTrainer, loss: torch.Tensor) -> None:
    """Backpropagate ``loss``, scaled by the engine's ``GradScaler`` when amp runs on CUDA, outside autocast."""
    scaler = engine.scaler if engine.amp else None
    with torch.autocast(torch.device(engine.state.device).type, enabled=False):
        (scaler.scale(loss) if scaler is not None else loss).backward()


def optimizer_step(
    engine: SupervisedTrainer, images: torch.Tensor, labels: torch.Tensor | None, logits: torch.Tensor,
    loss: torch.Tensor, optimizers: Iterable[torch.optim.Optimizer], backpropagated: bool = False,
) -> None:
    """After the forward pass and the loss (computed together): fire FORWARD_COMPLETED and LOSS_COMPLETED,
    backpropagate ``loss`` (scaled by the engine's ``GradScaler`` when amp runs on CUDA) unless the caller
    already ``backpropagated`` it share by share, fire BACKWARD_COMPLETED, step every optimizer and fire
    MODEL_COMPLETED."""
    engine.state.output = {CommonKeys.IMAGE: images, CommonKeys.LABEL: labels, CommonKeys.PRED: logits}
    engine.fire_event(IterationEvents.FORWARD_COMPLETED)
    engine.state.output[CommonKeys.LOSS] = loss
    engine.fire_event(IterationEvents.LOSS_COMPLETED)
    if not backpropagated:
        backward(engine, loss)
    engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
    scaler = engine.scaler if engine.amp else None
    for optimizer in optimizers:
        if scaler is not None:
            scaler.step(optimizer)
        else:
            optimizer.step()
    if scaler is not None:
        scaler.update()
    engine.fire_event(IterationEvents.MODEL_COMPLETED)
