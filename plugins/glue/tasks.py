"""What each GLUE task is: text columns, labels, metric and where its splits live.

Labels follow the Hugging Face ``glue`` dataset (``nyu-mll/glue``): the local TSV reader maps the official
label strings onto the same class indices, so a model trained on either source reads the same outputs.
MNLI has two dev sets, ``validation_matched`` and ``validation_mismatched``.

GLUE's test labels are hidden, so the benchmark's *test* split is the official dev set and the *validation*
split used for model selection is carved from the training set (see :mod:`plugins.glue.data`).
"""
from dataclasses import dataclass, field

__all__ = ['GlueTask', 'GLUE_TASKS', 'get_task']


@dataclass(frozen=True)
class GlueTask:
    """Metadata of one GLUE task.

    ``text_columns``: the Hugging Face column names (one or two sentences); ``tsv_dir``: the folder of the
    official TSVs; ``tsv_columns``: the TSV header names of the texts and the label (``None`` for CoLA,
    whose train/dev files have no header: positions ``tsv_positions`` are used instead); ``label_names``:
    class names in index order (``None`` for the STS-B regression); ``tsv_labels``: how a TSV label string
    maps to an index when it is not the class name itself; ``dev_splits``: our test split name ->
    (Hugging Face split, TSV file name); ``metric``: the registered metric (:mod:`plugins.glue.metrics`).
    """
    name: str
    text_columns: tuple
    tsv_dir: str
    tsv_columns: tuple
    label_names: tuple
    metric: str
    dev_splits: dict = field(default_factory=lambda: {'test': ('validation', 'dev.tsv')})
    tsv_positions: tuple = None
    tsv_labels: dict = None

    @property
    def is_regression(self):
        return self.label_names is None

    @property
    def num_labels(self):
        """Outputs of the classifier head: 1 for the regression, else the number of classes."""
        return 1 if self.is_regression else len(self.label_names)

    @property
    def label_column(self):
        """The label column of :func:`plugins.glue.data.glue_dataset_dict`: ``label_name`` or ``score`` (STS-B)."""
        return 'score' if self.is_regression else 'label_name'

    @property
    def label2id(self):
        """{class name: index} in the Hugging Face order (the text schema's ``preprocess.label2id``); None for
        the regression."""
        return None if self.is_regression else {name: index for index, name in enumerate(self.label_names)}

    @property
    def test_splits(self):
        """Our test split names: ``('test',)``, or ``('test', 'test_mismatched')`` for MNLI."""
        return tuple(self.dev_splits)


_BINARY = {'0': 0, '1': 1}

GLUE_TASKS = {task.name: task for task in [
    # CoLA train.tsv / dev.tsv: source, label, original label, sentence; no header.
    GlueTask('cola', ('sentence',), 'CoLA', None, ('unacceptable', 'acceptable'), 'glue_cola',
             tsv_positions=(3, 1), tsv_labels=_BINARY),
    GlueTask('sst2', ('sentence',), 'SST-2', ('sentence', 'label'), ('negative', 'positive'), 'accuracy',
             tsv_labels=_BINARY),
    # MRPC header: Quality, #1 ID, #2 ID, #1 String, #2 String (Quality is the label).
    GlueTask('mrpc', ('sentence1', 'sentence2'), 'MRPC', ('#1 String', '#2 String', 'Quality'),
             ('not_equivalent', 'equivalent'), 'glue_mrpc', tsv_labels=_BINARY),
    # STS-B header: index, genre, filename, year, old_index, source1, source2, sentence1, sentence2, score.
    GlueTask('stsb', ('sentence1', 'sentence2'), 'STS-B', ('sentence1', 'sentence2', 'score'), None, 'glue_stsb'),
    # QQP header: id, qid1, qid2, question1, question2, is_duplicate.
    GlueTask('qqp', ('question1', 'question2'), 'QQP', ('question1', 'question2', 'is_duplicate'),
             ('not_duplicate', 'duplicate'), 'glue_qqp', tsv_labels=_BINARY),
    # MNLI header: index, promptID, pairID, genre, 4 parses, sentence1, sentence2, label1 [.. label5], gold_label.
    GlueTask('mnli', ('premise', 'hypothesis'), 'MNLI', ('sentence1', 'sentence2', 'gold_label'),
             ('entailment', 'neutral', 'contradiction'), 'accuracy',
             dev_splits={'test': ('validation_matched', 'dev_matched.tsv'),
                         'test_mismatched': ('validation_mismatched', 'dev_mismatched.tsv')}),
    # QNLI header: index, question, sentence, label.
    GlueTask('qnli', ('question', 'sentence'), 'QNLI', ('question', 'sentence', 'label'),
             ('entailment', 'not_entailment'), 'accuracy'),
    # RTE header: index, sentence1, sentence2, label.
    GlueTask('rte', ('sentence1', 'sentence2'), 'RTE', ('sentence1', 'sentence2', 'label'),
             ('entailment', 'not_entailment'), 'accuracy'),
    # WNLI header: index, sentence1, sentence2, label (0 = not_entailment, 1 = entailment).
    GlueTask('wnli', ('sentence1', 'sentence2'), 'WNLI', ('sentence1', 'sentence2', 'label'),
             ('not_entailment', 'entailment'), 'accuracy', tsv_labels=_BINARY),
]}


def get_task(name):
    """The :class:`GlueTask` called ``name`` (case-insensitive; 'sst-2' and 'sts-b' are accepted), or ``name``
    itself when it already is one."""
    if isinstance(name, GlueTask):
        return name
    key = str(name).lower().replace('-', '')
    if key not in GLUE_TASKS:
        raise ValueError(f'task must be one of {sorted(GLUE_TASKS)}, got {name!r}')
    return GLUE_TASKS[key]
