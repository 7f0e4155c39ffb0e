"""Annealing functions Phi(T) of Annealing-KD (Jafari et al., 2021, Eq. 3).

Phi maps an integer temperature T in [1, tau_max] to a multiplier in (0, 1] for the teacher's logits.
Every function here is monotonically decreasing in T with Phi(1) = 1 and Phi(tau_max) = 1 / tau_max,
so the variants differ only in how they move between the paper's two end points.
"""
import math
from typing import Callable

from .checks import check_choice, check_integer

__all__ = ['linear_annealing', 'cosine_annealing', 'exponential_annealing', 'ANNEALING_FUNCTIONS',
           'get_annealing_function', 'check_max_temperature']


def check_max_temperature(max_temperature: int, field: str = 'max_temperature') -> int:
    """Raises ``ValueError`` unless ``max_temperature`` is an integer >= 1 (bools are rejected)."""
    return check_integer(max_temperature, field, note=' (tau_max of Annealing-KD)')


def _check_temperature(temperature, max_temperature):
    check_max_temperature(max_temperature)
    if not 1 <= temperature <= max_temperature:
        raise ValueError(f'temperature must lie in [1, max_temperature={max_temperature}], got {temperature!r}')


def linear_annealing(temperature: int, max_temperature: int) -> float:
    """The paper's annealing function: Phi(T) = 1 - (T - 1) / tau_max."""
    _check_temperature(temperature, max_temperature)
    return 1.0 - (temperature - 1.0) / max_temperature


def cosine_annealing(temperature: int, max_temperature: int) -> float:
    """Half-cosine between the paper's end points (our variant).

    Phi(T) = 1/tau_max + (1 - 1/tau_max) * (1 + cos(pi * (T - 1) / (tau_max - 1))) / 2, and Phi = 1 when tau_max = 1.
    """
    _check_temperature(temperature, max_temperature)
    if max_temperature == 1:
        return 1.0
    floor = 1.0 / max_temperature
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * (temperature - 1.0) / (max_temperature - 1.0)))


def exponential_annealing(temperature: int, max_temperature: int) -> float:
    """Geometric interpolation between the paper's end points (our variant).

    Phi(T) = tau_max ** (-(T - 1) / (tau_max - 1)), and Phi = 1 when tau_max = 1.
    """
    _check_temperature(temperature, max_temperature)
    if max_temperature == 1:
        return 1.0
    return float(max_temperature) ** (-(temperature - 1.0) / (max_temperature - 1.0))


ANNEALING_FUNCTIONS = {
    'linear': linear_annealing,
    'cosine': cosine_annealing,
    'exponential': exponential_annealing,
}


def get_annealing_function(name: str, field: str = 'annealing') -> Callable[[int, int], float]:
    """Returns the annealing function registered under ``name``; the error lists the accepted names."""
    return ANNEALING_FUNCTIONS[check_choice(name, field, sorted(ANNEALING_FUNCTIONS))]
