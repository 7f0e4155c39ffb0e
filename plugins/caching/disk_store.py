"""A teacher-output cache on disk that verifies itself: a damaged cache is discarded and rebuilt, never served.

One directory per (teacher weights, dataset, sample count) holds ``.npy`` memory maps: ``values<i>.npy`` (one
row per sample and output field), ``keys.npy`` (the sample key each row was made from), ``checksums.npy`` (a
BLAKE2b digest of each row's key and values) and ``filled.npy`` (the row is valid), plus ``meta.json``
(format, fields, row count and the byte size of every file). Opening checks the sizes and array headers and
re-hashes every filled row; any mismatch (a truncated or zero-padded file, a flipped byte, a row torn by a
crash) raises :class:`CacheDamaged`, and the caller discards the directory with a warning and rebuilds it.
A row is rewritten flag first (cleared), then values, key and checksum, then flag (set). The files are
allocated in full when the cache is created, so a full disk is a named error then, never a ``SIGBUS`` while
training writes into a memory map. Nothing read from disk is imported or looked up by name except the
dtypes of :data:`~plugins.caching.store.DTYPES`.
"""
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np
import torch

from ..atomic_files import atomic_write_json
from ..errors import TeacherCacheError
from .store import DTYPES, OutputSpec

__all__ = ['DiskStore', 'CacheDamaged', 'discard_cache', 'FORMAT_VERSION', 'read_meta']

FORMAT_VERSION = 2
META_NAME = 'meta.json'
_CHECK_CHUNK = 4096  # rows re-hashed per block when a cache is opened


class CacheDamaged(Exception):
    """A disk cache whose files do not match its ``meta.json`` or whose rows fail their checksums."""


def _numpy_dtype(dtype):
    # numpy has no bfloat16: such rows are kept as float32, which holds every bfloat16 value exactly.
    return np.float32 if dtype == torch.bfloat16 else torch.empty((), dtype=dtype).numpy().dtype


def _file_names(spec):
    return [f'values{i}.npy' for i in range(len(spec.fields))] + ['keys.npy', 'checksums.npy', 'filled.npy']


def _array_specs(num_samples, spec):
    """{file name: (numpy dtype, shape)} of a cache's arrays."""
    arrays = {f'values{i}.npy': (np.dtype(_numpy_dtype(dtype)), (num_samples, *shape))
              for i, (_, shape, dtype) in enumerate(spec.fields)}
    arrays.update({'keys.npy': (np.dtype(np.int64), (num_samples,)),
                   'checksums.npy': (np.dtype(np.uint64), (num_samples,)),
                   'filled.npy': (np.dtype(np.bool_), (num_samples,))})
    return arrays


def row_checksums(keys, values):
    """BLAKE2b (64 bits) of each row's key and value bytes; ``keys`` int64 [n], ``values`` arrays [n, ...]."""
    key_bytes = np.ascontiguousarray(keys, dtype=np.int64).view(np.uint8).reshape(len(keys), 8)
    value_bytes = [np.ascontiguousarray(v).view(np.uint8).reshape(len(keys), -1) for v in values]
    sums = np.empty(len(keys), dtype=np.uint64)
    for row in range(len(keys)):
        digest = hashlib.blake2b(key_bytes[row].tobytes(), digest_size=8)
        for array in value_bytes:
            digest.update(array[row].tobytes())
        sums[row] = int.from_bytes(digest.digest(), 'little')
    return sums


def _spec_from_meta(meta):
    """The OutputSpec a meta.json describes; dtypes only from the allow-list."""
    try:
        fields = [(str(name), tuple(int(n) for n in shape), DTYPES[dtype]) for name, shape, dtype in meta['fields']]
    except (KeyError, TypeError, ValueError) as error:
        raise CacheDamaged(f'{META_NAME} has no valid fields ({type(error).__name__}: {error})') from None
    return OutputSpec(fields)


def read_meta(directory):
    """The parsed ``meta.json`` of a cache directory; :class:`CacheDamaged` when it is unreadable or of another
    format version."""
    try:
        with open(os.path.join(directory, META_NAME), 'r', encoding='utf-8') as fp:
            meta = json.load(fp)
    except (OSError, ValueError) as error:
        raise CacheDamaged(f'{META_NAME} is unreadable ({type(error).__name__}: {error})') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT_VERSION:
        found = meta.get('format') if isinstance(meta, dict) else None
        raise CacheDamaged(f'{META_NAME} is of format {found!r}, not {FORMAT_VERSION} (an older version wrote it)')
    return meta


def discard_cache(directory):
    """Moves a damaged cache directory out of the way and deletes it (another process may have done so first)."""
    parent = os.path.dirname(os.path.abspath(directory))
    trash = tempfile.mkdtemp(dir=parent, prefix='.discarded-' + os.path.basename(directory) + '.')
    try:
        os.rename(directory, os.path.join(trash, 'cache'))
    except FileNotFoundError:
        pass
    finally:
        shutil.rmtree(trash, ignore_errors=True)


class DiskStore:
    """Rows held in verified ``.npy`` memory maps in ``directory``; see the module docstring.

    ``DiskStore.open(directory, num_samples, spec=None)`` opens an existing cache (``spec`` from its meta.json
    when None) and raises :class:`CacheDamaged` unless every check passes; ``DiskStore.create(...)`` makes a new
    one whole in a temporary directory, then renames it into place.
    """

    mode = 'disk'

    def __init__(self, directory, num_samples, spec, arrays, meta):
        self.directory, self.num_samples, self.spec, self.meta = directory, num_samples, spec, meta
        self.values = [arrays[f'values{i}.npy'] for i in range(len(spec.fields))]
        self.keys, self.checksums, self.filled = arrays['keys.npy'], arrays['checksums.npy'], arrays['filled.npy']

    @classmethod
    def open(cls, directory, num_samples, spec=None):
        meta = read_meta(directory)
        stored_spec = _spec_from_meta(meta)
        if meta.get('num_samples') != num_samples or (spec is not None and stored_spec != spec):
            raise CacheDamaged(f'it holds {meta.get("num_samples")} rows of {meta.get("fields")}, expected '
                               f'{num_samples} rows of {(spec or stored_spec).describe()}')
        arrays = cls._open_arrays(directory, num_samples, stored_spec, meta)
        store = cls(directory, num_samples, stored_spec, arrays, meta)
        store.verify()
        return store

    @staticmethod
    def _open_arrays(directory, num_samples, spec, meta):
        sizes, arrays = meta.get('files') or {}, {}
        for name, (dtype, shape) in _array_specs(num_samples, spec).items():
            path = os.path.join(directory, name)
            size = os.path.getsize(path) if os.path.isfile(path) else None
            if size is None or size != sizes.get(name):
                raise CacheDamaged(f'{name} is {"missing" if size is None else f"{size} bytes"}, '
                                   f'{META_NAME} says {sizes.get(name)} bytes')
            try:
                array = np.load(path, mmap_mode='r+', allow_pickle=False)
            except (OSError, ValueError) as error:
                raise CacheDamaged(f'{name} is not a valid .npy file ({error})') from None
            if array.dtype != dtype or array.shape != shape:
                raise CacheDamaged(f'{name} holds {array.dtype} {array.shape}, expected {dtype} {shape}')
            arrays[name] = array
        return arrays

    def verify(self):
        """Re-hashes every filled row; :class:`CacheDamaged` names the first row that fails its checksum."""
        rows = np.flatnonzero(self.filled)
        for start in range(0, len(rows), _CHECK_CHUNK):
            block = rows[start:start + _CHECK_CHUNK]
            sums = row_checksums(self.keys[block], [values[block] for values in self.values])
            bad = block[sums != self.checksums[block]]
            if len(bad):
                raise CacheDamaged(f'{len(bad)} row(s) from row {int(bad[0])} fail their checksum')

    @classmethod
    def create(cls, directory, num_samples, spec, meta):
        """A new, empty cache at ``directory`` (or the one another process created there first, verified)."""
        parent = os.path.dirname(os.path.abspath(directory))
        try:
            os.makedirs(parent, exist_ok=True)
            tmp = tempfile.mkdtemp(dir=parent, prefix='.' + os.path.basename(directory) + '.')
        except OSError as error:
            raise TeacherCacheError(f'teacher_cache.cache_dir: cannot create a cache in {parent!r}: '
                                    f'{error.strerror or error}') from None
        try:
            sizes = cls._allocate(tmp, num_samples, spec)
            atomic_write_json(os.path.join(tmp, META_NAME), dict(meta, format=FORMAT_VERSION, num_samples=num_samples,
                                                                 fields=spec.describe(), files=sizes))
            os.rename(tmp, directory)
        except OSError as error:
            if not os.path.isdir(directory):  # not another process creating the same cache first
                size = num_samples * spec.row_bytes()
                size = f'{size / 2 ** 20:.1f} MiB' if size >= 2 ** 20 else f'{size / 2 ** 10:.0f} KiB'
                raise TeacherCacheError(
                    f'teacher_cache.cache_dir: cannot create a {size} cache in {parent!r}: '
                    f'{error.strerror or error}; free space there, set another teacher_cache.cache_dir or set '
                    f'teacher_cache.mode: memory') from None
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp)
        return cls.open(directory, num_samples, spec)

    @staticmethod
    def _allocate(directory, num_samples, spec):
        sizes = {}
        for name, (dtype, shape) in _array_specs(num_samples, spec).items():
            path = os.path.join(directory, name)
            np.lib.format.open_memmap(path, mode='w+', dtype=dtype, shape=shape).flush()
            if hasattr(os, 'posix_fallocate'):  # every block now: writing through the map never needs space
                with open(path, 'r+b') as fp:
                    os.posix_fallocate(fp.fileno(), 0, os.fstat(fp.fileno()).st_size)
            sizes[name] = os.path.getsize(path)
        return sizes

    def contains(self, indices, keys):
        indices = indices.cpu().numpy()
        return bool(np.all(self.filled[indices] & (self.keys[indices] == keys.cpu().numpy())))

    def read(self, indices, device):
        indices = indices.cpu().numpy()
        return [torch.from_numpy(np.take(values, indices, axis=0)).to(device=device, dtype=dtype)
                for values, (_, _, dtype) in zip(self.values, self.spec.fields)]

    def write(self, indices, keys, tensors):
        indices, keys = indices.cpu().numpy(), keys.cpu().numpy()
        arrays = [tensor.detach().to('cpu', torch.float32 if tensor.dtype == torch.bfloat16 else tensor.dtype).numpy()
                  for tensor in tensors]
        self.filled[indices] = False  # a crash from here on leaves the row invalid, never half-written and valid
        for values, array in zip(self.values, arrays):
            values[indices] = array
        self.keys[indices] = keys
        self.checksums[indices] = row_checksums(keys, [values[indices] for values in self.values])
        self.filled[indices] = True

    def flush(self):
        for array in (*self.values, self.keys, self.checksums, self.filled):
            array.flush()

    def num_filled(self):
        return int(self.filled.sum())
