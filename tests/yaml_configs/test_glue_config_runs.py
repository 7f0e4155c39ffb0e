"""Every GLUE config trains: one short real run each, on tiny local models and official-layout TSVs."""
import os
import sys

import pytest
import torch

from plugins.runner import build_model, load_config, run_config

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for glue_fixtures
from glue_fixtures import make_family, write_glue_tsvs  # noqa: E402
from test_glue_configs import CONFIGS, REPO, parts  # noqa: E402

ANNEALING_KWARGS = 'train.stage1.criterion.kwargs.sub_terms.annealing_kd.criterion.kwargs'
CONTINUATION_KWARGS = 'train.criterion.kwargs.sub_terms.continuation_kd.criterion.kwargs'


@pytest.fixture(scope='module')
def tiny_glue_models(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_glue_runs'))
    write_glue_tsvs(os.path.join(root, 'data'))
    return {'data': os.path.join(root, 'data'), 'bert': make_family(root, 'bert'),
            'roberta': make_family(root, 'roberta')}


def shortest_run(config):
    """Overrides that keep each stage to one epoch (tau_max 1, so Annealing-KD's Stage I fits in it; for
    Continuation-KD also a fixed psi, as a dynamic psi cannot both start at 0 and reach 1 in one epoch)."""
    if 'stage1' not in config['train']:
        overrides = {'train.num_epochs': 1}
        if 'continuation_kd' in (config['train']['criterion']['kwargs'].get('sub_terms') or {}):
            overrides.update({f'{CONTINUATION_KWARGS}.max_temperature': 1, f'{CONTINUATION_KWARGS}.psi': {'value': 0.5}})
        return overrides
    overrides = {f'train.{stage}.num_epochs': 1 for stage in config['train'] if stage.startswith('stage')}
    overrides[f'{ANNEALING_KWARGS}.max_temperature'] = 1
    return overrides


@pytest.mark.parametrize('relative_path', CONFIGS)
def test_every_glue_config_trains_one_epoch(relative_path, tiny_glue_models, monkeypatch, tmp_path):
    task, method, family, _ = parts(relative_path)
    monkeypatch.setenv('KD_GLUE_DATA', tiny_glue_models['data'])
    for variable, path in tiny_glue_models[family].items():
        monkeypatch.setenv(variable, path)
    path = os.path.join(REPO, 'yaml_configs', relative_path)
    config = load_config(path)
    teacher_ckpt = None
    if 'teacher_model' in config['models']:  # an untrained teacher of the right architecture and head (a .pt file)
        torch.manual_seed(0)
        teacher_ckpt = str(tmp_path / 'teacher.pt')
        torch.save({'model': build_model(config['models']['teacher_model'], torch.device('cpu')).state_dict()},
                   teacher_ckpt)
    result = run_config(path, output_dir=str(tmp_path / 'run'), teacher_ckpt=teacher_ckpt,
                        overrides=shortest_run(config), show_progress=False)
    assert result['epochs'] == (2 if method == 'annealing_kd' else 1)
    assert result['metric'] == {'cola': 'matthews_corr', 'stsb': 'pearson'}.get(task, result['metric'])
    assert set(result['extra_tests']) == ({'mismatched'} if task == 'mnli' else set())
    assert os.path.isfile(tmp_path / 'run' / 'student_best.pt')
    assert result['student_params'] <= (result['teacher_params'] or float('inf'))  # 1-layer student; 1 or 2 layers
