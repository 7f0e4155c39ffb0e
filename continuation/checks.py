"""Typed checks of configuration values; every error names the field and what is accepted.

Dependency-free, so that :mod:`continuation` stays plain PyTorch; :mod:`plugins` reuses the same checks and
raises its own error class with them (``error=ConfigError``). YAML reads ``true`` as a bool, which Python counts
as an integer: these checks never accept a bool where a number is meant.
"""
import math
from typing import Any, Iterable, Mapping, Optional

__all__ = ['is_number', 'check_bool', 'check_integer', 'check_number', 'check_choice', 'check_fields']


def is_number(value: Any) -> bool:
    """An int or a float, but not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_bool(value: Any, field: str, error: type = ValueError) -> bool:
    """``value`` when it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise error(f'{field} must be true or false, got {value!r}')
    return value


def check_integer(value: Any, field: str, minimum: Optional[int] = 1, maximum: Optional[int] = None,
                  note: str = '', error: type = ValueError) -> int:
    """``value`` when it is an integer in [``minimum``, ``maximum``] (None: unbounded); ``note`` follows the range
    in the message."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            accepted = f' in [{minimum}, {maximum}]'
        else:
            accepted = f' >= {minimum}' if minimum is not None else f' <= {maximum}' if maximum is not None else ''
        raise error(f'{field} must be an integer{accepted}{note}, got {value!r}')
    return value


def _number_range(minimum, maximum, exclusive_minimum, exclusive_maximum, finite):
    if minimum is not None and maximum is not None:
        return (f'a number in {"(" if exclusive_minimum else "["}{minimum:g}, '
                f'{maximum:g}{")" if exclusive_maximum else "]"}')
    kind = 'a finite number' if finite else 'a number'
    if minimum is not None:
        return f'{kind} {">" if exclusive_minimum else ">="} {minimum:g}'
    if maximum is not None:
        return f'{kind} {"<" if exclusive_maximum else "<="} {maximum:g}'
    return kind


def check_number(value: Any, field: str, minimum: Optional[float] = None, maximum: Optional[float] = None, *,
                 exclusive_minimum: bool = False, exclusive_maximum: bool = False, finite: bool = False,
                 note: str = '', error: type = ValueError) -> float:
    """``value`` when it is a number (int or float, not NaN) within the bounds given; ``finite`` also rejects
    infinities; ``note`` follows the range in the message."""
    in_range = is_number(value) and not math.isnan(value) and (not finite or math.isfinite(value)) and \
        (minimum is None or (value > minimum if exclusive_minimum else value >= minimum)) and \
        (maximum is None or (value < maximum if exclusive_maximum else value <= maximum))
    if not in_range:
        accepted = _number_range(minimum, maximum, exclusive_minimum, exclusive_maximum, finite)
        text = ' (a string: YAML 1.1 reads 1e-3 as text, write 1.0e-3)' if isinstance(value, str) else ''
        raise error(f'{field} must be {accepted}{note}, got {value!r}{text}')
    return value


def check_choice(value: Any, field: str, choices: Iterable, error: type = ValueError) -> Any:
    """``value`` when it is one of ``choices`` (listed in the message in the order given)."""
    choices = list(choices)
    if value not in choices:
        raise error(f'{field} must be one of {choices}, got {value!r}')
    return value


def check_fields(mapping: Mapping, field: str, accepted: Iterable, error: type = ValueError) -> None:
    """Rejects the keys of ``mapping`` that are not ``accepted``, naming them (misspelt YAML keys)."""
    accepted = sorted(accepted)
    unknown = sorted(set(mapping) - set(accepted))
    if unknown:
        raise error(f'{field}: unknown field(s) {unknown}; accepted: {accepted}')
