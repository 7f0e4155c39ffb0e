"""Shared by the config generators (``cifar_configs.py``, ``glue_configs.py``): file names in torchdistill's
sample layout, the blocks every driver needs (the final checkpoint path, Algorithm 1's stage checkpoints), YAML
text from a config's data structure (torchdistill's tags and named anchors included), and writing the YAMLs or
checking that the files on disk are up to date."""
import argparse
import os

import yaml

from plugins.checkpoint import atomic_write_text

__all__ = ['config_path', 'final_ckpt', 'dst_ckpt_line', 'fill_dst_ckpts', 'best_checkpoints_block',
           'stage_checkpoints_hook', 'sync_configs', 'ImportCall', 'ImportGet', 'Anchor', 'dump_config']

DST_CKPT_FIELD = '<dst_ckpt>'  # filled in by fill_dst_ckpts from the config's own path


def config_path(folder, method, student, teacher=None):
    """``<folder>/<method>/<student>_from_<teacher>.yaml``, or ``<folder>/<method>/<student>.yaml`` from scratch."""
    name = student if teacher is None else f'{student}_from_{teacher}'
    return os.path.join(folder, method, f'{name}.yaml')


def final_ckpt(path, folder=False):
    """Where a config's final student goes: ``./runs/<path without .yaml>/student_best.pt`` (``student_best``, a
    ``save_pretrained`` folder, with ``folder``), so that a teacher config's ``dst_ckpt`` is the ``src_ckpt`` its
    students read (also under torchdistill's own scripts)."""
    return './runs/' + path[:-len('.yaml')] + ('/student_best' if folder else '/student_best.pt')


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


class ImportCall:
    """``!import_call`` of ``key`` (a dotted path) with keyword arguments: built when the YAML is loaded."""

    def __init__(self, key, **kwargs):
        self.key, self.kwargs = key, kwargs


class ImportGet:
    """``!import_get`` of ``key`` (a dotted path): the object itself, e.g. a sampler class."""

    def __init__(self, key):
        self.key = key


class Anchor:
    """``value`` written as ``&name value`` where it first appears and as ``*name`` wherever the same Anchor
    appears again; every other repeated value is written out in full."""

    def __init__(self, name, value):
        self.name, self.value = name, value


class _ConfigDumper(yaml.SafeDumper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.anchor_names = {}

    def ignore_aliases(self, data):
        return not isinstance(data, Anchor)

    def generate_anchor(self, node):
        return self.anchor_names[node]


def _represent_anchor(dumper, anchor):
    alias_key = dumper.alias_key  # the Anchor's; representing its value resets it
    node = dumper.represent_data(anchor.value)
    dumper.represented_objects[alias_key] = node
    dumper.anchor_names[node] = anchor.name
    return node


_ConfigDumper.add_representer(Anchor, _represent_anchor)
_ConfigDumper.add_representer(ImportGet, lambda dumper, call: dumper.represent_mapping('!import_get',
                                                                                         {'key': call.key}))
_ConfigDumper.add_representer(ImportCall, lambda dumper, call: dumper.represent_mapping(
    '!import_call', {'key': call.key, 'init': {'kwargs': call.kwargs}}))


def dump_config(config: dict, header: str) -> str:
    """YAML text of ``config`` (mappings in insertion order, top-level sections apart) after the ``header``
    comment lines."""
    text = yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False, width=1000,
                     allow_unicode=True)
    lines = [('\n' if index and line[:1] not in (' ', '-', '') else '') + line
             for index, line in enumerate(text.splitlines())]
    return header + '\n'.join(lines) + '\n'


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
