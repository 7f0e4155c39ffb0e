"""Safe checkpoint reads: files on disk are untrusted.

Every checkpoint goes through :func:`load_checkpoint` (``torch.load(weights_only=True, map_location='cpu')``:
tensors, numbers, strings and containers only, never code), and :func:`load_model_weights` checks the parameter
names and shapes against the model before loading. torchdistill's ``load_ckpt`` uses ``weights_only=False``; our
checkpoints never go through it. A Hugging Face ``save_pretrained`` folder is read through its
safetensors file. Checkpoints are written by :func:`plugins.atomic_files.atomic_torch_save`.
"""
import argparse
import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch

from .errors import CheckpointError

__all__ = ['load_checkpoint', 'checkpoint_state_dict', 'load_model_weights', 'verify_checkpoint', 'checkpoint_exists']

_MAX_LISTED = 4  # mismatching parameter names shown in an error
# The weights of a Hugging Face save_pretrained folder (unsharded), read without pickle or weights-only.
PRETRAINED_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')


def load_checkpoint(path: str, what: str = 'checkpoint', mmap: bool = False) -> Any:
    """The object saved at ``path``, loaded with ``weights_only=True`` on the CPU; :class:`CheckpointError` names
    the file when it is missing, not a ``torch.save`` file, truncated, or holds anything but tensors and data.

    ``what`` says what the file is for in the message (e.g. ``'--teacher-ckpt'``); ``mmap`` maps the tensors
    instead of reading them (cheap verification of a large file)."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.exists(path):
        raise CheckpointError(f'{what}: no file at {path!r}')
    if os.path.isdir(path):
        return _load_pretrained_folder(path, what)
    if not os.path.isfile(path):
        raise CheckpointError(f'{what}: {path!r} is not a file')
    try:
        # torchdistill's save_ckpt (its example scripts' checkpoints) stores the command line as an
        # argparse.Namespace: plain attributes, nothing that runs code, so it is let through.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError, IndexError, TypeError,
            AttributeError) as error:
        found = [line.strip() for line in str(error).splitlines() if 'GLOBAL' in line]
        if isinstance(error, pickle.UnpicklingError) and found:
            raise CheckpointError(f'{what}: {path!r} holds Python objects other than tensors and plain data, which '
                                  f'are never loaded (they could run code; our checkpoints hold only tensors and '
                                  f'numbers): {found[0]}') from None
        reason = str(error).split('. ')[0].splitlines()[0][:100] if str(error) else 'no data'
        raise CheckpointError(f'{what}: {path!r} ({os.path.getsize(path)} bytes) is not a complete PyTorch checkpoint '
                              f'(truncated, damaged or another kind of file; a torch.save archive is expected): '
                              f'{type(error).__name__}: {reason}') from None


def _load_pretrained_folder(path, what):
    """The state dict of a ``save_pretrained`` folder: ``model.safetensors`` (safetensors holds tensors only), else
    ``pytorch_model.bin`` through :func:`load_checkpoint`."""
    names = [name for name in PRETRAINED_WEIGHT_FILES if os.path.isfile(os.path.join(path, name))]
    if not names:
        raise CheckpointError(f'{what}: {path!r} is not a file, nor a Hugging Face save_pretrained folder (unsharded): '
                              f'it has no {" or ".join(PRETRAINED_WEIGHT_FILES)}')
    weights = os.path.join(path, names[0])
    if names[0].endswith('.bin'):
        return load_checkpoint(weights, what)
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(weights, device='cpu')
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f'{what}: {weights!r} is not a complete safetensors file: {error}') from None


def checkpoint_exists(path) -> bool:
    """Whether ``path`` holds a checkpoint to load: a file, or a ``save_pretrained`` folder with its weights."""
    path = os.path.expanduser(os.fspath(path))
    return os.path.isfile(path) or any(os.path.isfile(os.path.join(path, name)) for name in PRETRAINED_WEIGHT_FILES)


def checkpoint_state_dict(checkpoint: Any, path: str, what: str = 'checkpoint') -> Mapping:
    """The model state dict of a loaded checkpoint: torchdistill's ``{'model': state_dict, ...}`` or a bare state
    dict; :class:`CheckpointError` when it is neither (a mapping of parameter names to tensors)."""
    state = checkpoint.get('model') if isinstance(checkpoint, Mapping) and 'model' in checkpoint else checkpoint
    if not isinstance(state, Mapping) or not state or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{what}: {path!r} holds no model weights (expected {{'model': state_dict}} or a "
                              f'state dict of named tensors, got {type(state).__name__})')
    return state


def _listed(names):
    names = sorted(names)
    return ', '.join(names[:_MAX_LISTED]) + (f' and {len(names) - _MAX_LISTED} more' if len(names) > _MAX_LISTED
                                            else '')


def load_model_weights(model: torch.nn.Module, path: str, what: str = 'checkpoint') -> dict:
    """Loads the weights saved at ``path`` into ``model`` after checking every parameter name and shape.

    Returns the loaded checkpoint. :class:`CheckpointError` names the file and the first mismatches when the
    checkpoint belongs to another architecture (missing, unexpected or differently shaped tensors)."""
    checkpoint = load_checkpoint(path, what)
    state = checkpoint_state_dict(checkpoint, path, what)
    expected = model.state_dict()
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    reshaped = [f'{name} {tuple(state[name].shape)} (model: {tuple(tensor.shape)})'
                for name, tensor in expected.items() if name in state and state[name].shape != tensor.shape]
    problems = ([f'missing {_listed(missing)}'] if missing else []) + \
        ([f'unexpected {_listed(unexpected)}'] if unexpected else []) + \
        ([f'shape of {_listed(reshaped)}'] if reshaped else [])
    if problems:
        raise CheckpointError(f'{what}: {path!r} does not fit {type(model).__name__} (another architecture or model '
                              f'kwargs?): {"; ".join(problems)}')
    model.load_state_dict(state, strict=True)
    return checkpoint


def verify_checkpoint(path: str, what: str = 'checkpoint') -> None:
    """Raises :class:`CheckpointError` unless ``path`` is a complete checkpoint of model weights (memory-mapped,
    so a large file is checked without reading its tensors)."""
    try:
        checkpoint = load_checkpoint(path, what, mmap=True)
    except CheckpointError:
        checkpoint = load_checkpoint(path, what)  # a legacy (non-zip) torch.save file cannot be memory-mapped
    checkpoint_state_dict(checkpoint, path, what)
