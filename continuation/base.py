"""The base of every continuation objective, and the registry that names them (``objective:`` in a config).

A new objective is one class with one decorator::

    @register_objective('my_objective')
    class MyObjective(ContinuationObjective):
        ...

``ContinuationKDLoss`` (plugins) then accepts ``objective: 'my_objective'``, and the registry's contract tests
(``tests/continuation/test_objective_contract.py``) check it from the YAML example of its docstring.
"""
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
from torch import nn

from .schedules import ContinuationSchedule, schedule_from_spec

__all__ = ['ContinuationObjective', 'OBJECTIVES', 'OBJECTIVE_ALIASES', 'END_IDENTITIES', 'register_objective',
           'objective_name', 'build_objective']

OBJECTIVES: Dict[str, type] = {}  # name -> class
OBJECTIVE_ALIASES: Dict[str, str] = {}  # a former name that old configs use -> the name
# What an objective may equal at the end of its schedule (its class's ``end_identity``), on its docstring's example:
END_IDENTITIES = {
    'kd': "torchdistill's KDLoss with the objective's temperature and alpha",
    'logit_matching': 'the squared error of the student and teacher logits (the objective\'s reduction)',
    'label_loss': 'the cross-entropy to the labels (MSE for regression)',
}


class ContinuationObjective(nn.Module):
    """Holds the continuation parameter ``lam`` in [0, 1], 0 at construction.

    ``accepts_label_loss``: whether ``forward`` takes a precomputed label loss (``label_loss=``) in place of the
    labels, e.g. the ``.loss`` a Hugging Face model returns when its batch holds the labels.
    ``end_identity``: the key of :data:`END_IDENTITIES` this objective equals at the end of its schedule, or None.
    ``reads_teacher``: False once the teacher's outputs have no weight for the rest of the run, so that a trainer
    may stop computing them.
    """

    accepts_label_loss = False
    end_identity: Optional[str] = None

    def __init__(self):
        super().__init__()
        self.lam = 0.0

    def set_lambda(self, lam: float) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f'the continuation parameter lambda must lie in [0, 1], got {lam!r}')
        self.lam = float(lam)

    def lambda_schedule(self, spec: Optional[dict]) -> Tuple[Optional[ContinuationSchedule], bool]:
        """How a config positions this objective: ``(lambda schedule, per_iteration)`` from the ``schedule:`` spec
        (:func:`continuation.schedules.schedule_from_spec`). An objective that positions itself
        (``set_position(epoch, num_epochs)`` and ``check_num_epochs(num_epochs, field)``) returns ``(None, its
        per-iteration flag)`` instead."""
        return schedule_from_spec(spec)

    @property
    def reads_teacher(self) -> bool:
        return True

    def state(self) -> dict:
        """Current schedule-dependent quantities, for logs."""
        return {'lambda': self.lam}

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        raise NotImplementedError


def register_objective(name: str, aliases: Iterable[str] = ()) -> Callable[[type], type]:
    """Class decorator: registers a :class:`ContinuationObjective` as ``name`` (and its former names ``aliases``);
    refuses a name that is already taken."""
    def decorate(cls: type) -> type:
        for key in (name, *aliases):
            if key in OBJECTIVES or key in OBJECTIVE_ALIASES:
                raise KeyError(f'objective {key!r} is already registered')
        if cls.end_identity is not None and cls.end_identity not in END_IDENTITIES:
            raise ValueError(f'{cls.__name__}.end_identity must be one of {sorted(END_IDENTITIES)} or None')
        OBJECTIVES[name] = cls
        OBJECTIVE_ALIASES.update(dict.fromkeys(aliases, name))
        return cls
    return decorate


def objective_name(name: str) -> str:
    """The registered name of ``name`` (itself, or the name a former name stands for); errors list the choices."""
    name = OBJECTIVE_ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(name, str) or name not in OBJECTIVES:
        raise ValueError(f'objective must be one of {sorted(OBJECTIVES)}, got {name!r}')
    return name


def build_objective(name: str, **kwargs) -> ContinuationObjective:
    """Builds the objective registered as ``name`` (or a former name of it); errors name the field and the choices."""
    cls = OBJECTIVES[objective_name(name)]
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f'objective {name!r}: {error}') from error
