"""Continuation schedules: the continuation parameter lambda in [0, 1] as a function of the training position.

lambda = 0 is the smoothed objective and lambda = 1 the target objective. A schedule maps step
``i in {0, ..., n - 1}`` of a stage of ``n`` steps (epochs, or iterations when scheduling per iteration)
to lambda with lambda(0) = 0 and lambda(n - 1) = 1, monotonically non-decreasing in between.

Annealing-KD's temperature schedule is the ``step`` shape with ``tau_max`` levels: each level
(T = tau_max, ..., 1) gets an equal share of the stage (``floor(i * tau_max / n)``), so the stage never
leaves [1, tau_max] whatever its length, unlike the authors' ``int(epochs / tau_max)`` counter.
"""
import math

__all__ = ['SCHEDULE_SHAPES', 'ContinuationSchedule', 'annealing_temperature']

SCHEDULE_SHAPES = ('linear', 'cosine', 'step', 'exponential')


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

    def __init__(self, shape='linear', num_levels=None, rate=None):
        if shape not in SCHEDULE_SHAPES:
            raise ValueError(f'schedule shape must be one of {list(SCHEDULE_SHAPES)}, got {shape!r}')
        if shape == 'step':
            if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
                raise ValueError(f'num_levels must be an integer >= 1 for the step shape, got {num_levels!r}')
        elif num_levels is not None:
            raise ValueError(f'num_levels applies to the step shape only, not to {shape!r}')
        if shape == 'exponential':
            rate = 5.0 if rate is None else rate
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate == 0 or not math.isfinite(rate):
                raise ValueError(f'rate must be a finite non-zero number for the exponential shape, got {rate!r}')
        elif rate is not None:
            raise ValueError(f'rate applies to the exponential shape only, not to {shape!r}')
        self.shape = shape
        self.num_levels = num_levels
        self.rate = rate

    def check_num_steps(self, num_steps, field='num_epochs'):
        """Raises ``ValueError`` when a stage of ``num_steps`` cannot hold every level of the schedule."""
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f'{field} must be an integer >= 1, got {num_steps!r}')
        if self.shape == 'step' and num_steps < self.num_levels:
            raise ValueError(f'{field}={num_steps} is shorter than the {self.num_levels} levels of the schedule '
                             f'(max_temperature for Annealing-KD): every level needs at least one epoch')

    def __call__(self, step, num_steps):
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


def annealing_temperature(lam, max_temperature):
    """Integer temperature T = tau_max - round(lam * (tau_max - 1)) for lambda in [0, 1].

    Rounding absorbs floating-point error: the ``step`` schedule with ``tau_max`` levels yields
    lambda = k / (tau_max - 1), which maps exactly to T = tau_max - k.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f'lambda must lie in [0, 1], got {lam!r}')
    return max_temperature - int(round(lam * (max_temperature - 1)))
