"""torchdistill losses: Annealing-KD, its teacher-annealing wrapper and Continuation-KD."""
from .annealing import AnnealedTeacherLossWrapper, AnnealingKDLoss
from .continuation import ContinuationKDLoss
from .scheduled import ScheduledLoss, find_scheduled_losses
