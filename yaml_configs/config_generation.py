"""Shared by the config generators (``cifar_configs.py``, ``glue_configs.py``): file names in torchdistill's
sample layout, the blocks every driver needs (the final checkpoint path, Algorithm 1's stage checkpoints), and
writing the YAMLs or checking that the files on disk are up to date."""
import argparse
import os

from plugins.atomic_files import atomic_write_text

__all__ = ['config_path', 'final_ckpt', 'dst_ckpt_line', 'fill_dst_ckpts', 'best_checkpoints_block',
           'stage_checkpoints_hook', 'sync_configs']

DST_CKPT_FIELD = '<dst_ckpt>'  # filled in by fill_dst_ckpts from the config's own path


def config_path(folder, method, student, teacher=None):
    """``<folder>/<method>/<student>_from_<teacher>.yaml``, or ``<folder>/<method>/<student>.yaml`` from scratch."""
    name = student if teacher is None else f'{student}_from_{teacher}'
    return os.path.join(folder, method, f'{name}.yaml')


def final_ckpt(path):
    """Where a config's final student goes: ``./runs/<path without .yaml>/student_best.pt``, so that a teacher
    config's ``dst_ckpt`` is the ``src_ckpt`` its students read (also under torchdistill's own scripts)."""
    return './runs/' + path[:-len('.yaml')] + '/student_best.pt'


def dst_ckpt_line(indent=4):
    """``models.student_model.dst_ckpt`` (or ``models.model``): the final checkpoint torchdistill's scripts write."""
    pad = ' ' * indent
    return (f"{pad}# the final student: torchdistill's example scripts save and reload it; our runner uses "
            f'--output-dir\n{pad}dst_ckpt: {DST_CKPT_FIELD}\n')


def fill_dst_ckpts(configs):
    """``configs`` ({path: YAML text}) with each ``dst_ckpt`` set to :func:`final_ckpt`; anchored when referred to."""
    filled = {}
    for path, text in configs.items():
        anchor = '&dst_ckpt ' if '*dst_ckpt' in text else ''
        filled[path] = text.replace(DST_CKPT_FIELD, f"{anchor}'{final_ckpt(path)}'")
    return filled


def best_checkpoints_block(metric, dst_format='torchdistill'):
    """``train.best_checkpoints``: the settings of ``keep_best_stage_checkpoints`` (plugins/stages.py)."""
    return ("  best_checkpoints:  # Algorithm 1, by post_epoch_process 'keep_best_stage_checkpoints' "
            '(plugins/stages.py)\n'
            '    dst_ckpt: *dst_ckpt  # = models.student_model.dst_ckpt: the best checkpoint of the last stage\n'
            f"    dst_format: '{dst_format}'\n"
            f"    metric: '{metric}'  # = evaluation.metric\n")


def stage_checkpoints_hook(indent):
    """A stage of a multi-stage config ends on its best checkpoint (Algorithm 1)."""
    return ' ' * indent + "post_epoch_process: 'keep_best_stage_checkpoints'  # the stage ends on its best checkpoint\n"


def sync_configs(configs, root, script, description, argv=None):
    """Writes ``configs`` ({path relative to ``root``: YAML text}); with ``--check`` only reports stale files.

    Returns the exit code: 1 when ``--check`` finds a file that differs from the generator, else 0.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--check', action='store_true', help='only report configs that differ from this script')
    args = parser.parse_args(argv)
    stale = []
    for path, text in configs.items():
        full_path = os.path.join(root, path)
        current = open(full_path).read() if os.path.isfile(full_path) else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            atomic_write_text(full_path, text)
    if args.check and stale:
        print(f'out of date (run python yaml_configs/{script}):\n  ' + '\n  '.join(stale))
        return 1
    print(f'{len(stale)} config(s) {"differ" if args.check else "written"}, {len(configs)} in total')
    return 0
