"""Stops a run whose training loss diverges, instead of reporting a diverged model as a result.

A step's loss diverges when it is not finite (NaN, inf), or when its magnitude exceeds ``MAX_LOSS_RATIO`` times
the larger of 1 and the magnitude of the stage's first loss. A healthy run stays far below that bound (a
cross-entropy of 2.3 would have to pass 23,000: logits apart by as much), whereas a learning rate that is much
too high gets there within a few steps while the loss is still finite (lr 1e6 on digits: 1e12 in the first epoch).
"""
import math

__all__ = ['LossGuard', 'loss_guard', 'MAX_LOSS_RATIO']

MAX_LOSS_RATIO = 1e4


class LossGuard:
    """Watches a box's per-step training losses; :meth:`check` says whether the run diverged, ``message`` why."""

    def __init__(self, box, max_ratio: float = MAX_LOSS_RATIO):
        self.box, self.max_ratio = box, max_ratio
        self.first_loss, self.diverged, self.message = {}, False, None

    def _field(self, stage):
        return f'train.stage{stage}' if hasattr(self.box, 'stage_number') else 'train'

    def check(self, value: float, epoch: int, step: int) -> bool:
        """Records the loss of ``step`` (0-based) of ``epoch``; True once the run has diverged."""
        if self.diverged:
            return True
        stage = getattr(self.box, 'stage_number', 1)
        if math.isfinite(value):
            first = self.first_loss.setdefault(stage, value)
            if abs(value) <= self.max_ratio * max(abs(first), 1.0):
                return False
            what, why = f'rose to {value:.4g}', f', over {self.max_ratio:g} x the first loss of this stage ({first:.4g})'
        else:
            what, why = f'is {value}', ''
        optimizer = getattr(self.box, 'optimizer', None)
        lr = optimizer.param_groups[0].get('lr') if optimizer is not None and optimizer.param_groups else None
        field = self._field(stage)
        hint = f' ({field}.optimizer.kwargs.lr is {float(lr):g} now)' if lr is not None else ''
        self.diverged = True
        self.message = (f'training diverged: the loss {what} at epoch {epoch}, step {step} ({field}){why}; lower the '
                        f'learning rate{hint}')
        return True


def loss_guard(box) -> LossGuard:
    """The box's guard, created at its first use (one per run, kept across epochs and stages)."""
    guard = box.__dict__.get('_loss_guard')
    if guard is None:
        guard = box.__dict__['_loss_guard'] = LossGuard(box)
    return guard
