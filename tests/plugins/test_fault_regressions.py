"""What already held under faults stays true: a runner killed with SIGKILL leaves only complete files, and a full
disk (a real small tmpfs, where this machine lets us mount one) ends the run with one line, never a crash."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from plugins.atomic_files import atomic_torch_save
from plugins.checkpoint import load_checkpoint
from plugins.errors import OutputWriteError
from plugins.models.mlp import mlp
from runner_fixtures import TWO_STAGE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.dirname(os.path.abspath(__file__))


def write_run(tmp_path, stage1_epochs=4, stage2_epochs=2):
    torch.manual_seed(0)
    ckpt = tmp_path / 'teacher.pt'
    torch.save({'model': mlp(8, [32], 3).state_dict()}, ckpt)
    config = tmp_path / 'config.yaml'
    config.write_text(TWO_STAGE.replace('TEACHER_CKPT', repr(str(ckpt)))
                      .replace('num_epochs: 4', f'num_epochs: {stage1_epochs}')
                      .replace('num_epochs: 2', f'num_epochs: {stage2_epochs}'))
    return str(config)


def runner_command(config, output_dir, *extra):
    return [sys.executable, '-m', 'plugins.runner', '--config', config, '--output-dir', str(output_dir), *extra]


def environment():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, FIXTURES, os.environ.get('PYTHONPATH', '')]))


def assert_only_complete_files(directory):
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith('.tmp'):
            continue  # an unfinished write, never renamed into place; the harness removes these
        if name.endswith('.json'):
            with open(path, encoding='utf-8') as fp:
                json.load(fp)
        elif name.endswith('.pt'):
            assert set(load_checkpoint(path)) >= {'model'}


@pytest.mark.parametrize('moment', ['stage1_best.pt', 'stage2_best.pt'])
def test_a_runner_killed_at_any_moment_leaves_only_complete_files(tmp_path, moment):
    config = write_run(tmp_path, stage1_epochs=30, stage2_epochs=30)
    output_dir = tmp_path / 'run'
    process = subprocess.Popen(runner_command(config, output_dir), cwd=REPO, env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (output_dir / moment).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, 'the run ended before it could be killed'
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (output_dir / 'result.json').exists()
    assert_only_complete_files(output_dir)
    completed = subprocess.run(runner_command(write_run(tmp_path), output_dir), cwd=REPO, env=environment(),
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]  # the same directory trains again
    assert_only_complete_files(output_dir)


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs, or a skip where mounting is not allowed (CI without root)."""
    mount_point = tmp_path / 'disk'
    mount_point.mkdir()
    try:
        mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', str(mount_point)],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        mounted = False
    if not mounted:
        pytest.skip('cannot mount a tmpfs here (needs root)')
    yield mount_point
    subprocess.run(['umount', str(mount_point)], capture_output=True, timeout=30)


def fill(disk, leave_kib):
    usage = os.statvfs(disk)
    free = usage.f_bavail * usage.f_frsize
    with open(disk / 'filler', 'wb') as fp:
        fp.write(b'\0' * max(0, free - leave_kib * 1024))


def test_a_full_output_disk_ends_the_run_with_one_line(tmp_path, small_disk):
    config = write_run(tmp_path)
    fill(small_disk, leave_kib=8)
    completed = subprocess.run(runner_command(config, small_disk / 'run'), cwd=REPO, env=environment(),
                               capture_output=True, text=True, timeout=300)
    last = completed.stderr.strip().splitlines()[-1]
    assert completed.returncode == 1 and 'Traceback' not in completed.stderr
    assert last.startswith(f'error: cannot write {small_disk}/run/') and last.endswith(
        ': No space left on device; free space on that file system or write elsewhere')
    assert_only_complete_files(small_disk / 'run')


def test_a_full_cache_disk_ends_the_run_with_one_line(tmp_path, small_disk):
    config = write_run(tmp_path)
    fill(small_disk, leave_kib=8)
    completed = subprocess.run(runner_command(config, tmp_path / 'run', '--set', 'teacher_cache.mode=disk', '--set',
                                              f'teacher_cache.cache_dir={small_disk}/cache'),
                               cwd=REPO, env=environment(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1, (completed.returncode, completed.stderr[-2000:])
    assert completed.stderr.strip().splitlines()[-1] == (
        f"error: teacher_cache.cache_dir: cannot create a 1 KiB cache in '{small_disk}/cache': No space left on "
        f"device; free space there, set another teacher_cache.cache_dir or set teacher_cache.mode: memory")


FILL_CACHE = """
import sys, torch
from plugins.caching import CachedTeacherWrapper
teacher = torch.nn.Linear(8, 64).eval()
wrapper = CachedTeacherWrapper(teacher, mode='disk', cache_dir=sys.argv[1])
n = 4096
supp = {'cache_index': torch.arange(n), 'cache_key': torch.arange(n) * 7 + 1, 'cache_dataset': torch.full((n,), 5),
        'cache_size': torch.full((n,), n)}
with torch.no_grad():
    for start in range(0, n, 256):
        rows = slice(start, start + 256)
        wrapper(torch.randn(256, 8), None, {key: value[rows] for key, value in supp.items()})
print('filled')
"""


def test_a_cache_larger_than_the_free_space_is_refused_at_creation_not_a_bus_error(small_disk):
    fill(small_disk, leave_kib=64)  # room for the sparse files (the old code then died of SIGBUS mid-epoch)
    completed = subprocess.run([sys.executable, '-c', FILL_CACHE, str(small_disk / 'cache')], cwd=REPO,
                               env=environment(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1, (completed.returncode, completed.stderr[-2000:])  # SIGBUS: -7
    assert completed.stderr.strip().splitlines()[-1] == (
        f"plugins.errors.TeacherCacheError: teacher_cache.cache_dir: cannot create a 1.0 MiB cache in "
        f"'{small_disk}/cache': No space left on device; free space there, set another teacher_cache.cache_dir or "
        f"set teacher_cache.mode: memory")


def test_a_checkpoint_larger_than_the_free_space_is_named_not_a_serialiser_error(small_disk):
    # torch.save's zip writer reports the full disk as "RuntimeError: ... unexpected pos"; the file must be named
    with pytest.raises(OutputWriteError, match=r'cannot write .*big\.pt: No space left on device; free space'):
        atomic_torch_save({'model': {'weight': torch.zeros(200_000)}}, small_disk / 'big.pt')  # 800 KB on 256 KiB
    assert os.listdir(small_disk) == []
