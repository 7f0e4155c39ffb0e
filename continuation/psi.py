"""The psi schedule of Continuation-KD (Jafari et al., EMNLP 2022 Findings, Eqs. 6-8): the label term's weight.

psi moves the loss ``psi * CE + (1 - psi) * L_CNT`` from the smoothed teacher term (psi = 0 at the first epoch)
to the labels (psi = 1 by the last epoch). One small family covers every published form, with the 0-based epoch
e of a stage of n epochs, a ramp length d and a switch epoch s:

    psi(e) = min(1, e / d)   for e < s,   and 1 for e >= s        (d = None: never ramps; s = None: never switches)

- Eq. 7 (CIFAR, n = 200): psi = min(1, e / 150)              -> ``{ramp: '3/4'}``       (d = 0.75 n)
- Eq. 8 (GLUE, n = 30): psi = e / 40 for e < 20, then 1      -> ``{ramp: '4/3', switch: '2/3'}``
- Eq. 6 (reduction to Annealing-KD): 0 for e < k, then 1     -> ``{switch_epochs: k}``
- Table 7's "psi not dynamic" ablation: a fixed value        -> ``{value: 0.5}``

``ramp`` / ``switch`` are fractions of the stage (numbers, or exact fractions written as strings such as '4/3'),
so a config stays valid when a harness changes its epoch budget; ``ramp_epochs`` / ``switch_epochs`` are epochs.
With ``per_iteration: true``, e is ``epoch + iteration / iterations_per_epoch`` instead of the epoch.
Arithmetic is exact (``fractions.Fraction``), so the published values come out exactly.
"""
from fractions import Fraction
from typing import Optional, Union

from .checks import check_bool, check_fields, check_integer, check_number, is_number

__all__ = ['PsiSchedule', 'PSI_EQ7', 'PSI_EQ8', 'psi_step', 'parse_fraction']

PSI_EQ7 = {'ramp': '3/4'}
PSI_EQ8 = {'ramp': '4/3', 'switch': '2/3'}
SPEC_FIELDS = ('ramp', 'ramp_epochs', 'switch', 'switch_epochs', 'value', 'per_iteration')


def psi_step(switch_epoch: int) -> dict:
    """Eq. 6: psi = 0 for the first ``switch_epoch`` epochs, then 1."""
    return {'switch_epochs': switch_epoch}


def parse_fraction(value: Union[int, float, str], field: str) -> Fraction:
    """An exact ``Fraction`` from a number or a string such as '4/3' or '0.75'; the error names ``field``."""
    if not is_number(value) and not isinstance(value, str):
        raise ValueError(f"{field} must be a number or a fraction string such as '4/3', got {value!r}")
    try:
        fraction = Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise ValueError(f"{field} must be a number or a fraction string such as '4/3', got {value!r}") from None
    return fraction


def _positive(spec, key, field):
    if key not in spec:
        return None
    value = parse_fraction(spec[key], f'{field}.{key}')
    if value <= 0:
        raise ValueError(f'{field}.{key} must be > 0, got {spec[key]!r}: psi must start at 0 in the first epoch '
                         f'and rise monotonically to 1 (a ramp <= 0 would fall or leave [0, 1])')
    return value


def _one_of(spec, fraction_key, epochs_key, field):
    if fraction_key in spec and epochs_key in spec:
        raise ValueError(f'{field}: give {fraction_key} (a fraction of the stage) or {epochs_key} (epochs), not both')
    return _positive(spec, fraction_key, field), _positive(spec, epochs_key, field)


class PsiSchedule:
    """psi(e; n) = min(1, e / d) for e < s, else 1; or a fixed value (see the module docstring).

    :param spec: ``{ramp | ramp_epochs, switch | switch_epochs, per_iteration}`` or ``{value, per_iteration}``;
        ``None`` gives Eq. 7 (``PSI_EQ7``).
    :param field: the config field named in errors.
    """

    def __init__(self, spec: Optional[dict] = None, field: str = 'psi'):
        spec = PSI_EQ7 if spec is None else spec
        if not isinstance(spec, dict):
            raise ValueError(f'{field} must be a mapping such as {PSI_EQ7} or {{value: 0.5}}, got {spec!r}')
        spec = dict(spec)
        check_fields(spec, field, SPEC_FIELDS)
        self.spec, self.field = spec, field
        self.per_iteration = check_bool(spec.get('per_iteration', False), f'{field}.per_iteration')
        self.value = None
        if 'value' in spec:
            self._init_fixed(spec, field)
            return
        self.ramp, self.ramp_epochs = _one_of(spec, 'ramp', 'ramp_epochs', field)
        self.switch, self.switch_epochs = _one_of(spec, 'switch', 'switch_epochs', field)
        if not any(v is not None for v in (self.ramp, self.ramp_epochs, self.switch, self.switch_epochs)):
            raise ValueError(f'{field} needs ramp (or ramp_epochs), switch (or switch_epochs), or a fixed value, '
                             f'got {spec!r}')

    def _init_fixed(self, spec, field):
        others = sorted(set(spec) - {'value', 'per_iteration'})
        if others:
            raise ValueError(f'{field}: a fixed value excludes {others}')
        self.value = float(check_number(spec['value'], f'{field}.value', 0, 1))

    @property
    def dynamic(self) -> bool:
        """False for a fixed psi (Table 7's "psi not dynamic")."""
        return self.value is None

    def ramp_length(self, num_epochs: int) -> Optional[Fraction]:
        """d in epochs for a stage of ``num_epochs`` (None: no ramp)."""
        return self.ramp * num_epochs if self.ramp is not None else self.ramp_epochs

    def switch_epoch(self, num_epochs: int) -> Optional[Fraction]:
        """s in epochs for a stage of ``num_epochs`` (None: no switch)."""
        return self.switch * num_epochs if self.switch is not None else self.switch_epochs

    def _exact(self, epoch, num_epochs: int) -> Fraction:
        position = Fraction(epoch)
        switch = self.switch_epoch(num_epochs)
        if switch is not None and position >= switch:
            return Fraction(1)
        ramp = self.ramp_length(num_epochs)
        return Fraction(0) if ramp is None else min(Fraction(1), position / ramp)

    def check_num_epochs(self, num_epochs: int, field: str = 'num_epochs') -> None:
        """Raises ``ValueError`` when a dynamic psi would not reach 1 by the stage's last epoch."""
        check_integer(num_epochs, field)
        if not self.dynamic:
            return
        last = self._exact(num_epochs - 1, num_epochs)
        if last < 1:
            raise ValueError(
                f'{self.field} {self.spec} is longer than the stage: with {field}={num_epochs}, psi is '
                f'{float(last):.4g} < 1 at the last epoch ({num_epochs - 1}, 0-based). A dynamic psi must reach 1 '
                f'within the stage: accepted are ramp <= {num_epochs - 1}/{num_epochs} of the stage '
                f'(ramp_epochs <= {num_epochs - 1}), a switch at or before epoch {num_epochs - 1}, or a fixed value')

    def __call__(self, epoch: float, num_epochs: int) -> float:
        """psi at (possibly fractional) ``epoch`` in [0, num_epochs) of a stage of ``num_epochs``."""
        if self.value is not None:
            return self.value
        if not 0 <= epoch < num_epochs:
            raise ValueError(f'epoch must lie in [0, {num_epochs}), got {epoch!r}')
        return float(self._exact(epoch, num_epochs))

    def __repr__(self):
        return f'PsiSchedule({self.spec!r})'
