"""torchdistill plugins for Annealing-KD and Continuation-KD.

``import plugins`` (or ``dependencies: ['plugins']`` in a torchdistill YAML config) registers every loss,
loss wrapper, epoch hook (``plugins.hooks``, ``plugins.stages``), model and dataset below; it never replaces a
key torchdistill already has.
"""
from . import datasets, hooks, losses, models, stages
from . import diagnostics, teacher_noise
from . import caching  # teacher-output cache (dataset + teacher wrappers)
from . import glue
from .losses import AnnealedTeacherLossWrapper, AnnealingKDLoss, ContinuationKDLoss

