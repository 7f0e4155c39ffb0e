"""Fingerprints that key the teacher-output cache: the teacher's weights, each transformed sample, the dataset.

All are SHA digests of the actual bytes (SHA-1 truncated to 64 bits per sample, fast where the CPU has SHA
instructions; SHA-256 for teachers and datasets), so any change of weights, of a sample or of what a transform
produces gives a different key; nothing relies on file names or modification times.
"""
import hashlib
import pickle
import random
import re

import numpy as np
import torch

__all__ = ['sample_key', 'module_fingerprint', 'tensor_versions', 'dataset_fingerprint', 'random_transforms',
           'samples_reproducible', 'RANDOM_TRANSFORM_NAMES']

# Transforms that draw random numbers but whose class name does not start with 'Random' (torchvision v1 and v2).
RANDOM_TRANSFORM_NAMES = frozenset({
    'ColorJitter', 'AutoAugment', 'RandAugment', 'TrivialAugmentWide', 'AugMix', 'GaussianBlur',
    'ElasticTransform', 'GaussianNoise', 'JPEG', 'MixUp', 'CutMix', 'ScaleJitter', 'RandomShortestSize',
})
_ADDRESS = re.compile(r' at 0x[0-9a-fA-F]+')


def _update(digest, obj):
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach()
        if tensor.device.type != 'cpu':
            tensor = tensor.cpu()
        digest.update(f'tensor{tensor.dtype}{tuple(tensor.shape)}'.encode())
        try:
            array = tensor.numpy()  # shares memory: no copy for the usual float / integer tensors
        except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16...), conj/neg views: hash the raw bytes
            array = tensor.resolve_conj().resolve_neg().contiguous().reshape(-1).view(torch.uint8).numpy()
        digest.update(array if array.flags.c_contiguous else np.ascontiguousarray(array))
    elif isinstance(obj, np.ndarray) and obj.dtype != object:
        array = np.ascontiguousarray(obj)
        digest.update(f'ndarray{array.dtype.str}{array.shape}'.encode())
        digest.update(array.reshape(-1).view(np.uint8))
    elif isinstance(obj, dict):
        digest.update(f'dict{len(obj)}'.encode())
        for key in sorted(obj, key=repr):
            digest.update(repr(key).encode())
            _update(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(f'{type(obj).__name__}{len(obj)}'.encode())
        for item in obj:
            _update(digest, item)
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        digest.update(f'{type(obj).__name__}:{obj!r}'.encode())
    elif hasattr(obj, 'tobytes') and hasattr(obj, 'mode') and hasattr(obj, 'size'):  # a PIL image
        digest.update(f'image{obj.mode}{obj.size}'.encode())
        digest.update(obj.tobytes())
    else:
        digest.update(pickle.dumps(obj, protocol=4))


def sample_key(sample):
    """A signed 64-bit key of a (transformed) sample: tensors, arrays, PIL images and nested dicts/lists."""
    digest = hashlib.sha1()
    _update(digest, sample)
    return int.from_bytes(digest.digest()[:8], 'little', signed=True)


def module_fingerprint(module, *extra):
    """Hex digest of a module's class and every parameter and buffer (names, dtypes, shapes, values)."""
    digest = hashlib.sha256()
    digest.update(f'{type(module).__module__}.{type(module).__qualname__}'.encode())
    for name, tensor in module.state_dict(keep_vars=False).items():
        digest.update(name.encode())
        _update(digest, tensor)
    for item in extra:
        _update(digest, item)
    return digest.hexdigest()[:32]


def tensor_versions(tensors):
    """In-place version counters of ``tensors`` (a module's parameters and buffers, listed once): a cheap per-step
    change detector, as ``load_state_dict``, ``copy_`` and optimiser steps all bump ``Tensor._version``."""
    return [tensor._version for tensor in tensors]


def _walk(obj, seen, depth=0):
    """Every object reachable from a dataset through the attributes datasets and transforms keep them in."""
    if obj is None or id(obj) in seen or depth > 12 or isinstance(obj, (str, bytes, int, float, torch.Tensor,
                                                                        np.ndarray)):
        return
    seen.add(id(obj))
    yield obj
    children = []
    for name in ('transform', 'target_transform', 'transforms', 'dataset', 'datasets', 'org_dataset',
                 'transform_list'):
        value = getattr(obj, name, None)
        if value is not None and not callable(getattr(type(obj), name, None)):
            children.extend(value if isinstance(value, (list, tuple)) else [value])
    format_dict = getattr(obj, 'format', None)  # Hugging Face datasets: set_transform / with_transform
    if isinstance(format_dict, dict):
        children.append(format_dict.get('format_kwargs', {}).get('transform'))
    if isinstance(obj, torch.nn.Module):
        children.extend(obj.children())
    for child in children:
        yield from _walk(child, seen, depth + 1)


def random_transforms(dataset):
    """Names of the random transforms found in a dataset (through Subset, ConcatDataset, wrappers, Compose)."""
    return sorted({type(obj).__name__ for obj in _walk(dataset, set())
                   if type(obj).__name__.startswith('Random') or type(obj).__name__ in RANDOM_TRANSFORM_NAMES})


def dataset_fingerprint(dataset):
    """A signed 64-bit key of a dataset's identity: class, length and the repr of its transforms.

    Sample contents are keyed one by one (:func:`sample_key`); this key separates caches of different data sets.
    """
    parts = [f'{type(dataset).__module__}.{type(dataset).__qualname__}', str(len(dataset))]
    for obj in _walk(dataset, set()):
        for name in ('transform', 'target_transform'):
            value = getattr(obj, name, None)
            if value is not None:
                parts.append(_ADDRESS.sub('', repr(value)))
    digest = hashlib.sha256('\n'.join(parts).encode())
    return int.from_bytes(digest.digest()[:8], 'little', signed=True)


def samples_reproducible(dataset, indices):
    """True when loading each of ``indices`` twice gives identical samples; random-number states are restored,
    so the check does not change the data order or augmentation that training then sees."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            for index in indices:
                if sample_key(dataset[index][0]) != sample_key(dataset[index][0]):
                    return False
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return True
