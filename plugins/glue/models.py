"""Hugging Face sequence classifiers as torchdistill models whose output is the logits tensor."""
from torch import nn

from ..registry import register_new_model
from .names import resolve_model

__all__ = ['SequenceClassifierLogits', 'hf_sequence_classifier']


class SequenceClassifierLogits(nn.Module):
    """Wraps a ``*ForSequenceClassification`` model so that ``forward`` returns ``logits`` (batch x num_labels).

    torchdistill's forward hook on ``'.'`` (io ``'output'``) then holds a tensor that our losses and
    torchdistill's ``KDLoss`` / ``MSELoss`` read unchanged. Call it as ``model(**batch)``
    (``forward_batch_only_as_kwargs``) or ``model(batch)`` (``forward_batch_only``) with the tokenizer's dict.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch=None, **inputs):
        if batch is not None:
            inputs = {**batch, **inputs}
        return self.model(**inputs).logits


@register_new_model
def hf_sequence_classifier(num_labels, role='student', family='roberta', name_or_path=None, config=None,
                           **from_pretrained_kwargs):
    """``AutoModelForSequenceClassification`` with ``num_labels`` outputs (1 = regression), returning logits.

    The checkpoint is ``name_or_path``, else the env var of ``role`` (``KD_GLUE_TEACHER`` / ``KD_GLUE_TA`` /
    ``KD_GLUE_STUDENT``), else the paper's model of ``family`` (see :mod:`plugins.glue.names`); a local
    ``save_pretrained`` folder works offline. With ``config`` (a dict with ``model_type`` and the
    architecture's fields) the model is built untrained from that config instead, with no download.

    .. code-block:: yaml

        student_model:
          key: 'hf_sequence_classifier'
          kwargs: {num_labels: 2, role: 'student', family: 'roberta', name_or_path: null}
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f'num_labels must be an integer >= 1, got {num_labels!r}')
    if config is not None:
        if not isinstance(config, dict) or 'model_type' not in config:
            raise ValueError(f"config must be a dict with a 'model_type' (e.g. 'bert'), got {config!r}")
        fields = {key: value for key, value in config.items() if key != 'model_type'}
        model_config = AutoConfig.for_model(config['model_type'], num_labels=num_labels, **fields)
        return SequenceClassifierLogits(AutoModelForSequenceClassification.from_config(model_config))
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model(role, family, name_or_path), num_labels=num_labels, **from_pretrained_kwargs)
    return SequenceClassifierLogits(model)
