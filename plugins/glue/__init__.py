"""GLUE for torchdistill: task metadata, data (Hugging Face ``glue`` or official TSVs), Hugging Face
sequence classifiers returning logits, GLUE metrics and the linear warm-up schedule.

Importing it registers the model ``hf_sequence_classifier``, the collate function ``glue_collate``, the
scheduler ``linear_warmup_schedule`` and the metrics ``glue_cola``, ``glue_stsb``, ``glue_mrpc``, ``glue_qqp``.
transformers is imported only when a model or tokenizer is built.
"""
from . import data, metrics, models, names, schedulers, tasks
from .tasks import GLUE_TASKS, get_task
