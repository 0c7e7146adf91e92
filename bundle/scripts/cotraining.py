"""Stage 2: teacher-student co-training with multiple rounds of diffusion (paper Sec. 3.2-3.3, Eq. 8-16)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from monai.networks.schedulers import DDPMScheduler

from .copy_paste import BidirectionalCopyPaste
from .diffusion import ImageReconstruction, mask_from_noise, pure_noise, sample_timesteps
from .flags import as_bool
from .losses import cross_pseudo_supervision
from .networks import unwrap
from .training_step import autocast, backward, optimizer_step
from .semi_supervised import SemiSupervisedTrainer

UNSUPERVISED_IMAGES = ("all", "unlabeled")


@dataclass
class CoTrainingLosses:
    """One iteration's loss terms: ``fixed`` ones count once, ``weighted`` ones are multiplied by lambda."""

    student_logits: torch.Tensor       # the student's prediction for every image of the batch
    teacher_logits: torch.Tensor
    targets: torch.Tensor              # labels, then the student's argmax for the unlabeled images
    reconstruction: torch.Tensor | None
    fixed: dict[str, torch.Tensor] = field(default_factory=dict)
    weighted: dict[str, torch.Tensor] = field(default_factory=dict)
    backpropagated: bool = False       # every term's gradient is already taken; the terms are values

    def total(self, weight: float) -> torch.Tensor:
        return sum(self.fixed.values()) + weight * sum(self.weighted.values())

    def backpropagate(self, backward_share: Callable[[torch.Tensor, torch.Tensor], None]) -> None:
        """Backpropagate the terms held so far as ``backward_share(fixed, weighted)`` and keep their values."""
        backward_share(sum(self.fixed.values()), sum(self.weighted.values()))
        self.fixed = {name: term.detach() for name, term in self.fixed.items()}
        self.weighted = {name: term.detach() for name, term in self.weighted.items()}


class CoTrainer(SemiSupervisedTrainer):
    """Co-trains a pretrained teacher and a fresh student (both dual-pathway networks), each with its own
    optimizer. ``network``/``optimizer`` are the student's, so MONAI's validation and checkpoint handlers
    see the student.

    Every iteration takes a labeled and an unlabeled batch (``SemiSupervisedTrainer``). Both networks segment
    the batch from a pure-noise mask (Eq. 8): the same noise and time step, or with ``independent_noise``
    each its own draw, which makes the two views differ as cross pseudo supervision wants. Terms:

    * ``L_sup`` (Eq. 10): ``loss_function`` of teacher and student against the labels;
    * ``L_semi`` (Eq. 9): cross pseudo supervision between teacher and student;
    * rounds r = 1..R (Eq. 11-14): ``i_r = f_i^T(q(i, t'), softmax(m_{r-1}), t')``,
      ``m_r = f_m^T(i_r, v_m, t'')``, ``L_align_r = loss_function(m_r, l_hat)`` with ``l_hat`` the label when
      present and the student's argmax otherwise, ``L_rec_r = MSE(i, i_r)`` (``reconstruction``: image or noise
      space). ``m_0`` is the teacher's mask; rounds are iterative (``m_{r-1}`` is the last round's mask)
      unless ``reset_rounds``, where every round restarts from ``m_0`` as in the authors' code. With
      ``detach_rounds`` no gradient crosses from one pathway to the next (the mask given to the image pathway
      and the reconstruction given back are constants), as in the authors' code: neither loss reaches the
      other pathway's call through them (with ``shared_body`` both calls still run the same UNet).

    The loss is ``L_sup + fixed terms + lambda (weighted terms)``, ``lambda = consistency_weight(epoch)``.
    ``unsupervised_images`` says which terms lambda weighs:

    * ``"all"`` (the paper, Eq. 15/16): ``lambda (L_semi + mean_r L_align_r + mean_r L_rec_r)`` over all images;
    * ``"unlabeled"`` (the authors' code): those terms over the unlabeled images; the labeled images get
      ``mean_r L_align_r`` (against their labels) and ``mean_r L_rec_r`` at weight 1 and no ``L_semi``.

    ``copy_paste`` (a ``BidirectionalCopyPaste``; needs ``"unlabeled"``) gives the student a strong view: it
    learns the unlabeled images from mixed images (labeled and unlabeled content swapped in a box, targets
    the labels and the teacher's argmax), and the teacher learns from the student's prediction put back
    together from the two mixed images of each pair. With ``teacher_copy_paste`` the teacher, too, learns
    the unlabeled images from mixes of its own (targets the labels and that prediction of the student's).

    Args:
        args, kwargs: as for ``SemiSupervisedTrainer``; ``network``/``optimizer`` are the student's.
        teacher, teacher_optimizer: the pretrained diffusion teacher and its optimizer.
        noise_scheduler: the DDPM schedule of both networks.
        reconstruction: the reconstruction loss (``ImageReconstruction``).
        rounds: R, the rounds of diffusion per iteration (0: CPS and the supervised loss only).
        reset_rounds: start every round from ``m_0``, the teacher's mask (the authors' code), not the last round's.
        detach_rounds: treat the mask given to the next round and the reconstruction given back as constants.
        unsupervised_images: ``"all"`` or ``"unlabeled"``, as above.
        independent_noise: teacher and student draw their own noise and time step.
        copy_paste: a ``BidirectionalCopyPaste`` for the student's strong view, or None.
        teacher_copy_paste: the teacher's strong view as well (needs ``copy_paste``).
    """

    def __init__(
        self,
        *args,
        teacher: torch.nn.Module,
        teacher_optimizer: torch.optim.Optimizer,
        noise_scheduler: DDPMScheduler,
        reconstruction: ImageReconstruction,
        rounds: int = 5,
        reset_rounds: bool = False,
        detach_rounds: bool = False,
        unsupervised_images: str = "all",
        independent_noise: bool = False,
        copy_paste: BidirectionalCopyPaste | None = None,
        teacher_copy_paste: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}.")
        if unsupervised_images not in UNSUPERVISED_IMAGES:
            raise ValueError(f"unsupervised_images must be one of {UNSUPERVISED_IMAGES}, got {unsupervised_images!r}.")
        if copy_paste is not None and unsupervised_images != "unlabeled":
            raise ValueError(
                "copy_paste mixes labeled into unlabeled images, so its terms act on the unlabeled images: "
                "set unsupervised_images to 'unlabeled'."
            )
        self.teacher_copy_paste = as_bool(teacher_copy_paste)
        if self.teacher_copy_paste and copy_paste is None:
            raise ValueError("teacher_copy_paste mixes images as copy_paste does: it needs copy_paste.")
        self.teacher = teacher
        self.teacher_optimizer = teacher_optimizer
        self.noise_scheduler = noise_scheduler
        self.reconstruction = reconstruction
        self.rounds = rounds
        self.reset_rounds = as_bool(reset_rounds)
        self.detach_rounds = as_bool(detach_rounds)
        self.unsupervised_images = unsupervised_images
        self.independent_noise = as_bool(independent_noise)
        self.copy_paste = copy_paste

    def checkpoint_state(self) -> dict:
        return {"student": self.network, "teacher": self.teacher, "optimizer": self.optimizer,
                "teacher_optimizer": self.teacher_optimizer}

    def segment(self, network: torch.nn.Module, images: torch.Tensor, draw: tuple | None = None):
        """Mask logits from a pure-noise mask (Eq. 8), and the ``(noise, timesteps)`` draw they used: the one
        given, or a new one."""
        if draw is None:
            timesteps = sample_timesteps(self.noise_scheduler, images.shape[0], images.device)
            shape = (images.shape[0], unwrap(network).num_classes, *images.shape[2:])
            draw = (pure_noise(self.noise_scheduler, shape, timesteps, images), timesteps)
        return network(images, *draw), draw

    def losses(
        self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int,
        backward_share: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    ) -> CoTrainingLosses:
        """Every loss term of one iteration on ``images`` (the labeled ones first). With detached rounds the
        graph of the two segmentations and that of each round stand alone: ``backward_share(fixed, weighted)``
        then backpropagates each one's share of the fixed and of the lambda-weighted terms as soon as it is
        computed, so that the activations of one of them at a time are held, and the terms are returned as
        values (``backpropagated``). Without detached rounds the caller backpropagates the total."""
        n, loss_fn = num_labeled, self.loss_function
        teacher_logits, draw = self.segment(self.teacher, images)
        if self.copy_paste is None:
            student_logits, _ = self.segment(self.network, images, None if self.independent_noise else draw)
        else:
            teacher_labels = teacher_logits[n:].argmax(dim=1, keepdim=True).detach()
            student_logits, mixed_loss = self._on_mixed_images(self.network, images, labels, n, teacher_labels)
        student_labels = student_logits.argmax(dim=1, keepdim=True).detach()
        targets = torch.cat([labels.to(student_labels.dtype), student_labels[n:]])
        out = CoTrainingLosses(student_logits, teacher_logits, targets, None)
        out.fixed["supervised"] = loss_fn(teacher_logits[:n], labels) + loss_fn(student_logits[:n], labels)

        if self.copy_paste is not None:
            teacher_loss = (self._on_mixed_images(self.teacher, images, labels, n, student_labels[n:], labeled=False)[1]
                            if self.teacher_copy_paste else loss_fn(teacher_logits[n:], student_labels[n:]))
            out.weighted["cps"] = mixed_loss + teacher_loss
        else:
            first = 0 if self.unsupervised_images == "all" else n
            out.weighted["cps"] = cross_pseudo_supervision(loss_fn, student_logits[first:], teacher_logits[first:])
        stepwise = backward_share is not None and self.detach_rounds
        if stepwise:
            out.backpropagate(backward_share)
        if self.rounds:
            self._rounds(images, targets, n, out, backward_share if stepwise else None)
        out.backpropagated = stepwise
        return out

    def _on_mixed_images(self, network, images, labels, n, pseudo_labels, labeled: bool = True):
        """``network``'s logits for the unlabeled images, put back together from its logits for their mixes
        with the labeled ones (targets: the labels and ``pseudo_labels``), after its logits for the labeled
        images where ``labeled`` (segmented in the same pass); and its loss on the mixed images."""
        mixed_images, mixed_targets, box = self.copy_paste.mix(images[:n], labels, images[n:], pseudo_labels)
        first = n if labeled else 0
        logits, _ = self.segment(network, torch.cat([images[:first], mixed_images]))
        mixed_logits = logits[first:]
        unlabeled_logits = self.copy_paste.unmix(mixed_logits, box)
        return torch.cat([logits[:first], unlabeled_logits]), self.loss_function(mixed_logits, mixed_targets)

    def _rounds(
        self, images: torch.Tensor, targets: torch.Tensor, n: int, out: CoTrainingLosses,
        backward_share: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    ) -> None:
        """Eq. 11-14: the align and reconstruction terms, averaged over the rounds, added to ``out``;
        ``backward_share(fixed, weighted)`` takes each round's share first (see ``losses``)."""
        teacher, scheduler, loss_fn = self.teacher, self.noise_scheduler, self.loss_function
        split = self.unsupervised_images == "unlabeled"
        align, rec = [], []
        mask_logits = out.teacher_logits
        for _ in range(self.rounds):
            previous = out.teacher_logits if self.reset_rounds else mask_logits
            condition = torch.softmax(previous.detach() if self.detach_rounds else previous, dim=1)
            timesteps = sample_timesteps(scheduler, images.shape[0], images.device)
            rec_per_image, reconstruction = self.reconstruction(teacher, images, condition, timesteps)
            mask_input = reconstruction.detach() if self.detach_rounds else reconstruction
            mask_logits = mask_from_noise(
                teacher, scheduler, mask_input, sample_timesteps(scheduler, images.shape[0], images.device)
            )
            if split:
                align.append(torch.stack([loss_fn(mask_logits[:n], targets[:n]), loss_fn(mask_logits[n:], targets[n:])]))
                rec.append(torch.stack([rec_per_image[:n].mean(), rec_per_image[n:].mean()]))
            else:
                align.append(loss_fn(mask_logits, targets))
                rec.append(rec_per_image.mean())
            if backward_share is not None:
                share = (align[-1] + rec[-1]) / self.rounds
                fixed, weighted = (share[0], share[1]) if split else (share.new_zeros(()), share)
                backward_share(fixed, weighted)
                align[-1], rec[-1] = align[-1].detach(), rec[-1].detach()
            out.reconstruction = reconstruction
        align, rec = torch.stack(align).mean(dim=0), torch.stack(rec).mean(dim=0)
        if split:
            out.fixed.update(align_labeled=align[0], reconstruction_labeled=rec[0])
            out.weighted.update(align=align[1], reconstruction=rec[1])
        else:
            out.weighted.update(align=align, reconstruction=rec)

    def _iteration(self, engine: CoTrainer, batchdata: dict) -> dict:
        images, labels, num_labeled = engine.mixed_batch(batchdata)
        engine.network.train()
        engine.teacher.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        engine.teacher_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        weight = float(engine.consistency_weight(engine.state.epoch))

        def backward_share(fixed: torch.Tensor, weighted: torch.Tensor) -> None:
            backward(engine, fixed + weight * weighted)

        with autocast(engine):
            losses = engine.losses(images, labels, num_labeled, backward_share)
        loss = losses.total(weight)
        optimizer_step(engine, images, labels, losses.student_logits, loss, [engine.optimizer, engine.teacher_optimizer],
                 backpropagated=losses.backpropagated)

        reconstruction = losses.reconstruction
        return engine.publish(
            images=images, labels=losses.targets, logits=losses.student_logits, loss=loss, weight=weight,
            terms={**losses.fixed, **losses.weighted},
            optimizers={"student": engine.optimizer, "teacher": engine.teacher_optimizer},
            teacher_pred=losses.teacher_logits.detach(),
            reconstruction=reconstruction.detach() if reconstruction is not None else None,
        )
