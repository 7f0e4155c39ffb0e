"""benchmarks/perf.py --quick: runs end to end and writes well-formed JSON (no timing assertions: they flake)."""
import json
import math
import statistics

import pytest
import torch

from benchmarks import perf

STEP_RATIOS = ['AnnealingKDLoss / KDLoss step', 'ContinuationKDLoss / KDLoss step', 'Stage II released / default step',
               'AnnealingKDLoss / KDLoss loss only', 'ContinuationKDLoss / KDLoss loss only']
EPOCH_RATIOS = ['cached (memory) / student only', 'cached (disk) / student only',
                'teacher every step / cached (memory)', 'teacher every step / student only']


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp('perf')
    threads = torch.get_num_threads()
    result = perf.main(['--quick', '--output', str(directory / 'perf.json')])
    assert torch.get_num_threads() == threads  # the benchmark restores the thread count it changed
    return directory, result


def test_quick_run_writes_the_returned_result_as_json(quick_run, capsys):
    directory, result = quick_run
    assert [path.name for path in directory.iterdir()] == ['perf.json']  # written atomically, no leftovers
    data = json.loads((directory / 'perf.json').read_text())
    assert data == json.loads(json.dumps(result))
    settings = data['settings']
    assert settings['quick'] is True and settings['threads'] == 1 and settings['batch_size'] == 4
    assert (settings['teacher'], settings['student'], settings['epoch_samples']) == ('resnet110', 'resnet8', 8)


def test_ratios_are_positive_and_recomputable_from_the_stored_samples(quick_run):
    data = json.loads((quick_run[0] / 'perf.json').read_text())
    for clock in ('wall', 'cpu'):
        ratios = data['ratios'][clock]
        assert sorted(ratios) == sorted(STEP_RATIOS + EPOCH_RATIOS)
        assert all(math.isfinite(value) and value > 0 for value in ratios.values())
        step = data['step']['step'][clock]
        expected = statistics.median(a / b for a, b in zip(step['AnnealingKDLoss']['samples_s'],
                                                           step['KDLoss']['samples_s']))
        assert ratios['AnnealingKDLoss / KDLoss step'] == pytest.approx(expected)
        epoch = data['stage1_epoch']['epoch'][clock]
        expected = statistics.median(a / b for a, b in zip(epoch['cached (memory)']['samples_s'],
                                                           epoch['student only']['samples_s']))
        assert ratios['cached (memory) / student only'] == pytest.approx(expected)
        met = data['targets']['met'][clock]
        assert met['step'] == all(ratios[name] <= 1.03 for name in STEP_RATIOS[:2])
        assert met['epoch'] == (ratios['cached (memory) / student only'] <= 1.15)


def test_cached_epochs_never_call_the_teacher(quick_run):
    data = json.loads((quick_run[0] / 'perf.json').read_text())
    assert data['stage1_epoch']['teacher_calls_after_filling'] == {'cached (memory)': 0, 'cached (disk)': 0}
    fill = data['stage1_epoch']['fill_epoch_s']
    assert all(set(fill[clock]) == {'cached (memory)', 'cached (disk)'} for clock in ('wall', 'cpu'))


def test_table_names_every_ratio(quick_run):
    table = perf.format_table(quick_run[1])
    assert all(name in table for name in STEP_RATIOS + EPOCH_RATIOS)
    assert 'torch.set_num_threads(1)' in table


@pytest.mark.parametrize('argv, message', [(['--batch-size', '0'], '--batch-size must be >= 1'),
                                           (['--device', 'tpu'], "--device must be 'cpu', 'cuda' or 'cuda:N'")])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        perf.get_args(argv)
    assert message in capsys.readouterr().err


def test_runner_section_compares_the_runner_with_the_plain_loop_before_and_after(quick_run):
    data = json.loads((quick_run[0] / 'perf.json').read_text())
    section = data['runner_vs_plain']
    names = [f'{method}: {variant}' for method in ('scratch', 'kd') for variant in perf.RUNNER_VARIANTS]
    assert sorted(section['run']['cpu']) == sorted(names) and section['epochs'] == 2
    for clock in ('wall', 'cpu'):
        run = section['run'][clock]
        expected = statistics.median(a / b for a, b in zip(run['kd: runner']['samples_s'],
                                                           run['kd: plain loop']['samples_s']))
        assert section['ratios'][clock]['kd: runner / plain loop'] == pytest.approx(expected)
        assert data['targets']['met'][clock]['runner'] == all(
            section['ratios'][clock][f'{m}: runner / plain loop'] <= 1.5 for m in ('scratch', 'kd'))
    assert len(section['accuracy']) == 6
    assert all(0.0 <= value['test'] <= 100.0 for value in section['accuracy'].values())
    profile = section['profile_kd_runner_s']
    assert profile['total'] > 0 and all(0 <= v <= profile['total'] * 1.01 for v in profile.values())
    assert profile['forward: teacher, student, loss (torchdistill forward_process)'] > 0 and section['import_s'] > 0
    assert 'runner / plain loop' in perf.format_table(quick_run[1])


def test_plain_loop_kd_loss_is_torchdistills_kd_loss():
    from torchdistill.losses.mid_level import KDLoss

    from benchmarks.runner_overhead import _kd_loss
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 10, generator=generator), torch.randn(8, 10, generator=generator)
    targets = torch.randint(0, 10, (8,), generator=generator)
    reference = KDLoss(student_module_path='.', student_module_io='output', teacher_module_path='.',
                       teacher_module_io='output', temperature=4.0, alpha=0.5, reduction='batchmean')
    expected = reference({'.': {'output': student}}, {'.': {'output': teacher}}, targets)
    assert _kd_loss(student, teacher, targets, 4.0, 0.5).item() == pytest.approx(expected.item(), rel=1e-6)


def test_bad_sections_are_named(capsys):
    with pytest.raises(SystemExit):
        perf.get_args(['--sections', 'resnet,gpu'])
    assert "--sections must name some of ['resnet', 'runner'], got ['gpu']" in capsys.readouterr().err
