"""The harness under faults and bad input: configs checked before the first run, failed runs recorded while the
suite goes on, suites isolated in one directory, damaged files never reused, every bad flag named."""
import json
import os

import pytest
import torch

import benchmarks.harness as harness
from benchmarks.cli import main as cli_main
from benchmarks.configs import read_structure
from benchmarks.suites import build_suite
from benchmarks.suites.base import MethodSpec
from plugins.atomic_files import atomic_torch_save, atomic_write_json
from plugins.errors import OutputWriteError, TrainingDivergedError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


class FakeTrainer:
    """Stands in for ``harness._train``: writes a run's files as the runner would and returns its result, or raises
    the error scripted for (method, seed). Records every call."""

    def __init__(self, failures=None):
        self.failures, self.calls = dict(failures or {}), []

    def __call__(self, job, device, show_progress):
        self.calls.append((job.method, job.seed))
        error = self.failures.get((job.method, job.seed))
        if error is not None:
            raise error
        accuracy = 50.0 + job.seed + len(job.method)
        result = {'metric': 'accuracy', 'higher_is_better': True, 'seed': job.seed, 'best_val': accuracy,
                  'test': {'accuracy': accuracy}, 'extra_tests': {}, 'stages': [{'stage': 1, 'best_epoch': 0}],
                  'history': [{'epoch': 0, 'stage': 1, 'train_loss': 1.0, 'val': {'accuracy': accuracy},
                               'schedule': {}, 'lr': 0.1}],
                  'epochs': 1, 'world_size': 1, 'wall_time_s': 0.1, 'train_samples_per_s': 10.0,
                  'peak_memory_mb': 1.0, 'student_params': 310, 'teacher_params': None}
        atomic_torch_save({'model': {'weight': torch.ones(2)}}, os.path.join(job.run_dir, 'student_best.pt'))
        atomic_write_json(os.path.join(job.run_dir, 'result.json'), result)
        return result


def run_cli(capsys, *args):
    status = cli_main(list(args), repo_root=REPO)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def ledger(output_dir):
    with open(os.path.join(output_dir, 'runs.jsonl'), encoding='utf-8') as fp:
        return [json.loads(line) for line in fp]


def test_every_planned_config_is_checked_before_the_first_run(tmp_path, capsys, monkeypatch):
    trainer = FakeTrainer()
    monkeypatch.setattr(harness, '_train', trainer)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, '--quick', '--epochs', '3', '--seeds', '0', '--output-dir', str(tmp_path))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and trainer.calls == []  # not even the teacher trained
    assert ('error: annealing_kd (seed 0; yaml_configs/digits/annealing_kd/mlp4_from_mlp256.yaml with overrides '
            '{"train.stage1.criterion.kwargs.sub_terms.annealing_kd.criterion.kwargs.max_temperature": 5, '
            '"train.stage1.num_epochs": 2, "train.stage2.num_epochs": 1}): train.stage1.num_epochs=2 is shorter than '
            'the 5 levels') in err
    assert os.listdir(tmp_path) == ['.lock']


def test_a_bad_method_override_is_named_before_the_teacher_trains(tmp_path, monkeypatch):
    trainer = FakeTrainer()
    monkeypatch.setattr(harness, '_train', trainer)
    suite = build_suite('digits', quick=True)
    suite.methods['kd'] = MethodSpec(suite.methods['kd'].config, overrides={'train.optimizer.kwargs.lr': '1e-3'})
    with pytest.raises(harness.HarnessError, match=r"^kd \(seed 0, 1; .*\): train.optimizer.kwargs.lr must be a "
                                                   r"finite number >= 0, got '1e-3' \(a string"):
        harness.run_suite(suite, str(tmp_path), methods=['scratch', 'kd'], workers=1, log=lambda text: None)
    assert trainer.calls == []


def test_a_failed_run_is_recorded_the_suite_goes_on_and_the_exit_status_says_so(tmp_path, capsys, monkeypatch):
    diverged = TrainingDivergedError('training diverged: the loss is nan at epoch 3, step 7 (train); lower the '
                                     'learning rate (train.optimizer.kwargs.lr is 1e+06 now)')
    trainer = FakeTrainer({('kd', 0): diverged, ('scratch', 1): RuntimeError('CUDA out of memory')})
    monkeypatch.setattr(harness, '_train', trainer)
    args = ['--quick', '--methods', 'scratch,kd', '--output-dir', str(tmp_path)]
    status, out, err = run_cli(capsys, *args)
    assert status == 1
    assert f'[digits] kd seed 0 FAILED: {diverged}' in out and 'RuntimeError: CUDA out of memory' in out
    assert f'[digits] 2 of 6 runs failed (no result; see runs.jsonl):\n  scratch seed 1: RuntimeError: CUDA out of ' \
           f'memory\n  kd seed 0: {diverged}\n' in err
    lines = {(r['method'], r['seed']): r for r in ledger(tmp_path)}
    assert len(lines) == 6
    failed = lines[('kd', 0)]
    assert failed['status'] == 'failed' and failed['error'] == str(diverged)
    assert failed['error_type'] == 'TrainingDivergedError' and failed['suite'] == 'digits' and failed['config_hash']
    assert 'test' not in failed and lines[('kd', 1)]['status'] == 'ok'
    summary = open(os.path.join(tmp_path, 'summary.md'), encoding='utf-8').read()  # the report was written
    assert '| kd | teacher |' in summary and '| scratch | - |' in summary
    # A rerun keeps the diverged run (seeded: it would diverge again) and retries the other failure.
    trainer.calls.clear()
    trainer.failures.clear()
    status, out, _ = run_cli(capsys, *args)
    assert trainer.calls == [('scratch', 1)] and status == 1
    assert '6 runs planned, 4 already finished (reused), 1 failed before and kept (diverged; --retry-failed runs ' \
           'them again), 1 to run' in out
    trainer.calls.clear()
    status, out, _ = run_cli(capsys, *args, '--retry-failed')
    assert trainer.calls == [('kd', 0)] and status == 0
    assert all(record['status'] == 'ok' for record in ledger(tmp_path))


def test_the_students_of_a_failed_teacher_fail_with_it(tmp_path, monkeypatch):
    trainer = FakeTrainer({('teacher', 1): TrainingDivergedError('training diverged: the loss is nan')})
    monkeypatch.setattr(harness, '_train', trainer)
    records = harness.run_suite(build_suite('digits', quick=True), str(tmp_path), methods=['kd', 'takd'],
                                workers=1, log=lambda text: None)
    status = {(r['method'], r['seed']): (r['status'], r.get('error')) for r in records}
    assert status[('teacher', 1)] == ('failed', 'training diverged: the loss is nan')
    upstream = 'its teacher run (seed 1) failed: training diverged: the loss is nan'
    assert status[('ta', 1)] == ('failed', upstream) and status[('kd', 1)] == ('failed', upstream)
    assert status[('takd', 1)] == ('failed', 'its ta run (seed 1) failed: ' + upstream)
    assert all(status[(method, 0)][0] == 'ok' for method in ('teacher', 'ta', 'kd', 'takd'))
    assert ('kd', 1) not in trainer.calls and ('ta', 1) not in trainer.calls


def test_two_suites_and_two_settings_share_one_directory_without_loss(tmp_path, capsys):
    base = ['--methods', 'scratch', '--seeds', '0', '--output-dir', str(tmp_path)]
    assert run_cli(capsys, '--quick', *base)[0] == 0
    assert run_cli(capsys, '--suite', 'sinusoid', '--quick', *base)[0] == 0
    assert run_cli(capsys, '--quick', '--epochs', '3', *base)[0] == 0  # another setting of the same suite
    records = ledger(tmp_path)
    assert sorted((r['suite'], r['method'], r['seed'], r['epochs']) for r in records) == \
        [('digits', 'scratch', 0, 3), ('digits', 'scratch', 0, 10), ('sinusoid', 'scratch', 0, 20)]
    assert len({r['run_dir'] for r in records}) == 3
    assert all(r['run_dir'].startswith(f"runs/{r['suite']}/scratch-{r['config_hash']}/") for r in records)
    digits = open(os.path.join(tmp_path, 'summary.md'), encoding='utf-8').read()
    sinusoid = open(os.path.join(tmp_path, 'reports', 'sinusoid', 'summary.md'), encoding='utf-8').read()
    assert digits.startswith('# Benchmark: digits') and sinusoid.startswith('# Benchmark: sinusoid')
    status, out, _ = run_cli(capsys, '--quick', *base)
    assert status == 0 and '1 runs planned, 1 already finished (reused), 0 to run' in out


def test_the_hash_and_run_folders_follow_device_and_world_size(tmp_path):
    suite = build_suite('digits', quick=True)
    plans = {(device, world): harness.plan_suite(suite, str(tmp_path), methods=['kd'], seeds=[0], device=device,
                                                 world_size=world)
             for device, world in (('cpu', 1), ('cpu', 2), ('cuda', 1), ('cuda:1', 1))}
    for role in (0, 1):  # the teacher and the student
        hashes = {key: jobs[role].config_hash for key, jobs in plans.items()}
        assert hashes[('cuda', 1)] == hashes[('cuda:1', 1)]  # the device type counts, not its index
        assert len({hashes[('cpu', 1)], hashes[('cpu', 2)], hashes[('cuda', 1)]}) == 3
        assert len({jobs[role].run_dir for key, jobs in plans.items() if key[1] == 2 or key[0] != 'cuda:1'}) == 3


def test_damaged_files_are_never_counted_as_finished(tmp_path, capsys, monkeypatch):
    trainer = FakeTrainer()
    monkeypatch.setattr(harness, '_train', trainer)
    args = ['--quick', '--methods', 'scratch,kd', '--output-dir', str(tmp_path)]
    assert run_cli(capsys, *args)[0] == 0
    by_key = {(r['method'], r['seed']): r for r in ledger(tmp_path)}
    teacher_ckpt = os.path.join(tmp_path, by_key[('teacher', 0)]['run_dir'], 'student_best.pt')
    with open(teacher_ckpt, 'rb') as fp:
        data = fp.read()
    with open(teacher_ckpt, 'wb') as fp:
        fp.write(data[:len(data) // 2])
    kd_result = os.path.join(tmp_path, by_key[('kd', 1)]['run_dir'], 'result.json')
    with open(kd_result, 'r+', encoding='utf-8') as fp:
        text = fp.read()
        fp.seek(0)
        fp.truncate()
        fp.write(text[:len(text) // 2])
    lines = open(os.path.join(tmp_path, 'runs.jsonl'), encoding='utf-8').read().splitlines()
    position = next(i for i, line in enumerate(lines) if '"method": "scratch"' in line and '"seed": 0' in line)
    record = json.loads(lines[position])
    del record['seed']
    lines[position] = json.dumps(record)
    with open(os.path.join(tmp_path, 'runs.jsonl'), 'w', encoding='utf-8') as fp:
        fp.write('\n'.join(lines) + '\n')
    trainer.calls.clear()
    status, out, _ = run_cli(capsys, *args)
    assert status == 0 and sorted(trainer.calls) == [('kd', 1), ('scratch', 0), ('teacher', 0)]
    assert (f"[digits] teacher seed 0: checkpoint: '{teacher_ckpt}' ({len(data) // 2} bytes) is not a complete "
            f"PyTorch checkpoint") in out
    assert f'[digits] kd seed 1: {kd_result} is not a complete result (truncated or damaged JSON' in out
    assert (f"[digits] warning: {tmp_path}/runs.jsonl:{position + 1} is not a usable record: it lacks (or mistypes) "
            f"the key(s) ['seed']") in out
    assert '6 runs planned, 3 already finished (reused), 3 to run' in out


def test_a_damaged_result_outside_the_plan_is_left_out_of_the_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(harness, '_train', FakeTrainer())
    assert run_cli(capsys, '--quick', '--methods', 'scratch,kd', '--output-dir', str(tmp_path))[0] == 0
    scratch = next(r for r in ledger(tmp_path) if r['method'] == 'scratch' and r['seed'] == 0)
    with open(os.path.join(tmp_path, scratch['run_dir'], 'result.json'), 'w', encoding='utf-8') as fp:
        fp.write('{"metric": "acc')
    status, out, _ = run_cli(capsys, '--quick', '--methods', 'kd', '--output-dir', str(tmp_path))
    assert status == 0 and 'scratch seed 0 is left out of the report (the next run redoes it)' in out
    with open(os.path.join(tmp_path, 'summary.csv'), encoding='utf-8') as fp:
        scratch_row = next(line for line in fp if line.startswith('digits,scratch,'))
    assert ',1,accuracy,' in scratch_row  # one seed left of two


BAD_FLAGS = [
    (['--methods', ','], "--methods names no method (got ','); --list-methods shows the names"),
    (['--seeds', '-1'], '--seeds: -1 is out of range; a seed is an integer in [0, 4294967295]'),
    (['--seeds', '4294967296'], '--seeds: 4294967296 is out of range'),
    (['--device', 'gpu'], "--device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (['--jobs', '0'], '--jobs must be >= 1, got 0'),
]


@pytest.mark.parametrize('argv, message', BAD_FLAGS, ids=[' '.join(argv) for argv, _ in BAD_FLAGS])
def test_bad_flags_are_usage_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, '--quick', '--output-dir', str(tmp_path / 'out'), *argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f'error: {message}' in err and 'Traceback' not in err
    assert not os.path.exists(tmp_path / 'out')


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_cuda_without_a_gpu_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, '--quick', '--device', 'cuda', '--output-dir', str(tmp_path))
    assert exit_info.value.code == 2
    assert 'error: --device cuda: no CUDA GPU is available on this machine' in capsys.readouterr().err


def test_an_output_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / 'results'
    blocker.write_text('keep me')
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, '--quick', '--output-dir', str(blocker))
    assert exit_info.value.code == 2 and blocker.read_text() == 'keep me'
    assert f"error: --output-dir: '{blocker}' is a file, not a directory" in capsys.readouterr().err


def test_the_lock_file_is_never_truncated_or_followed(tmp_path):
    target = tmp_path / 'precious.txt'
    target.write_text('precious')
    output_dir = tmp_path / 'out'
    output_dir.mkdir()
    os.symlink(target, output_dir / '.lock')
    with pytest.raises(harness.HarnessError, match=r'\.lock: cannot open the lock file \(Too many levels of '
                                                   r'symbolic links\); it must be a regular file'):
        with harness._exclusive(str(output_dir)):
            pass
    assert target.read_text() == 'precious'
    os.remove(output_dir / '.lock')
    (output_dir / '.lock').write_text('left by an older version')
    with harness._exclusive(str(output_dir)):
        pass
    assert (output_dir / '.lock').read_text() == 'left by an older version'  # opened without truncating


def test_a_full_disk_stops_the_suite_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(harness, '_train', FakeTrainer())

    def no_space(path, text):
        raise OutputWriteError(28, f'cannot write {path}: No space left on device; free space on that file system '
                                   f'or write elsewhere')

    import benchmarks.records as records
    monkeypatch.setattr(records, 'atomic_write_text', no_space)
    status, _, err = run_cli(capsys, '--quick', '--methods', 'scratch', '--seeds', '0', '--output-dir', str(tmp_path))
    assert status == 1
    assert err.strip().splitlines()[-1] == (f'error: cannot write {tmp_path}/runs.jsonl: No space left on device; '
                                            f'free space on that file system or write elsewhere')


def test_option_values_are_parsed_as_numbers_where_they_are_numbers():
    from benchmarks.cli import build_parser, parse_options
    args = build_parser().parse_args(['--option', 'lr=1e-3', '--option', 'family=cnn', '--option', 'n=5'])
    assert parse_options(args) == {'lr': 0.001, 'family': 'cnn', 'n': 5}


def test_reading_a_config_that_is_not_a_mapping_is_named(tmp_path):
    from plugins.errors import ConfigError
    for text, message in (('', 'got empty'), ('- a\n', 'got a list'), ('a: [1\n', 'not valid YAML')):
        path = tmp_path / 'c.yaml'
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            read_structure(str(path))
