"""Continuation schedules: the continuation parameter lambda in [0, 1] as a function of the training position.

lambda = 0 is the smoothed objective and lambda = 1 the target objective. A schedule maps step
``i in {0, ..., n - 1}`` of a stage of ``n`` steps (epochs, or iterations when scheduling per iteration)
to lambda with lambda(0) = 0 and lambda(n - 1) = 1, monotonically non-decreasing in between.

Annealing-KD's temperature schedule is the ``step`` shape with ``tau_max`` levels: each level
(T = tau_max, ..., 1) gets an equal share of the stage (``floor(i * tau_max / n)``), so the stage never
leaves [1, tau_max] whatever its length, unlike the authors' ``int(epochs / tau_max)`` counter.
"""
import math
from typing import Optional, Tuple

from .checks import check_choice, check_fields, check_integer, is_number

__all__ = ['SCHEDULE_SHAPES', 'SCHEDULE_FIELDS', 'ContinuationSchedule', 'schedule_from_spec',
           'annealing_temperature', 'annealing_schedule']

SCHEDULE_SHAPES = ('linear', 'cosine', 'step', 'exponential')
SCHEDULE_FIELDS = ('shape', 'num_levels', 'rate', 'per_iteration')  # of a config's ``schedule:``


class ContinuationSchedule:
    """lambda(i, n) in [0, 1] with lambda(0, n) = 0 and lambda(n - 1, n) = 1.

    - ``linear``: p = i / (n - 1)
    - ``cosine``: (1 - cos(pi * p)) / 2
    - ``exponential``: (exp(rate * p) - 1) / (exp(rate) - 1), slow start for rate > 0
    - ``step``: floor(i * L / n) / (L - 1) with ``num_levels`` = L plateaus of equal length (L = 1: always 1)

    :param shape: one of ``SCHEDULE_SHAPES``.
    :param num_levels: number of plateaus for ``step`` (required there, rejected elsewhere).
    :param rate: growth rate of ``exponential`` (non-zero float, default 5.0).
    """

    def __init__(self, shape: str = 'linear', num_levels: Optional[int] = None, rate: Optional[float] = None):
        check_choice(shape, 'schedule shape', SCHEDULE_SHAPES)
        if shape == 'step':
            check_integer(num_levels, 'num_levels', note=' for the step shape')
        elif num_levels is not None:
            raise ValueError(f'num_levels applies to the step shape only, not to {shape!r}')
        if shape == 'exponential':
            rate = 5.0 if rate is None else rate
            if not is_number(rate) or rate == 0 or not math.isfinite(rate):
                raise ValueError(f'rate must be a finite non-zero number for the exponential shape, got {rate!r}')
        elif rate is not None:
            raise ValueError(f'rate applies to the exponential shape only, not to {shape!r}')
        self.shape = shape
        self.num_levels = num_levels
        self.rate = rate

    def check_num_steps(self, num_steps: int, field: str = 'num_epochs') -> None:
        """Raises ``ValueError`` when a stage of ``num_steps`` cannot hold every level of the schedule."""
        check_integer(num_steps, field)
        if self.shape == 'step' and num_steps < self.num_levels:
            raise ValueError(f'{field}={num_steps} is shorter than the {self.num_levels} levels of the schedule '
                             f'(max_temperature for Annealing-KD): every level needs at least one epoch')

    def __call__(self, step: int, num_steps: int) -> float:
        self.check_num_steps(num_steps)
        if not 0 <= step < num_steps:
            raise ValueError(f'step must lie in [0, {num_steps - 1}], got {step!r}')
        if self.shape == 'step':
            if self.num_levels == 1:
                return 1.0
            return (step * self.num_levels // num_steps) / (self.num_levels - 1)
        if num_steps == 1:
            return 1.0
        progress = step / (num_steps - 1)
        if self.shape == 'linear':
            return progress
        if self.shape == 'cosine':
            return 0.5 * (1.0 - math.cos(math.pi * progress))
        return math.expm1(self.rate * progress) / math.expm1(self.rate)

    def __repr__(self):
        extra = f', num_levels={self.num_levels}' if self.shape == 'step' else \
            f', rate={self.rate}' if self.shape == 'exponential' else ''
        return f'ContinuationSchedule(shape={self.shape!r}{extra})'


def schedule_from_spec(spec: Optional[dict]) -> Tuple[ContinuationSchedule, bool]:
    """A :class:`ContinuationSchedule` and the per-iteration flag from a config's ``schedule:`` mapping such as
    ``{shape: cosine, per_iteration: false}`` (None: linear, per epoch); unknown fields are rejected by name."""
    spec = dict(spec or {})
    check_fields(spec, 'schedule', SCHEDULE_FIELDS)
    per_iteration = spec.pop('per_iteration', False)
    return ContinuationSchedule(**spec), per_iteration


def annealing_schedule(max_temperature: int) -> 'ContinuationSchedule':
    """Annealing-KD's lambda: ``max_temperature`` equal steps over the run, so that :func:`annealing_temperature`
    gives T = tau_max, ..., 1, each level for an equal share of the epochs."""
    return ContinuationSchedule('step', num_levels=max_temperature)


def annealing_temperature(lam: float, max_temperature: int) -> int:
    """Integer temperature T = tau_max - round(lam * (tau_max - 1)) for lambda in [0, 1].

    Rounding absorbs floating-point error: the ``step`` schedule with ``tau_max`` levels yields
    lambda = k / (tau_max - 1), which maps exactly to T = tau_max - k.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f'lambda must lie in [0, 1], got {lam!r}')
    return max_temperature - int(round(lam * (max_temperature - 1)))
