"""Stage 2: teacher-student co-training with multiple rounds of diffusion (paper Sec. 3.2-3.3, Eq. 8-16)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.networks.schedulers import DDPMScheduler

from .diffusion import mask_from_noise, pure_noise, q_sample, reconstruct_image, sample_timesteps
from .flags import as_bool
from .losses import cross_pseudo_supervision
from .semi_supervised import SemiSupervisedTrainer


class CoTrainer(SemiSupervisedTrainer):
    """Co-trains a pretrained teacher and a fresh student (both dual-pathway networks), each with its own
    optimizer. ``network``/``optimizer`` are the student's, so MONAI's validation and checkpoint handlers
    see the student.

    Every iteration takes a labeled and an unlabeled batch (``SemiSupervisedTrainer``). Both networks segment the whole batch from the same pure-noise mask (Eq. 8).
    The loss (Eq. 15/16) is ``L_sup + lambda * (L_semi + mean_r L_align_r + mean_r L_rec_r)``:

    * ``L_sup`` (Eq. 10): ``loss_function`` of teacher and student against the labels, labeled samples only;
    * ``L_semi`` (Eq. 9): cross pseudo supervision between teacher and student, all samples;
    * rounds r = 1..R (Eq. 11-14): ``i_r = f_i^T(q(i, t'), softmax(m_{r-1}), t')``,
      ``m_r = f_m^T(i_r, v_m, t'')``, ``L_align_r = loss_function(m_r, l_hat)`` with ``l_hat`` the label when
      present and the student's argmax otherwise, ``L_rec_r = MSE(i, i_r)``. ``m_0`` is the teacher's mask;
      rounds are iterative (``m_{r-1}`` is the last round's mask) unless ``reset_rounds``, where every round
      restarts from ``m_0`` as in the authors' code;
    * ``lambda = consistency_weight(epoch)``.
    """

    def __init__(
        self,
        *args,
        teacher: torch.nn.Module,
        teacher_optimizer: torch.optim.Optimizer,
        noise_scheduler: DDPMScheduler,
        reconstruction_loss: Callable = torch.nn.MSELoss(),
        rounds: int = 5,
        reset_rounds: bool = False,
        reconstruction_clip: Sequence[float] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {rounds}.")
        self.teacher = teacher
        self.teacher_optimizer = teacher_optimizer
        self.noise_scheduler = noise_scheduler
        self.reconstruction_loss = reconstruction_loss
        self.rounds = rounds
        self.reset_rounds = as_bool(reset_rounds)
        self.reconstruction_clip = tuple(reconstruction_clip) if reconstruction_clip is not None else None

    def _iteration(self, engine: CoTrainer, batchdata: dict) -> dict:
        device = engine.state.device
        images, labels, num_labeled = engine.mixed_batch(batchdata)
        scheduler, student, teacher = engine.noise_scheduler, engine.network, engine.teacher
        loss_fn = engine.loss_function

        student.train()
        teacher.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        engine.teacher_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)

        # both networks see the same pure-noise mask v_m at the same time step t (Eq. 8)
        timesteps = sample_timesteps(scheduler, images.shape[0], device)
        mask_noise = pure_noise(scheduler, (images.shape[0], student.num_classes, *images.shape[2:]), timesteps, images)
        teacher_logits = teacher(images, mask_noise, timesteps)
        student_logits = student(images, mask_noise, timesteps)

        supervised = loss_fn(teacher_logits[:num_labeled], labels) + loss_fn(student_logits[:num_labeled], labels)
        semi = cross_pseudo_supervision(loss_fn, student_logits, teacher_logits)
        student_pseudo_label = student_logits.argmax(dim=1, keepdim=True).detach()
        align_target = torch.cat([labels.to(student_pseudo_label.dtype), student_pseudo_label[num_labeled:]])

        align_losses, reconstruction_losses = [], []
        mask_logits, reconstruction = teacher_logits, None
        for _ in range(engine.rounds):
            previous = teacher_logits if engine.reset_rounds else mask_logits
            image_timesteps = sample_timesteps(scheduler, images.shape[0], device)
            noisy_images = q_sample(scheduler, images, torch.randn_like(images), image_timesteps)
            reconstruction = reconstruct_image(
                teacher, scheduler, noisy_images, torch.softmax(previous, dim=1), image_timesteps,
                engine.reconstruction_clip,
            )
            mask_logits = mask_from_noise(
                teacher, scheduler, reconstruction, sample_timesteps(scheduler, images.shape[0], device)
            )
            align_losses.append(loss_fn(mask_logits, align_target))
            reconstruction_losses.append(engine.reconstruction_loss(reconstruction, images))
        align = torch.stack(align_losses).mean() if align_losses else torch.zeros((), device=device)
        rec = torch.stack(reconstruction_losses).mean() if reconstruction_losses else torch.zeros((), device=device)

        weight = float(engine.consistency_weight(engine.state.epoch))
        loss = supervised + weight * (semi + align + rec)
        loss.backward()
        engine.optimizer.step()
        engine.teacher_optimizer.step()

        return engine.publish(
            images, align_target, student_logits, loss, weight,
            {"supervised": supervised, "cps": semi, "align": align, "reconstruction": rec},
            {"student": engine.optimizer, "teacher": engine.teacher_optimizer},
            teacher_pred=teacher_logits.detach(),
            reconstruction=reconstruction.detach() if reconstruction is not None else None,
        )
