"""GLUE data, tokenisation, models and schedule on official-layout TSVs and tiny local checkpoints (offline)."""
import os
import sys

import numpy as np
import pytest
import torch

from plugins.glue import names
from plugins.glue.data import ScoreLabels, glue_dataset_dict, load_examples, read_glue_tsv, train_val_indices
from plugins.glue.families import FAMILIES
from plugins.glue.models import hf_text_classifier
from plugins.glue.schedulers import linear_warmup_schedule
from plugins.glue.tasks import GLUE_TASKS, get_task
from plugins.glue.text_schema import preprocess_text_datasets

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for glue_fixtures
from glue_fixtures import HF_LABELS, TASK_DIRS, make_bert_tokenizer, make_encoder, make_roberta_tokenizer, \
    write_glue_tsvs, write_task_tsvs  # noqa: E402


@pytest.fixture(scope='module')
def glue_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('glue_data'))
    return root, write_glue_tsvs(root)


@pytest.fixture(scope='module')
def tokenizers(tmp_path_factory):
    root = tmp_path_factory.mktemp('glue_tokenizers')
    return {'bert': make_bert_tokenizer(str(root / 'bert')), 'roberta': make_roberta_tokenizer(str(root / 'roberta'))}


def test_task_metadata_matches_the_hugging_face_label_order():
    assert sorted(GLUE_TASKS) == sorted(TASK_DIRS)
    for task, labels in HF_LABELS.items():
        assert list(GLUE_TASKS[task].label_names) == labels
        assert GLUE_TASKS[task].num_labels == len(labels)
    assert GLUE_TASKS['stsb'].is_regression and GLUE_TASKS['stsb'].num_labels == 1
    assert GLUE_TASKS['mnli'].test_splits == ('test', 'test_mismatched')
    assert get_task('SST-2') is GLUE_TASKS['sst2'] and get_task('STS-B') is GLUE_TASKS['stsb']
    assert GLUE_TASKS['wnli'].label2id == {'not_entailment': 0, 'entailment': 1}
    assert GLUE_TASKS['stsb'].label2id is None and GLUE_TASKS['stsb'].label_column == 'score'
    assert GLUE_TASKS['rte'].label_column == 'label_name'
    with pytest.raises(ValueError, match="task must be one of .*'wnli'.*got 'squad'"):
        get_task('squad')


def test_every_official_tsv_layout_reads_back_what_was_written(glue_root):
    root, written = glue_root
    for task, files in written.items():
        dev_files = dict((tsv, hf) for hf, tsv in GLUE_TASKS[task].dev_splits.values())
        for file_name, examples in files.items():
            source_split = 'train' if file_name == 'train.tsv' else dev_files[file_name]
            texts, labels = load_examples(task, source_split, root, None)
            expected_texts = [tuple(column) for column in zip(*[texts_ for texts_, _ in examples])]
            assert texts == tuple(expected_texts), (task, file_name)
            expected = [label for _, label in examples]
            if task == 'stsb':
                assert np.allclose(labels, expected), file_name
            else:
                assert list(labels) == expected, (task, file_name)
    # CoLA's headerless file keeps its first row; a quote stays literal; MRPC's byte-order mark is not a column.
    texts, _ = load_examples('cola', 'train', root, None)
    assert len(texts[0]) == len(written['cola']['train.tsv']) and texts[0][1].startswith('the "')
    assert len(load_examples('mrpc', 'train', root, None)[1]) == len(written['mrpc']['train.tsv'])
    # MNLI: the mismatched dev file is a different split; its label is gold_label, not label1.
    assert load_examples('mnli', 'validation_mismatched', root, None) != \
        load_examples('mnli', 'validation_matched', root, None)


def test_a_task_folder_itself_is_accepted_as_data_root(glue_root):
    root, written = glue_root
    texts, labels = load_examples('rte', 'train', os.path.join(root, 'RTE'), None)
    assert list(labels) == [label for _, label in written['rte']['train.tsv']]


def test_train_and_val_are_a_fixed_stratified_partition_of_the_official_training_set(glue_root):
    root, written = glue_root
    texts, labels = load_examples('qnli', 'train', root, None)
    train, val = train_val_indices(labels, 0.25, split_seed=0)
    assert len(val) == 10 and sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert np.bincount(np.asarray(labels)[val]).tolist() == [5, 5]  # 20 / 20 classes -> 5 / 5 held out
    torch.manual_seed(123)  # the training seed does not move the split
    again, _ = train_val_indices(labels, 0.25, split_seed=0)
    assert np.array_equal(train, again)
    assert not np.array_equal(train_val_indices(labels, 0.25, split_seed=1)[1], val)
    splits = glue_dataset_dict('qnli', data_root=root, val_fraction=0.25)
    assert sorted(splits) == ['test', 'train', 'val']
    assert (len(splits['train']), len(splits['val']), len(splits['test'])) == (30, 10, len(written['qnli']['dev.tsv']))
    assert splits['train'].column_names == ['question', 'sentence', 'label_name']
    names_ = HF_LABELS['qnli']
    held_out = list(splits['train']['label_name']) + list(splits['val']['label_name'])
    assert sorted(held_out) == sorted(names_[i] for i in labels)
    assert list(splits['val']['question']) == [texts[0][i] for i in val]  # the held-out examples, in the split's order
    assert list(splits['test']['label_name']) == [names_[label] for _, label in written['qnli']['dev.tsv']]
    assert glue_dataset_dict('qnli', data_root=root, val_fraction=0.25) is not splits  # a new dict: the script renames
    mnli = glue_dataset_dict('mnli', data_root=root)
    assert sorted(mnli) == ['test', 'test_mismatched', 'train', 'val'] and mnli['test'].column_names == [
        'premise', 'hypothesis', 'label_name']


def preprocess_settings(task, max_length=128):
    glue_task = GLUE_TASKS[task]
    splits = ['train', 'val', 'test']
    return dict(text_keys=list(glue_task.text_columns), label_key=glue_task.label_column,
                label2id=ScoreLabels() if glue_task.is_regression else glue_task.label2id, pad_to_max_length=False,
                max_length=max_length, base_split_name='train', batched=True,
                dataset_id_map={f'{task}/{split}': split for split in splits})


@pytest.mark.parametrize('family', ['bert', 'roberta'])
def test_samples_are_the_tokenizer_outputs_and_the_collator_pads_them(glue_root, tokenizers, family):
    from transformers import AutoTokenizer, DataCollatorWithPadding

    root, written = glue_root
    tokenizer = AutoTokenizer.from_pretrained(tokenizers[family])
    datasets = preprocess_text_datasets(glue_dataset_dict('mrpc', data_root=root), tokenizer,
                                        **preprocess_settings('mrpc'))
    dataset = datasets['mrpc/test']
    examples = written['mrpc']['dev.tsv']
    for index in (0, 5):
        (sentence1, sentence2), label = examples[index]
        expected = tokenizer(sentence1, sentence2, truncation=True, max_length=128)
        assert dataset[index] == dict(expected, label=label)  # the tokenizer's outputs and the class index
    assert ('token_type_ids' in dataset.column_names) == (family == 'bert')  # RoBERTa has no segment ids
    samples = [dataset[0], dataset[1], dataset[2]]
    lengths = [len(sample['input_ids']) for sample in samples]
    batch = DataCollatorWithPadding(tokenizer)(samples)
    assert batch['input_ids'].shape == (3, max(lengths)) and batch['labels'].tolist() == [0, 1, 0]
    assert batch['labels'].dtype == torch.long
    for row, length in enumerate(lengths):
        assert batch['input_ids'][row, :length].tolist() == samples[row]['input_ids']
        assert set(batch['input_ids'][row, length:].tolist()) <= {tokenizer.pad_token_id}
        assert batch['attention_mask'][row].tolist() == [1] * length + [0] * (max(lengths) - length)
    assert tokenizer.pad_token_id == (0 if family == 'bert' else 1)


def test_regression_labels_stay_scores_and_max_length_truncates(glue_root, tokenizers):
    from transformers import AutoTokenizer, DataCollatorWithPadding

    root, written = glue_root
    tokenizer = AutoTokenizer.from_pretrained(tokenizers['bert'])
    datasets = preprocess_text_datasets(glue_dataset_dict('stsb', data_root=root), tokenizer,
                                        **preprocess_settings('stsb', max_length=5))
    batch = DataCollatorWithPadding(tokenizer)([datasets['stsb/test'][i] for i in range(4)])
    assert batch['labels'].dtype == torch.float32 and batch['labels'].shape == (4,)
    assert np.allclose(batch['labels'].numpy(), [score for _, score in written['stsb']['dev.tsv'][:4]])
    assert batch['input_ids'].shape == (4, 5)
    assert ScoreLabels()['3.8'] == 3.8 and ScoreLabels()[str(0.455)] == 0.455


def test_hugging_face_dataset_layout_is_read_with_datasets(tmp_path, monkeypatch):
    import datasets
    import pandas as pd

    monkeypatch.setattr(datasets.config, 'HF_DATASETS_CACHE', str(tmp_path / 'cache'))
    repo = tmp_path / 'glue_repo'  # the layout of the hub's nyu-mll/glue: <config>/<split>-*.parquet
    (repo / 'mnli').mkdir(parents=True)
    splits = {'train': (['a cat sat', 'the dog ran'], ['it sat', 'he ran'], [0, 2]),
              'validation_matched': (['a man'], ['he'], [1]), 'validation_mismatched': (['a woman'], ['she'], [2])}
    for split, (premises, hypotheses, labels) in splits.items():
        pd.DataFrame({'premise': premises, 'hypothesis': hypotheses, 'label': labels, 'idx': range(len(labels))}) \
            .to_parquet(repo / 'mnli' / f'{split}-00000-of-00001.parquet')
    (repo / 'README.md').write_text('---\nconfigs:\n- config_name: mnli\n  data_files:\n' + ''.join(
        f'  - split: {split}\n    path: mnli/{split}-*\n' for split in splits) + '---\n')
    for split, (premises, hypotheses, labels) in splits.items():
        assert load_examples('mnli', split, None, str(repo)) == ((tuple(premises), tuple(hypotheses)), tuple(labels))


def test_bad_files_and_arguments_fail_with_the_field_named(tmp_path, glue_root):
    root, _ = glue_root
    with pytest.raises(FileNotFoundError, match='no GLUE file'):
        read_glue_tsv(str(tmp_path / 'missing.tsv'), 'rte')
    bad = tmp_path / 'RTE'
    bad.mkdir()
    (bad / 'train.tsv').write_text('index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n')
    with pytest.raises(ValueError, match=r"columns \['sentence1', 'sentence2'\] missing"):
        read_glue_tsv(str(bad / 'train.tsv'), 'rte')
    (bad / 'train.tsv').write_text('index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailed\n')
    with pytest.raises(ValueError, match=r"train.tsv:2: label 'entailed' is not one of \['entailment', "):
        read_glue_tsv(str(bad / 'train.tsv'), 'rte')
    with pytest.raises(ValueError, match='val_fraction must be a number in'):
        glue_dataset_dict('rte', data_root=root, val_fraction=1.5)
    with pytest.raises(ValueError, match='split_seed must be an integer >= 0'):
        glue_dataset_dict('rte', data_root=root, split_seed=-1)
    with pytest.raises(ValueError, match="task must be one of .*got 'squad'"):
        glue_dataset_dict('squad', data_root=root)
    with pytest.raises(ValueError, match="family must be one of \\['bert', 'roberta'\\]"):
        names.resolve_tokenizer('gpt')


def test_names_follow_argument_then_environment_then_the_paper(monkeypatch):
    for variable in names.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    assert names.resolve_model('teacher', 'roberta') == 'FacebookAI/roberta-large' == FAMILIES['roberta'][
        'teacher'].hub_id
    assert names.resolve_model('student', 'bert') == 'google/bert_uncased_L-4_H-512_A-8'
    assert names.resolve_tokenizer('roberta') == 'distilbert/distilroberta-base'
    assert names.resolve_data_root() is None and names.resolve_hf_dataset() == 'nyu-mll/glue'
    monkeypatch.setenv('KD_GLUE_TA', '/models/ta')
    monkeypatch.setenv('KD_GLUE_STUDENT', '/models/student')
    monkeypatch.setenv('KD_GLUE_DATA', '/data/glue')
    assert names.resolve_model('ta', 'bert') == '/models/ta'
    assert names.resolve_model('ta', 'bert', name_or_path='/explicit') == '/explicit'
    assert names.resolve_tokenizer('bert') == '/models/student'
    monkeypatch.setenv('KD_GLUE_TOKENIZER', '/models/tokenizer')
    assert names.resolve_tokenizer('bert') == '/models/tokenizer'
    assert names.resolve_data_root() == '/data/glue'
    with pytest.raises(ValueError, match="role must be one of \\['teacher', 'ta', 'student'\\]"):
        names.resolve_model('assistant')


@pytest.mark.parametrize('model_type', ['bert', 'roberta'])
def test_model_is_built_as_the_text_script_builds_it(tmp_path, tokenizers, model_type):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    family = 'bert' if model_type == 'bert' else 'roberta'
    checkpoint = make_encoder(str(tmp_path / model_type), model_type, tokenizers[family])
    config_kwargs = {'pretrained_model_name_or_path': checkpoint, 'num_labels': 3}
    torch.manual_seed(0)
    model = hf_text_classifier(config_kwargs, {'pretrained_model_name_or_path': checkpoint}).eval()
    assert model.config.num_labels == 3
    torch.manual_seed(0)  # the same fresh classifier head
    reference = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, config=AutoConfig.from_pretrained(checkpoint, num_labels=3)).eval()
    batch = dict(AutoTokenizer.from_pretrained(tokenizers[family])(['the good movie', 'a bad dog sat'],
                                                                   padding=True, return_tensors='pt'))
    with torch.no_grad():
        output = model(**batch, labels=torch.tensor([0, 2]))
        assert output.logits.shape == (2, 3) and torch.equal(output.logits, reference(**batch).logits)
        assert output.loss == pytest.approx(torch.nn.functional.cross_entropy(output.logits, torch.tensor([0, 2])))
    encoder = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=3)
    untrained = hf_text_classifier(config_kwargs, from_config=True)  # no pretrained weights: a checkpoint follows
    assert untrained.config.num_labels == 3
    assert not torch.equal(untrained.state_dict()[next(iter(encoder.state_dict()))],
                           encoder.state_dict()[next(iter(encoder.state_dict()))])
    with pytest.raises(ValueError, match='config_kwargs must be a mapping with pretrained_model_name_or_path'):
        hf_text_classifier({'num_labels': 2}, {'pretrained_model_name_or_path': checkpoint})
    with pytest.raises(ValueError, match='model_kwargs must be a mapping with pretrained_model_name_or_path'):
        hf_text_classifier(config_kwargs)


def test_linear_warmup_schedule_matches_the_hand_computed_rates():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = linear_warmup_schedule(optimizer, num_training_steps=10, warmup_ratio=0.2)  # 2 warm-up steps
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    rates.append(optimizer.param_groups[0]['lr'])
    # up: step / 2 for steps 0, 1; down: (10 - step) / 8 from step 2 to 10
    assert np.allclose(rates, [0.0, 0.5] + [(10 - step) / 8 for step in range(2, 11)])
    with pytest.raises(ValueError, match='num_training_steps must be an integer >= 1 .*got None'):
        linear_warmup_schedule(optimizer, num_training_steps=None)
    with pytest.raises(ValueError, match='warmup_ratio must be a number in'):
        linear_warmup_schedule(optimizer, num_training_steps=10, warmup_ratio=1.0)


def test_write_task_tsvs_is_deterministic(tmp_path):
    assert write_task_tsvs(str(tmp_path / 'a'), 'wnli') == write_task_tsvs(str(tmp_path / 'b'), 'wnli')
