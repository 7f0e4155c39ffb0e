"""The text script's schema under our runner: adapted configs, losses as published with the labels inside the batch,
save_pretrained checkpoints, and errors that name the field."""
import copy
import os
import re
import sys

import pytest
import torch
import torch.nn.functional as F
from torchdistill.core.distillation import get_distillation_box
from torchdistill.core.training import get_training_box
from torchdistill.losses.mid_level import KDLoss

from plugins.checkpoint import checkpoint_exists, load_checkpoint
from plugins.errors import CheckpointError, ConfigError
from plugins.glue.text_schema import adapt_text_schema, extract_hf_model_loss
from plugins.runner import build_model, load_config, run_config

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(TESTS)  # for glue_fixtures
from glue_fixtures import make_classifier_folder, make_family, write_glue_tsvs  # noqa: E402

REPO = os.path.dirname(TESTS)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('text_schema'))
    write_glue_tsvs(os.path.join(root, 'data'), tasks=('rte', 'stsb'))
    return {'data': os.path.join(root, 'data'), 'root': root, 'roberta': make_family(root, 'roberta'),
            'bert': make_family(root, 'bert')}


@pytest.fixture
def roberta(tiny, monkeypatch):
    monkeypatch.setenv('KD_GLUE_DATA', tiny['data'])
    for variable, path in tiny['roberta'].items():
        monkeypatch.setenv(variable, path)
    return tiny['roberta']


def config_file(relative_path):
    return os.path.join(REPO, 'yaml_configs', 'glue', relative_path)


def first_batch_losses(config, teacher_ckpt=None, epoch=0):
    """(the box's loss on the first training batch, called as the text script calls it, student outputs, teacher
    outputs, labels), both models in eval mode (no dropout) so that the outputs can be recomputed."""
    torch.manual_seed(0)  # the student's fresh head, the sampler's order
    student = build_model(config['models']['student_model'], 'cpu').eval()
    teacher = build_model(config['models']['teacher_model'], 'cpu', ckpt=teacher_ckpt).eval()
    box = get_distillation_box(teacher, student, config['datasets'], copy.deepcopy(config['train']),
                               torch.device('cpu'), None, False, 1)
    box.pre_epoch_process(epoch=epoch)
    student.eval()  # the pre-epoch process put it in training mode
    batch = next(iter(box.train_data_loader))
    loss = box.forward_process(batch, targets=None, supp_dict=None)
    inputs = {key: value for key, value in batch.items() if key != 'labels'}
    with torch.no_grad():
        return loss, student(**inputs).logits, teacher(**inputs).logits, batch['labels'], box


@pytest.fixture
def rte_teacher(roberta, tmp_path):
    return make_classifier_folder(str(tmp_path / 'teacher'), roberta['KD_GLUE_TEACHER'], 2, seed=1)


def test_vanilla_kd_is_torchdistills_kd_loss_with_alpha_on_the_models_own_cross_entropy(rte_teacher):
    config = load_config(config_file('rte/kd/distilroberta_base_from_roberta_large.yaml'))
    loss, student, teacher, labels, _ = first_batch_losses(config, rte_teacher)
    expected = KDLoss('.', 'output', '.', 'output', temperature=1.0, alpha=0.5)(
        {'.': {'output': student}}, {'.': {'output': teacher}}, labels)  # the published KD, labels given
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    by_hand = 0.5 * F.cross_entropy(student, labels) + 0.5 * F.kl_div(
        F.log_softmax(student, dim=1), F.softmax(teacher, dim=1), reduction='batchmean')
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_continuation_kd_weighs_the_models_own_cross_entropy_by_psi(rte_teacher):
    config = load_config(config_file('rte/continuation_kd/distilroberta_base_from_roberta_large.yaml'))
    kwargs = config['train']['criterion']['kwargs']['sub_terms']['continuation_kd']['criterion']['kwargs']
    assert kwargs['margin'] == 1.0
    kwargs['margin'] = 0.0  # test only: the tiny models' logits differ by ~1e-4, under the margin (the margin's
    # branch is tested on hand values in tests/continuation/test_hinge.py)
    epoch = 10  # of 30: T = 10 - floor(10 x 10 / 30) = 7, phi = 1 - 6 / 10 = 0.4, psi = 10 / 40 (Eq. 8)
    loss, student, teacher, labels, box = first_batch_losses(config, rte_teacher, epoch)
    (term, _), = box.criterion.term_dict.values()
    assert term.state() == pytest.approx({'T': 7, 'phi': 0.4, 'psi': 0.25})
    distance = ((student - 0.4 * teacher) ** 2).mean(dim=1)
    hinge = distance.mean()  # max(0, d - m phi) with m = 0
    assert 0.75 * hinge.item() > 1e-5 * loss.item()  # the distance term shows at the tolerance below
    expected = 0.25 * F.cross_entropy(student, labels) + 0.75 * hinge
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_annealing_kd_stage1_matches_annealed_logits_and_stage2_is_the_cross_entropy(rte_teacher):
    config = load_config(config_file('rte/annealing_kd/distilroberta_base_from_roberta_large.yaml'))
    loss, student, teacher, labels, box = first_batch_losses(config, rte_teacher, epoch=0)  # T = 7: Phi = 1 / 7
    assert loss.item() == pytest.approx(F.mse_loss(student, teacher / 7).item(), rel=1e-5)
    box.stage_number, box.stage_end_epoch = 1, 14
    box.advance_to_next_stage()
    box.pre_epoch_process(epoch=14)
    box.student_model.eval()
    batch = next(iter(box.train_data_loader))
    stage2 = box.forward_process(batch, targets=None, supp_dict=None)
    with torch.no_grad():
        logits = box.student_model(**{key: value for key, value in batch.items() if key != 'labels'}).logits
    assert stage2.item() == pytest.approx(F.cross_entropy(logits, batch['labels']).item(), rel=1e-5)


def test_regression_kd_mixes_the_teachers_output_and_the_score(tiny, monkeypatch, tmp_path):
    monkeypatch.setenv('KD_GLUE_DATA', tiny['data'])
    for variable, path in tiny['bert'].items():
        monkeypatch.setenv(variable, path)
    teacher = make_classifier_folder(str(tmp_path / 'teacher'), tiny['bert']['KD_GLUE_TEACHER'], 1, seed=1)
    config = load_config(config_file('stsb/kd/bert_small_from_bert_large.yaml'))
    loss, student, teacher_out, labels, _ = first_batch_losses(config, teacher)
    assert labels.dtype == torch.float32 and student.shape == (len(labels), 1)
    expected = 0.5 * F.mse_loss(student, teacher_out) + 0.5 * F.mse_loss(student[:, 0], labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_fine_tuning_is_the_models_own_loss(roberta):
    config = load_config(config_file('rte/ce/distilroberta_base.yaml'))
    student = build_model(config['models']['model'], 'cpu').eval()
    box = get_training_box(student, config['datasets'], copy.deepcopy(config['train']), torch.device('cpu'), None,
                           False, 1)
    batch = next(iter(box.train_data_loader))
    loss = box.forward_process(batch, targets=None, supp_dict=None)
    with torch.no_grad():
        logits = student(**{key: value for key, value in batch.items() if key != 'labels'}).logits
    assert loss.item() == pytest.approx(F.cross_entropy(logits, batch['labels']).item(), rel=1e-5)
    with pytest.raises(ValueError, match='the student output has no .loss; its batch must hold the labels'):
        extract_hf_model_loss(student(**{key: value for key, value in batch.items() if key != 'labels'}), None)


def test_save_pretrained_folders_are_checkpoints(rte_teacher, tmp_path):
    from transformers import AutoModelForSequenceClassification

    reference = AutoModelForSequenceClassification.from_pretrained(rte_teacher).state_dict()
    loaded = load_checkpoint(rte_teacher, 'teacher')
    assert loaded.keys() == reference.keys() and all(torch.equal(loaded[key], reference[key]) for key in loaded)
    assert checkpoint_exists(rte_teacher) and not checkpoint_exists(str(tmp_path))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(CheckpointError, match="teacher: .*empty' is not a file, nor a Hugging Face save_pretrained "
                                              'folder .*: it has no model.safetensors or pytorch_model.bin'):
        load_checkpoint(str(tmp_path / 'empty'), 'teacher')
    (tmp_path / 'torn').mkdir()
    (tmp_path / 'torn' / 'model.safetensors').write_bytes(open(os.path.join(rte_teacher, 'model.safetensors'),
                                                                'rb').read()[:100])
    with pytest.raises(CheckpointError, match='is not a complete safetensors file'):
        load_checkpoint(str(tmp_path / 'torn'), 'teacher')


def test_the_runner_takes_a_teacher_folder_and_refuses_a_missing_one(rte_teacher, roberta, tmp_path):
    path = config_file('rte/kd/distilroberta_base_from_roberta_large.yaml')
    result = run_config(path, output_dir=str(tmp_path / 'run'), teacher_ckpt=rte_teacher,
                        overrides={'train.num_epochs': 1}, show_progress=False)
    assert result['teacher_params'] == sum(tensor.numel() for tensor in load_checkpoint(rte_teacher).values())
    with pytest.raises(ConfigError, match="models.teacher_model.src_ckpt: no file at './runs/glue/rte/ce/roberta_large/"
                                          "student_best'"):
        run_config(path, output_dir=str(tmp_path / 'run2'), overrides={'train.num_epochs': 1}, show_progress=False)


def schema_error(edit):
    """The ConfigError of adapting the RTE KD config once ``edit`` changed it (loaded as the text script loads it)."""
    from torchdistill.common import yaml_util
    raw = yaml_util.load_yaml_file(config_file('rte/kd/distilroberta_base_from_roberta_large.yaml'))
    edit(raw)
    with pytest.raises(ConfigError) as error:
        adapt_text_schema(raw)
    return str(error.value)


@pytest.mark.parametrize('edit, message', [
    (lambda c: c['preprocess'].pop('max_length'), r"preprocess: missing \['max_length'\], unknown \[\]"),
    (lambda c: c['preprocess'].update(padding=True), r"unknown \['padding'\]; accepted: \['text_keys'"),
    (lambda c: c['preprocess'].update(label_key='label'), 'preprocess.label_key must name columns'),
    (lambda c: c['preprocess'].update(text_keys=['premise']), r"preprocess.text_keys must name columns of the "
                                                              r"datasets \['sentence1', 'sentence2', 'label_name'\]"),
    (lambda c: c['preprocess']['dataset_id_map'].update({'rte/extra': 'dev'}), 'preprocess.dataset_id_map must map'),
    (lambda c: c['models']['student_model'].pop('tokenizer_kwargs'),
     'models.student_model.tokenizer_kwargs must be a mapping with pretrained_model_name_or_path'),
    (lambda c: c['models']['teacher_model']['config_kwargs'].update(finetuning_task='rte'),
     'models.teacher_model.config_kwargs.finetuning_task: the text script passes its --task_name'),
    (lambda c: c['evaluate'].update(main_metric='f1'),
     "evaluate.main_metric must be 'accuracy', the primary figure of evaluation.metric 'accuracy'"),
    (lambda c: c['evaluate']['metrics']['accuracy'].update(argmax=True), 'evaluate.metrics.accuracy.argmax must be'),
    (lambda c: c.update(metrics={}), r"metrics must hold plugins.glue.metrics.EvaluateMetric\('accuracy'\)"),
    (lambda c: c.update(datasets={'rte/train': [1, 2]}), 'datasets must be a datasets.DatasetDict of raw texts'),
])
def test_schema_errors_name_the_field(roberta, edit, message):
    assert re.search(message, schema_error(edit))


def test_other_configs_pass_unchanged():
    config = {'datasets': {}, 'models': {}, 'train': {}, 'test': {}}
    assert adapt_text_schema(config) is config


def test_the_teacher_cache_is_refused_by_name_for_batches_without_supp_dict(rte_teacher, tmp_path):
    path = config_file('rte/continuation_kd/distilroberta_base_from_roberta_large.yaml')
    with pytest.raises(ConfigError, match='train.train_data_loader.requires_supp is false .*'
                                          'set teacher_cache.mode: off'):
        run_config(path, output_dir=str(tmp_path / 'run'), teacher_ckpt=rte_teacher,
                   overrides={'teacher_cache.mode': 'memory'}, show_progress=False)
