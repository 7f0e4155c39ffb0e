"""Tiny generated data, a two-stage YAML template and its teacher checkpoint for the runner tests."""
import torch
from torch.utils.data import TensorDataset

from plugins.models.mlp import mlp

SPLIT_SIZES = {'train': 96, 'val': 45, 'test': 45}


def make_blobs(split, num_classes=3, num_features=8):
    """Gaussian blobs, one per class, fixed per split (no dependence on the training seed)."""
    generator = torch.Generator().manual_seed({'train': 0, 'val': 1, 'test': 2}[split])
    centres = torch.randn(num_classes, num_features, generator=torch.Generator().manual_seed(42)) * 2
    labels = torch.arange(SPLIT_SIZES[split]) % num_classes
    features = centres[labels] + torch.randn(len(labels), num_features, generator=generator)
    return TensorDataset(features, labels)


LOADERS = '''
    train_data_loader:
      dataset_id: 'blobs/train'
      sampler: {class_or_func: !import_get {key: 'torch.utils.data.RandomSampler'}, kwargs: }
      kwargs: {batch_size: 16, num_workers: 0}
    val_data_loader:
      dataset_id: 'blobs/val'
      sampler: {class_or_func: !import_get {key: 'torch.utils.data.SequentialSampler'}, kwargs: }
      kwargs: {batch_size: 64, num_workers: 0}
'''

# The data and models of the templates: the blobs, the teacher MLP 8-32-3 (TEACHER_CKPT) and the student MLP 8-4-3.
BLOBS_AND_MLPS = '''
dependencies:
  - name: 'plugins'
datasets:
  blobs/train: !import_call {key: 'runner_fixtures.make_blobs', init: {kwargs: {split: 'train'}}}
  blobs/val: !import_call {key: 'runner_fixtures.make_blobs', init: {kwargs: {split: 'val'}}}
  blobs/test: !import_call {key: 'runner_fixtures.make_blobs', init: {kwargs: {split: 'test'}}}
models:
  teacher_model:
    key: 'mlp'
    kwargs: {input_dim: 8, hidden_dims: [32], num_classes: 3}
    src_ckpt: TEACHER_CKPT
  student_model:
    key: 'mlp'
    kwargs: {input_dim: 8, hidden_dims: [4], num_classes: 3}
'''

TWO_STAGE = BLOBS_AND_MLPS + '''    dst_ckpt: &dst_ckpt 'runs/blobs/student_best.pt'
train:
  best_checkpoints: {dst_ckpt: *dst_ckpt, metric: 'accuracy'}
  stage1:
    num_epochs: 4
    pre_epoch_process: 'advance_loss_schedules'
    post_epoch_process: 'keep_best_stage_checkpoints'
''' + LOADERS + '''
    teacher: {requires_grad: False, forward_proc: 'forward_batch_only'}
    student: {requires_grad: True, forward_proc: 'forward_batch_only'}
    optimizer: {key: 'SGD', kwargs: {lr: 0.1, momentum: 0.9}}
    criterion:
      key: 'WeightedSumLoss'
      kwargs:
        sub_terms:
          annealing_kd:
            criterion:
              key: 'AnnealingKDLoss'
              kwargs: {student_module_path: '.', student_module_io: 'output', teacher_module_path: '.',
                       teacher_module_io: 'output', max_temperature: 2, annealing: 'linear'}
            weight: 1.0
  stage2:
    num_epochs: 2
    pre_epoch_process: 'keep_teacher_in_eval_mode'
    post_epoch_process: 'keep_best_stage_checkpoints'
    teacher: {requires_grad: False, forward_proc: 'forward_batch_only'}
    student: {requires_grad: True, forward_proc: 'forward_batch_only'}
    optimizer: {key: 'SGD', kwargs: {lr: 0.1, momentum: 0.9}}
    criterion:
      key: 'WeightedSumLoss'
      kwargs:
        sub_terms:
          ce:
            criterion: {key: 'CrossEntropyLoss', kwargs: {reduction: 'mean'}}
            criterion_wrapper:
              key: 'SimpleLossWrapper'
              kwargs: {input: {is_from_teacher: False, module_path: '.', io: 'output'}, target: {uses_label: True}}
            weight: 1.0
test:
  test_data_loader:
    dataset_id: 'blobs/test'
    sampler: {class_or_func: !import_get {key: 'torch.utils.data.SequentialSampler'}, kwargs: }
    kwargs: {batch_size: 64, num_workers: 0}
'''

CONTINUATION_CRITERION = '''criterion:
      key: 'WeightedSumLoss'
      kwargs:
        sub_terms:
          continuation_kd:
            criterion:
              key: 'ContinuationKDLoss'
              kwargs: {student_module_path: '.', student_module_io: 'output', teacher_module_path: '.',
                       teacher_module_io: 'output', objective: 'temperature', temperature: 2.0, alpha: 0.5,
                       max_temperature: 8.0, schedule: {shape: 'linear'},
                       noise_mitigation: {threshold: 0.3, mode: 'mask'}}
            weight: 1.0
  stage2:'''


def save_teacher(tmp_path) -> str:
    """A checkpoint of the templates' teacher (MLP 8-32-3, seed 0) in ``tmp_path``; its path."""
    torch.manual_seed(0)
    path = tmp_path / 'teacher.pt'
    torch.save({'model': mlp(8, [32], 3).state_dict()}, path)
    return str(path)


def write_config(tmp_path, teacher_ckpt, text=TWO_STAGE) -> str:
    """``text`` (a template) with its teacher checkpoint set, written to ``tmp_path/config.yaml``; its path."""
    path = tmp_path / 'config.yaml'
    path.write_text(text.replace('TEACHER_CKPT', repr(teacher_ckpt)))
    return str(path)
