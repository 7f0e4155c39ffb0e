"""Exact teacher-output caching and idle-teacher release for torchdistill distillation boxes.

With deterministic training inputs (no random augmentation) the teacher's outputs are the same every epoch,
so they are computed once: :class:`TeacherCacheDatasetWrapper` (a registered dataset wrapper) puts each
sample's index and content key in ``supp_dict``, and :class:`CachedTeacherWrapper` (a registered auxiliary
model wrapper) serves the cached output without running the teacher. The runner's top-level
``teacher_cache: {mode: auto}`` declares both in every stage that reads the teacher; :func:`release_idle_teacher`
skips the teacher (and keeps it off the GPU) in stages whose criterion ignores it.
"""
from .config import TEACHER_CACHE_DEFAULTS, apply_teacher_cache, teacher_cache_settings
from .dataset import TeacherCacheDatasetWrapper
from .idle_teacher import release_idle_teacher, skip_teacher_forward
from .teacher import CachedTeacherWrapper, default_cache_dir
