"""Annealing-KD (Jafari et al., EACL 2021) as torchdistill losses."""
from typing import Optional

import torch
from torch import nn

from continuation import LogitAnnealing, annealing_schedule

from ..registry import register_new_loss_wrapper, register_new_mid_level_loss
from .outputs import logits_of
from .scheduled import ScheduledLoss

__all__ = ['AnnealingKDLoss', 'AnnealedTeacherLossWrapper']


@register_new_mid_level_loss
class AnnealingKDLoss(ScheduledLoss):
    """Stage-I loss of Annealing-KD (Eq. 3): L = || z_s - Phi(T) * z_t ||^2 on logits, no temperature on z_s.

    T steps down from ``max_temperature`` (tau_max) to 1 over the stage, each integer level for an equal
    share of the stage's epochs (the last epoch is at T = 1); Phi is ``linear`` (the paper's
    1 - (T - 1) / tau_max), ``cosine`` or ``exponential``. ``reduction='mean'`` averages over all elements
    like the authors' ``F.mse_loss``; ``'batchmean'`` is the paper's per-sample squared norm averaged over
    the batch. The outputs are logits tensors, or objects with ``.logits`` (Hugging Face ModelOutput). Add the
    ``advance_loss_schedules`` pre-epoch hook to the stage so T follows the epochs; Stage II is plain
    cross-entropy (see ``yaml_configs/``).

    .. code-block:: yaml

        stage1:
          num_epochs: 20
          pre_epoch_process: 'advance_loss_schedules'
          criterion:
            key: 'WeightedSumLoss'
            kwargs:
              sub_terms:
                annealing_kd:
                  criterion:
                    key: 'AnnealingKDLoss'
                    kwargs: {student_module_path: '.', student_module_io: 'output',
                             teacher_module_path: '.', teacher_module_io: 'output', max_temperature: 10}
                  weight: 1.0
    """

    def __init__(self, student_module_path: str, student_module_io: str, teacher_module_path: str,
                 teacher_module_io: str, max_temperature: int, annealing: str = 'linear', reduction: str = 'mean',
                 distance: str = 'mse'):
        objective = LogitAnnealing(max_temperature, annealing=annealing, reduction=reduction, distance=distance)
        super().__init__(objective, annealing_schedule(max_temperature))
        self.student_module_path = student_module_path
        self.student_module_io = student_module_io
        self.teacher_module_path = teacher_module_path
        self.teacher_module_io = teacher_module_io

    @property
    def temperature(self) -> int:
        """The current integer temperature T."""
        return self.objective.temperature

    @property
    def phi(self) -> float:
        """The current multiplier Phi(T) of the teacher's logits."""
        return self.objective.phi

    def compute_loss(self, student_io_dict: dict, teacher_io_dict: dict, targets: Optional[torch.Tensor] = None,
                     *args, **kwargs) -> torch.Tensor:
        return self.objective(logits_of(student_io_dict[self.student_module_path][self.student_module_io]),
                              logits_of(teacher_io_dict[self.teacher_module_path][self.teacher_module_io]))

    def extra_repr(self) -> str:
        return f'max_temperature={self.objective.max_temperature}, annealing={self.objective.annealing!r}, ' \
               f'reduction={self.objective.reduction!r}, distance={self.objective.distance!r}'


@register_new_loss_wrapper
class AnnealedTeacherLossWrapper(ScheduledLoss):
    """Applies Annealing-KD's Phi(T) to the teacher output that any other torchdistill loss reads.

    The wrapped loss sees Phi(T) * teacher_io_dict[teacher_module_path][teacher_module_io], with T
    scheduled as in :class:`AnnealingKDLoss` (the paper notes annealing applies on top of KD variants).

    .. code-block:: yaml

        kd:
          criterion: {key: 'KDLoss', kwargs: {student_module_path: '.', student_module_io: 'output',
                      teacher_module_path: '.', teacher_module_io: 'output', temperature: 4.0, alpha: 0.5}}
          criterion_wrapper:
            key: 'AnnealedTeacherLossWrapper'
            kwargs: {teacher_module_path: '.', teacher_module_io: 'output', max_temperature: 10}
          weight: 1.0
    """

    def __init__(self, criterion: nn.Module, teacher_module_path: str, teacher_module_io: str, max_temperature: int,
                 annealing: str = 'linear'):
        super().__init__(LogitAnnealing(max_temperature, annealing=annealing),
                         annealing_schedule(max_temperature))
        self.criterion = criterion
        self.teacher_module_path = teacher_module_path
        self.teacher_module_io = teacher_module_io

    def compute_loss(self, student_io_dict: dict, teacher_io_dict: dict, targets: Optional[torch.Tensor] = None,
                     *args, **kwargs) -> torch.Tensor:
        annealed_io_dict = dict(teacher_io_dict)
        annealed_io_dict[self.teacher_module_path] = dict(teacher_io_dict[self.teacher_module_path])
        annealed_io_dict[self.teacher_module_path][self.teacher_module_io] = \
            teacher_io_dict[self.teacher_module_path][self.teacher_module_io] * self.objective.phi
        return self.criterion(student_io_dict, annealed_io_dict, targets, *args, **kwargs)
