"""One training step as MONAI's ``SupervisedTrainer`` takes it, for trainers with several loss terms and
optimizers: batches through the engine's ``prepare_batch``, mixed precision from the engine's ``amp`` flag,
its ``GradScaler``, and MONAI's iteration events."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys, convert_to_tensor

from .precision import mixed_precision_advice


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


def active_scaler(engine: SupervisedTrainer) -> torch.amp.GradScaler | None:
    """The engine's ``GradScaler`` where it scales (amp on CUDA); ``None`` elsewhere, where MONAI's trainer
    still holds a disabled one (amp on the CPU)."""
    scaler = engine.scaler if engine.amp else None
    return scaler if scaler is not None and scaler.is_enabled() else None


def backward(engine: SupervisedTrainer, loss: torch.Tensor) -> None:
    """Backpropagate ``loss``, scaled by the engine's ``GradScaler`` when amp runs on CUDA, outside autocast."""
    scaler = active_scaler(engine)
    with torch.autocast(torch.device(engine.state.device).type, enabled=False):
        (scaler.scale(loss) if scaler is not None else loss).backward()


def optimizer_step(
    engine: SupervisedTrainer, images: torch.Tensor, labels: torch.Tensor | None, logits: torch.Tensor,
    loss: torch.Tensor, optimizers: Iterable[torch.optim.Optimizer], backpropagated: bool = False,
) -> None:
    """After the forward pass and the loss (computed together): fire FORWARD_COMPLETED and LOSS_COMPLETED,
    backpropagate ``loss`` (scaled by the engine's ``GradScaler`` when amp runs on CUDA) unless the caller
    already ``backpropagated`` it share by share, fire BACKWARD_COMPLETED, step every optimizer (without a
    ``GradScaler``, only once ``check_finite_gradients`` passes) and fire MODEL_COMPLETED."""
    engine.state.output = {CommonKeys.IMAGE: images, CommonKeys.LABEL: labels, CommonKeys.PRED: logits}
    engine.fire_event(IterationEvents.FORWARD_COMPLETED)
    engine.state.output[CommonKeys.LOSS] = loss
    engine.fire_event(IterationEvents.LOSS_COMPLETED)
    if not backpropagated:
        backward(engine, loss)
    engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
    scaler = active_scaler(engine)
    if scaler is None:
        check_finite_gradients(engine, loss, optimizers)
    for optimizer in optimizers:
        if scaler is not None:
            scaler.step(optimizer)
        else:
            optimizer.step()
    if scaler is not None:
        scaler.update()
    engine.fire_event(IterationEvents.MODEL_COMPLETED)


def check_finite_gradients(
    engine: SupervisedTrainer, loss: torch.Tensor, optimizers: Iterable[torch.optim.Optimizer]
) -> None:
    """Stop with an error, before any optimizer steps, where a finite ``loss`` gave NaN or infinite gradients:
    one such step makes every weight NaN, and the run would fail one iteration later blaming the data. (A
    non-finite loss is left to ``StopOnNonFiniteLoss``, which names its terms; a ``GradScaler`` skips such
    steps itself.)"""
    params = [p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]
              if p.grad is not None]
    if not params or not torch.isfinite(loss.detach()).all():
        return
    if torch.isfinite(torch.nn.utils.get_total_norm([p.grad for p in params], norm_type=float("inf"))):
        return
    names = {id(p): f"{attribute}.{name}" for attribute, module in vars(engine).items()
             if isinstance(module, torch.nn.Module) for name, p in module.named_parameters()}
    broken = [names.get(id(p), "an unnamed parameter") for p in params if not torch.isfinite(p.grad).all()]
    raise FloatingPointError(
        f"{type(engine).__name__}: non-finite gradients at iteration {engine.state.iteration} (epoch "
        f"{engine.state.epoch}) from a finite loss ({loss.item():.4g}), in {len(broken)} of {len(params)} parameter "
        f"tensors (first: {broken[0]}); no optimizer stepped. Training stopped; the checkpoints saved so far are "
        f"kept.{mixed_precision_advice(engine.amp, engine.state.device) or ' Lower --learning_rate.'}"
    )
