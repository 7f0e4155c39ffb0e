"""GLUE data for torchdistill: the Hugging Face ``glue`` dataset or the official TSV folders, tokenised once.

GLUE's test labels are hidden, so the splits here are:

- ``train``: the official training set minus a held-out part;
- ``val``: that held-out part, ``val_fraction`` (default 10 %) of the training set, stratified by label and
  fixed by ``split_seed`` (not by the training seed), for model selection and Algorithm 1's checkpoints;
- ``test``: the official dev set (``test_mismatched`` is MNLI's mismatched dev set), used once at the end.

The Annealing-KD authors' GLUE script keeps the checkpoint with the best score on the dev set it then reports,
which overestimates; our numbers are therefore not directly comparable with theirs (and train on 10 % less data).

A sample is ``(EncodedText, label)``: a dict of 1-D token tensors (``input_ids``, ``attention_mask``,
``token_type_ids`` for BERT) and a class index, or a float tensor of shape (1,) for the STS-B regression
(the shape of the model's single output). The registered collate function ``glue_collate`` pads a batch.

.. code-block:: yaml

    datasets:
      rte/train: !import_call
        key: 'plugins.glue.data.glue_split'
        init: {kwargs: {task: 'rte', split: 'train', family: 'roberta'}}
    train:
      train_data_loader:
        dataset_id: 'rte/train'
        collate_fn: 'glue_collate'
"""
import csv
import functools
import os
import sys

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset, default_collate
from torchdistill.common.constant import def_logger
from tqdm import tqdm

from ..registry import register_new_collate_func
from .names import resolve_data_root, resolve_hf_dataset, resolve_tokenizer
from .tasks import get_task

logger = def_logger.getChild(__name__)

__all__ = ['EncodedText', 'GlueDataset', 'glue_collate', 'glue_split', 'read_glue_tsv', 'load_examples',
           'train_val_indices', 'load_tokenizer', 'pack_sequences', 'tokenize_columns']


class EncodedText(dict):
    """The token tensors of one sample; ``pad_token_id`` tells :func:`glue_collate` how to pad ``input_ids``."""

    def __init__(self, tensors, pad_token_id=0):
        super().__init__(tensors)
        self.pad_token_id = pad_token_id


class GlueDataset(Dataset):
    """Tokenised GLUE samples stored as flat int32 arrays (a Python list per sample would take GBs on MNLI).

    ``columns`` maps each tokenizer output (``input_ids``, ...) to ``(flat tokens, offsets)`` as made by
    :func:`pack_sequences`; ``labels`` holds class indices, or floats when ``regression``.
    """

    def __init__(self, columns, labels, pad_token_id, regression):
        self.pad_token_id = pad_token_id
        self.regression = regression
        self._columns = dict(columns)
        if regression:
            self.labels = torch.tensor(labels, dtype=torch.float32).reshape(-1, 1)
        else:
            self.labels = torch.tensor(labels, dtype=torch.long)
        if any(len(offsets) - 1 != len(self.labels) for _, offsets in self._columns.values()):
            raise ValueError('every tokenizer output needs one sequence per label')

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        tensors = {key: torch.from_numpy(flat[offsets[index]:offsets[index + 1]].astype(np.int64))
                   for key, (flat, offsets) in self._columns.items()}
        return EncodedText(tensors, self.pad_token_id), self.labels[index]


def pack_sequences(sequences):
    """``(flat int32 tokens, int64 offsets)``: sequence ``i`` is ``flat[offsets[i]:offsets[i + 1]]``."""
    lengths = np.fromiter((len(sequence) for sequence in sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter((token for sequence in sequences for token in sequence), dtype=np.int32,
                       count=int(lengths.sum()))
    return flat, np.concatenate([[0], np.cumsum(lengths)])


def tokenize_columns(tokenizer, texts, max_length, chunk_size=8192):
    """Tokenises one or two text columns chunk by chunk into packed arrays (``{key: (flat, offsets)}``)."""
    parts, num_examples = {}, len(texts[0])
    for start in tqdm(range(0, num_examples, chunk_size), desc='tokenizing', leave=False,
                      disable=num_examples <= chunk_size or not sys.stderr.isatty()):
        chunk = [list(column[start:start + chunk_size]) for column in texts]
        encoded = tokenizer(*chunk, truncation=True, max_length=max_length)
        for key in encoded.keys():
            parts.setdefault(key, []).append(pack_sequences(encoded[key]))
    columns = {}
    for key, packed in parts.items():
        flats = [flat for flat, _ in packed]
        lengths = np.concatenate([np.diff(offsets) for _, offsets in packed])
        columns[key] = (np.concatenate(flats), np.concatenate([[0], np.cumsum(lengths)]))
    return columns


@register_new_collate_func
def glue_collate(batch):
    """Pads ``(EncodedText, label[, supp_dict])`` samples to the longest in the batch (dynamic padding).

    ``input_ids`` are padded with the tokenizer's pad id, every other key (attention mask, token types) with 0;
    labels are stacked. Name it in a data loader as ``collate_fn: 'glue_collate'``.
    """
    columns = list(zip(*batch))
    samples = columns[0]
    pad_token_id = getattr(samples[0], 'pad_token_id', 0)
    inputs = {key: pad_sequence([sample[key] for sample in samples], batch_first=True,
                                padding_value=pad_token_id if key == 'input_ids' else 0)
              for key in samples[0]}
    labels = torch.stack(columns[1])
    if len(columns) == 2:
        return inputs, labels
    return (inputs, labels) + tuple(default_collate(list(column)) for column in columns[2:])


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


@functools.lru_cache(maxsize=4)
def load_tokenizer(name_or_path):
    """``AutoTokenizer.from_pretrained`` (a hub id, or a local folder for offline use), cached per process."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(name_or_path)


def glue_split(task, split, family='roberta', tokenizer=None, data_root=None, hf_dataset=None, max_length=128,
               val_fraction=0.1, split_seed=0):
    """A tokenised :class:`GlueDataset` of ``split``: ``train``, ``val``, ``test`` (MNLI: also ``test_mismatched``).

    :param task: a GLUE task: ``cola``, ``sst2``, ``mrpc``, ``stsb``, ``qqp``, ``mnli``, ``qnli``, ``rte``, ``wnli``.
    :param family: ``roberta`` or ``bert``, which picks the default tokenizer (see :mod:`plugins.glue.names`).
    :param tokenizer: tokenizer name or local path; default ``KD_GLUE_TOKENIZER``, else the student's checkpoint.
    :param data_root: folder of the official GLUE TSVs; default ``KD_GLUE_DATA``, else the Hugging Face dataset.
    :param hf_dataset: Hugging Face dataset name; default ``KD_GLUE_HF_DATASET``, else ``nyu-mll/glue``.
    :param max_length: longer inputs are truncated (the paper: 128).
    :param val_fraction: part of the training set held out as ``val``.
    :param split_seed: seed of that hold-out (fixed across training seeds and methods).
    """
    task = get_task(task)
    splits = ('train', 'val') + task.test_splits
    if split not in splits:
        raise ValueError(f'split must be one of {list(splits)} for {task.name}, got {split!r}')
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be a number in (0, 1), got {val_fraction!r}')
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f'max_length must be an integer >= 2, got {max_length!r}')
    data_root = resolve_data_root(data_root)
    hf_dataset = None if data_root else resolve_hf_dataset(hf_dataset)
    return _tokenized_split(task.name, split, resolve_tokenizer(family, tokenizer), data_root, hf_dataset, max_length,
                            float(val_fraction), split_seed)


@functools.lru_cache(maxsize=8)
def _tokenized_split(task, split, tokenizer, data_root, hf_dataset, max_length, val_fraction, split_seed):
    """Cached per process: the configs a benchmark runs one after another share their (read-only) datasets."""
    task = get_task(task)
    if split in ('train', 'val'):
        texts, labels = load_examples(task.name, 'train', data_root, hf_dataset)
        train, val = train_val_indices(labels, val_fraction, split_seed, stratify=not task.is_regression)
        chosen = train if split == 'train' else val
        texts = [[column[i] for i in chosen] for column in texts]
        labels = [labels[i] for i in chosen]
    else:
        texts, labels = load_examples(task.name, task.dev_splits[split][0], data_root, hf_dataset)
    tokenizer = load_tokenizer(tokenizer)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logger.info('GLUE %s/%s: %d examples from %s', task.name, split, len(labels), data_root or hf_dataset)
    return GlueDataset(tokenize_columns(tokenizer, texts, max_length), labels, pad_token_id, task.is_regression)
