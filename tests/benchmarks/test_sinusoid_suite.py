"""The toy-example suite through the harness: KD and Annealing-KD on the sinusoid, snapshots and the figure."""
import json
import os

import pytest
import torch

from benchmarks.harness import HarnessError, _exclusive, run_suite
from benchmarks.snapshots import SNAPSHOT_FILE
from benchmarks.suites import build_suite

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_sinusoid_quick_suite_draws_the_figure_from_stage1_snapshots(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    suite = build_suite('sinusoid', quick=True)
    records = run_suite(suite, str(tmp_path), methods=['kd', 'annealing_kd'], log=lambda message: None)
    by_method = {r['method']: r for r in records}
    assert set(by_method) == {'teacher', 'kd', 'annealing_kd'}
    assert {r['metric'] for r in records} == {'mse'} and not records[0]['higher_is_better']
    assert by_method['annealing_kd']['epoch_split'] == '13+7'  # 20 epochs in the config's 200:100 proportion
    # The reported test MSE is the error to f on the test grid: recompute it from the saved student.
    from benchmarks.sinusoid_figure import _model
    from plugins.datasets.sinusoid import sinusoid_function
    weights = torch.load(os.path.join(tmp_path, by_method['kd']['run_dir'], 'student_best.pt'), weights_only=False)
    student = _model('yaml_configs/sinusoid/kd/mlp10_from_mlp100.yaml', 'student_model', weights['model'])
    x = torch.linspace(0, 1, 500)
    with torch.no_grad():
        error = torch.mean((student(x.unsqueeze(1)).squeeze(1) - sinusoid_function(x)) ** 2).item()
    assert by_method['kd']['test']['mse'] == pytest.approx(error, rel=1e-4)
    # One snapshot per temperature level of Stage I, T = 10 .. 1, each the last epoch of its level: epoch i of
    # the 13-epoch stage is at level floor(10 i / 13), so level k ends at epoch ceil(13 (k + 1) / 10) - 1.
    snapshots = torch.load(os.path.join(tmp_path, by_method['annealing_kd']['run_dir'], SNAPSHOT_FILE),
                           weights_only=False)
    assert [entry['schedule']['AnnealingKDLoss']['T'] for entry in snapshots] == list(range(10, 0, -1))
    assert [entry['epoch'] for entry in snapshots] == [1, 2, 3, 5, 6, 7, 9, 10, 11, 12]
    with open(os.path.join(tmp_path, 'figure2.png'), 'rb') as fp:
        assert fp.read(8) == b'\x89PNG\r\n\x1a\n'
    with open(os.path.join(tmp_path, 'summary.csv'), encoding='utf-8') as fp:
        assert 'annealing_kd' in fp.read()
    with open(os.path.join(tmp_path, 'runs.jsonl'), encoding='utf-8') as fp:
        assert len([json.loads(line) for line in fp]) == 3


def test_one_results_directory_serves_one_invocation_at_a_time(tmp_path):
    with _exclusive(str(tmp_path)):
        with pytest.raises(HarnessError, match='in use by another benchmark run'):
            with _exclusive(str(tmp_path)):
                pass
    with _exclusive(str(tmp_path)):  # released when the holder finished
        pass
