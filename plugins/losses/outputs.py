"""Reading a model's output in a loss: a logits tensor, or an object with ``.logits`` (and ``.loss``)."""
from typing import Any, Optional

import torch

__all__ = ['logits_of', 'own_loss_of']


def logits_of(output: Any) -> torch.Tensor:
    """The logits of ``output``: the tensor itself, or ``output.logits`` (e.g. a Hugging Face ModelOutput)."""
    return output.logits if hasattr(output, 'logits') else output


def own_loss_of(output: Any) -> Optional[torch.Tensor]:
    """The loss a model computed itself (a Hugging Face model does when its batch holds the labels), else None."""
    return getattr(output, 'loss', None)
