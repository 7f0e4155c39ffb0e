"""Row stores for cached teacher outputs: one row per sample index, valid only for the sample key it was made from.

A row is served only when its ``filled`` flag is set and its stored sample key equals the key of the sample
being trained on, so a changed sample or transform is a miss, never a stale answer. ``MemoryStore`` keeps the
rows as tensors on the outputs' device; ``DiskStore`` keeps them in ``.npy`` memory maps under a directory
named by the teacher, dataset and output fingerprint, which later runs with the same teacher and data reuse.
"""
import json
import os
import shutil
import tempfile

import numpy as np
import torch

from ..checkpoint import atomic_write_json

__all__ = ['OutputSpec', 'MemoryStore', 'DiskStore']


class OutputSpec:
    """Per-sample shape and dtype of each tensor of a teacher output (a tensor, or a mapping of tensors)."""

    def __init__(self, fields):
        self.fields = tuple((name, tuple(shape), dtype) for name, shape, dtype in fields)

    @classmethod
    def of(cls, tensors):
        return cls((name, tensor.shape[1:], tensor.dtype) for name, tensor in tensors)

    def row_bytes(self):
        return sum(int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
                   for _, shape, dtype in self.fields)

    def matches(self, tensors):
        return len(tensors) == len(self.fields) and all(
            name == f_name and tuple(t.shape[1:]) == shape and t.dtype == dtype
            for (name, t), (f_name, shape, dtype) in zip(tensors, self.fields))

    def describe(self):
        return [[name, list(shape), str(dtype).replace('torch.', '')] for name, shape, dtype in self.fields]

    def __eq__(self, other):
        return isinstance(other, OutputSpec) and self.fields == other.fields


class MemoryStore:
    """Rows held as tensors on ``device``."""

    mode = 'memory'

    def __init__(self, num_samples, spec, device):
        self.num_samples, self.spec, self.device = num_samples, spec, torch.device(device)
        self.values = [torch.zeros((num_samples, *shape), dtype=dtype, device=self.device)
                       for _, shape, dtype in spec.fields]
        self.keys = torch.zeros(num_samples, dtype=torch.int64, device=self.device)
        self.filled = torch.zeros(num_samples, dtype=torch.bool, device=self.device)

    def contains(self, indices, keys):
        """True when every (index, key) pair has a valid row."""
        indices, keys = indices.to(self.device), keys.to(self.device)
        return bool((self.filled[indices] & (self.keys[indices] == keys)).all())

    def read(self, indices, device):
        indices = indices.to(self.device)
        return [values.index_select(0, indices).to(device) for values in self.values]

    def write(self, indices, keys, tensors):
        indices = indices.to(self.device)
        for values, tensor in zip(self.values, tensors):
            values[indices] = tensor.detach().to(self.device)
        self.keys[indices] = keys.to(self.device)
        self.filled[indices] = True

    def flush(self):
        pass

    def num_filled(self):
        return int(self.filled.sum())


def _numpy_dtype(dtype):
    # numpy has no bfloat16: such rows are kept as float32, which holds every bfloat16 value exactly.
    return np.float32 if dtype == torch.bfloat16 else torch.empty((), dtype=dtype).numpy().dtype


class DiskStore:
    """Rows held in ``.npy`` memory maps in ``directory`` (created whole, then renamed into place).

    A row is written value first, then its key, then its ``filled`` flag, so a row whose write was cut
    short by a crashed process is never marked valid. The files are flushed at the end of every epoch.
    """

    mode = 'disk'

    def __init__(self, directory, num_samples, spec, meta):
        self.directory, self.num_samples, self.spec = directory, num_samples, spec
        if not os.path.isdir(directory):
            self._create(directory, num_samples, spec, meta)
        with open(os.path.join(directory, 'meta.json')) as fp:
            stored = json.load(fp)
        if stored.get('num_samples') != num_samples or stored.get('fields') != spec.describe():
            raise RuntimeError(f'teacher cache {directory!r} holds {stored.get("num_samples")} rows of '
                               f'{stored.get("fields")}, expected {num_samples} rows of {spec.describe()}; '
                               f'delete the directory')
        self.values = [np.load(os.path.join(directory, f'values{i}.npy'), mmap_mode='r+')
                       for i in range(len(spec.fields))]
        self.keys = np.load(os.path.join(directory, 'keys.npy'), mmap_mode='r+')
        self.filled = np.load(os.path.join(directory, 'filled.npy'), mmap_mode='r+')

    @staticmethod
    def _create(directory, num_samples, spec, meta):
        parent = os.path.dirname(os.path.abspath(directory))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix='.' + os.path.basename(directory) + '.')
        try:
            for i, (_, shape, dtype) in enumerate(spec.fields):
                np.lib.format.open_memmap(os.path.join(tmp, f'values{i}.npy'), mode='w+',
                                          dtype=_numpy_dtype(dtype), shape=(num_samples, *shape)).flush()
            np.lib.format.open_memmap(os.path.join(tmp, 'keys.npy'), mode='w+', dtype=np.int64,
                                      shape=(num_samples,)).flush()
            np.lib.format.open_memmap(os.path.join(tmp, 'filled.npy'), mode='w+', dtype=np.bool_,
                                      shape=(num_samples,)).flush()
            atomic_write_json(os.path.join(tmp, 'meta.json'),
                              dict(meta, num_samples=num_samples, fields=spec.describe()))
            os.rename(tmp, directory)
        except OSError:
            if not os.path.isdir(directory):  # not another process creating the same cache first
                raise
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp)

    def contains(self, indices, keys):
        indices = indices.cpu().numpy()
        return bool(np.all(self.filled[indices] & (self.keys[indices] == keys.cpu().numpy())))

    def read(self, indices, device):
        indices = indices.cpu().numpy()
        return [torch.from_numpy(np.take(values, indices, axis=0)).to(device=device, dtype=dtype)
                for values, (_, _, dtype) in zip(self.values, self.spec.fields)]

    def write(self, indices, keys, tensors):
        indices = indices.cpu().numpy()
        for values, tensor in zip(self.values, tensors):
            values[indices] = tensor.detach().to('cpu', torch.float32 if tensor.dtype == torch.bfloat16
                                                 else tensor.dtype).numpy()
        self.keys[indices] = keys.cpu().numpy()
        self.filled[indices] = True

    def flush(self):
        for array in (*self.values, self.keys, self.filled):
            array.flush()

    def num_filled(self):
        return int(self.filled.sum())
