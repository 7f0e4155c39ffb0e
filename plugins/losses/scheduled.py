"""The schedule adapter shared by every torchdistill loss whose objective depends on the training position."""
from typing import List, Optional

import torch
from torch import nn

from continuation import ContinuationObjective, ContinuationSchedule

from ..config_util import check_bool, criterion_modules

__all__ = ['ScheduledLoss', 'find_scheduled_losses', 'UNPOSITIONED_MESSAGE']

UNPOSITIONED_MESSAGE = (
    "{name} was called in training mode before its schedule was positioned: add "
    "pre_epoch_process: 'advance_loss_schedules' to the stage config (it moves every scheduled loss to the "
    "current epoch), or call set_epoch / set_progress when using the loss outside a training loop")


class ScheduledLoss(nn.Module):
    """Drives ``self.objective`` (a :class:`continuation.ContinuationObjective`) along the training position.

    With a ``schedule`` (:class:`continuation.ContinuationSchedule`) the position sets the objective's lambda;
    without one the objective positions itself (``set_position(epoch, num_epochs)`` and
    ``check_num_epochs(num_epochs, field)``, e.g. :class:`continuation.AnnealedHingeKD`). The pre-epoch hook
    ``advance_loss_schedules`` calls :meth:`set_epoch` at the start of every epoch; per-iteration scheduling
    counts training forwards inside the epoch; without a training loop, use :meth:`set_epoch` or
    :meth:`set_progress`. A training-mode forward before any of these raises (a schedule that never moves would
    silently train the whole run at its first value); eval-mode forwards are allowed.

    Subclasses implement :meth:`compute_loss`, the loss at the current position.
    """

    def __init__(self, objective: ContinuationObjective, schedule: Optional[ContinuationSchedule] = None,
                 per_iteration: bool = False):
        super().__init__()
        check_bool(per_iteration, 'schedule.per_iteration')
        self.objective = objective
        self.schedule = schedule
        self.per_iteration = per_iteration
        self._epoch, self._num_epochs, self._iterations_per_epoch, self._iteration = 0, None, 1, 0
        self._positioned = False

    def check_stage(self, num_epochs: int, field: str = 'num_epochs') -> None:
        """Raises ``ValueError`` before training when a stage of ``num_epochs`` cannot hold the schedule."""
        if self.schedule is None:
            self.objective.check_num_epochs(num_epochs, field=field)
        else:
            self.schedule.check_num_steps(num_epochs, field=field)

    def set_progress(self, step: float, num_steps: int) -> dict:
        """Moves the objective to ``step`` of ``num_steps`` (0-based) and returns the state.

        Steps are epochs, or iterations for a lambda schedule run per iteration; an objective that positions
        itself reads them as (possibly fractional) epochs of a stage of ``num_steps`` epochs.
        """
        if self.schedule is None:
            self.objective.set_position(step, num_steps)
        else:
            self.objective.set_lambda(self.schedule(step, num_steps))
        self._positioned = True
        return self.state()

    def set_epoch(self, epoch: int, num_epochs: int, iterations_per_epoch: int = 1) -> dict:
        """Moves the schedule to the start of (0-based, stage-local) ``epoch`` of ``num_epochs``."""
        self.check_stage(num_epochs)
        self._epoch, self._num_epochs = epoch, num_epochs
        self._iterations_per_epoch, self._iteration = max(1, int(iterations_per_epoch)), 0
        return self._update()

    def _update(self):
        if self._num_epochs is None:
            return self.state()
        if not self.per_iteration:
            return self.set_progress(self._epoch, self._num_epochs)
        iterations = self._iterations_per_epoch
        if self.schedule is None:  # past the last forward of the last epoch, stay on it
            return self.set_progress(self._epoch + min(self._iteration, iterations - 1) / iterations,
                                     self._num_epochs)
        step = min(self._epoch * iterations + self._iteration, self._num_epochs * iterations - 1)
        return self.set_progress(step, self._num_epochs * iterations)

    @property
    def reads_teacher(self) -> bool:
        """Whether the teacher's outputs still count in this stage (:func:`plugins.config_util.uses_teacher`)."""
        return self.objective.reads_teacher

    def state(self) -> dict:
        """The objective's current schedule-dependent quantities (T, Phi, lambda, psi, ...)."""
        return self.objective.state()

    def advance_iteration(self) -> None:
        if self.per_iteration and self.training:
            self._iteration += 1
            self._update()

    def compute_loss(self, student_io_dict: dict, teacher_io_dict: dict, targets: Optional[torch.Tensor] = None,
                     *args, **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, student_io_dict: dict, teacher_io_dict: dict, targets: Optional[torch.Tensor] = None, *args,
                **kwargs) -> torch.Tensor:
        if self.training and not self._positioned:
            raise RuntimeError(UNPOSITIONED_MESSAGE.format(name=type(self).__name__))
        loss = self.compute_loss(student_io_dict, teacher_io_dict, targets, *args, **kwargs)
        self.advance_iteration()
        return loss


def find_scheduled_losses(criterion: nn.Module) -> List[ScheduledLoss]:
    """Every :class:`ScheduledLoss` in a torchdistill criterion, in order, each once."""
    found = []
    for module in criterion_modules(criterion):
        if isinstance(module, ScheduledLoss) and module not in found:
            found.append(module)
    return found
