"""Which Hugging Face checkpoint, tokenizer and data each GLUE config uses, overridable without editing YAML.

The configs call these functions while they load (``!import_call``), so the environment decides. Resolution
order for a model role (``teacher``, ``ta``, ``student``): an explicit ``name_or_path``, then the environment
variable ``KD_GLUE_TEACHER`` / ``KD_GLUE_TA`` / ``KD_GLUE_STUDENT``, then the paper's model for the family
(:data:`plugins.glue.families.FAMILIES`). A name is a Hugging Face hub id or a LOCAL directory written by
``save_pretrained`` (works offline). In a distillation config the teacher's weights come from its fine-tuned
checkpoint folder (``src_ckpt``); the name here gives its architecture.

The tokenizer is shared by the teacher and the student (both read the same batch): ``KD_GLUE_TOKENIZER``,
else the student's checkpoint. Data: ``KD_GLUE_DATA`` is a folder of the official GLUE TSVs (``CoLA/``,
``SST-2/``, ...); without it the Hugging Face dataset ``KD_GLUE_HF_DATASET`` (default ``nyu-mll/glue``,
formerly ``glue``) is loaded, which works offline once cached.
"""
import os

from .families import FAMILIES, ROLES

__all__ = ['FAMILIES', 'ROLES', 'ENV_VARS', 'resolve_model', 'resolve_tokenizer', 'resolve_data_root',
           'resolve_hf_dataset', 'DEFAULT_HF_DATASET']

ENV_VARS = {'teacher': 'KD_GLUE_TEACHER', 'ta': 'KD_GLUE_TA', 'student': 'KD_GLUE_STUDENT',
            'tokenizer': 'KD_GLUE_TOKENIZER', 'data': 'KD_GLUE_DATA', 'hf_dataset': 'KD_GLUE_HF_DATASET'}
DEFAULT_HF_DATASET = 'nyu-mll/glue'


def _check_family(family):
    if family not in FAMILIES:
        raise ValueError(f'family must be one of {sorted(FAMILIES)}, got {family!r}')


def _env(key):
    value = os.environ.get(ENV_VARS[key], '').strip()
    return os.path.expanduser(value) if value else None


def resolve_model(role, family='roberta', name_or_path=None):
    """The checkpoint of ``role`` in ``family``: ``name_or_path``, else its env var, else the paper's model."""
    if role not in ROLES:
        raise ValueError(f'role must be one of {list(ROLES)}, got {role!r}')
    _check_family(family)
    return name_or_path or _env(role) or FAMILIES[family][role].hub_id


def resolve_tokenizer(family='roberta', name_or_path=None):
    """The tokenizer: ``name_or_path``, else ``KD_GLUE_TOKENIZER``, else the student's checkpoint."""
    _check_family(family)
    return name_or_path or _env('tokenizer') or resolve_model('student', family)


def resolve_data_root(data_root=None):
    """The folder of GLUE TSVs, or ``None`` to load the Hugging Face dataset."""
    return os.path.expanduser(data_root) if data_root else _env('data')


def resolve_hf_dataset(hf_dataset=None):
    return hf_dataset or _env('hf_dataset') or DEFAULT_HF_DATASET
