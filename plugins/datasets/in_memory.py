"""Batches of small in-memory datasets fetched with one indexing operation instead of one call per sample.

PyTorch's ``DataLoader`` fetches a batch as ``[dataset[i] for i in indices]`` and stacks the samples again in
``default_collate``; for a data set whose samples are rows of a few tensors (digits: 64 floats and a label) that
per-sample round trip costs more than the model's forward and backward passes. A dataset with ``__getitems__``
(which the ``DataLoader`` calls with the whole list of indices) returns the batch as :class:`TensorRows`, and the
collate function :func:`collate_tensor_rows` hands its tensors over as they are. The samples, their order and the
random number draws are those of the per-sample path, so training gives the same results (tested); only the
time changes. ``default_collate`` still accepts :class:`TensorRows` (it reads it as a sequence of samples), so a
loader without the collate function is correct, only slower.

.. code-block:: yaml

    train_data_loader:
      dataset_id: 'digits/train'
      dataset_wrapper: {key: 'BatchFetchDatasetWrapper', kwargs: {}}   # torchdistill's (sample, target, supp_dict)
      collate_fn: 'collate_tensor_rows'
      # sampler, kwargs as usual
    val_data_loader:
      dataset_id: 'digits/val'
      collate_fn: 'collate_tensor_rows'
"""
from collections.abc import Sequence

import torch
from torch.utils.data import TensorDataset, default_collate

# First: importing our registry loads torchvision.datasets, which torchdistill.datasets needs at import time.
from ..registry import register_new_collate_func, register_new_dataset_wrapper
from torchdistill.datasets.wrapper import BaseDatasetWrapper  # noqa: E402,I100

__all__ = ['TensorRows', 'InMemoryTensorDataset', 'BatchFetchDatasetWrapper', 'collate_tensor_rows']


class TensorRows(Sequence):
    """The rows ``indices`` of some tensors, gathered once; item ``i`` is the ``i``-th sample as a tuple.

    With ``supp`` (a dict of per-sample tensors, possibly empty) every sample ends with its supplementary dict,
    torchdistill's training-loader format ``(sample, target, supp_dict)``.
    """

    def __init__(self, tensors, supp=None):
        self.tensors, self.supp = tuple(tensors), supp

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f'sample {index} of a batch of {len(self)}')
        row = tuple(tensor[index] for tensor in self.tensors)
        if self.supp is None:
            return row
        return row + ({key: value[index] for key, value in self.supp.items()},)

    def collated(self):
        """What ``default_collate`` makes of these samples: a list of the batch tensors (and the supp dict)."""
        return list(self.tensors) + ([] if self.supp is None else [dict(self.supp)])


class InMemoryTensorDataset(TensorDataset):
    """A ``TensorDataset`` whose batches are fetched by one indexing operation per tensor (:class:`TensorRows`)."""

    def __getitems__(self, indices):
        index = torch.as_tensor(indices, dtype=torch.long)
        return TensorRows(tensor.index_select(0, index) for tensor in self.tensors)  # = tensor[index], faster


@register_new_dataset_wrapper
class BatchFetchDatasetWrapper(BaseDatasetWrapper):
    """torchdistill's ``BaseDatasetWrapper`` (samples as ``(sample, target, {})``), fetching whole batches.

    torchdistill wraps every training dataset in ``BaseDatasetWrapper``, which has no ``__getitems__``; this
    wrapper keeps its output and forwards batch fetches to a dataset that has one (e.g.
    :class:`InMemoryTensorDataset`); other datasets are read sample by sample, as by ``BaseDatasetWrapper``.
    """

    def __getitems__(self, indices):
        fetch = getattr(self.org_dataset, '__getitems__', None)
        if fetch is None:
            return [self[index] for index in indices]
        rows = fetch(indices)
        if not isinstance(rows, TensorRows):
            return [tuple(row) + ({},) for row in rows]
        return TensorRows(rows.tensors, supp={})


@register_new_collate_func
def collate_tensor_rows(batch):
    """The tensors of a :class:`TensorRows` batch as they are; any other batch through ``default_collate``."""
    if isinstance(batch, TensorRows):
        return batch.collated()
    return default_collate(batch)
