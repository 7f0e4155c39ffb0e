"""GLUE suites: the language experiments of the Annealing-KD paper (Tables 3, 5, 7, 8 and 11).

One suite per task and family: ``roberta`` (default; teacher RoBERTa-large, TA RoBERTa-base, student
DistilRoBERTa) or ``bert`` (teacher 24-layer BERT, TA BERT-base, student BERT-Small). The configs are
``yaml_configs/glue/<task>/...`` (written by ``yaml_configs/glue_configs.py``). Options:

- ``task``: ``cola``, ``sst2``, ``mrpc``, ``stsb``, ``qqp``, ``mnli``, ``qnli``, ``rte`` (default) or ``wnli``;
- ``family``: ``roberta`` or ``bert``;
- ``data_root``: folder of the official GLUE TSVs (``CoLA/``, ``SST-2/``, ...; sets ``KD_GLUE_DATA``); without it
  the Hugging Face dataset is used (``hf_dataset``, default ``nyu-mll/glue``; sets ``KD_GLUE_HF_DATASET``);
- ``teacher``, ``ta``, ``student``, ``tokenizer``: hub ids or local ``save_pretrained`` folders (set
  ``KD_GLUE_TEACHER``, ``KD_GLUE_TA``, ``KD_GLUE_STUDENT``, ``KD_GLUE_TOKENIZER``) for offline runs;
- ``ablations``: true adds the Continuation-KD paper's Table-7 ablations (``benchmarks/suites/continuation.py``;
  not our older continuation variant, which needs each sample's label as ``targets``: GLUE batches hold their
  labels, as torchdistill's text-classification script passes them).

The options are set as environment variables here, before any config is loaded, because the configs build
their datasets while the YAML is read (``!import_call``) and their models read the names at build time.
The test metric is the official dev set; model selection uses 10 % of the training set (plugins/glue/data.py).
The models of each family are those of :data:`plugins.glue.families.FAMILIES`, the table the config generator
reads.
"""
import os

from plugins.glue.families import FAMILIES
from plugins.glue.tasks import GLUE_TASKS
from yaml_configs.config_generation import config_path
from .base import ANNEALING_STAGE1_LOSS, MethodSpec, Suite, parse_flag
from .continuation import continuation_methods

__all__ = ['build_glue', 'FAMILIES', 'PAPER_RESULTS', 'OPTIONS', 'TASKS']

TASKS = tuple(GLUE_TASKS)
DEFAULT_TASK = 'rte'
OPTIONS = ('task', 'family', 'data_root', 'hf_dataset', 'teacher', 'ta', 'student', 'tokenizer', 'ablations')
_ENV_VARS = {'data_root': 'KD_GLUE_DATA', 'hf_dataset': 'KD_GLUE_HF_DATASET', 'teacher': 'KD_GLUE_TEACHER',
             'ta': 'KD_GLUE_TA', 'student': 'KD_GLUE_STUDENT', 'tokenizer': 'KD_GLUE_TOKENIZER'}
_PATH_OPTIONS = ('data_root', 'teacher', 'ta', 'student', 'tokenizer')


def _table(columns, rows):
    """{method: {task: value}} from the paper's column order (MNLI as (matched, mismatched))."""
    return {method: dict(zip(columns, values)) for method, values in rows.items()}


_COLUMNS = ('cola', 'rte', 'mrpc', 'stsb', 'sst2', 'qnli', 'qqp', 'mnli', 'wnli')
# Dev-set results reported by the paper (single runs; MRPC F1, STS-B Pearson, CoLA MCC, others accuracy).
PAPER_RESULTS = {
    'roberta': _table(_COLUMNS, {  # Table 3 (DistilRoBERTa); Annealing-KD average 81.42 (Table 9)
        'teacher': (68.1, 86.3, 91.9, 92.3, 96.4, 94.6, 91.5, (90.22, 89.87), 56.33),
        'scratch': (59.3, 67.9, 88.6, 88.5, 92.5, 90.8, 90.9, (84.0, 84.0), 52.1),
        'kd': (60.97, 71.11, 90.2, 88.86, 92.54, 91.37, 91.64, (84.18, 84.11), 56.33),
        'takd': (61.15, 71.84, 89.91, 88.94, 92.54, 91.32, 91.7, (83.89, 84.18), 56.33),
        'annealing_kd': (61.67, 73.64, 90.6, 89.01, 93.11, 91.64, 91.5, (85.34, 84.6), 56.33),
    }),
    'bert': _table(_COLUMNS, {  # Table 5 (BERT-Small)
        'teacher': (65.8, 71.48, 89.38, 89.2, 92.77, 92.82, 91.45, (86.3, 86.4), 60.56),
        'kd': (33.5, 57.0, 86.0, 72.3, 88.76, 83.15, 87.0, (72.62, 73.19), 54.92),
        'takd': (34.24, 59.56, 85.23, 71.1, 89.1, 82.62, 87.0, (72.32, 72.45), 54.92),
        'annealing_kd': (35.98, 61.0, 86.2, 74.54, 89.44, 83.14, 86.5, (73.85, 74.84), 54.92),
    }),
}
# Continuation-KD paper, dev set (single runs; no WNLI): its Continuation-KD row for DistilRoBERTa.
CONTINUATION_PAPER_RESULTS = {'roberta': {'cola': 63.75, 'rte': 77.62, 'mrpc': 91.93, 'stsb': 89.71, 'sst2': 93.58,
                                          'qnli': 91.76, 'qqp': 91.64, 'mnli': 85.16}}
QUICK_EPOCHS = 1


def _configure(options):
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f'unknown GLUE suite option(s) {unknown}; accepted: {list(OPTIONS)}')
    for option, variable in _ENV_VARS.items():
        value = options.get(option)
        if value is not None:
            value = str(value)
            os.environ[variable] = os.path.expanduser(value) if option in _PATH_OPTIONS else value


def _quick_overrides(method):
    """One-epoch smoke-run overrides of a student config beyond the suite's ``train.num_epochs``: Annealing-KD's two
    stages (Stage I at tau_max 1 so that it fits one epoch)."""
    if method == 'annealing_kd':
        return {'train.stage1.num_epochs': QUICK_EPOCHS, 'train.stage2.num_epochs': QUICK_EPOCHS,
                f'{ANNEALING_STAGE1_LOSS}.max_temperature': 1}
    return {}


def _paper_text(family, task):
    def show(value):
        return f'{value[0]}/{value[1]}' if isinstance(value, tuple) else f'{value}'
    text = ', '.join(f'{method} {show(values[task])}' for method, values in PAPER_RESULTS[family].items())
    continuation = CONTINUATION_PAPER_RESULTS.get(family, {}).get(task)
    return text + (f'; Continuation-KD paper: continuation_kd {continuation}' if continuation is not None else '')


def _config(task, method, student, teacher=None):
    """The repository path of a config, by the generator's own path function."""
    return os.path.join('yaml_configs', config_path(os.path.join('glue', task), method, student, teacher))


def build_glue(options=None, quick=False):
    """The :class:`Suite` comparing scratch / KD / TAKD / Annealing-KD / Continuation-KD students on a GLUE task."""
    options = dict(options or {})
    _configure(options)
    task = str(options.get('task') or DEFAULT_TASK).lower().replace('-', '')
    if task not in TASKS:
        raise ValueError(f'option task must be one of {list(TASKS)}, got {options.get("task")!r}')
    family = options.get('family') or 'roberta'
    if family not in FAMILIES:
        raise ValueError(f'option family must be one of {sorted(FAMILIES)}, got {family!r}')
    teacher, ta, student = (FAMILIES[family][role].name for role in ('teacher', 'ta', 'student'))
    methods = {
        'scratch': MethodSpec(_config(task, 'ce', student), teacher_role=None, note='fine-tuned alone'),
        'kd': MethodSpec(_config(task, 'kd', student, teacher), note='vanilla KD (alpha 0.5)'),
        'takd': MethodSpec(_config(task, 'takd', student, ta), teacher_role='ta', note=f'KD from the TA {ta}'),
        'annealing_kd': MethodSpec(_config(task, 'annealing_kd', student, teacher),
                                   note='Algorithm 1: Stage I annealed logits, Stage II labels'),
    }
    if quick:
        methods = {method: MethodSpec(spec.config, spec.teacher_role, _quick_overrides(method), note=spec.note)
                   for method, spec in methods.items()}
    # No variant of ours here: it needs each sample's label as targets, and GLUE batches hold their labels.
    methods.update(continuation_methods(_config(task, 'continuation_kd', student, teacher),
                                        QUICK_EPOCHS if quick else None,
                                        parse_flag(options.get('ablations', False), 'ablations')))
    table = 'Tables 3 and 8' if family == 'roberta' else 'Tables 5 and 11'
    description = (f'GLUE {task}, {family} family: student {student}, teacher {teacher}, TA {ta} (Annealing-KD '
                   f'paper, {table}); test = official dev set, validation = 10 % of train. Paper dev results: '
                   + _paper_text(family, task))
    return Suite(name=f'glue-{task}-{family}', description=description, teacher_config=_config(task, 'ce', teacher),
                 ta_config=_config(task, 'kd', ta, teacher), methods=methods, default_seeds=(0, 1, 2),
                 quick_overrides={'train.num_epochs': QUICK_EPOCHS} if quick else {})
