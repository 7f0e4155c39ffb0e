"""The disk teacher cache verifies itself: a damaged cache is discarded with a warning and rebuilt, never served."""
import errno
import json
import logging
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from plugins.caching import CachedTeacherWrapper, TeacherCacheDatasetWrapper
from plugins.caching import disk_store
from plugins.errors import TeacherCacheError
from plugins.models.mlp import mlp

NUM_SAMPLES, BATCH = 16, 8


class CountingTeacher(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = mlp(6, [16], 3)
        self.samples_seen = 0

    def forward(self, x):
        self.samples_seen += x.shape[0]
        return self.net(x)


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(NUM_SAMPLES, 6, generator=generator), torch.randint(0, 3, (NUM_SAMPLES,), generator=generator)


def supp_fields(features, labels):
    dataset = TeacherCacheDatasetWrapper(TensorDataset(features, labels))
    batch = [dataset[i] for i in range(len(labels))]
    return {key: torch.tensor([sample[2][key] for sample in batch]) for key in batch[0][2]}


def run_epoch(cache_dir, features, labels):
    """A new run's wrapper over every batch; returns (teacher, served outputs, wrapper)."""
    teacher = CountingTeacher().eval()
    wrapper = CachedTeacherWrapper(teacher, mode='disk', cache_dir=str(cache_dir))
    supp = supp_fields(features, labels)
    outputs = []
    with torch.no_grad():
        for start in range(0, NUM_SAMPLES, BATCH):
            rows = slice(start, start + BATCH)
            outputs.append(wrapper(features[rows], labels[rows], {key: value[rows] for key, value in supp.items()}))
    wrapper.post_epoch_process()
    return teacher, torch.cat(outputs), wrapper


def cache_directory(cache_dir):
    [name] = [name for name in os.listdir(cache_dir) if not name.startswith('.')]
    return cache_dir / name


def expected_outputs(features):
    """The teacher's outputs batch by batch, as the training loop computes them (bit for bit)."""
    net = CountingTeacher().net
    with torch.no_grad():
        return torch.cat([net(features[start:start + BATCH]) for start in range(0, NUM_SAMPLES, BATCH)])


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def zero_pad(path):  # what numpy's memmap(r+) did to a truncated file: the size is right again, the rows are zeros
    size = path.stat().st_size
    truncate(path)
    with open(path, 'ab') as fp:
        fp.write(b'\0' * (size - path.stat().st_size))


def flip_one_value(path):
    array = np.load(path, mmap_mode='r+')
    array[5, 1] += 1.0
    array.flush()


def point_row_at_another_sample(path):
    keys = np.load(path, mmap_mode='r+')
    keys[2] = keys[3]
    keys.flush()


DAMAGE = [
    ('values0.npy', truncate, 'values0.npy is '),
    ('values0.npy', zero_pad, 'fail their checksum'),
    ('values0.npy', flip_one_value, '1 row(s) from row 5 fail their checksum'),
    ('keys.npy', point_row_at_another_sample, '1 row(s) from row 2 fail their checksum'),
    ('checksums.npy', truncate, 'checksums.npy is '),
    ('meta.json', truncate, 'meta.json is unreadable'),
]


@pytest.mark.parametrize('name, damage, reason', DAMAGE, ids=[f'{n}-{d.__name__}' for n, d, _ in DAMAGE])
def test_a_damaged_cache_is_discarded_rebuilt_and_never_served(tmp_path, data, caplog, name, damage, reason):
    features, labels = data
    run_epoch(tmp_path, features, labels)
    directory = cache_directory(tmp_path)
    damage(directory / name)
    caplog.set_level(logging.WARNING)
    teacher, served, _ = run_epoch(tmp_path, features, labels)
    assert teacher.samples_seen == NUM_SAMPLES  # nothing served from the damaged files
    assert torch.equal(served, expected_outputs(features))
    assert f'Teacher-output cache {directory} is damaged (' in caplog.text and reason in caplog.text
    assert 'discarded; it is rebuilt from the teacher' in caplog.text
    teacher, served, _ = run_epoch(tmp_path, features, labels)  # the rebuilt cache serves every row, exactly
    assert teacher.samples_seen == 0 and torch.equal(served, expected_outputs(features))
    assert [name for name in os.listdir(tmp_path)] == [directory.name]  # nothing left of the discarded copy


def edit_meta(directory, **fields):
    meta = json.loads((directory / 'meta.json').read_text())
    meta.update(fields)
    (directory / 'meta.json').write_text(json.dumps(meta))


def test_a_module_named_in_meta_json_is_never_imported(tmp_path, data, monkeypatch, caplog):
    features, labels = data
    modules = tmp_path / 'modules'
    modules.mkdir()
    marker = tmp_path / 'IMPORTED'
    (modules / 'cache_payload.py').write_text(f'open({str(marker)!r}, "w").close()\nclass Output(dict): pass\n')
    monkeypatch.syspath_prepend(str(modules))
    cache_dir = tmp_path / 'cache'
    run_epoch(cache_dir, features, labels)
    edit_meta(cache_directory(cache_dir), output_type='cache_payload:Output')
    teacher, served, _ = run_epoch(cache_dir, features, labels)
    assert not marker.exists() and 'cache_payload' not in sys.modules
    assert teacher.samples_seen == BATCH  # the type is learnt from the teacher's first batch, the rest is served
    assert torch.equal(served, expected_outputs(features))
    assert "its output type 'cache_payload:Output' is not one this process has loaded" in caplog.text


def test_a_dtype_outside_the_allow_list_is_damage(tmp_path, data, caplog):
    features, labels = data
    run_epoch(tmp_path, features, labels)
    edit_meta(cache_directory(tmp_path), fields=[['', [3], 'load']])
    teacher, served, _ = run_epoch(tmp_path, features, labels)
    assert "meta.json has no valid fields (KeyError: 'load')" in caplog.text
    assert teacher.samples_seen == NUM_SAMPLES and torch.equal(served, expected_outputs(features))


def test_a_cache_of_the_older_format_is_rebuilt(tmp_path, data, caplog):
    features, labels = data
    run_epoch(tmp_path, features, labels)
    edit_meta(cache_directory(tmp_path), format=None)
    teacher, _, _ = run_epoch(tmp_path, features, labels)
    assert 'meta.json is of format None, not 2 (an older version wrote it)' in caplog.text
    assert teacher.samples_seen == NUM_SAMPLES


def test_a_row_is_invalid_while_it_is_rewritten(tmp_path, data, monkeypatch):
    features, labels = data
    _, _, wrapper = run_epoch(tmp_path, features, labels)
    [(store, _)] = wrapper.stores.values()
    assert store.filled.all()

    def crash(*args):
        raise KeyboardInterrupt  # the process dies between the values and the flag

    monkeypatch.setattr(disk_store, 'row_checksums', crash)
    indices = torch.arange(BATCH)
    with pytest.raises(KeyboardInterrupt):
        store.write(indices, torch.arange(BATCH) + 1000, [torch.zeros(BATCH, 3)])
    assert not store.filled[:BATCH].any() and store.filled[BATCH:].all()
    monkeypatch.undo()
    store.flush()
    reopened = disk_store.DiskStore.open(store.directory, NUM_SAMPLES)  # consistent: no row claims what it lacks
    assert reopened.num_filled() == NUM_SAMPLES - BATCH


def test_a_full_cache_disk_is_a_named_error_when_the_cache_is_created(tmp_path, data, monkeypatch):
    features, labels = data

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'posix_fallocate', no_space)
    with pytest.raises(TeacherCacheError) as error:
        run_epoch(tmp_path / 'cache', features, labels)
    assert str(error.value) == (f"teacher_cache.cache_dir: cannot create a 0 KiB cache in '{tmp_path / 'cache'}': "
                                f'No space left on device; free space there, set another teacher_cache.cache_dir or '
                                f'set teacher_cache.mode: memory')
    assert not [name for name in os.listdir(tmp_path / 'cache')]  # no half-made cache left behind
