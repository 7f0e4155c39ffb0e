"""Exact teacher-output caching for torchdistill distillation boxes.

With deterministic training inputs (no random augmentation) the teacher's outputs are the same every epoch,
so they are computed once: :class:`TeacherCacheDatasetWrapper` (a registered dataset wrapper) puts each
sample's index and content key in ``supp_dict``, and :class:`CachedTeacherWrapper` (a registered auxiliary
model wrapper) serves the cached output without running the teacher. The runner's top-level
``teacher_cache: {mode: auto}`` declares both in every stage that reads the teacher.

Modules: ``config`` (the ``teacher_cache:`` section), ``dataset`` and ``fingerprint`` (sample keys), ``teacher``
(the wrapper), ``outputs`` (an output as rows and back), ``store_choice`` (memory or disk), ``store`` and
``disk_store`` (the row stores).
"""
from .config import TEACHER_CACHE_DEFAULTS, apply_teacher_cache, teacher_cache_settings
from .dataset import TeacherCacheDatasetWrapper
from .store_choice import CACHE_MODES, default_cache_dir
from .teacher import CachedTeacherWrapper
