"""The runner's ``teacher_cache:`` section: one switch that declares the cache in every stage that reads the teacher."""
import copy
from typing import Any, List, Optional

from ..config_checks import CheckedStage, check_directory
from ..config_util import settings_with_defaults, stage_configs, uses_teacher
from ..errors import ConfigError
from .dataset import TeacherCacheDatasetWrapper
from .store_choice import CACHE_MODES, check_cache_settings, default_cache_dir
from .teacher import CachedTeacherWrapper

__all__ = ['TEACHER_CACHE_DEFAULTS', 'teacher_cache_settings', 'apply_teacher_cache']

TEACHER_CACHE_DEFAULTS = {'mode': 'off', 'cache_dir': None, 'max_memory_mb': 1024}


def teacher_cache_settings(section: Optional[Any]) -> dict:
    """The ``teacher_cache`` section with every field present (so ``--set teacher_cache.mode=auto`` works).

    ``mode``: ``off`` (default; YAML's bare ``off``/``false`` too), ``auto`` (also ``on``/``true``), ``memory`` or
    ``disk``; ``cache_dir``: where disk caches live
    (default ``~/.cache/annealing-continuation-kd/teacher-outputs``); ``max_memory_mb``: the ``auto`` threshold.
    """
    settings = settings_with_defaults({} if section is None else section, 'teacher_cache', TEACHER_CACHE_DEFAULTS,
                                      f'fields {sorted(TEACHER_CACHE_DEFAULTS)}', error=ConfigError)
    if isinstance(settings['mode'], bool):  # YAML reads a bare off / on as a boolean
        settings['mode'] = 'auto' if settings['mode'] else 'off'
    check_cache_settings(settings['mode'], settings['cache_dir'], settings['max_memory_mb'], field='teacher_cache.',
                         modes=('off', *CACHE_MODES), error=ConfigError)
    return settings


def _enable_in_stage(field, stage, loader, settings):
    teacher = stage.setdefault('teacher', {})
    if teacher.get('auxiliary_model_wrapper'):
        raise ConfigError(f'{field}.teacher.auxiliary_model_wrapper is already set; teacher_cache needs it for '
                          f'CachedTeacherWrapper (set teacher_cache.mode: off, or declare the cache yourself)')
    if teacher.get('forward_hook'):
        raise ConfigError(f'{field}.teacher.forward_hook is set: teacher_cache caches only the output of the whole '
                          f"teacher (io_dict path '.'); set teacher_cache.mode: off")
    if teacher.get('requires_grad', True) is not False:
        raise ConfigError(f'{field}.teacher.requires_grad must be false for teacher_cache: a teacher that trains '
                          f'changes its outputs')
    if loader.get('requires_supp') is False:  # e.g. the GLUE configs: torchdistill's text-classification schema
        raise ConfigError(f'{field}.train_data_loader.requires_supp is false (batches are dicts holding their labels, '
                          'with no supp_dict to carry the cache keys): set teacher_cache.mode: off')
    wrapper = loader.get('dataset_wrapper')
    if wrapper and wrapper.get('key') != TeacherCacheDatasetWrapper.__name__:
        raise ConfigError(f"{field}.train_data_loader.dataset_wrapper is already {wrapper.get('key')!r}; "
                          f'teacher_cache needs {TeacherCacheDatasetWrapper.__name__}')
    loader['dataset_wrapper'] = {'key': TeacherCacheDatasetWrapper.__name__, 'kwargs': {}}
    stage['train_data_loader'] = loader
    kwargs = {key: settings[key] for key in ('mode', 'cache_dir', 'max_memory_mb')}
    teacher['auxiliary_model_wrapper'] = {
        'key': CachedTeacherWrapper.__name__,
        'kwargs': dict(kwargs, forward_proc=teacher.get('forward_proc') or 'forward_batch_only')}
    teacher['forward_proc'] = 'forward_all'  # the box passes (sample_batch, targets, supp_dict) to the wrapper


def apply_teacher_cache(config: dict, stages: List[CheckedStage]) -> dict:
    """A copy of ``config`` whose stages that read the teacher use the cache (``stages``: from
    :func:`~plugins.config_checks.checked_stages`).

    Each such stage gets ``TeacherCacheDatasetWrapper`` on its training loader (a stage that inherits the loader
    gets a copy of it) and ``CachedTeacherWrapper`` as the teacher's auxiliary model wrapper. Stages whose
    criterion ignores the teacher keep (or get back) the plain loader.
    """
    settings = teacher_cache_settings(config.get('teacher_cache'))
    if settings['mode'] == 'off':
        return config
    if settings['mode'] != 'memory':  # a cache_dir that is a file would fail only after training started
        check_directory(settings['cache_dir'] or default_cache_dir(), 'teacher_cache.cache_dir')
    config = dict(config, train=copy.deepcopy(config['train']))
    loader, inherited_wrapped = None, False
    for (field, stage), (_, _, criterion) in zip(stage_configs(config['train']), stages):
        own_loader = bool(stage.get('train_data_loader'))
        if own_loader:
            loader = stage['train_data_loader']
        if uses_teacher(criterion):
            _enable_in_stage(field, stage, copy.deepcopy(loader), settings)
            inherited_wrapped = True
        elif not own_loader and inherited_wrapped and loader is not None:
            # e.g. Annealing-KD's Stage II: its own copy of the plain loader, so it does not hash samples for nothing
            stage['train_data_loader'] = copy.deepcopy(loader)
            inherited_wrapped = False
        else:
            inherited_wrapped = False if own_loader else inherited_wrapped
    return config
