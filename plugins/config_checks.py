"""Checks a torchdistill config before any training starts; every error names the field at fault."""
import copy
import os

from torchdistill.losses.registry import get_high_level_loss

from .evaluation import get_metric
from .losses.scheduled import find_scheduled_losses
from .stages import check_stage_hooks

__all__ = ['ConfigError', 'check_config', 'stage_configs', 'uses_teacher']

SCHEDULE_HOOK = 'advance_loss_schedules'


class ConfigError(ValueError):
    """A config that cannot train correctly; the message names the field and what is accepted."""


def stage_configs(train_config):
    """[(field prefix, stage config)] in training order: ``train`` itself, or ``train.stage1``, ``train.stage2``..."""
    if 'stage1' not in train_config:
        return [('train', train_config)]
    stages, number = [], 1
    while f'stage{number}' in train_config:
        stages.append((f'train.stage{number}', train_config[f'stage{number}']))
        number += 1
    extra = sorted(key for key in train_config if key.startswith('stage') and key not in dict(
        (f'stage{i}', None) for i in range(1, number)))
    if extra:
        raise ConfigError(f'train: stage keys must be stage1, stage2, ... without gaps; unexpected {extra}')
    return stages


def uses_teacher(criterion):
    """True when some term of the criterion reads the teacher's outputs."""
    for term in [criterion] + [module for module, _ in getattr(criterion, 'term_dict', {}).values()]:
        for module in term.modules():
            if getattr(module, 'teacher_module_path', None) is not None or \
                    getattr(module, 'is_input_from_teacher', False) or getattr(module, 'is_target_from_teacher', False):
                return True
    return False


def _check_loader(config, field, dataset_ids, inherited, kind):
    """The loader's dataset id; a later stage without the loader keeps the previous stage's (``inherited``)."""
    loader = config.get(field.rsplit('.', 1)[-1]) if isinstance(config, dict) else None
    if not loader:
        if inherited is None:
            why = ' (checkpoints are selected on validation, never on test)' if kind == 'validation' else ''
            raise ConfigError(f'{field} is missing: a {kind} split is required{why}')
        return inherited
    dataset_id = loader.get('dataset_id')
    if dataset_id not in dataset_ids:
        raise ConfigError(f'{field}.dataset_id is {dataset_id!r}, which is not among the datasets: {sorted(dataset_ids)}')
    return dataset_id


def check_config(config, teacher_ckpt=None):
    """Raises :class:`ConfigError` for a config that cannot train correctly.

    Returns ``[(field, stage config, criterion built from it)]`` in training order.
    """
    for section in ('datasets', 'models', 'train', 'test'):
        if section not in config:
            raise ConfigError(f'the config has no {section!r} section')
    dataset_ids = set(config['datasets'])
    models = config['models']
    if 'student_model' not in models and 'model' not in models:
        raise ConfigError("models.student_model is missing (or models.model for training without a teacher)")
    test_id = _check_loader(config['test'], 'test.test_data_loader', dataset_ids, None, 'test')
    for name in config['test'].get('extra_test_data_loaders') or {}:
        _check_loader(config['test']['extra_test_data_loaders'], f'test.extra_test_data_loaders.{name}',
                      dataset_ids, None, 'test')
    get_metric(config.get('evaluation', {}).get('metric', 'accuracy'))
    checked, train_id, val_id = [], None, None
    for field, stage in stage_configs(config['train']):
        num_epochs = stage.get('num_epochs')
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise ConfigError(f'{field}.num_epochs must be an integer >= 1, got {num_epochs!r}')
        train_id = _check_loader(stage, f'{field}.train_data_loader', dataset_ids, train_id, 'training')
        val_id = _check_loader(stage, f'{field}.val_data_loader', dataset_ids, val_id, 'validation')
        if val_id == test_id:
            raise ConfigError(f'{field}.val_data_loader.dataset_id is the test split {test_id!r}: '
                              f'select checkpoints on a validation split carved from the training data')
        if 'criterion' not in stage:
            raise ConfigError(f'{field}.criterion is missing')
        try:
            criterion = get_high_level_loss(copy.deepcopy(stage['criterion']))
        except (ValueError, TypeError, KeyError) as error:
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
        if uses_teacher(criterion):
            _check_teacher(models, field, teacher_ckpt)
        checked.append((field, stage, criterion))
    _check_stage_hooks(config, checked)
    return checked


def _check_stage_hooks(config, checked):
    try:
        check_stage_hooks(config, [(field, stage) for field, stage, _ in checked],
                          reads_teacher=any(uses_teacher(criterion) for _, _, criterion in checked))
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _check_teacher(models, field, teacher_ckpt):
    teacher = models.get('teacher_model')
    if teacher is None:
        raise ConfigError(f'{field}.criterion reads the teacher, but models.teacher_model is missing')
    ckpt = teacher_ckpt or teacher.get('src_ckpt')
    if ckpt is None and not teacher.get('weights_in_kwargs', False):
        raise ConfigError('models.teacher_model.src_ckpt is not set: a teacher must be trained; train it with '
                          'its own config first, then set src_ckpt (or pass --teacher-ckpt); set '
                          'weights_in_kwargs: true when the model kwargs already load trained weights')
    if ckpt is not None and not os.path.isfile(os.path.expanduser(ckpt)):
        raise ConfigError(f'models.teacher_model.src_ckpt: no file at {ckpt!r}')
