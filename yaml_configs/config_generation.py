"""Shared by the config generators (``cifar_configs.py``, ``glue_configs.py``): file names in torchdistill's
sample layout, the parts every driver needs (the final checkpoint path, Algorithm 1's stage checkpoints), YAML
text from a config's data structure (torchdistill's tags, named anchors and comments included), and writing the
YAMLs or checking that the files on disk are up to date.

In a structure, ``ImportCall`` / ``ImportGet`` are torchdistill's ``!import_call`` / ``!import_get``, ``Anchor`` a
value written once and referred to (``&name`` / ``*name``), ``Note`` a value with its comment, ``Flow`` a short list
or mapping written on one line.
"""
import argparse
import os
import re

import yaml

from plugins.atomic_files import atomic_write_text

__all__ = ['config_path', 'final_ckpt', 'sync_configs', 'ImportCall', 'ImportGet', 'Anchor', 'Note', 'Flow',
           'FlowMapping', 'dump_config', 'dst_ckpt', 'best_checkpoints', 'STAGE_CHECKPOINTS_HOOK']

DST_CKPT_NOTE = "the final student: torchdistill's example scripts save and reload it; our runner uses --output-dir"
BEST_CHECKPOINTS_NOTES = {
    'best_checkpoints': "Algorithm 1, by post_epoch_process 'keep_best_stage_checkpoints' (plugins/stages.py)",
    'dst_ckpt': '= models.student_model.dst_ckpt: the best checkpoint of the last stage',
    'metric': '= evaluation.metric'}


def config_path(folder, method, student, teacher=None):
    """``<folder>/<method>/<student>_from_<teacher>.yaml``, or ``<folder>/<method>/<student>.yaml`` from scratch."""
    name = student if teacher is None else f'{student}_from_{teacher}'
    return os.path.join(folder, method, f'{name}.yaml')


def final_ckpt(path, folder=False):
    """Where a config's final student goes: ``./runs/<path without .yaml>/student_best.pt`` (``student_best``, a
    ``save_pretrained`` folder, with ``folder``), so that a teacher config's ``dst_ckpt`` is the ``src_ckpt`` its
    students read (also under torchdistill's own scripts)."""
    return './runs/' + path[:-len('.yaml')] + ('/student_best' if folder else '/student_best.pt')


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


class Note:
    """``value`` and the comment written after it (or on the line above it, ``above=True``)."""

    def __init__(self, value, comment, above=False):
        self.value, self.comment, self.above = value, comment, above


class Flow(list):
    """A list written on one line: ``[80, 120]``."""


class FlowMapping(dict):
    """A mapping written on one line: ``{ramp: 3/4}``."""


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
_ConfigDumper.add_representer(Flow, lambda dumper, items: dumper.represent_sequence(
    'tag:yaml.org,2002:seq', items, flow_style=True))
_ConfigDumper.add_representer(FlowMapping, lambda dumper, mapping: dumper.represent_mapping(
    'tag:yaml.org,2002:map', mapping, flow_style=True))


def _without_notes(value, path, notes):
    """``value`` with each :class:`Note` replaced by its value; ``notes`` gets {key path: (comment, above)}. A Note
    in a list or an Anchor stays (the dumper refuses it)."""
    if isinstance(value, Note):
        notes[path] = (value.comment, value.above)
        return _without_notes(value.value, path, notes)
    if isinstance(value, ImportCall):
        kwargs = _without_notes(value.kwargs, path + ('init', 'kwargs'), notes)
        return ImportCall(value.key, **kwargs)
    if isinstance(value, dict):
        return type(value)({key: _without_notes(item, path + (key,), notes) for key, item in value.items()})
    return value


_KEY_LINE = re.compile(r'^( *)(- )?([^\s:#&*!\'"][^:]*):(?: |$)')  # a mapping key's line: indent, key


def _layout(text, notes):
    """The lines of ``text`` (a dump) with a blank line before each top-level section and each note's comment at
    the key it marks (after it, or above it)."""
    lines, keys, placed = [], [], set()
    for index, line in enumerate(text.splitlines()):
        if index and line[:1] not in (' ', '-', ''):
            lines.append('')
        match = _KEY_LINE.match(line)
        if match:
            indent = len(match.group(1)) + len(match.group(2) or '')
            keys = [(depth, key) for depth, key in keys if depth < indent] + [(indent, match.group(3))]
            path = tuple(key for _, key in keys)
            if path in notes:
                placed.add(path)
                comment, above = notes[path]
                lines += [f'{" " * indent}# {comment}'] if above else []
                line += '' if above else f'  # {comment}'
        lines.append(line)
    if placed != set(notes):
        raise ValueError(f'notes at no key of the dump: {sorted(set(notes) - placed)}')
    return lines


def dump_config(config: dict, header: str) -> str:
    """YAML text of ``config`` (mappings in insertion order, top-level sections apart, each :class:`Note` as a
    comment) after the ``header`` comment lines."""
    notes = {}
    text = yaml.dump(_without_notes(config, (), notes), Dumper=_ConfigDumper, sort_keys=False,
                     default_flow_style=False, width=1000, allow_unicode=True)
    return header + '\n'.join(_layout(text, notes)) + '\n'


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
STAGE_CHECKPOINTS_HOOK = Note('keep_best_stage_checkpoints', 'the stage ends on its best checkpoint')


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
