"""Row stores for cached teacher outputs: one row per sample index, valid only for the sample key it was made from.

A row is served only when its ``filled`` flag is set and its stored sample key equals the key of the sample
being trained on, so a changed sample or transform is a miss, never a stale answer. ``MemoryStore`` keeps the
rows as tensors on the outputs' device; :class:`~plugins.caching.disk_store.DiskStore` keeps them on disk.
"""
import numpy as np
import torch

__all__ = ['OutputSpec', 'MemoryStore', 'DTYPES']

# The dtypes a cache may hold, by the name a disk cache's meta.json records (never looked up on a module).
DTYPES = {str(dtype).replace('torch.', ''): dtype for dtype in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16, torch.int32,
    torch.int64, torch.bool)}


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
