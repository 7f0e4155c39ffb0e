"""Config plumbing, in one place: the stages of a train section, dotted keys, the terms of a criterion, settings
sections with defaults, and the typed field checks.

Used by the runner, the config checks, the epoch hooks, the distributed helpers, the teacher cache and the benchmark
harness. The typed checks are :mod:`continuation.checks` (``ValueError`` unless ``error=`` says otherwise); every
error names the field and what is accepted.
"""
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from continuation.checks import check_bool, check_choice, check_fields, check_integer, check_number, is_number

from .errors import ConfigError

__all__ = ['stage_configs', 'stage_config', 'loader_in_force', 'has_dotted', 'set_dotted', 'apply_overrides',
           'criterion_modules', 'uses_teacher', 'student_forward_proc', 'settings_with_defaults', 'is_number', 'check_bool', 'check_choice',
           'check_fields', 'check_integer', 'check_number']


def stage_configs(train_config: dict) -> List[Tuple[str, dict]]:
    """[(field prefix, stage config)] in training order: ``train`` itself, or ``train.stage1``, ``train.stage2``..."""
    if 'stage1' not in train_config:
        return [('train', train_config)]
    stages, number = [], 1
    while f'stage{number}' in train_config:
        stage = train_config[f'stage{number}']
        if not isinstance(stage, dict):
            raise ConfigError(f'train.stage{number} must be a mapping (num_epochs, loaders, criterion...), '
                              f'got {type(stage).__name__}')
        stages.append((f'train.stage{number}', stage))
        number += 1
    expected = {f'stage{i}' for i in range(1, number)}
    extra = sorted(key for key in train_config if key.startswith('stage') and key not in expected)
    if extra:
        raise ConfigError(f'train: stage keys must be stage1, stage2, ... without gaps; unexpected {extra}')
    return stages


def stage_config(train_config: dict, stage_number: int = 1) -> dict:
    """The config of (1-based) ``stage_number``: ``train.stage<n>``, or ``train`` itself for a single stage."""
    return stage_configs(train_config)[stage_number - 1][1]


def loader_in_force(train_config: dict, stage_number: int = 1, name: str = 'train_data_loader') -> Optional[dict]:
    """The loader config ``name`` in force at ``stage_number``: a stage without one keeps the previous stage's."""
    for _, stage in reversed(stage_configs(train_config)[:stage_number]):
        if stage.get(name):
            return stage[name]
    return None


def _walk(config: Any, dotted_key: str) -> Iterator[Tuple[Any, str]]:
    """(node, key) pairs along ``dotted_key``, the node being the mapping expected to hold the key."""
    node = config
    for key in dotted_key.split('.'):
        yield node, key
        node = node[key] if isinstance(node, dict) and key in node else None


def has_dotted(config: Any, dotted_key: str) -> bool:
    """Whether ``config`` holds ``dotted_key`` (e.g. ``'train.stage1.num_epochs'``)."""
    return all(isinstance(node, dict) and key in node for node, key in _walk(config, dotted_key))


def set_dotted(config: Any, dotted_key: str, value: Any) -> None:
    """Sets an existing ``dotted_key`` of ``config`` in place; :class:`ConfigError` names the first missing key."""
    for node, key in _walk(config, dotted_key):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f'override {dotted_key!r}: {key!r} is not in the config')
    node[key] = value


def apply_overrides(config: dict, overrides: Optional[Mapping[str, Any]]) -> dict:
    """A shallow copy of ``config`` with dotted keys set, e.g. ``{'train.stage1.num_epochs': 5}``; every key must
    already exist. Nested sections are changed in place (a loaded config holds data sets, never copied)."""
    config = dict(config)
    for dotted_key, value in (overrides or {}).items():
        set_dotted(config, dotted_key, value)
    return config


def criterion_modules(criterion) -> Iterator:
    """Every module of a built torchdistill criterion, its terms' included (``WeightedSumLoss.term_dict`` holds
    ``(criterion, weight)`` pairs outside the module tree)."""
    for term in [criterion] + [module for module, _ in getattr(criterion, 'term_dict', {}).values()]:
        yield from term.modules()


def uses_teacher(criterion) -> bool:
    """True when some term of the criterion reads the teacher's outputs: torchdistill's wrappers say so by their
    ``is_*_from_teacher`` flags, a loss by its ``teacher_module_path``, unless it declares ``reads_teacher`` (ours
    do: a Continuation-KD loss stops reading the teacher when psi reaches 1)."""
    def reads_teacher(module):
        declared = getattr(module, 'reads_teacher', None)
        if declared is not None:
            return declared
        return getattr(module, 'teacher_module_path', None) is not None or \
            getattr(module, 'is_input_from_teacher', False) or getattr(module, 'is_target_from_teacher', False)
    return any(reads_teacher(module) for module in criterion_modules(criterion))


def student_forward_proc(section: Mapping) -> Optional[str]:
    """The ``forward_proc`` of the trained model in a ``train`` (or stage) section: ``student`` under a
    DistillationBox, ``model`` under a TrainingBox; None when it names none (torchdistill's default)."""
    return (section.get('student') or section.get('model') or {}).get('forward_proc')


def settings_with_defaults(section: Any, field: str, defaults: Dict[str, Any], expected: str,
                           error: type = ValueError) -> dict:
    """A settings section (``teacher_cache:``, ``train.best_checkpoints:``...) with ``defaults`` filled in; the
    error names the field, an unknown key, or says that ``expected`` (what the mapping holds) is missing."""
    if not isinstance(section, dict):
        raise error(f'{field} must be a mapping with {expected}, got {section!r}')
    check_fields(section, field, defaults, error=error)
    return dict(defaults, **section)
