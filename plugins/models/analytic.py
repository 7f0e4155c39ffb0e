"""Analytic teachers: models whose output is a fixed function of the input, with nothing to train or load.

The Continuation-KD paper's noise toy (Section 6, Figure 2) distils from a function, not from a trained network:
t(x) = a_s sin(2 pi f_s x) + a_n sin(2 pi f_n x), a low-frequency signal plus a high-frequency sinusoidal
"noise". Such a teacher is complete once its kwargs are given, so its config marks it ``weights_in_kwargs: true``
and sets no ``src_ckpt`` (the runner then neither asks for nor loads a checkpoint).
"""
import math
from typing import Mapping, Sequence, Tuple

import torch
from torch import nn

from ..config_util import check_number
from ..registry import register_new_model

__all__ = ['SinusoidSum', 'noisy_sinusoid_teacher', 'sinusoid_component']

COMPONENT_FIELDS = ('amplitude', 'frequency')


def sinusoid_component(spec: Mapping, field: str) -> Tuple[float, float]:
    """(amplitude, frequency) of ``{amplitude: a, frequency: f}``, the term a sin(2 pi f x); errors name ``field``."""
    if not isinstance(spec, Mapping) or set(spec) != set(COMPONENT_FIELDS):
        raise ValueError(f'{field} must be a mapping with exactly the fields {list(COMPONENT_FIELDS)} '
                         f'(a * sin(2 pi f x), f in cycles per unit of x), got {spec!r}')
    values = []
    for name in COMPONENT_FIELDS:
        values.append(float(check_number(spec[name], f'{field}.{name}', finite=True)))
    if values[1] < 0:
        raise ValueError(f'{field}.frequency must be >= 0, got {spec["frequency"]!r}')
    return values[0], values[1]


class SinusoidSum(nn.Module):
    """y = sum_k a_k sin(2 pi f_k x) for inputs of shape (N, 1); outputs of shape (N, 1). No parameters.

    Amplitudes and frequencies are non-persistent buffers: they follow ``.to(device)`` and stay out of the
    state dict, so there is nothing to checkpoint.
    """

    def __init__(self, components: Sequence[Tuple[float, float]]):
        super().__init__()
        amplitudes, frequencies = zip(*components)
        self.register_buffer('amplitudes', torch.tensor(amplitudes, dtype=torch.float32), persistent=False)
        self.register_buffer('frequencies', torch.tensor(frequencies, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != 1:
            raise ValueError(f'SinusoidSum expects inputs of shape (N, 1), got {tuple(x.shape)}')
        return (self.amplitudes * torch.sin(2 * math.pi * self.frequencies * x)).sum(dim=1, keepdim=True)

    def extra_repr(self):
        return ', '.join(f'{a:g} sin(2 pi {f:g} x)' for a, f in zip(self.amplitudes.tolist(),
                                                                     self.frequencies.tolist()))


@register_new_model
def noisy_sinusoid_teacher(signal: Mapping, noise: Mapping) -> SinusoidSum:
    """t(x) = signal.amplitude sin(2 pi signal.frequency x) + noise.amplitude sin(2 pi noise.frequency x).

    .. code-block:: yaml

        teacher_model:
          key: 'noisy_sinusoid_teacher'
          kwargs: {signal: {amplitude: 1.0, frequency: 1.0}, noise: {amplitude: 0.3, frequency: 5.0}}
          weights_in_kwargs: true   # analytic: no checkpoint
    """
    return SinusoidSum([sinusoid_component(signal, 'signal'), sinusoid_component(noise, 'noise')])
