"""Continuation-KD objectives as one torchdistill loss."""
from continuation import build_objective

from ..registry import register_new_mid_level_loss
from .scheduled import ScheduledLoss, build_schedule

__all__ = ['ContinuationKDLoss']


@register_new_mid_level_loss
class ContinuationKDLoss(ScheduledLoss):
    """A continuation KD objective L(theta; lambda) with lambda driven by a schedule over the stage.

    ``objective`` names a member of :data:`continuation.OBJECTIVES` (``temperature``, ``target``, ``kd``,
    ``logit_annealing``); the remaining keyword arguments are that objective's (``temperature``, ``alpha``,
    ``max_temperature``, ``direction``, ``noise_mitigation``, ...), and unknown ones are rejected.
    ``schedule`` is ``{shape: linear|cosine|step|exponential, num_levels, rate, per_iteration}``.
    At lambda = 1 the KL objectives equal torchdistill's ``KDLoss`` with the same ``temperature`` and ``alpha``.
    These objectives are our own formulation (the Continuation-KD paper's equations are not public); see
    ``continuation/objectives.py`` and the README for each formula and its source.

    .. code-block:: yaml

        continuation_kd:
          criterion:
            key: 'ContinuationKDLoss'
            kwargs:
              student_module_path: '.'
              student_module_io: 'output'
              teacher_module_path: '.'
              teacher_module_io: 'output'
              objective: 'temperature'
              temperature: 4.0
              alpha: 0.5
              max_temperature: 16.0
              schedule: {shape: 'cosine'}
              noise_mitigation: {threshold: 0.2, mode: 'mask'}
          weight: 1.0
    """

    def __init__(self, student_module_path, student_module_io, teacher_module_path, teacher_module_io,
                 objective='temperature', schedule=None, **objective_kwargs):
        schedule, per_iteration = build_schedule(schedule)
        super().__init__(build_objective(objective, **objective_kwargs), schedule, per_iteration=per_iteration)
        self.objective_name = objective
        self.student_module_path = student_module_path
        self.student_module_io = student_module_io
        self.teacher_module_path = teacher_module_path
        self.teacher_module_io = teacher_module_io

    def forward(self, student_io_dict, teacher_io_dict, targets=None, *args, **kwargs):
        loss = self.objective(student_io_dict[self.student_module_path][self.student_module_io],
                              teacher_io_dict[self.teacher_module_path][self.teacher_module_io], targets)
        self.advance_iteration()
        return loss

    def extra_repr(self):
        return f'objective={self.objective_name!r}, schedule={self.schedule!r}, per_iteration={self.per_iteration}'
