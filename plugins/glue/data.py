"""GLUE data for torchdistill: the official TSV folders or the Hugging Face ``glue`` dataset, as raw texts.

GLUE's test labels are hidden, so the splits here are:

- ``train``: the official training set minus a held-out part;
- ``val``: that held-out part, ``val_fraction`` (default 10 %) of the training set, stratified by label and
  fixed by ``split_seed`` (not by the training seed), for model selection and Algorithm 1's checkpoints;
- ``test``: the official dev set (``test_mismatched`` is MNLI's mismatched dev set), used once at the end.

The Annealing-KD authors' GLUE script keeps the checkpoint with the best score on the dev set it then reports,
which overestimates; our numbers are therefore not directly comparable with theirs (and train on 10 % less data).

:func:`glue_dataset_dict` returns these splits as a ``datasets.DatasetDict`` of raw texts, the ``datasets:``
entry of a config in the schema of torchdistill's ``examples/hf_transformers/text_classification.py``, whose
``preprocess`` section tokenises it (that script, or :mod:`plugins.glue.text_schema` under our runner). The
label column is ``label_name`` (the class name, in the Hugging Face ``glue`` class order that
``preprocess.label2id`` writes out) or, for the STS-B regression, ``score``.

.. code-block:: yaml

    datasets: !import_call
      key: 'plugins.glue.data.glue_dataset_dict'
      init: {kwargs: {task: 'rte', val_fraction: 0.1, split_seed: 0}}
"""
import csv
import functools
import os

import numpy as np
from torchdistill.common.constant import def_logger

from continuation.checks import check_integer, check_number

from .names import resolve_data_root, resolve_hf_dataset
from .tasks import get_task

logger = def_logger.getChild(__name__)

__all__ = ['glue_dataset_dict', 'ScoreLabels', 'read_glue_tsv', 'load_examples', 'train_val_indices']


def _label_index(task, value, where):
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f'{where}: the {task.name} score must be a number, got {value!r}') from None
    mapping = task.tsv_labels or {name: index for index, name in enumerate(task.label_names)}
    if value not in mapping:
        raise ValueError(f'{where}: label {value!r} is not one of {sorted(mapping)} for {task.name}')
    return mapping[value]


def read_glue_tsv(path, task):
    """``(texts, labels)`` from an official GLUE TSV: ``texts`` holds one list per text column.

    Files are tab-separated without quoting (GLUE sentences contain quote characters); CoLA's train/dev files
    have no header, the others are read by header name. Rows too short to hold the needed columns are skipped
    as the reference readers do (QQP's train file has a few).
    """
    task = get_task(task)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{task.name}: no GLUE file at {path!r}')
    # utf-8-sig: the MRPC files from Microsoft's installer start with a byte-order mark.
    with open(path, encoding='utf-8-sig', newline='') as file:
        rows = csv.reader(file, delimiter='\t', quoting=csv.QUOTE_NONE)
        if task.tsv_columns is None:
            positions = task.tsv_positions
        else:
            header = next(rows, None) or []
            missing = [name for name in task.tsv_columns if name not in header]
            if missing:
                raise ValueError(f'{path}: columns {missing} missing from the header {header} '
                                 f'(expected the official {task.tsv_dir} layout)')
            # The last occurrence: MNLI's dev files name label1..label5 before gold_label.
            positions = tuple(len(header) - 1 - header[::-1].index(name) for name in task.tsv_columns)
        needed = max(positions)
        texts, labels, skipped = [[] for _ in positions[:-1]], [], 0
        for line_number, row in enumerate(rows, start=1 if task.tsv_columns is None else 2):
            if len(row) <= needed:
                skipped += 1
                continue
            for column, position in zip(texts, positions[:-1]):
                column.append(row[position])
            labels.append(_label_index(task, row[positions[-1]], f'{path}:{line_number}'))
    if skipped:
        logger.warning('%s: skipped %d malformed row(s)', path, skipped)
    return texts, labels


@functools.lru_cache(maxsize=8)
def load_examples(task, source_split, data_root=None, hf_dataset=None):
    """``(texts, labels)`` of an official split (``train``, ``validation``, ``validation_matched``, ...).

    Reads ``data_root/<TaskDir>/<file>.tsv`` (``data_root`` may also be the task folder itself) when
    ``data_root`` is given, else ``datasets.load_dataset(hf_dataset, task)``. Cached per process, so the
    train and val splits read the training file once.
    """
    task = get_task(task)
    tsv_names = {'train': 'train.tsv', **{hf: tsv for hf, tsv in task.dev_splits.values()}}
    if source_split not in tsv_names:
        raise ValueError(f'source split must be one of {sorted(tsv_names)} for {task.name}, got {source_split!r}')
    if data_root is not None:
        folder = os.path.join(data_root, task.tsv_dir)
        if not os.path.isdir(folder) and os.path.isfile(os.path.join(data_root, tsv_names[source_split])):
            folder = data_root
        texts, labels = read_glue_tsv(os.path.join(folder, tsv_names[source_split]), task)
    else:
        import datasets
        try:
            split = datasets.load_dataset(hf_dataset, task.name, split=source_split)
        except (ConnectionError, OSError, ValueError) as error:  # no network and no cached copy
            raise FileNotFoundError(
                f'GLUE {task.name}: could not load {hf_dataset!r} ({type(error).__name__}: {error}). Offline, pass '
                f'the folder of the official GLUE TSVs (--data-root or KD_GLUE_DATA, with {task.tsv_dir}/ inside) '
                f'or cache the Hugging Face dataset first') from error
        texts, labels = [list(split[column]) for column in task.text_columns], list(split['label'])
        if not task.is_regression and any(label < 0 for label in labels):
            raise ValueError(f'{hf_dataset}/{task.name}/{source_split} has hidden labels (-1): '
                             f'GLUE test labels are private, use the dev set')
    if not labels:
        raise ValueError(f'{task.name}/{source_split}: no examples')
    return tuple(tuple(column) for column in texts), tuple(labels)


def train_val_indices(labels, val_fraction, split_seed, stratify=True):
    """``(train, val)`` index arrays: a fixed, stratified (when every class has 2 samples) hold-out."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    strata = labels if stratify and counts.min() >= 2 else None
    return train_test_split(np.arange(len(labels)), test_size=val_fraction, random_state=split_seed,
                            shuffle=True, stratify=strata)




class ScoreLabels(dict):
    """``preprocess.label2id`` of a regression: every label text maps to its number (``label2id['3.8'] == 3.8``).

    torchdistill's text script numbers the distinct labels as classes unless ``label2id`` is given; a regression
    keeps its scores with this one. Empty: a lookup converts the text.
    """

    def __missing__(self, key):
        return float(key)

    def __repr__(self):
        return 'ScoreLabels()'


def glue_dataset_dict(task, data_root=None, hf_dataset=None, val_fraction=0.1, split_seed=0):
    """The raw ``datasets.DatasetDict`` of ``task``: ``train``, ``val``, ``test`` (MNLI: also ``test_mismatched``).

    Columns: the task's text columns (``sentence``, or ``sentence1`` / ``sentence2``, ``question`` ...) and
    ``label_name`` (class names) or ``score`` (STS-B). A new DatasetDict each call (torchdistill's text script
    renames its columns in place); the splits themselves are read and built once per process.

    :param task: a GLUE task: ``cola``, ``sst2``, ``mrpc``, ``stsb``, ``qqp``, ``mnli``, ``qnli``, ``rte``, ``wnli``.
    :param data_root: folder of the official GLUE TSVs; default ``KD_GLUE_DATA``, else the Hugging Face dataset.
    :param hf_dataset: Hugging Face dataset name; default ``KD_GLUE_HF_DATASET``, else ``nyu-mll/glue``.
    :param val_fraction: part of the training set held out as ``val``.
    :param split_seed: seed of that hold-out (fixed across training seeds and methods).
    """
    import datasets

    task = get_task(task)
    check_number(val_fraction, 'val_fraction', 0, 1, exclusive_minimum=True, exclusive_maximum=True)
    check_integer(split_seed, 'split_seed', 0)
    data_root = resolve_data_root(data_root)
    hf_dataset = None if data_root else resolve_hf_dataset(hf_dataset)
    return datasets.DatasetDict(_raw_splits(task.name, data_root, hf_dataset, float(val_fraction), split_seed))


@functools.lru_cache(maxsize=8)
def _raw_splits(task, data_root, hf_dataset, val_fraction, split_seed):
    """{split: datasets.Dataset}, cached per process: the configs a benchmark loads share their (read-only) data."""
    import datasets

    task = get_task(task)
    texts, labels = load_examples(task.name, 'train', data_root, hf_dataset)
    train, val = train_val_indices(labels, val_fraction, split_seed, stratify=not task.is_regression)
    sources = {'train': (texts, labels, train), 'val': (texts, labels, val)}
    for split, (source_split, _) in task.dev_splits.items():
        dev_texts, dev_labels = load_examples(task.name, source_split, data_root, hf_dataset)
        sources[split] = (dev_texts, dev_labels, range(len(dev_labels)))
    splits = {}
    for split, (split_texts, split_labels, indices) in sources.items():
        columns = {name: [column[i] for i in indices] for name, column in zip(task.text_columns, split_texts)}
        columns[task.label_column] = [split_labels[i] if task.is_regression else task.label_names[split_labels[i]]
                                      for i in indices]
        splits[split] = datasets.Dataset.from_dict(columns)
        logger.info('GLUE %s/%s: %d examples from %s', task.name, split, len(indices), data_root or hf_dataset)
    return splits
