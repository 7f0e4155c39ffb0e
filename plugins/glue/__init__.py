"""GLUE for torchdistill, in the schema of torchdistill's ``examples/hf_transformers/text_classification.py``:
task metadata, the model families, raw data (official TSVs or Hugging Face ``glue``), Hugging Face sequence
classifiers, GLUE metrics (also behind ``evaluate``'s API), the linear warm-up schedule, and the adaptation that
lets our runner train text-schema configs (:mod:`plugins.glue.text_schema`).

Importing it registers the model ``hf_text_classifier``, the scheduler ``linear_warmup_schedule``, the model-loss
extraction ``extract_hf_model_loss`` and the metrics ``glue_cola``, ``glue_stsb``, ``glue_mrpc``, ``glue_qqp``.
transformers and datasets are imported only when a model, tokenizer or data set is built.
"""
from . import data, families, metrics, models, names, schedulers, tasks, text_schema
from .tasks import GLUE_TASKS, get_task
