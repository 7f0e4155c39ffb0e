"""Crash-safe file writes: a file is written next to its destination, then renamed over it.

A killed process leaves the old file or the new one, never a torn one; a failed write (e.g. a full disk) raises
:class:`~plugins.errors.OutputWriteError` naming the file. Every result, checkpoint, ledger and report of the
project is written through these functions.
"""
import json
import os
import tempfile
from typing import Any, BinaryIO, Callable

import torch

from .errors import OutputWriteError

__all__ = ['atomic_write_bytes', 'atomic_write_text', 'atomic_write_json', 'atomic_torch_save']


class _WriteErrorKeeper:
    """The temporary file, keeping the first ``OSError`` of its writes: ``torch.save``'s zip writer reports a full
    disk as a ``RuntimeError`` ("unexpected pos ..."), which hides the ``OSError`` that names the cause."""

    def __init__(self, fp: BinaryIO):
        self.fp, self.error = fp, None

    def write(self, data: bytes) -> int:
        try:
            return self.fp.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def flush(self) -> None:
        self.fp.flush()


def _atomic_write(path: str, write: Callable[[BinaryIO], Any]) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    except OSError as error:
        raise OutputWriteError(error.errno, f'cannot write {path}: {error.strerror or error}') from error
    umask = os.umask(0)
    os.umask(umask)
    keeper = None
    try:
        with os.fdopen(fd, 'wb') as fp:
            os.fchmod(fp.fileno(), 0o666 & ~umask)  # mkstemp creates 0600; the result should look like any other
            keeper = _WriteErrorKeeper(fp)
            write(keeper)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp_path, path)
    except BaseException as error:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        if keeper is not None and keeper.error is not None and not isinstance(error, OSError):
            error = keeper.error  # the write's own error (e.g. a full disk), not what the serialiser made of it
        if isinstance(error, OSError) and not isinstance(error, OutputWriteError):
            hint = '; free space on that file system or write elsewhere' if error.errno == 28 else ''
            raise OutputWriteError(error.errno, f'cannot write {path}: {error.strerror or error}{hint}') from error
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    _atomic_write(path, lambda fp: fp.write(data))


def atomic_write_text(path: str, text: str) -> None:
    _atomic_write(path, lambda fp: fp.write(text.encode('utf-8')))


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def atomic_torch_save(obj: Any, path: str) -> None:
    _atomic_write(path, lambda fp: torch.save(obj, fp))
