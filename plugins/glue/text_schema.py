"""Our runner on configs in the schema of torchdistill's ``examples/hf_transformers/text_classification.py``.

That script (checked at torchdistill commit 3e4373c45214c5c56eebac481d5bfe8b8735aa05) reads, besides the sections
every torchdistill driver reads:

- ``models.<name>``: ``config_kwargs`` (``AutoConfig.from_pretrained``), ``tokenizer_kwargs``, ``model_kwargs``,
  ``src_ckpt`` and ``dst_ckpt`` (``save_pretrained`` folders; the teacher prefers its ``dst_ckpt``);
- ``datasets``: a raw ``datasets.DatasetDict``, tokenised with the student's tokenizer as ``preprocess`` says
  (``text_keys``, ``label_key``, ``label2id``, ``max_length``, ``dataset_id_map``...);
- ``metrics`` (objects with ``evaluate``'s ``add_batch`` / ``compute``) and ``evaluate.main_metric``;
- loaders with ``collate_fn: 'DataCollatorWithPadding'``, which the script registers for the student's tokenizer.

Its batches are dicts that hold their ``labels``: it calls ``forward_process(batch, targets=None)``, so a
Hugging Face model computes its own loss (read with ``func2extract_model_loss: 'extract_hf_model_loss'``).

:func:`adapt_text_schema` gives our runner the same run: it tokenises the datasets the same way, registers the
same collate function, turns each model entry into the registered ``hf_text_classifier`` (a teacher's weights
come from its checkpoint, a ``save_pretrained`` folder or a ``.pt`` file), and checks that ``evaluate.main_metric``
is the primary figure of ``evaluation.metric``, on which the runner selects checkpoints.
"""
from collections.abc import Mapping

from torchdistill.datasets.registry import register_collate_func

from ..checkpoint import checkpoint_exists
from ..errors import ConfigError
from ..evaluation import get_metric
from ..losses.outputs import own_loss_of
from ..registry import register_new_func2extract_model_output
from .metrics import EvaluateMetric

__all__ = ['is_text_schema', 'adapt_text_schema', 'preprocess_text_datasets', 'extract_hf_model_loss',
           'PREPROCESS_FIELDS']

# The text script passes the first six to its preprocessing without defaults, so every config gives them.
PREPROCESS_FIELDS = ('text_keys', 'label_key', 'pad_to_max_length', 'max_length', 'base_split_name', 'batched',
                     'label2id', 'dataset_id_map')
MODEL_FIELDS = ('config_kwargs', 'tokenizer_kwargs', 'model_kwargs')
_PREPROCESSED = {}  # (splits' fingerprints, tokenizer, settings) -> tokenised datasets: configs share them
_MAX_CACHED = 8


@register_new_func2extract_model_output
def extract_hf_model_loss(student_outputs, targets=None, **kwargs) -> dict:
    """``{'loss': student_outputs.loss}``: the loss a Hugging Face model computed from the labels in its batch.

    Name it as ``criterion.func2extract_model_loss`` and weigh it with ``criterion.kwargs.model_term.weight``.
    """
    loss = own_loss_of(student_outputs)
    if loss is None:
        raise ValueError('func2extract_model_loss extract_hf_model_loss: the student output has no .loss; its batch '
                         "must hold the labels (collate_fn 'DataCollatorWithPadding' on a preprocessed dataset)")
    return {'loss': loss}


def is_text_schema(config: dict) -> bool:
    """A config in the text script's schema: it has a ``preprocess`` section."""
    return isinstance(config, dict) and 'preprocess' in config


def adapt_text_schema(config: dict) -> dict:
    """``config`` as our runner reads it (unchanged unless :func:`is_text_schema`): datasets tokenised by id,
    models as ``hf_text_classifier`` entries, ``DataCollatorWithPadding`` registered for the student's tokenizer.

    :class:`~plugins.errors.ConfigError` names the field of a section the text script could not run either.
    """
    if not is_text_schema(config):
        return config
    models = config.get('models')
    if not isinstance(models, dict) or not ('student_model' in models or 'model' in models):
        raise ConfigError('models must hold student_model (or model) entries with config_kwargs, tokenizer_kwargs '
                          f'and model_kwargs, got {models!r}')
    for name, entry in models.items():
        _check_model_entry(name, entry)
    _check_metrics(config)
    tokenizer = _load_tokenizer(models.get('student_model', models.get('model'))['tokenizer_kwargs'])
    datasets = preprocess_text_datasets(config.get('datasets'), tokenizer, **_preprocess_settings(config))
    from transformers import DataCollatorWithPadding
    # Keyed by its class name, as the text script registers it; each config's run replaces the previous one.
    register_collate_func(DataCollatorWithPadding(tokenizer))
    return dict(config, datasets=datasets,
                models={name: _runner_model_entry(name, entry) for name, entry in models.items()})


def _check_model_entry(name, entry):
    field = f'models.{name}'
    if not isinstance(entry, dict):
        raise ConfigError(f'{field} must be a mapping with {list(MODEL_FIELDS)}, got {entry!r}')
    for key in MODEL_FIELDS:
        value = entry.get(key)
        if not isinstance(value, dict) or not value.get('pretrained_model_name_or_path'):
            raise ConfigError(f'{field}.{key} must be a mapping with pretrained_model_name_or_path (a hub id or a '
                              f'save_pretrained folder), got {value!r}')
    if 'finetuning_task' in entry['config_kwargs']:
        raise ConfigError(f'{field}.config_kwargs.finetuning_task: the text script passes its --task_name there '
                          'itself (a duplicate keyword); remove it')


def _runner_model_entry(name, entry):
    """The entry of the registered ``hf_text_classifier``; weights from ``src_ckpt`` when it is set."""
    ckpt = entry.get('src_ckpt')
    if name == 'teacher_model' and entry.get('dst_ckpt') and checkpoint_exists(entry['dst_ckpt']):
        ckpt = entry['dst_ckpt']  # the text script loads a teacher from its dst_ckpt first
    kwargs = {'config_kwargs': entry['config_kwargs'], 'model_kwargs': entry['model_kwargs'],
              'from_config': ckpt is not None}
    runner_entry = {'key': 'hf_text_classifier', 'kwargs': kwargs, 'src_ckpt': ckpt}
    for key in ('dst_ckpt', 'weights_in_kwargs'):
        if key in entry:
            runner_entry[key] = entry[key]
    return runner_entry


def _check_metrics(config):
    """The text script selects on ``evaluate.main_metric``, our runner on ``evaluation.metric``: the same figure."""
    evaluation = config.get('evaluation') or {}
    metric = get_metric(evaluation.get('metric') if isinstance(evaluation, dict) else None)
    metrics, evaluate = config.get('metrics'), config.get('evaluate')
    if not isinstance(metrics, dict) or not any(isinstance(m, EvaluateMetric) and m.metric is metric
                                                for m in metrics.values()):
        raise ConfigError(f"metrics must hold plugins.glue.metrics.EvaluateMetric('{metric.name}') (= evaluation."
                          f'metric), the text script\'s evaluation; got {metrics!r}')
    main = evaluate.get('main_metric') if isinstance(evaluate, dict) else None
    if main != metric.primary:
        raise ConfigError(f'evaluate.main_metric must be {metric.primary!r}, the primary figure of evaluation.metric '
                          f'{metric.name!r} (both drivers select checkpoints on it), got {main!r}')
    for key, entry in (evaluate.get('metrics') or {}).items():
        if isinstance(metrics.get(key), EvaluateMetric) and (entry or {}).get('argmax', True) is not False:
            raise ConfigError(f'evaluate.metrics.{key}.argmax must be false: {key} takes the logits')


def _preprocess_settings(config):
    settings = config['preprocess']
    if not isinstance(settings, dict):
        raise ConfigError(f'preprocess must be a mapping with {list(PREPROCESS_FIELDS)}, got {settings!r}')
    missing = [key for key in PREPROCESS_FIELDS if key not in settings]
    unknown = sorted(set(settings) - set(PREPROCESS_FIELDS))
    if missing or unknown:
        raise ConfigError(f'preprocess: missing {missing}, unknown {unknown}; accepted: {list(PREPROCESS_FIELDS)}')
    return settings


def _load_tokenizer(tokenizer_kwargs):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(**tokenizer_kwargs)


def preprocess_text_datasets(raw, tokenizer, text_keys, label_key, pad_to_max_length, max_length, base_split_name,
                             batched, label2id, dataset_id_map) -> dict:
    """{dataset id: tokenised ``datasets.Dataset``} as the text script's preprocessing makes it.

    Each example becomes the tokenizer's outputs for its ``text_keys`` (truncated to ``max_length``, padded to it
    only with ``pad_to_max_length``) and ``label = label2id[str(label)]``; the raw columns are dropped.
    ``dataset_id_map`` maps each dataset id of the loaders to a split of ``raw``. Cached per process.
    """
    _check_preprocess(raw, text_keys, label_key, label2id, dataset_id_map, base_split_name)
    columns = raw[base_split_name].column_names
    padding = 'max_length' if pad_to_max_length else False

    def encode(examples):
        encoded = tokenizer(*[examples[key] for key in text_keys], padding=padding, max_length=max_length,
                            truncation=True)
        encoded['label'] = [label2id[str(label)] for label in examples[label_key]]
        return encoded

    key = (tuple((split, raw[split]._fingerprint) for split in sorted(set(dataset_id_map.values()))),
           tokenizer.name_or_path, repr((text_keys, label_key, padding, max_length, label2id, batched)))
    if key not in _PREPROCESSED:
        if len(_PREPROCESSED) >= _MAX_CACHED:
            _PREPROCESSED.clear()
        splits = {split: raw[split].map(encode, batched=batched, remove_columns=columns)
                  for split in set(dataset_id_map.values())}
        _PREPROCESSED[key] = {dataset_id: splits[split] for dataset_id, split in dataset_id_map.items()}
    return dict(_PREPROCESSED[key])


def _check_preprocess(raw, text_keys, label_key, label2id, dataset_id_map, base_split_name):
    if not isinstance(raw, Mapping) or not all(hasattr(split, 'map') for split in raw.values()):
        raise ConfigError(f'datasets must be a datasets.DatasetDict of raw texts (an !import_call such as '
                          f'plugins.glue.data.glue_dataset_dict), got {type(raw).__name__}')
    if not isinstance(dataset_id_map, dict) or not dataset_id_map or \
            not set(dataset_id_map.values()) | {base_split_name} <= set(raw):
        raise ConfigError(f'preprocess.dataset_id_map must map dataset ids to splits of datasets {sorted(raw)} '
                          f'(and base_split_name {base_split_name!r} be one), got {dataset_id_map!r}')
    columns = raw[base_split_name].column_names
    for field, keys in (('text_keys', text_keys), ('label_key', [label_key])):
        if not isinstance(keys, list) or not keys or any(key not in columns for key in keys):
            raise ConfigError(f'preprocess.{field} must name columns of the datasets {columns}, got {keys!r}')
    if label_key == 'label':
        raise ConfigError("preprocess.label_key must not be 'label' (the text script renames it to 'label')")
    if not isinstance(label2id, Mapping):
        raise ConfigError(f'preprocess.label2id must map each label (as text) to its class index, got {label2id!r}')

