"""Crash-safe writes: a file is written next to its destination, then renamed over it."""
import json
import os
import tempfile

import torch

__all__ = ['atomic_write_bytes', 'atomic_write_text', 'atomic_write_json', 'atomic_torch_save']


def _atomic_write(path, write):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; the result should look like any other file
    try:
        with os.fdopen(fd, 'wb') as fp:
            write(fp)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def atomic_write_bytes(path, data):
    _atomic_write(path, lambda fp: fp.write(data))


def atomic_write_text(path, text):
    _atomic_write(path, lambda fp: fp.write(text.encode('utf-8')))


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def atomic_torch_save(obj, path):
    _atomic_write(path, lambda fp: torch.save(obj, fp))
