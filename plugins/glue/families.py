"""The one table of the GLUE model families: which model plays which role, by config name and hub checkpoint.

The config generator (``yaml_configs/glue_configs.py``), the benchmark suite (``benchmarks/suites/glue.py``) and
the checkpoint resolution (:mod:`plugins.glue.names`) all read :data:`FAMILIES`; nothing else lists the models.

- ``roberta``: RoBERTa-large teacher, RoBERTa-base TA, DistilRoBERTa student (Annealing-KD paper, Tables 3, 7, 8);
- ``bert``: a 24-layer BERT teacher (the paper's name is cut off in our copy; we use BERT-large), BERT-base TA,
  BERT-Small (4 layers, H = 512: Google's miniature) student (Tables 5, 7, 11).

Hub ids are in their current namespaced form (the legacy ``roberta-large``, ``bert-base-uncased``... redirect to
them).
"""
from dataclasses import dataclass

__all__ = ['GlueModel', 'FAMILIES', 'ROLES']

ROLES = ('teacher', 'ta', 'student')


@dataclass(frozen=True)
class GlueModel:
    """``name``: the model's name in config file names (``<student>_from_<teacher>.yaml``); ``hub_id``: the
    paper's pretrained checkpoint, the default when no local folder is given."""
    name: str
    hub_id: str


FAMILIES = {
    'roberta': {'teacher': GlueModel('roberta_large', 'FacebookAI/roberta-large'),
                'ta': GlueModel('roberta_base', 'FacebookAI/roberta-base'),
                'student': GlueModel('distilroberta_base', 'distilbert/distilroberta-base')},
    'bert': {'teacher': GlueModel('bert_large', 'google-bert/bert-large-uncased'),
             'ta': GlueModel('bert_base', 'google-bert/bert-base-uncased'),
             'student': GlueModel('bert_small', 'google/bert_uncased_L-4_H-512_A-8')},
}
