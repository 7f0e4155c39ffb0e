"""Hugging Face sequence classifiers built as torchdistill's text-classification script builds them."""
from ..registry import register_new_model

__all__ = ['hf_text_classifier']


def _check_kwargs(value, field):
    if not isinstance(value, dict) or not value.get('pretrained_model_name_or_path'):
        raise ValueError(f'{field} must be a mapping with pretrained_model_name_or_path (a hub id or a local '
                         f'save_pretrained folder), got {value!r}')


@register_new_model
def hf_text_classifier(config_kwargs: dict, model_kwargs: dict = None, from_config: bool = False):
    """``AutoModelForSequenceClassification`` from a config entry of the text schema; its forward returns the
    ``ModelOutput`` (``.logits``, and ``.loss`` when the batch holds ``labels``).

    The architecture is ``AutoConfig.from_pretrained(**config_kwargs)`` (``num_labels`` there; 1 = regression);
    the weights are ``from_pretrained(config=..., **model_kwargs)``, or none with ``from_config`` (the runner then
    loads the entry's ``src_ckpt``: a teacher's weights come only from its fine-tuned checkpoint).
    :mod:`plugins.glue.text_schema` turns a text-schema model entry into this model key for our runner.

    .. code-block:: yaml

        student_model:
          key: 'hf_text_classifier'
          kwargs:
            config_kwargs: {pretrained_model_name_or_path: 'distilbert/distilroberta-base', num_labels: 2}
            model_kwargs: {pretrained_model_name_or_path: 'distilbert/distilroberta-base'}
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    _check_kwargs(config_kwargs, 'config_kwargs')
    if not isinstance(from_config, bool):
        raise ValueError(f'from_config must be true or false, got {from_config!r}')
    config = AutoConfig.from_pretrained(**config_kwargs)
    if from_config:
        return AutoModelForSequenceClassification.from_config(config)
    _check_kwargs(model_kwargs, 'model_kwargs')
    return AutoModelForSequenceClassification.from_pretrained(config=config, **model_kwargs)
