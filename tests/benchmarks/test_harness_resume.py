"""End to end through the real CLI: ``--quick`` produces the tables; a rerun skips; a SIGKILLed run is recovered."""
import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks.cli import main as cli_main
from benchmarks.stats import describe

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, 'benchmarks', 'run.py')
RECORD_FIELDS = {'suite', 'method', 'seed', 'test', 'best_val', 'epochs', 'epoch_split', 'wall_time_s',
                 'config_hash', 'versions', 'train_samples_per_s', 'peak_memory_mb', 'diagnostics'}


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, RUN, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _cli_in_process(capsys, monkeypatch, *args):
    """The same CLI in this process (no second interpreter start-up); returns (exit status, stdout)."""
    monkeypatch.chdir(REPO)
    status = cli_main(list(args), repo_root=REPO)
    return status, capsys.readouterr().out


def _ledger(output_dir):
    with open(os.path.join(output_dir, 'runs.jsonl'), encoding='utf-8') as fp:
        return [json.loads(line) for line in fp]


def _files(output_dir):
    return sorted(os.path.join(root, name) for root, _, names in os.walk(output_dir) for name in names)


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp('quick'))
    started = time.perf_counter()
    completed = _cli('--quick', '--output-dir', output_dir)
    return output_dir, completed, time.perf_counter() - started


def test_quick_mode_end_to_end_writes_ledger_tables_and_plots(quick_run):
    output_dir, completed, _ = quick_run
    assert completed.returncode == 0, completed.stderr[-3000:]
    records = _ledger(output_dir)
    methods = ['scratch', 'kd', 'takd', 'annealing_kd', 'continuation_kd', 'kd_noise_mitigation']
    assert sorted((r['method'], r['seed']) for r in records) == \
        sorted((m, s) for m in ['teacher', 'ta'] + methods for s in (0, 1))
    for record in records:
        assert RECORD_FIELDS <= set(record) and record['suite'] == 'digits'
        dead = record['diagnostics']['dead_relu']  # every run's dead units, from the saved checkpoint
        assert dead['relu_units'] == (4 if record['role'] == 'student' else 512 if record['role'] == 'teacher' else 64)
        assert 0 <= dead['dead_units'] <= dead['relu_units'] and record['diagnostics']['loss_growth']['flagged'] in \
            (True, False)
        assert 0.0 <= record['test']['accuracy'] <= 100.0 and record['versions']['torchdistill'] == '1.1.5'
    students = [r for r in records if r['role'] == 'student']
    assert {r['epochs'] for r in students} == {10}  # the same budget for every student
    assert {r['epoch_split'] for r in students if r['method'] == 'annealing_kd'} == {'5+5'}
    with open(os.path.join(output_dir, 'summary.csv'), encoding='utf-8') as fp:
        rows = {row['method']: row for row in csv.DictReader(fp)}
    assert list(rows) == ['teacher', 'ta'] + methods
    for method in methods:  # the table's figures are the ledger's, recomputed independently
        values = [r['test']['accuracy'] for r in students if r['method'] == method]
        assert float(rows[method]['test_mean']) == pytest.approx(describe(values)['mean'])
        assert float(rows[method]['test_std']) == pytest.approx(describe(values)['std'])
    kd = {r['seed']: r['test']['accuracy'] for r in students if r['method'] == 'kd'}
    annealing = {r['seed']: r['test']['accuracy'] for r in students if r['method'] == 'annealing_kd'}
    assert float(rows['annealing_kd']['diff_mean']) == pytest.approx(sum(annealing[s] - kd[s] for s in (0, 1)) / 2)
    summary = open(os.path.join(output_dir, 'summary.md'), encoding='utf-8').read()
    assert '| annealing_kd | teacher | 5+5 | 2 |' in summary and 'p (paired t)' in summary
    for name in ('test_metric.png', 'schedule_curves.png'):
        with open(os.path.join(output_dir, name), 'rb') as fp:
            assert fp.read(8) == b'\x89PNG\r\n\x1a\n'


def test_second_invocation_skips_finished_runs(quick_run, capsys, monkeypatch):
    output_dir, first, _ = quick_run
    assert first.returncode == 0
    before = _ledger(output_dir)
    checkpoints = {path: os.path.getmtime(path) for path in _files(output_dir) if path.endswith('student_best.pt')}
    status, stdout = _cli_in_process(capsys, monkeypatch, '--quick', '--output-dir', output_dir)
    assert status == 0
    assert '16 runs planned, 16 already finished (reused), 0 to run' in stdout
    assert _ledger(output_dir) == before
    assert {path: os.path.getmtime(path) for path in checkpoints} == checkpoints


def test_run_killed_midway_leaves_no_corrupt_file_and_is_redone(tmp_path, capsys, monkeypatch):
    output_dir = str(tmp_path / 'killed')
    args = ['--quick', '--methods', 'kd', '--seeds', '0', '--output-dir', output_dir]
    process = subprocess.Popen([sys.executable, RUN, *args], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    in_progress = os.path.join(output_dir, 'runs', 'digits', 'kd-*', 'seed0', 'train.log')
    deadline = time.monotonic() + 240
    while not glob.glob(in_progress) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, 'the run ended before it could be killed'
    process.send_signal(signal.SIGKILL)  # like kill -9: no handler, no clean-up
    process.wait(timeout=30)
    before = _ledger(output_dir)  # every line still parses: the ledger is only ever replaced whole
    assert [(r['method'], r['seed']) for r in before] == [('teacher', 0)]
    for path in _files(output_dir):
        if path.endswith('.json'):
            json.load(open(path, encoding='utf-8'))
    status, stdout = _cli_in_process(capsys, monkeypatch, *args)
    assert status == 0
    assert '2 runs planned, 1 already finished (reused), 1 to run' in stdout
    after = _ledger(output_dir)
    assert sorted((r['method'], r['seed']) for r in after) == [('kd', 0), ('teacher', 0)]
    assert [r for r in after if r['method'] == 'teacher'] == before  # the teachers were reused, not retrained
    assert not [path for path in _files(output_dir) if path.endswith('.tmp')]
