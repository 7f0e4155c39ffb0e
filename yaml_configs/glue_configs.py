"""Writes the GLUE configs: ``python yaml_configs/glue_configs.py`` (then commit the YAMLs).

Layout (torchdistill's sample layout): ``yaml_configs/glue/<task>/<method>/<student>_from_<teacher>.yaml``, and
``yaml_configs/glue/<task>/ce/<model>.yaml`` for fine-tuning one model alone (teacher, TA, or the student
baseline), for the nine GLUE tasks and the model families of :data:`plugins.glue.families.FAMILIES`.

The configs follow the schema of torchdistill's ``examples/hf_transformers/text_classification.py`` (commit
3e4373c45214c5c56eebac481d5bfe8b8735aa05), so they run under that script and under our runner and harness
(:mod:`plugins.glue.text_schema`). Each is built here as a data structure and dumped under its header comments.
Edit this script rather than the YAMLs, so that every config keeps the same settings; ``--check`` only reports
whether the files on disk are up to date (as the tests do). Base checkpoints, tokenizer and data are chosen at load
time (``KD_GLUE_TEACHER``, ``KD_GLUE_TA``, ``KD_GLUE_STUDENT``, ``KD_GLUE_TOKENIZER``, ``KD_GLUE_DATA``; see
``plugins/glue/names.py``); the only paths in the YAMLs are the checkpoint folders under ``./runs``.
"""
import os
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from continuation.hinge import DEFAULT_MARGIN  # noqa: E402
from continuation.psi import PSI_EQ8  # noqa: E402
from plugins.evaluation import get_metric  # noqa: E402
from plugins.glue.families import FAMILIES  # noqa: E402
from plugins.glue.tasks import GLUE_TASKS  # noqa: E402  (plain metadata; imports no model code)
from yaml_configs.config_generation import Anchor, ImportCall, ImportGet, config_path, dump_config, final_ckpt, \
    sync_configs  # noqa: E402

# Table 7 (both families): batch 32, max length 128, vanilla KD alpha 0.5, gradient clipping 1.
BATCH_SIZE, MAX_LENGTH, KD_ALPHA, MAX_GRAD_NORM = 32, 128, 0.5, 1.0
EVAL_BATCH_SIZE = 128
# Not in the paper: the KD temperature (only alpha is given), the warm-up length (the authors' script
# defaults to no warm-up; 6 % is RoBERTa's GLUE setting), and the fine-tuning epochs of teachers and TAs.
KD_TEMPERATURE = 1.0
WARMUP_RATIO = 0.06
SMALL_TASKS = ('cola', 'mrpc', 'stsb', 'rte', 'wnli')
LR = 2e-5
# Continuation-KD (Jafari et al., EMNLP 2022 Findings), GLUE settings of its Section 5 and Eq. 8.
CKD_EPOCHS, CKD_MAX_TEMPERATURE, CKD_LR, CKD_BATCH_SIZE = 30, 10, 2e-5, 64
CKD_PSI = PSI_EQ8  # Eq. 8: e / 40 for e < 20, then 1, at 30 epochs; any budget >= 3
# The logits as tensors for torchdistill's KDLoss / MSELoss: the output of each model's classifier head, hooked.
HEAD = 'classifier'


def max_temperature(task, family):
    """tau_max: 7 for DistilRoBERTa (Table 8); 7 or 14 by task for BERT-Small (Table 11)."""
    if family == 'roberta':
        return 7
    return 7 if task in ('mrpc', 'sst2', 'qnli', 'wnli') else 14


def annealing_epochs(task, family):
    """(phase 1, phase 2) epochs: 14 + 4 for DistilRoBERTa (Table 8), 2 tau_max + 6 for BERT-Small (Table 11)."""
    if family == 'roberta':
        return 14, 4
    return 2 * max_temperature(task, family), 6


def student_lr(task, family):
    """Table 8: 2e-5; Table 11: 2e-5, except 4e-5 for RTE and MRPC."""
    return 4e-5 if family == 'bert' and task in ('rte', 'mrpc') else LR


def student_epochs(task, family):
    """Every student method gets Annealing-KD's total budget (phase 1 + phase 2), for a fair comparison."""
    return sum(annealing_epochs(task, family))


def finetune_epochs(task):
    """Teacher and TA fine-tuning (not in the paper): 10 epochs on the small tasks, as RoBERTa, else 3."""
    return 10 if task in SMALL_TASKS else 3


def glue_config_path(task, method, student, teacher=None):
    return config_path(os.path.join('glue', task), method, student, teacher)


def model_name(family, role):
    return FAMILIES[family][role].name


def teacher_ckpt(task, family, role):
    """The teacher's (or TA's) checkpoint folder: the dst_ckpt of the config that trains it."""
    if role == 'teacher':
        return final_ckpt(glue_config_path(task, 'ce', model_name(family, 'teacher')), folder=True)
    return final_ckpt(glue_config_path(task, 'kd', model_name(family, 'ta'), model_name(family, 'teacher')),
                      folder=True)


# ----------------------------------------------------------------------------------------------- sections

def preamble(task, family):
    """``dependencies``, ``datasets`` (raw texts) and ``preprocess`` (how the student's tokenizer encodes them)."""
    glue_task = GLUE_TASKS[task]
    label2id = ImportCall('plugins.glue.data.ScoreLabels') if glue_task.is_regression else glue_task.label2id
    splits = ('train', 'val') + glue_task.test_splits
    return {
        'dependencies': [{'name': 'plugins'}],
        'datasets': ImportCall('plugins.glue.data.glue_dataset_dict', task=task, val_fraction=0.1, split_seed=0),
        'preprocess': {'text_keys': list(glue_task.text_columns), 'label_key': glue_task.label_column,
                       'label2id': label2id, 'pad_to_max_length': False, 'max_length': MAX_LENGTH,
                       'base_split_name': 'train', 'batched': True,
                       'dataset_id_map': {f'{task}/{split}': split for split in splits}},
    }


def model_entry(task, family, role, tokenizer, src_ckpt=None, dst_ckpt=None):
    """A model of the text schema. A teacher (``src_ckpt``) has its weights only from its fine-tuned folder, so a
    missing folder stops the text script too; the others start from the pretrained checkpoint of their role."""
    base = ImportCall('plugins.glue.names.resolve_model', role=role, family=family)
    weights = Anchor('teacher_ckpt', src_ckpt) if src_ckpt else Anchor(f'{role}_name', base)
    entry = {'key': model_name(family, role)}
    if src_ckpt:
        entry['src_ckpt'] = weights
    entry.update({'config_kwargs': {'pretrained_model_name_or_path': base if src_ckpt else weights,
                                    'num_labels': GLUE_TASKS[task].num_labels},
                  'tokenizer_kwargs': {'pretrained_model_name_or_path': tokenizer},
                  'model_kwargs': {'pretrained_model_name_or_path': weights}})
    if dst_ckpt:
        entry['dst_ckpt'] = dst_ckpt
    return entry


def models_section(task, family, student_role, dst_ckpt, teacher_role=None):
    tokenizer = Anchor('tokenizer', ImportCall('plugins.glue.names.resolve_tokenizer', family=family))
    if teacher_role is None:
        return {'model': model_entry(task, family, student_role, tokenizer, dst_ckpt=dst_ckpt)}
    return {'teacher_model': model_entry(task, family, teacher_role, tokenizer,
                                         src_ckpt=teacher_ckpt(task, family, teacher_role)),
            'student_model': model_entry(task, family, student_role, tokenizer, dst_ckpt=dst_ckpt)}


def evaluation_sections(task):
    """``metrics`` / ``evaluate`` for the text script and ``evaluation`` for our runner: one metric, one figure."""
    metric = GLUE_TASKS[task].metric
    return {'metrics': {metric: ImportCall('plugins.glue.metrics.EvaluateMetric', metric=metric)},
            'evaluate': {'main_metric': get_metric(metric).primary, 'metrics': {metric: {'argmax': False}}},
            'evaluation': {'metric': metric}}


def loader(task, split, batch_size, shuffle):
    sampler = 'torch.utils.data.RandomSampler' if shuffle else 'torch.utils.data.SequentialSampler'
    return {'dataset_id': f'{task}/{split}', 'sampler': {'class_or_func': ImportGet(sampler), 'kwargs': {}},
            'collate_fn': 'DataCollatorWithPadding', 'requires_supp': False,  # batches: the collator's dicts
            'kwargs': {'batch_size': batch_size, 'num_workers': 0}}


def loaders(task, batch_size=BATCH_SIZE):
    return {'train_data_loader': loader(task, 'train', batch_size, True),
            'val_data_loader': loader(task, 'val', EVAL_BATCH_SIZE, False)}


def models_io(distillation=True, hook_heads=False):
    """How the box runs the models: ``model(**batch)``; ``hook_heads`` keeps the classifier heads' logits."""
    def io(requires_grad):
        entry = {'forward_proc': 'forward_batch_only_as_kwargs'}
        if hook_heads:
            entry['forward_hook'] = {'input': [], 'output': [HEAD]}
        return dict(entry, requires_grad=requires_grad)
    if not distillation:
        return {'model': io(True)}
    return {'teacher': io(False), 'student': io(True)}


def optimization(lr):
    return {'optimizer': {'key': 'AdamW', 'kwargs': {'lr': lr, 'weight_decay': 0.0}, 'max_grad_norm': MAX_GRAD_NORM},
            'scheduler': {'key': 'linear_warmup_schedule',
                          'kwargs': {'num_training_steps': 'stage', 'warmup_ratio': WARMUP_RATIO},
                          'scheduling_step': 1}}


def test_section(task):
    test = {'test_data_loader': loader(task, 'test', EVAL_BATCH_SIZE, False)}
    if task == 'mnli':  # our runner reports it under extra_tests; the text script tests the matched set only
        test['extra_test_data_loaders'] = {'mismatched': loader(task, 'test_mismatched', EVAL_BATCH_SIZE, False)}
    return {'test': test}


# ----------------------------------------------------------------------------------------------- criteria

def criterion(terms=None, model_weight=None):
    """``WeightedSumLoss``: ``terms`` plus ``model_weight`` x the model's own loss (its batch holds the labels)."""
    section = {'key': 'WeightedSumLoss'}
    kwargs = {}
    if model_weight is not None:
        section['func2extract_model_loss'] = 'extract_hf_model_loss'
        kwargs['model_term'] = {'weight': model_weight}
    if terms:
        kwargs['sub_terms'] = terms
    section['kwargs'] = kwargs
    return section


def logits_io(module_path):
    return {'student_module_path': module_path, 'student_module_io': 'output', 'teacher_module_path': module_path,
            'teacher_module_io': 'output'}


def kd_criterion(task):
    """alpha x the model's own loss + (1 - alpha) x T^2 x KDLoss's KL term (KDLoss with alpha 0, which is its KL
    term alone: the text script passes no separate labels); STS-B: alpha x MSE to the teacher's output."""
    if GLUE_TASKS[task].is_regression:
        head = {'module_path': HEAD, 'io': 'output'}
        term = {'criterion': {'key': 'MSELoss', 'kwargs': {'reduction': 'mean'}},
                'criterion_wrapper': {'key': 'SimpleLossWrapper', 'kwargs': {
                    'input': dict(is_from_teacher=False, **head), 'target': dict(is_from_teacher=True, **head)}},
                'weight': KD_ALPHA}
        return criterion({'mse_teacher': term}, model_weight=KD_ALPHA)
    kd = {'key': 'KDLoss', 'kwargs': dict(logits_io(HEAD), temperature=KD_TEMPERATURE, alpha=0.0,
                                          reduction='batchmean')}
    return criterion({'kd': {'criterion': kd, 'weight': (1 - KD_ALPHA) * KD_TEMPERATURE ** 2}},
                     model_weight=KD_ALPHA)


def annealing_criterion(task, family):
    kwargs = dict(logits_io('.'), max_temperature=max_temperature(task, family), annealing='linear', reduction='mean')
    return criterion({'annealing_kd': {'criterion': {'key': 'AnnealingKDLoss', 'kwargs': kwargs}, 'weight': 1.0}})


def continuation_criterion(task):
    kwargs = dict(logits_io('.'), objective='annealed_hinge', max_temperature=CKD_MAX_TEMPERATURE,
                  margin=DEFAULT_MARGIN, distance_reduction='mean', psi=dict(CKD_PSI), anneal_teacher=True,
                  anneal_margin=True, task='regression' if GLUE_TASKS[task].is_regression else 'classification')
    return criterion({'continuation_kd': {'criterion': {'key': 'ContinuationKDLoss', 'kwargs': kwargs},
                                          'weight': 1.0}})


# ----------------------------------------------------------------------------------------------- headers

HEADER = """\
# Generated by yaml_configs/glue_configs.py: edit the script and rerun it rather than editing this file.
# The schema of torchdistill's examples/hf_transformers/text_classification.py: runs under that script and under
# our runner and harness (README: "Using torchdistill's own example scripts").
# Annealing-KD paper, Table 7: batch 32, max length 128, vanilla KD alpha 0.5, gradient clipping 1;
# {family_line}
# AdamW (weight decay 0, the authors' script default) with linear warm-up ({warmup:.0%} of each stage's optimiser
# steps; the paper does not give it) and linear decay to 0 at the end of each stage. num_training_steps 'stage':
# the text script counts them for a stage with its own training loader, our pre-epoch processes for the others.
# Models: architecture and pretrained weights from $KD_GLUE_TEACHER / $KD_GLUE_TA / $KD_GLUE_STUDENT (hub ids or
# local save_pretrained folders), else the paper's:{defaults}.
# A teacher's weights come only from its fine-tuned folder (src_ckpt, the dst_ckpt of its own config): without it
# the run stops before training, under the text script too. The final student is the save_pretrained folder dst_ckpt.
# Tokenizer (shared by teacher and student): $KD_GLUE_TOKENIZER, else the student's.
# Data: $KD_GLUE_DATA (official GLUE TSV folders), else the Hugging Face dataset nyu-mll/glue, as raw texts that
# preprocess tokenises (label2id: the Hugging Face class order). 'test' is the official dev set (GLUE test labels
# are hidden); 'val' (model selection) is 10 % of the official training set, stratified, fixed by split_seed.
# Batches hold their labels, so the model computes its own loss (cross-entropy; MSE for the STS-B regression):
# model_term, read by func2extract_model_loss 'extract_hf_model_loss'. The metric (plugins/glue/metrics.py) takes
# the logits (argmax: false); evaluation.metric is the same metric for our runner.
"""
FAMILY_LINES = {
    'roberta': 'DistilRoBERTa (Table 8): lr 2e-5, tau_max 7, 14 epochs phase 1 + 4 phase 2.',
    'bert': 'BERT-Small (Table 11): lr 2e-5 (4e-5 RTE, MRPC), tau_max 7 or 14 by task, 2 tau_max + 6 epochs.',
}
KD_NOTE = """\
# Vanilla KD (Table 7's alpha {alpha:g}): {alpha:g} x the model's own cross-entropy (model_term) + (1 - alpha) T^2 =
# {kd_weight:g} x torchdistill's KDLoss with alpha 0 (its KL term alone), both on the classifier head's logits. The
# paper does not give the KD temperature; we use T = {temperature:g}.
"""
REGRESSION_KD_NOTE = """\
# Vanilla KD for the STS-B regression (one output, no softmax): {alpha:g} x MSE to the teacher's output + {alpha:g} x
# the model's own MSE to the score (model_term; Table 7's alpha).
"""
CKD_NOTE = """\
# The Continuation-KD paper's GLUE settings replace the Annealing-KD ones above: batch {batch_size}, lr {lr:g},
# {epochs} epochs, T_max {max_temperature}, psi of Eq. 8 (the paper has no WNLI row; we keep the task).
# Max length 128, gradient clipping 1 and the warm-up are as above (the paper does not state them).
# The paper does not give the margin m: {margin:g} (on the squared distance averaged over the {outputs}) is
# provisional, the third-party GLMKD implementation's value, until it is chosen on validation. The label term is
# the student's own loss (ContinuationKDLoss reads .loss from the model output at '.' when no labels are passed).
"""


def header(title, family, note=''):
    defaults = '\n#   ' + ' / '.join(FAMILIES[family][role].hub_id for role in ('teacher', 'ta', 'student'))
    lines = textwrap.wrap(title, width=114)
    return ('# ' + '\n# '.join(lines) + '\n' + note
            + HEADER.format(family_line=FAMILY_LINES[family], warmup=WARMUP_RATIO, defaults=defaults))


def kd_note(task):
    template = REGRESSION_KD_NOTE if GLUE_TASKS[task].is_regression else KD_NOTE
    return template.format(alpha=KD_ALPHA, temperature=KD_TEMPERATURE,
                           kd_weight=(1 - KD_ALPHA) * KD_TEMPERATURE ** 2)


def label_loss(task):
    return 'MSE on the score' if GLUE_TASKS[task].is_regression else 'cross-entropy'


# ----------------------------------------------------------------------------------------------- configs

def ce_config(task, family, role):
    path = glue_config_path(task, 'ce', model_name(family, role))
    lr = student_lr(task, family) if role == 'student' else LR
    epochs = student_epochs(task, family) if role == 'student' else finetune_epochs(task)
    what = 'the student baseline (no teacher)' if role == 'student' else f'the {role.upper()}'
    title = f'{model_name(family, role)} fine-tuned alone on {task} with {label_loss(task)}: {what}.'
    if role != 'student':
        title += f' Fine-tuning epochs are not in the paper: {epochs} ({"small" if epochs == 10 else "large"} task).'
    train = dict({'log_freq': 100, 'num_epochs': epochs}, **loaders(task), **models_io(distillation=False),
                 **optimization(lr), criterion=criterion(model_weight=1.0))
    config = dict(preamble(task, family), models=models_section(task, family, role, final_ckpt(path, folder=True)),
                  **evaluation_sections(task), train=train, **test_section(task))
    return path, dump_config(config, header(title, family))


def kd_config(task, family, student_role, teacher_role, method='kd'):
    student, teacher = model_name(family, student_role), model_name(family, teacher_role)
    path = glue_config_path(task, method, student, teacher)
    if method == 'takd':
        title = (f'TAKD of {student} on {task}: vanilla KD from the teacher assistant {teacher}, itself trained by KD '
                 f'from {model_name(family, "teacher")} (kd/{teacher}_from_{model_name(family, "teacher")}.yaml).')
    elif student_role == 'ta':
        title = f'Vanilla KD of the teacher assistant {student} from {teacher} on {task} (TAKD, first step).'
    else:
        title = f'Vanilla KD of {student} from {teacher} on {task}.'
    student_budget = student_role == 'student'
    lr = student_lr(task, family) if student_budget else LR
    epochs = student_epochs(task, family) if student_budget else finetune_epochs(task)
    train = dict({'log_freq': 100, 'num_epochs': epochs, 'pre_epoch_process': 'keep_teacher_in_eval_mode'},
                 **loaders(task), **models_io(hook_heads=True), **optimization(lr), criterion=kd_criterion(task))
    models = models_section(task, family, student_role, final_ckpt(path, folder=True), teacher_role)
    config = dict(preamble(task, family), models=models, **evaluation_sections(task), train=train, **test_section(task))
    return path, dump_config(config, header(title, family, kd_note(task)))


def annealing_stages(task, family, dst_ckpt):
    phase1, phase2 = annealing_epochs(task, family)
    lr = student_lr(task, family)
    stage1 = dict({'num_epochs': phase1, 'pre_epoch_process': 'advance_loss_schedules',
                   'post_epoch_process': 'keep_best_stage_checkpoints'}, **loaders(task), **models_io(),
                  **optimization(lr), criterion=annealing_criterion(task, family))
    stage2 = dict({'num_epochs': phase2, 'pre_epoch_process': 'keep_teacher_in_eval_mode',
                   'post_epoch_process': 'keep_best_stage_checkpoints'}, **models_io(), **optimization(lr),
                  criterion=criterion(model_weight=1.0))
    return {'log_freq': 100,
            'best_checkpoints': {'dst_ckpt': dst_ckpt, 'dst_format': 'save_pretrained',
                                 'metric': GLUE_TASKS[task].metric},
            'stage1': stage1, 'stage2': stage2}


def annealing_config(task, family):
    student, teacher = model_name(family, 'student'), model_name(family, 'teacher')
    path = glue_config_path(task, 'annealing_kd', student, teacher)
    phase1, phase2 = annealing_epochs(task, family)
    title = (f'Annealing-KD (Algorithm 1) of {student} from {teacher} on {task}: Stage I matches Phi(T) x teacher '
             f'logits, T = {max_temperature(task, family)}..1 over {phase1} epochs (tau_max; Phi(T) = 1 - (T - 1) / '
             f'tau_max; mean squared error over all logits, as the authors\' F.mse_loss); Stage II '
             f'{label_loss(task)} on the labels for {phase2} epochs. keep_best_stage_checkpoints starts Stage II from '
             'the best Stage-I checkpoint (on validation) and ends on the best Stage-II one, written to dst_ckpt '
             '(train.best_checkpoints). Each stage restarts its warm-up schedule.')
    dst_ckpt = Anchor('dst_ckpt', final_ckpt(path, folder=True))
    config = dict(preamble(task, family), models=models_section(task, family, 'student', dst_ckpt, 'teacher'),
                  **evaluation_sections(task), train=annealing_stages(task, family, dst_ckpt), **test_section(task))
    return path, dump_config(config, header(title, family))


def continuation_config(task, family):
    student, teacher = model_name(family, 'student'), model_name(family, 'teacher')
    path = glue_config_path(task, 'continuation_kd', student, teacher)
    label = 'MSE to the score' if GLUE_TASKS[task].is_regression else 'CE'
    title = (f'Continuation-KD (Jafari et al., EMNLP 2022 Findings, Algorithm 1) of {student} from {teacher} on '
             f'{task}: one stage, L = psi * {label} + (1 - psi) * mean_i max(0, d_i - m phi(T)), '
             f'd_i = mean_c (z_s - phi(T) z_t)^2, phi(T)=1-(T-1)/{CKD_MAX_TEMPERATURE}, T = {CKD_MAX_TEMPERATURE}..1 '
             'in equal shares of the run, psi = e / 40 for e < 20, then 1 (Eq. 8). The driver keeps the best '
             'checkpoint on validation (no reload mid-run).')
    note = CKD_NOTE.format(batch_size=CKD_BATCH_SIZE, lr=CKD_LR, epochs=CKD_EPOCHS,
                           max_temperature=CKD_MAX_TEMPERATURE, margin=DEFAULT_MARGIN,
                           outputs='one output' if GLUE_TASKS[task].is_regression else 'logits')
    train = dict({'log_freq': 100, 'num_epochs': CKD_EPOCHS, 'pre_epoch_process': 'advance_loss_schedules'},
                 **loaders(task, CKD_BATCH_SIZE), **models_io(), **optimization(CKD_LR),
                 criterion=continuation_criterion(task))
    models = models_section(task, family, 'student', final_ckpt(path, folder=True), 'teacher')
    config = dict(preamble(task, family), models=models, **evaluation_sections(task), train=train, **test_section(task))
    return path, dump_config(config, header(title, family, note))


def family_configs(task, family):
    """[(path, YAML text)] of one task and family: 3 fine-tuning, 2 KD, TAKD, Annealing-KD, Continuation-KD."""
    configs = [ce_config(task, family, role) for role in ('teacher', 'ta', 'student')]
    configs += [kd_config(task, family, role, 'teacher') for role in ('ta', 'student')]
    configs.append(kd_config(task, family, 'student', 'ta', method='takd'))
    configs += [annealing_config(task, family), continuation_config(task, family)]
    return configs


def all_configs():
    """{path relative to yaml_configs/: YAML text} for every GLUE config."""
    return dict(entry for task in GLUE_TASKS for family in FAMILIES for entry in family_configs(task, family))


def main(argv=None):
    return sync_configs(all_configs(), HERE, 'glue_configs.py', __doc__.split('\n\n')[0], argv)


if __name__ == '__main__':
    sys.exit(main())
