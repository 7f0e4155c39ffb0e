"""A teacher output as cache rows and back: named per-sample tensors, and the output's type recorded by name.

An output is a tensor, or a mapping of tensors (e.g. a transformers ``ModelOutput``); a disk cache records its type
as ``module:qualname`` and a later run recognises it only among the types already loaded (never imported by name).
"""
import collections
import sys
from collections.abc import Mapping
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch

__all__ = ['flatten_output', 'rebuild_output', 'type_path', 'known_output_type']


def flatten_output(output) -> Optional[List[Tuple[str, torch.Tensor]]]:
    """[(field, tensor)] of a teacher output: a tensor, or a mapping of tensors; None for anything else."""
    if isinstance(output, torch.Tensor):
        return [('', output)]
    if isinstance(output, Mapping) and all(isinstance(v, torch.Tensor) for v in output.values()):
        return sorted(output.items())
    return None


def rebuild_output(output_type: type, names: Sequence[str], tensors: Sequence[torch.Tensor]) -> Any:
    """The output of ``output_type`` that :func:`flatten_output` turned into ``names`` and ``tensors``."""
    if output_type is torch.Tensor:
        return tensors[0]
    return output_type(**dict(zip(names, tensors)))


def type_path(output_type: type) -> str:
    """``module:qualname`` of a type, as a disk cache records it."""
    return f'{output_type.__module__}:{output_type.__qualname__}'


def _subclasses(cls: type) -> Iterator[type]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


def known_output_type(path: Optional[str]) -> Optional[type]:
    """The output type a disk cache recorded (``module:qualname``) when it is a tensor, a dict or a transformers
    ``ModelOutput`` that this process has already loaded; otherwise None, and the type is learnt from the
    teacher's next output. A name read from disk is never imported or looked up on a module."""
    candidates = [torch.Tensor, dict, collections.OrderedDict]
    generic = sys.modules.get('transformers.utils.generic')  # only if transformers is already imported
    if generic is not None and hasattr(generic, 'ModelOutput'):
        candidates += [generic.ModelOutput, *_subclasses(generic.ModelOutput)]
    return next((candidate for candidate in candidates if type_path(candidate) == path), None)
