"""The base of every continuation objective: a loss at a position in the run, set by a schedule."""
from torch import nn

__all__ = ['ContinuationObjective']


class ContinuationObjective(nn.Module):
    """Holds the continuation parameter ``lam`` in [0, 1], 0 at construction.

    ``accepts_label_loss``: whether ``forward`` takes a precomputed label loss (``label_loss=``) in place of the
    labels, e.g. the ``.loss`` a Hugging Face model returns when its batch holds the labels.
    """

    accepts_label_loss = False

    def __init__(self):
        super().__init__()
        self.lam = 0.0

    def set_lambda(self, lam):
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f'the continuation parameter lambda must lie in [0, 1], got {lam!r}')
        self.lam = float(lam)

    def state(self):
        """Current schedule-dependent quantities, for logs."""
        return {'lambda': self.lam}

    def forward(self, student_logits, teacher_logits, targets=None):
        raise NotImplementedError
