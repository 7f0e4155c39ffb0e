"""The dataset side of teacher-output caching: each sample carries its index and content key in ``supp_dict``."""
from torchdistill.common.constant import def_logger
from torchdistill.datasets.wrapper import BaseDatasetWrapper

from ..config_util import check_integer
from ..registry import register_new_dataset_wrapper
from .fingerprint import dataset_fingerprint, random_transforms, sample_key, samples_reproducible

logger = def_logger.getChild(__name__)

__all__ = ['TeacherCacheDatasetWrapper', 'CACHE_FIELDS']

# supp_dict entries read by CachedTeacherWrapper; the DataLoader collates each into an int64 tensor.
CACHE_FIELDS = ('cache_index', 'cache_key', 'cache_dataset', 'cache_size')


@register_new_dataset_wrapper
class TeacherCacheDatasetWrapper(BaseDatasetWrapper):
    """Returns ``(sample, target, supp_dict)`` with the sample's index and content key for the teacher cache.

    ``supp_dict`` gets ``cache_index`` (the index), ``cache_key`` (64 bits of the SHA-1 of the transformed sample, so
    a changed sample or transform never matches a cached row), ``cache_dataset`` (a key of the dataset's class,
    length and transform reprs) and ``cache_size`` (its length). :class:`CachedTeacherWrapper` serves the
    teacher's output for rows it holds. When the transform is random (a ``Random*`` transform, ``ColorJitter``,
    ``AutoAugment``..., or a sample that differs when loaded twice), caching cannot be exact: a warning is
    logged, no cache fields are added and the teacher runs on every step, as without the cache.

    .. code-block:: yaml

        train_data_loader:
          dataset_id: 'cifar10/train'
          dataset_wrapper: {key: 'TeacherCacheDatasetWrapper', kwargs: {}}
    """

    def __init__(self, org_dataset, num_checks=2):
        super().__init__(org_dataset)
        check_integer(num_checks, 'num_checks', 0)
        found = random_transforms(org_dataset)
        if not found and len(org_dataset) > 0 and \
                not samples_reproducible(org_dataset, range(min(num_checks, len(org_dataset)))):
            found = ['a sample differs when loaded twice']
        self.random_transforms = found
        self.enabled = not found
        if found:
            logger.warning('Teacher-output caching is off for %s: its training transform is random (%s), so the '
                           'teacher sees new inputs every epoch; the teacher runs on every step',
                           type(org_dataset).__name__, ', '.join(found))
        self.dataset_key = dataset_fingerprint(org_dataset)

    def __getitem__(self, index):
        sample, target, supp_dict = super().__getitem__(index)
        if self.enabled:
            supp_dict.update(cache_index=index, cache_key=sample_key(sample), cache_dataset=self.dataset_key,
                             cache_size=len(self))
        return sample, target, supp_dict
