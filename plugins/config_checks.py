"""Checks a torchdistill config before any training starts, and the run's own parameters; every error names the field.

:func:`checked_stages` checks a loaded config and builds each stage's criterion (the checks need them: which
losses are scheduled, whether a stage reads the teacher); the runner trains with those stages and the benchmark
harness calls it on every planned run before the first one starts.
"""
import copy
import difflib
import inspect
import os
from typing import Any, List, NamedTuple, Optional

import torch
from torchdistill.losses.registry import get_high_level_loss
from torchdistill.models.registry import MODEL_DICT
from torchdistill.optim.registry import OPTIM_DICT, SCHEDULER_DICT

from .checkpoint import checkpoint_exists
from .config_util import check_integer, check_number, stage_configs, uses_teacher
from .errors import ConfigError
from .evaluation import get_metric
from .losses.scheduled import find_scheduled_losses
from .stages import check_stage_hooks

__all__ = ['ConfigError', 'CheckedStage', 'checked_stages', 'check_seed', 'check_device',
           'check_directory', 'parse_value', 'SEED_RANGE']

SCHEDULE_HOOK = 'advance_loss_schedules'
SECTIONS = ('datasets', 'models', 'train', 'test')
SEED_RANGE = (0, 2 ** 32 - 1)  # what numpy's and Python's seeding accept


class CheckedStage(NamedTuple):
    """A training stage that passed the checks: its field prefix, its config and the criterion built from it."""
    field: str
    config: dict
    criterion: torch.nn.Module


def _check_batch_size(loader, field):
    kwargs = loader.get('kwargs') or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f'{field}.kwargs must be a mapping (batch_size, num_workers...), got {kwargs!r}')
    if 'batch_size' in kwargs:
        check_integer(kwargs['batch_size'], f'{field}.kwargs.batch_size', error=ConfigError)


def _check_loader(config, field, dataset_ids, inherited, kind):
    """The loader's dataset id; a later stage without the loader keeps the previous stage's (``inherited``)."""
    loader = config.get(field.rsplit('.', 1)[-1]) if isinstance(config, dict) else None
    if not loader:
        if inherited is None:
            why = ' (checkpoints are selected on validation, never on test)' if kind == 'validation' else ''
            raise ConfigError(f'{field} is missing: a {kind} split is required{why}')
        return inherited
    if not isinstance(loader, dict):
        raise ConfigError(f'{field} must be a mapping with dataset_id, sampler and kwargs, got {loader!r}')
    dataset_id = loader.get('dataset_id')
    if dataset_id not in dataset_ids:
        raise ConfigError(f'{field}.dataset_id is {dataset_id!r}, which is not among the datasets: {sorted(dataset_ids)}')
    _check_batch_size(loader, field)
    return dataset_id


def _check_call(field, function, kwargs, leading=0, complete=True):
    """Binds ``kwargs`` to ``function``'s signature (after ``leading`` positional arguments) without calling it."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check here
        return
    parameters = list(signature.parameters.values())
    accepted = [p.name for p in parameters[leading:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [name for name in kwargs if name not in accepted]
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in parameters):  # before any missing one: a typo
        raise ConfigError(f'{field}: unknown argument(s) {unknown}; accepted: {accepted}')
    try:
        bind = signature.bind if complete else signature.bind_partial
        bind(*([None] * leading), **kwargs)
    except TypeError as error:
        raise ConfigError(f'{field}: {error}; accepted: {accepted}') from None


def _check_registered(field, section, registry, what, leading):
    """A ``{key, kwargs}`` section naming an entry of one of torchdistill's registries."""
    if not isinstance(section, dict):
        raise ConfigError(f'{field} must be a mapping with key and kwargs, got {section!r}')
    key, kwargs = section.get('key'), section.get('kwargs') or {}
    if not isinstance(key, str) or key not in registry:
        names = sorted(name for name in registry if isinstance(name, str))
        close = difflib.get_close_matches(key, names, n=3) if isinstance(key, str) else []
        hint = (f'did you mean {close[0]!r}? ' if close else '') + \
            (f'accepted: {names}' if len(names) <= 30 else f'({len(names)} registered keys)')
        raise ConfigError(f'{field}.key: unknown {what} {key!r}; {hint}')
    if not isinstance(kwargs, dict):
        raise ConfigError(f'{field}.kwargs must be a mapping, got {kwargs!r}')
    _check_call(f'{field}.kwargs', registry[key], kwargs, leading=leading, complete='kwargs' in section)
    return kwargs


def _optimizers():
    """torchdistill's optimizers, less the abstract base class it also registers."""
    return {key: value for key, value in OPTIM_DICT.items() if value is not torch.optim.Optimizer}


def _schedulers():
    """torchdistill's schedulers: it registers every name in ``torch.optim.lr_scheduler`` (``Any``, ``Counter``,
    ``Tensor``, ``partial``...), of which only the scheduler classes (not the base class) and functions build one."""
    from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

    def builds_a_scheduler(value):
        if inspect.isclass(value):
            return issubclass(value, (LRScheduler, ReduceLROnPlateau)) and value is not LRScheduler
        return inspect.isfunction(value)

    return {key: value for key, value in SCHEDULER_DICT.items()
            if isinstance(key, str) and not key.startswith('_') and builds_a_scheduler(value)}


def _check_optimization(field, stage):
    optimizer = stage.get('optimizer')
    if optimizer:
        kwargs = _check_registered(f'{field}.optimizer', optimizer, _optimizers(), 'optimizer', leading=1)
        if 'lr' in kwargs:
            check_number(kwargs['lr'], f'{field}.optimizer.kwargs.lr', 0, finite=True, error=ConfigError)
        for index, group in enumerate(optimizer.get('module_wise_params') or []):
            if isinstance(group, dict) and 'lr' in (group.get('kwargs') or {}):
                check_number(group['kwargs']['lr'], f'{field}.optimizer.module_wise_params[{index}].kwargs.lr', 0,
                             finite=True, error=ConfigError)
    scheduler = stage.get('scheduler')
    if scheduler:
        _check_registered(f'{field}.scheduler', scheduler, _schedulers(), 'scheduler', leading=1)


def _check_models(models, require_files):
    if 'student_model' not in models and 'model' not in models:
        raise ConfigError("models.student_model is missing (or models.model for training without a teacher)")
    for name, model in models.items():
        field = f'models.{name}'
        if not isinstance(model, dict):
            raise ConfigError(f'{field} must be a mapping with key and kwargs, got {model!r}')
        if model.get('repo_or_dir') is None:  # torch.hub models are checked when they are loaded
            _check_registered(field, model, MODEL_DICT, 'model', leading=0)
        ckpt = model.get('src_ckpt')
        if name != 'teacher_model' and ckpt is not None and require_files and \
                not checkpoint_exists(str(ckpt)):  # torchdistill would start from scratch silently
            raise ConfigError(f'{field}.src_ckpt: no file at {ckpt!r}')


def _check_sections(config):
    if not isinstance(config, dict):
        raise ConfigError(f'a config must be a mapping with the sections {list(SECTIONS)}, '
                          f'got {type(config).__name__}')
    for section in SECTIONS:
        if section not in config:
            raise ConfigError(f'the config has no {section!r} section (required: {list(SECTIONS)})')
        if not isinstance(config[section], dict):
            raise ConfigError(f'{section} must be a mapping, got {type(config[section]).__name__}')
    evaluation = config.get('evaluation') or {}
    if not isinstance(evaluation, dict):
        raise ConfigError(f'evaluation must be a mapping such as {{metric: accuracy}}, got {evaluation!r}')
    get_metric(evaluation.get('metric', 'accuracy'))


def checked_stages(config: dict, teacher_ckpt: Optional[str] = None, require_files: bool = True) \
        -> List[CheckedStage]:
    """The stages of ``config`` in training order, each with the criterion built from it; :class:`ConfigError` for
    a config that cannot train correctly.

    ``require_files=False`` skips the existence check of the teacher checkpoint (the harness checks before the
    teacher is trained).
    """
    _check_sections(config)
    dataset_ids = set(config['datasets'])
    models = config['models']
    _check_models(models, require_files)
    test_id = _check_loader(config['test'], 'test.test_data_loader', dataset_ids, None, 'test')
    for name in config['test'].get('extra_test_data_loaders') or {}:
        _check_loader(config['test']['extra_test_data_loaders'], f'test.extra_test_data_loaders.{name}',
                      dataset_ids, None, 'test')
    checked, train_id, val_id = [], None, None
    for field, stage in stage_configs(config['train']):
        num_epochs = check_integer(stage.get('num_epochs'), f'{field}.num_epochs', error=ConfigError)
        train_id = _check_loader(stage, f'{field}.train_data_loader', dataset_ids, train_id, 'training')
        val_id = _check_loader(stage, f'{field}.val_data_loader', dataset_ids, val_id, 'validation')
        if val_id == test_id:
            raise ConfigError(f'{field}.val_data_loader.dataset_id is the test split {test_id!r}: '
                              f'select checkpoints on a validation split carved from the training data')
        _check_optimization(field, stage)
        checked.append(CheckedStage(field, stage, _check_criterion(field, stage, num_epochs)))
        if uses_teacher(checked[-1].criterion):
            _check_teacher(models, field, teacher_ckpt, require_files)
    _check_stage_hooks(config, checked)
    return checked


def _check_stage_hooks(config, checked):
    try:
        check_stage_hooks(config, [(field, stage) for field, stage, _ in checked],
                          reads_teacher=any(uses_teacher(criterion) for _, _, criterion in checked))
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _check_criterion(field, stage, num_epochs):
    if 'criterion' not in stage:
        raise ConfigError(f'{field}.criterion is missing')
    try:
        criterion = get_high_level_loss(copy.deepcopy(stage['criterion']))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ConfigError(f'{field}.criterion: {error}') from error
    scheduled = find_scheduled_losses(criterion)
    if scheduled and stage.get('pre_epoch_process') != SCHEDULE_HOOK:
        names = sorted({type(loss).__name__ for loss in scheduled})
        raise ConfigError(f"{field}.pre_epoch_process must be '{SCHEDULE_HOOK}' for the scheduled loss(es) "
                          f'{names}, got {stage.get("pre_epoch_process")!r}: without it the schedule never moves')
    for loss in scheduled:
        try:
            loss.check_stage(num_epochs, field=f'{field}.num_epochs')
        except ValueError as error:
            raise ConfigError(str(error)) from error
    return criterion


def _check_teacher(models, field, teacher_ckpt, require_files):
    teacher = models.get('teacher_model')
    if teacher is None:
        raise ConfigError(f'{field}.criterion reads the teacher, but models.teacher_model is missing')
    ckpt = teacher_ckpt or teacher.get('src_ckpt')
    if ckpt is None and not teacher.get('weights_in_kwargs', False):
        raise ConfigError('models.teacher_model.src_ckpt is not set: a teacher must be trained; train it with '
                          'its own config first, then set src_ckpt (or pass --teacher-ckpt); set '
                          'weights_in_kwargs: true when the model kwargs already load trained weights')
    if ckpt is not None and require_files and not checkpoint_exists(ckpt):  # a file or a save_pretrained folder
        raise ConfigError(f'models.teacher_model.src_ckpt: no file at {ckpt!r}')


def check_seed(seed: int, field: str = '--seed') -> None:
    """Raises :class:`ConfigError` unless ``seed`` is an integer that every random-number generator accepts."""
    check_integer(seed, field, *SEED_RANGE, error=ConfigError)


def check_device(device: str, field: str = '--device') -> None:
    """Raises :class:`ConfigError` unless ``device`` is 'cpu', or 'cuda' / 'cuda:N' with that GPU present."""
    text = str(device)
    if text != 'cpu' and text != 'cuda' and not (text.startswith('cuda:') and text[5:].isdigit()):
        raise ConfigError(f"{field} must be 'cpu', 'cuda' or 'cuda:N', got {text!r}")
    if text.startswith('cuda'):
        if not torch.cuda.is_available():
            raise ConfigError(f'{field} {text}: no CUDA GPU is available on this machine '
                              f'(torch.cuda.is_available() is False); use --device cpu')
        index = int(text[5:]) if ':' in text else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f'{field} {text}: this machine has {torch.cuda.device_count()} CUDA device(s), '
                              f'numbered from 0')


def check_directory(path: str, field: str) -> None:
    """Raises :class:`ConfigError` unless ``path`` is a writable directory or can be created as one."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    existing = path
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = 'is a file, not a directory' if existing == path else \
            f'cannot be created: {existing!r} is a file, not a directory'
        raise ConfigError(f'{field}: {path!r} {what}; give a directory path')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f'{field}: {existing!r} is not writable')


def parse_value(text: str) -> Any:
    """A command-line value as a user means it: ``1e-3`` and ``5`` are numbers, ``true`` / ``null`` / ``[1, 2]``
    YAML, anything else text (YAML 1.1 alone reads ``1e-3`` as a string)."""
    import yaml
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
