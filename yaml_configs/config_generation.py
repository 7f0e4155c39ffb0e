"""Shared by the config generators (``cifar_configs.py``, ``glue_configs.py``): file names in torchdistill's
sample layout, the blocks every driver needs (the final checkpoint path, Algorithm 1's stage checkpoints), and
writing the YAMLs or checking that the files on disk are up to date.

A generator either builds each config as a data structure and writes it with :func:`dump_config` (``Tagged``
mappings keep torchdistill's ``!import_call`` / ``!import_get`` tags, ``Note`` carries a value's comment, ``Flow``
writes a short list or mapping on one line), or (older) assembles the YAML text from the ``*_block`` functions.
"""
import argparse
import os
import re
from dataclasses import dataclass

import yaml

from plugins.checkpoint import atomic_write_text

__all__ = ['config_path', 'final_ckpt', 'dst_ckpt_line', 'fill_dst_ckpts', 'best_checkpoints_block',
           'stage_checkpoints_hook', 'sync_configs', 'Tagged', 'Note', 'Flow', 'FlowMapping', 'dump_config', 'dst_ckpt',
           'best_checkpoints', 'STAGE_CHECKPOINTS_HOOK']

DST_CKPT_FIELD = '<dst_ckpt>'  # filled in by fill_dst_ckpts from the config's own path
DST_CKPT_NOTE = "the final student: torchdistill's example scripts save and reload it; our runner uses --output-dir"
BEST_CHECKPOINTS_NOTES = {
    'best_checkpoints': "Algorithm 1, by post_epoch_process 'keep_best_stage_checkpoints' (plugins/stages.py)",
    'dst_ckpt': '= models.student_model.dst_ckpt: the best checkpoint of the last stage',
    'metric': '= evaluation.metric'}
STAGE_CHECKPOINTS_NOTE = 'the stage ends on its best checkpoint'


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
    return f'{pad}# {DST_CKPT_NOTE}\n{pad}dst_ckpt: {DST_CKPT_FIELD}\n'


def fill_dst_ckpts(configs):
    """``configs`` ({path: YAML text}) with each ``dst_ckpt`` set to :func:`final_ckpt`; anchored when referred to."""
    filled = {}
    for path, text in configs.items():
        anchor = '&dst_ckpt ' if '*dst_ckpt' in text else ''
        filled[path] = text.replace(DST_CKPT_FIELD, f"{anchor}'{final_ckpt(path)}'")
    return filled


def best_checkpoints_block(metric, dst_format='torchdistill'):
    """``train.best_checkpoints``: the settings of ``keep_best_stage_checkpoints`` (plugins/stages.py)."""
    notes = BEST_CHECKPOINTS_NOTES
    return (f"  best_checkpoints:  # {notes['best_checkpoints']}\n"
            f"    dst_ckpt: *dst_ckpt  # {notes['dst_ckpt']}\n"
            f"    dst_format: '{dst_format}'\n"
            f"    metric: '{metric}'  # {notes['metric']}\n")


def stage_checkpoints_hook(indent):
    """A stage of a multi-stage config ends on its best checkpoint (Algorithm 1)."""
    return ' ' * indent + f"post_epoch_process: 'keep_best_stage_checkpoints'  # {STAGE_CHECKPOINTS_NOTE}\n"


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


class Tagged(dict):
    """A mapping written with a YAML tag: ``Tagged('!import_get', key='torch.utils.data.RandomSampler')``."""

    def __init__(self, tag: str, **mapping):
        super().__init__(mapping)
        self.tag = tag


class Flow(list):
    """A list written on one line: ``[80, 120]``."""


class FlowMapping(dict):
    """A mapping written on one line: ``{ramp: '3/4'}``."""


@dataclass(frozen=True)
class Note:
    """A value and the comment written after it (or on the line above it, ``above=True``)."""
    value: object
    comment: str
    above: bool = False


class _ConfigDumper(yaml.SafeDumper):
    """The configs' style: block mappings, indented sequences, quoted strings, plain keys, no anchors."""

    def ignore_aliases(self, data):
        return True

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)

    def represent_mapping(self, tag, mapping, flow_style=None):
        node = super().represent_mapping(tag, mapping, flow_style)
        for key, _ in node.value:
            key.style = None  # keys plain, values quoted
        return node


_ConfigDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar('tag:yaml.org,2002:str', text,
                                                                                  style="'"))
_ConfigDumper.add_representer(type(None), lambda dumper, _: dumper.represent_scalar('tag:yaml.org,2002:null', ''))
_ConfigDumper.add_representer(Tagged, lambda dumper, data: dumper.represent_mapping(data.tag, data))
_ConfigDumper.add_representer(Flow, lambda dumper, data: dumper.represent_sequence(
    'tag:yaml.org,2002:seq', data, flow_style=True))
_ConfigDumper.add_representer(FlowMapping, lambda dumper, data: dumper.represent_mapping(
    'tag:yaml.org,2002:map', data, flow_style=True))


def _without_notes(value, path, notes):
    """``value`` with each :class:`Note` replaced by its value; ``notes`` gets {key path: (comment, above)}.
    Lists are kept as they are (a Note in a list cannot be dumped: the dumper refuses it)."""
    if isinstance(value, Note):
        notes[path] = (value.comment, value.above)
        return _without_notes(value.value, path, notes)
    if isinstance(value, dict):
        items = {key: _without_notes(item, path + (key,), notes) for key, item in value.items()}
        return Tagged(value.tag, **items) if isinstance(value, Tagged) else type(value)(items)
    return value


_KEY_LINE = re.compile(r'^( *)(- )?([^\s:#][^:]*):(?: |$)')


def _annotate(text, notes):
    """``text`` (a dump) with a blank line between sections and each note's comment at the key it marks."""
    lines, keys, placed = [], [], set()
    for line in text.splitlines():
        match = _KEY_LINE.match(line)
        if match:
            indent = len(match.group(1)) + (2 if match.group(2) else 0)
            keys = [(depth, key) for depth, key in keys if depth < indent] + [(indent, match.group(3))]
            path = tuple(key for _, key in keys)
            if indent == 0 and lines:
                lines.append('')
            if path in notes:
                placed.add(path)
                comment, above = notes[path]
                lines += [f'{" " * indent}# {comment}'] if above else []
                line += '' if above else f'  # {comment}'
        lines.append(line)
    if placed != set(notes):
        raise ValueError(f'notes at no key of the dump: {sorted(set(notes) - placed)}')
    return '\n'.join(lines) + '\n'


def dump_config(header: str, structure: dict) -> str:
    """The YAML text of ``structure`` after the ``header`` comment lines, each :class:`Note` as a comment."""
    notes = {}
    text = yaml.dump(_without_notes(structure, (), notes), Dumper=_ConfigDumper, sort_keys=False, width=1000,
                     allow_unicode=True)
    return header + _annotate(text, notes)


def dst_ckpt(path: str) -> Note:
    """``models.student_model.dst_ckpt`` (or ``models.model``) of the config at ``path`` (relative to
    yaml_configs/): the final checkpoint torchdistill's scripts write, :func:`final_ckpt`."""
    return Note(final_ckpt(path), DST_CKPT_NOTE, above=True)


def best_checkpoints(metric: str, path: str, dst_format: str = 'torchdistill') -> Note:
    """``train.best_checkpoints`` of the config at ``path``: the settings of ``keep_best_stage_checkpoints``
    (plugins/stages.py), its ``dst_ckpt`` the config's own :func:`final_ckpt`."""
    notes = BEST_CHECKPOINTS_NOTES
    return Note({'dst_ckpt': Note(final_ckpt(path), notes['dst_ckpt'], above=True), 'dst_format': dst_format,
                 'metric': Note(metric, notes['metric'])}, notes['best_checkpoints'])


# A stage of a multi-stage config ends on its best checkpoint (Algorithm 1).
STAGE_CHECKPOINTS_HOOK = Note('keep_best_stage_checkpoints', STAGE_CHECKPOINTS_NOTE)
