"""The schedule adapter shared by every torchdistill loss whose objective depends on the training position."""
from torch import nn

from continuation import ContinuationSchedule

__all__ = ['ScheduledLoss', 'find_scheduled_losses']


class ScheduledLoss(nn.Module):
    """Drives ``self.objective`` (a :class:`continuation.ContinuationObjective`) with a :class:`ContinuationSchedule`.

    The pre-epoch hook ``advance_loss_schedules`` calls :meth:`set_epoch` at the start of every epoch.
    Per-iteration scheduling counts forward calls inside the epoch. Without a training loop, use
    :meth:`set_progress`. A freshly built loss is at the start of its schedule (lambda = 0).
    """

    def __init__(self, objective, schedule, per_iteration=False):
        super().__init__()
        if not isinstance(per_iteration, bool):
            raise ValueError(f'schedule.per_iteration must be true or false, got {per_iteration!r}')
        self.objective = objective
        self.schedule = schedule
        self.per_iteration = per_iteration
        self._epoch, self._num_epochs, self._iterations_per_epoch, self._iteration = 0, None, 1, 0

    def check_stage(self, num_epochs, field='num_epochs'):
        """Raises ``ValueError`` before training when a stage of ``num_epochs`` cannot hold the schedule."""
        self.schedule.check_num_steps(num_epochs, field=field)

    def set_progress(self, step, num_steps):
        """Sets lambda to the schedule's value at ``step`` of ``num_steps`` (0-based) and returns the state."""
        self.objective.set_lambda(self.schedule(step, num_steps))
        return self.state()

    def set_epoch(self, epoch, num_epochs, iterations_per_epoch=1):
        """Moves the schedule to the start of (0-based, stage-local) ``epoch`` of ``num_epochs``."""
        self.check_stage(num_epochs)
        self._epoch, self._num_epochs = epoch, num_epochs
        self._iterations_per_epoch, self._iteration = max(1, int(iterations_per_epoch)), 0
        return self._update()

    def _update(self):
        if self._num_epochs is None:
            return self.state()
        if self.per_iteration:
            step = min(self._epoch * self._iterations_per_epoch + self._iteration,
                       self._num_epochs * self._iterations_per_epoch - 1)
            return self.set_progress(step, self._num_epochs * self._iterations_per_epoch)
        return self.set_progress(self._epoch, self._num_epochs)

    def state(self):
        """The objective's current lambda and derived quantities (T, Phi, alpha, ...)."""
        return self.objective.state()

    def advance_iteration(self):
        if self.per_iteration and self.training:
            self._iteration += 1
            self._update()


def find_scheduled_losses(criterion):
    """Every :class:`ScheduledLoss` in a torchdistill criterion (``WeightedSumLoss.term_dict`` holds its terms)."""
    modules = [criterion] + [term for term, _ in getattr(criterion, 'term_dict', {}).values()]
    found = []
    for module in modules:
        for sub_module in module.modules():
            if isinstance(sub_module, ScheduledLoss) and sub_module not in found:
                found.append(sub_module)
    return found


def build_schedule(schedule):
    """A :class:`ContinuationSchedule` and the per-iteration flag from a YAML dict such as
    ``{shape: cosine, per_iteration: false}``; unknown fields are rejected by name."""
    schedule = dict(schedule or {})
    per_iteration = schedule.pop('per_iteration', False)
    unknown = set(schedule) - {'shape', 'num_levels', 'rate'}
    if unknown:
        raise ValueError(f'schedule: unknown field(s) {sorted(unknown)}; accepted: '
                         f"['num_levels', 'per_iteration', 'rate', 'shape']")
    return ContinuationSchedule(**schedule), per_iteration
