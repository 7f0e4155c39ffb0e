"""The teacher side of teacher-output caching: a torchdistill auxiliary model wrapper that serves cached outputs.

torchdistill 1.1.5 has no teacher-output cache (its source has no ``cache_output`` option any more; the
0.x ``CacheableDataset`` is gone), so this wrapper provides one the torchdistill way: it is declared under a
stage's ``teacher.auxiliary_model_wrapper`` and reads the sample indices and keys that
:class:`TeacherCacheDatasetWrapper` puts in ``supp_dict``.
"""
from collections.abc import Mapping

import torch
from torchdistill.common.constant import def_logger
from torchdistill.core.interfaces.registry import get_forward_proc_func
from torchdistill.models.wrapper import AuxiliaryModelWrapper

from ..registry import register_new_auxiliary_model_wrapper
from .fingerprint import module_fingerprint, tensor_versions
from .outputs import flatten_output, rebuild_output
from .store import OutputSpec
from .store_choice import TeacherOutputStores

logger = def_logger.getChild(__name__)

__all__ = ['CachedTeacherWrapper']


@register_new_auxiliary_model_wrapper
class CachedTeacherWrapper(AuxiliaryModelWrapper):
    """Runs the teacher once per sample and serves its output from a cache afterwards; exact, or not used.

    On a batch whose every sample has a valid row (same index, same sample key, same teacher weights) the
    teacher does not run at all and the cached output (bit-identical to what the teacher returned for that
    sample) is returned; otherwise the teacher runs on the batch and its rows are (re)written. The cache is
    keyed by the teacher's weights (a digest, re-taken at the next step after a parameter or buffer changes in
    place, e.g. ``load_state_dict``, and at the next epoch after parameter objects are replaced), the
    dataset (class, length, transforms) and every sample's content, so a change of teacher, data or transform
    is never served stale. ``mode`` (``auto``, ``memory`` or ``disk``), ``cache_dir`` and ``max_memory_mb`` choose
    where the rows live (:mod:`~plugins.caching.store_choice`). Caching is skipped, with one warning, when it
    cannot be exact: a teacher in training mode or with gradients, forward hooks on teacher modules (only the
    model's own output, io_dict path '.', is cached), outputs that are not per-sample tensors, or batches
    without the cache fields (no :class:`TeacherCacheDatasetWrapper`, or a random training transform).

    The box calls this wrapper with ``forward_all`` (``model(sample_batch, targets, supp_dict)``); the real
    teacher is called with ``forward_proc`` (default ``forward_batch_only``). Losses read the output as usual
    from ``teacher_io_dict['.']['output']``. The runner's top-level ``teacher_cache:`` sets all this up.
    (torchdistill 1.1.5 itself has no teacher-output cache: no ``cache_output`` option exists in its source.)

    .. code-block:: yaml

        stage1:
          train_data_loader:
            dataset_id: 'digits/train'
            dataset_wrapper: {key: 'TeacherCacheDatasetWrapper', kwargs: {}}
            # ... sampler, kwargs as usual
          teacher:
            forward_proc: 'forward_all'
            requires_grad: False
            auxiliary_model_wrapper:
              key: 'CachedTeacherWrapper'
              kwargs: {forward_proc: 'forward_batch_only', mode: 'auto', max_memory_mb: 1024}
    """

    def __init__(self, teacher_model, forward_proc='forward_batch_only', mode='auto', cache_dir=None,
                 max_memory_mb=1024, device=None, device_ids=None, distributed=False):
        super().__init__()
        self.store_choice = TeacherOutputStores(mode, cache_dir, max_memory_mb, distributed)
        self.teacher = teacher_model
        self.forward_proc_name = forward_proc or 'forward_batch_only'
        self.teacher_forward_proc = get_forward_proc_func(self.forward_proc_name)
        self._versions, self._fingerprint, self._warned, self._device = None, None, set(), None
        self._tensors, self._identities, self._hooked = None, None, False
        self.hits = self.misses = self.teacher_calls = 0

    @property
    def stores(self) -> dict:
        """{dataset key: (store, output type)} of the stores in use."""
        return self.store_choice.stores

    def _warn_once(self, reason):
        if reason not in self._warned:
            self._warned.add(reason)
            logger.warning('Teacher-output cache not used: %s; the teacher runs on every step', reason)

    def _run_teacher(self, sample_batch, targets, supp_dict):
        self.teacher_calls += 1
        return self.teacher_forward_proc(self.teacher, sample_batch, targets, supp_dict)

    def _refresh_tensor_lists(self):
        # Walking a deep teacher's modules costs milliseconds, so it is done once per epoch (after torchdistill
        # has moved the teacher to its device, which may replace buffers); only version counters are read per step.
        tensors = [*self.teacher.parameters(), *self.teacher.buffers()]
        identities = [id(tensor) for tensor in tensors]
        if identities != self._identities:  # other tensor objects: their version counters say nothing
            self._versions = None
        self._tensors, self._identities = tensors, identities
        # torchdistill registers forward hooks when it sets a stage up, never within an epoch.
        self._hooked = any(module._forward_hooks or module._forward_pre_hooks for module in self.teacher.modules())

    def _uncacheable_reason(self, supp_dict):
        if not isinstance(supp_dict, Mapping) or 'cache_index' not in supp_dict:
            return 'the batches carry no cache_index (add TeacherCacheDatasetWrapper to the training loader; ' \
                   'it leaves it out when the transform is random)'
        if self._tensors is None:
            self._refresh_tensor_lists()
        if self.teacher.training:
            return 'the teacher is in training mode (call teacher.eval())'
        if torch.is_grad_enabled() and any(tensor.requires_grad for tensor in self._tensors):
            return 'the teacher is being trained (set teacher.requires_grad: false)'
        if self._hooked:
            return 'forward hooks are set on teacher modules (only the output of the whole model is cached)'
        return None

    def _teacher_key(self):
        """The teacher's weight digest, re-taken (and in-memory rows dropped) whenever a tensor changed."""
        versions = tensor_versions(self._tensors)
        if versions != self._versions:
            fingerprint = module_fingerprint(self.teacher, self.forward_proc_name)
            if self._fingerprint is not None and fingerprint != self._fingerprint:
                logger.info('Teacher weights changed: teacher-output cache invalidated')
                self.store_choice.clear()
            self._versions, self._fingerprint = versions, fingerprint
        return self._fingerprint

    def forward(self, sample_batch, targets=None, supp_dict=None):
        reason = self._uncacheable_reason(supp_dict)
        if reason is not None:
            self._warn_once(reason)
            return self._run_teacher(sample_batch, targets, supp_dict)
        self._teacher_key()
        indices = torch.as_tensor(supp_dict['cache_index'], dtype=torch.int64)
        keys = torch.as_tensor(supp_dict['cache_key'], dtype=torch.int64)
        dataset_key = int(torch.as_tensor(supp_dict['cache_dataset']).reshape(-1)[0])
        num_samples = int(torch.as_tensor(supp_dict['cache_size']).reshape(-1)[0])
        store, output_type = self.store_choice.find(self._fingerprint, dataset_key, num_samples)
        if store is not None and output_type is not None and store.contains(indices, keys):
            self.hits += len(indices)
            names = [name for name, _, _ in store.spec.fields]
            return rebuild_output(output_type, names, store.read(indices, self._output_device(store)))
        output = self._run_teacher(sample_batch, targets, supp_dict)
        self.misses += len(indices)
        tensors = flatten_output(output)
        if tensors is None or any(t.dim() == 0 or t.shape[0] != len(indices) for _, t in tensors):
            self._warn_once(f'the teacher output ({type(output).__name__}) is not a per-sample tensor or mapping '
                            f'of per-sample tensors')
            return output
        spec, self._device = OutputSpec.of(tensors), tensors[0][1].device
        if store is None or store.spec != spec or output_type is not type(output):
            store, _ = self.store_choice.create(
                self._fingerprint, dataset_key, num_samples, spec, type(output), self._device,
                meta={'teacher_class': type(self.teacher).__name__, 'forward_proc': self.forward_proc_name})
        store.write(indices, keys, [t for _, t in tensors])
        return output

    def _output_device(self, store):
        # Cached outputs go where the teacher's parameters are (where its own outputs would be).
        if self._device is None:
            parameter = next(self.teacher.parameters(), None)
            self._device = parameter.device if parameter is not None else torch.device('cpu')
        return self._device

    def post_epoch_process(self, *args, **kwargs):
        """Flushes disk stores, logs the epoch's hits and misses and re-lists the teacher's tensors."""
        self.store_choice.flush()
        self._tensors = None
        if self.hits or self.misses:
            logger.info('Teacher-output cache: %d hits, %d misses, %d teacher calls this epoch',
                        self.hits, self.misses, self.teacher_calls)
        self.hits = self.misses = self.teacher_calls = 0
