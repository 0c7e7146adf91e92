"""The training loop shape shared by co-training and the semi-supervised baselines."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys
from torch.utils.data.distributed import DistributedSampler

from .training_step import plain_batch


class SemiSupervisedTrainer(SupervisedTrainer):
    """A ``SupervisedTrainer`` whose iteration takes one unlabeled batch from ``train_data_loader`` (an
    epoch is one pass over the unlabeled set) and one labeled batch from ``labeled_data_loader`` (cycled;
    its batch size sets the labeled:unlabeled ratio; a ``DistributedSampler`` of it gets a new epoch, and
    so a new order, for every pass). ``consistency_weight(epoch)`` weighs the unsupervised terms.
    ``network``/``optimizer`` are the model that is validated and saved.

    Args:
        device, max_epochs, network, optimizer, loss_function: as for ``SupervisedTrainer``; ``loss_function``
            is the supervised loss of the labeled batch.
        train_data_loader: the unlabeled batches (an epoch is one pass over them).
        labeled_data_loader: the labeled batches, cycled.
        consistency_weight: lambda as a function of the epoch (``scripts.ramps``).
        kwargs: the other ``SupervisedTrainer`` arguments (``prepare_batch``, ``amp``, ``train_handlers``, ...).
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Iterable,
        labeled_data_loader: Iterable,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_function: Callable,
        consistency_weight: Callable[[int], float],
        **kwargs,
    ) -> None:
        super().__init__(
            device=device, max_epochs=max_epochs, train_data_loader=train_data_loader, network=network,
            optimizer=optimizer, loss_function=loss_function, decollate=False, **kwargs,
        )
        self.labeled_data_loader = labeled_data_loader
        self.consistency_weight = consistency_weight
        self._labeled_iterator = None
        self._labeled_passes = 0

    def checkpoint_state(self) -> dict:
        """What a resumed run needs of this trainer, by checkpoint key: its networks and optimizers."""
        return {"network": self.network, "optimizer": self.optimizer}

    def _next_labeled_batch(self) -> dict:
        if self._labeled_iterator is not None:
            batch = next(self._labeled_iterator, None)
            if batch is not None:
                return batch
        sampler = getattr(self.labeled_data_loader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(self._labeled_passes)
        self._labeled_passes += 1
        self._labeled_iterator = iter(self.labeled_data_loader)
        batch = next(self._labeled_iterator, None)
        if batch is None:
            raise ValueError("the labeled data loader is empty: training needs at least one labeled image.")
        return batch

    def mixed_batch(self, batchdata: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Labeled then unlabeled images in one tensor, the labels, and how many images are labeled. Both
        batches go through the engine's ``prepare_batch``; the results are plain tensors (the images'
        metadata play no part in training, and slicing a mixed batch of them fails)."""
        labeled_images, labels = plain_batch(self, self._next_labeled_batch())
        unlabeled_images, _ = plain_batch(self, batchdata)
        return torch.cat([labeled_images, unlabeled_images]), labels, labeled_images.shape[0]

    def publish(
        self, *, images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor, loss: torch.Tensor, weight: float,
        terms: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer], **extra: torch.Tensor | None,
    ) -> dict:
        """The iteration output read by the handlers: images, labels (with pseudo-labels for unlabeled
        images), the trained model's logits, the loss, and scalars for TensorBoard."""
        scalars = {"loss/total": loss.item(), **{f"loss/{k}": v.item() for k, v in terms.items()}, "lambda": weight}
        scalars.update({f"lr/{name}": opt.param_groups[0]["lr"] for name, opt in optimizers.items()})
        self.state.output = {
            CommonKeys.IMAGE: images, CommonKeys.LABEL: labels, CommonKeys.PRED: logits.detach(),
            CommonKeys.LOSS: loss.detach(), "scalars": scalars, **extra,
        }
        return self.state.output

