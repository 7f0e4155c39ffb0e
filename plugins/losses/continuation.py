"""Continuation-KD (Jafari et al., EMNLP 2022 Findings) and our continuation variants as one torchdistill loss."""
from typing import Optional

import torch

from continuation import build_objective, objective_name

from ..registry import register_new_mid_level_loss
from .outputs import logits_of, own_loss_of
from .scheduled import ScheduledLoss

__all__ = ['ContinuationKDLoss']


@register_new_mid_level_loss
class ContinuationKDLoss(ScheduledLoss):
    """Continuation-KD: L = psi * CE(z_s, y) + (1 - psi) * mean_i max(0, d(z_s, a_t z_t) - m a_m), one stage.

    ``objective: 'annealed_hinge'`` (default) is the published method (Eqs. 3-8; :mod:`continuation.hinge`):
    phi(T) = 1 - (T - 1) / T_max with T stepping from ``max_temperature`` down to 1 over the run, a_t = phi(T)
    (``anneal_teacher``) and a_m = phi(T) (``anneal_margin``) else 1, ``margin`` m >= 0 (default
    ``continuation.DEFAULT_MARGIN``, provisional: the paper does not state it), ``distance_reduction`` 'mean'
    or 'sum' over the logits (m is on that scale), ``psi`` the label weight's schedule (default Eq. 7:
    ``{ramp: '3/4'}``; Eq. 8: ``{ramp: '4/3', switch: '2/3'}``; fixed: ``{value: 0.5}``; per-iteration with
    ``per_iteration: true``; see :class:`continuation.PsiSchedule`), ``task`` 'classification' or 'regression'
    (MSE to the label). Table 7's ablations switch ``anneal_teacher``, ``anneal_margin`` and a fixed ``psi``.
    Without labels (``targets`` None) the label term is the student output's own ``.loss`` (Hugging Face);
    outputs may be logits tensors or objects with ``.logits``.

    Every other objective of the registry ``continuation.OBJECTIVES`` (our variants, :mod:`continuation.objectives`)
    is available by name, with a lambda ``schedule``: ``{shape: linear|cosine|step|exponential, num_levels, rate,
    per_iteration}``; each objective says how it is positioned (``lambda_schedule``). Unknown keyword arguments are
    rejected by name. Add ``pre_epoch_process: 'advance_loss_schedules'`` to the stage.

    .. code-block:: yaml

        continuation_kd:
          criterion:
            key: 'ContinuationKDLoss'
            kwargs:
              student_module_path: '.'
              student_module_io: 'output'
              teacher_module_path: '.'
              teacher_module_io: 'output'
              max_temperature: 20
              margin: 1.0
              psi: {ramp: '3/4'}   # Eq. 7: psi = min(1, e / 150) in a 200-epoch run
          weight: 1.0
    """

    def __init__(self, student_module_path: str, student_module_io: str, teacher_module_path: str,
                 teacher_module_io: str, objective: str = 'annealed_hinge', schedule: Optional[dict] = None,
                 **objective_kwargs):
        built = build_objective(objective, **objective_kwargs)
        super().__init__(built, *built.lambda_schedule(schedule))
        self.objective_name = objective_name(objective)
        self.student_module_path = student_module_path
        self.student_module_io = student_module_io
        self.teacher_module_path = teacher_module_path
        self.teacher_module_io = teacher_module_io

    def compute_loss(self, student_io_dict: dict, teacher_io_dict: dict, targets: Optional[torch.Tensor] = None,
                     *args, **kwargs) -> torch.Tensor:
        student_output = student_io_dict[self.student_module_path][self.student_module_io]
        teacher_logits = logits_of(teacher_io_dict[self.teacher_module_path][self.teacher_module_io]) \
            if self.objective.reads_teacher else None  # released teacher (plugins.idle_teacher): no outputs
        if targets is None and self.objective.accepts_label_loss:
            return self.objective(logits_of(student_output), teacher_logits, None,
                                  label_loss=own_loss_of(student_output))
        return self.objective(logits_of(student_output), teacher_logits, targets)

    def extra_repr(self) -> str:
        if self.schedule is None:
            return f'objective={self.objective_name!r}, per_iteration={self.per_iteration}'
        return f'objective={self.objective_name!r}, schedule={self.schedule!r}, per_iteration={self.per_iteration}'
