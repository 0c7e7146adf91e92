"""BCP: bidirectional copy-paste with a mean teacher (Bai et al., CVPR 2023), with the copy-paste of ours."""

from __future__ import annotations

import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys
from torch.optim.swa_utils import AveragedModel

from ..copy_paste import BidirectionalCopyPaste
from ..networks import unwrap
from ..training_step import autocast, optimizer_step, plain_batch
from .base import BaselineTrainer


class LabeledCopyPasteTrainer(SupervisedTrainer):
    """BCP's pre-training stage: the network learns the labeled images from copy-paste mixes of each with the
    next image of its batch (``copy_paste``, both directions), whose targets are the two labels, and from
    nothing else. ``BidirectionalCopyPasteTrainer`` then starts its student and teacher from this network.

    Args:
        args, kwargs: as for ``SupervisedTrainer``; ``train_data_loader`` gives the labeled batches and
            ``inferer`` the network's training forward.
        copy_paste: the ``BidirectionalCopyPaste`` that mixes the images.
    """

    def __init__(self, *args, copy_paste: BidirectionalCopyPaste | None, **kwargs) -> None:
        super().__init__(*args, decollate=False, **kwargs)
        if copy_paste is None:
            raise ValueError("BCP's pre-training trains on copy-paste mixes: set copy_paste to true.")
        self.copy_paste = copy_paste

    def _iteration(self, engine: LabeledCopyPasteTrainer, batchdata: dict) -> dict:
        images, labels = plain_batch(engine, batchdata)
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine):
            mixed_images, mixed_targets, _ = engine.copy_paste.mix(
                images, labels, images.roll(1, dims=0), labels.roll(1, dims=0))
            logits = engine.inferer(mixed_images, engine.network)
            loss = engine.loss_function(logits, mixed_targets)
        optimizer_step(engine, mixed_images, mixed_targets, logits, loss, [engine.optimizer])
        engine.state.output[CommonKeys.PRED] = logits.detach()
        engine.state.output[CommonKeys.LOSS] = loss.detach()
        engine.state.output["scalars"] = {
            "loss/copy_paste": loss.item(), "lr/network": engine.optimizer.param_groups[0]["lr"],
        }
        return engine.state.output


class BidirectionalCopyPasteTrainer(BaselineTrainer):
    """The student learns the labeled images from their labels, and the unlabeled ones from the bidirectional
    copy-paste mixes of each with a labeled image (``copy_paste``), whose unlabeled parts have the argmax of
    the teacher as target. The teacher is an exponential moving average of the student
    (``torch.optim.swa_utils.AveragedModel``), updated after every step and never trained by gradient; as
    training starts, a teacher that has never been updated becomes a copy of the student, so that both start
    from the network of BCP's pre-training stage (``LabeledCopyPasteTrainer``).

    This is the student's side of ours with a copy-paste (``CoTrainer`` with ``copy_paste``): the same mixes,
    boxes, targets and loss terms, weighed by the same ``consistency_weight``, so that the two differ in the
    teacher alone: ours' co-trained diffusion teacher, here the student's average.

    Args:
        args, kwargs: as for ``BaselineTrainer``.
        teacher: the student's exponential moving average.
        copy_paste: the ``BidirectionalCopyPaste`` that mixes the images (None: no mixes, a mean teacher).
    """

    def __init__(self, *args, teacher: AveragedModel, copy_paste: BidirectionalCopyPaste | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if copy_paste is None:
            raise ValueError("BCP trains on copy-paste mixes: set copy_paste to true.")
        self.teacher = teacher
        self.copy_paste = copy_paste
        self.add_event_handler(Events.STARTED, self._start_teacher_from_student)

    def _start_teacher_from_student(self, _) -> None:
        if int(self.teacher.n_averaged) == 0:   # the first update copies (a resumed teacher keeps its weights)
            self.teacher.update_parameters(unwrap(self.network))

    def checkpoint_state(self) -> dict:
        return {**super().checkpoint_state(), "ema_teacher": self.teacher}

    def losses(self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int):
        n = num_labeled
        with torch.no_grad():
            pseudo_labels = self.segment(self.teacher.module, images[n:]).argmax(dim=1, keepdim=True)
        mixed_images, mixed_targets, box = self.copy_paste.mix(images[:n], labels, images[n:], pseudo_labels)
        logits = self.segment(self.network, torch.cat([images[:n], mixed_images]))
        mixed_logits = logits[n:]
        student_logits = torch.cat([logits[:n], self.copy_paste.unmix(mixed_logits, box)])
        supervised = self.loss_function(logits[:n], labels)
        return student_logits, supervised, {"copy_paste": self.loss_function(mixed_logits, mixed_targets)}

    def after_step(self) -> None:
        self.teacher.update_parameters(unwrap(self.network))
