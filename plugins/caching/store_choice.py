"""Which store holds a cached teacher's rows: memory or disk; a disk cache an earlier run left is reused, verified.

``mode``: ``memory`` (tensors on the outputs' device), ``disk`` (``.npy`` memory maps under ``cache_dir``, reused by
later runs with the same teacher and data after their sizes and per-row checksums are verified; a damaged one is
discarded with a warning and rebuilt, see :mod:`~plugins.caching.disk_store`) or ``auto`` (a disk cache an earlier
run left is reused; otherwise memory when the whole cache fits in ``max_memory_mb``, disk when it does not, or when
training is distributed: the ranks then fill one shared cache, whereas each rank's memory cache would only see the
samples its sampler gives it).
"""
import os
from typing import Dict, Optional, Tuple

import torch
from torchdistill.common.constant import def_logger

from ..config_util import check_choice, check_number
from .disk_store import CacheDamaged, DiskStore, discard_cache
from .outputs import known_output_type, type_path
from .store import MemoryStore, OutputSpec

logger = def_logger.getChild(__name__)

__all__ = ['CACHE_MODES', 'default_cache_dir', 'check_cache_settings', 'TeacherOutputStores']

CACHE_MODES = ('auto', 'memory', 'disk')


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/annealing-continuation-kd/teacher-outputs`` (``~/.cache/...`` by default)."""
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(root, 'annealing-continuation-kd', 'teacher-outputs')


def check_cache_settings(mode, cache_dir, max_memory_mb, field: str = '', modes=CACHE_MODES,
                         error: type = ValueError) -> None:
    """The cache settings, whether from the runner's ``teacher_cache:`` section (``field='teacher_cache.'``) or
    from a ``CachedTeacherWrapper``'s kwargs; the error names the field and what is accepted."""
    check_choice(mode, f'{field}mode', modes, error=error)
    check_number(max_memory_mb, f'{field}max_memory_mb', 0, error=error)
    if cache_dir is not None and not isinstance(cache_dir, str):
        raise error(f'{field}cache_dir must be a directory path or null, got {cache_dir!r}')


class TeacherOutputStores:
    """The row stores of one cached teacher, one per dataset (keyed by the dataset's fingerprint), with the output
    type each was made from; see the module docstring for how a store is chosen."""

    def __init__(self, mode: str = 'auto', cache_dir: Optional[str] = None, max_memory_mb: float = 1024,
                 distributed: bool = False):
        check_cache_settings(mode, cache_dir, max_memory_mb)
        self.mode, self.max_memory_mb, self.distributed = mode, max_memory_mb, bool(distributed)
        self.cache_dir = os.path.expanduser(cache_dir) if cache_dir else default_cache_dir()
        self.stores: Dict[int, Tuple[object, Optional[type]]] = {}

    def find(self, teacher_key: str, dataset_key: int, num_samples: int) -> Tuple[object, Optional[type]]:
        """``(store, output type)`` held for the dataset, else a verified disk cache an earlier run left for this
        teacher and dataset, else ``(None, None)``."""
        found = self.stores.get(dataset_key)
        if found is None and self.mode != 'memory':
            found = self._open_disk_store(teacher_key, dataset_key, num_samples)
        return found or (None, None)

    def create(self, teacher_key: str, dataset_key: int, num_samples: int, spec: OutputSpec, output_type: type,
               device: torch.device, meta: dict) -> Tuple[object, type]:
        """A new store for the dataset's rows of ``spec``, chosen by ``mode`` (``meta`` describes the teacher in a
        disk cache's ``meta.json``)."""
        size_mb = num_samples * spec.row_bytes() / 2 ** 20
        if self.mode == 'memory' or (self.mode == 'auto' and size_mb <= self.max_memory_mb and not self.distributed):
            store = MemoryStore(num_samples, spec, device)
        else:
            directory = self._disk_directory(teacher_key, dataset_key, num_samples)
            store = self._verified_disk_store(directory, num_samples, spec) or DiskStore.create(
                directory, num_samples, spec, meta=dict(meta, teacher=teacher_key, dataset=dataset_key,
                                                        output_type=type_path(output_type)))
        logger.info('Teacher-output cache: %s store for %d samples (%.1f MiB)%s', store.mode, num_samples, size_mb,
                    f' in {store.directory}' if store.mode == 'disk' else '')
        self.stores[dataset_key] = (store, output_type)
        return store, output_type

    def clear(self) -> None:
        """Forgets every store (the teacher's weights changed)."""
        self.stores.clear()

    def flush(self) -> None:
        for store, _ in self.stores.values():
            store.flush()

    def _disk_directory(self, teacher_key, dataset_key, num_samples):
        return os.path.join(self.cache_dir, f'{teacher_key[:20]}-{dataset_key & (2 ** 64 - 1):016x}-{num_samples}')

    def _verified_disk_store(self, directory, num_samples, spec=None):
        """The cache in ``directory`` after every check passed, or None (none there, or damaged: discarded)."""
        if not os.path.isdir(directory):
            return None
        try:
            return DiskStore.open(directory, num_samples, spec)
        except CacheDamaged as damage:
            logger.warning('Teacher-output cache %s is damaged (%s): discarded; it is rebuilt from the teacher',
                           directory, damage)
            discard_cache(directory)
            return None

    def _open_disk_store(self, teacher_key, dataset_key, num_samples):
        store = self._verified_disk_store(self._disk_directory(teacher_key, dataset_key, num_samples), num_samples)
        if store is None:
            return None
        logger.info('Teacher-output cache: reusing %s (%d of %d rows filled, checksums verified)', store.directory,
                    store.num_filled(), num_samples)
        recorded = store.meta.get('output_type')
        output_type = known_output_type(recorded)
        if output_type is None:
            logger.warning('Teacher-output cache %s: its output type %r is not one this process has loaded (never '
                           'imported from a name on disk); it is learnt from the teacher\'s next batch', store.directory,
                           recorded)
        self.stores[dataset_key] = (store, output_type)
        return self.stores[dataset_key]
