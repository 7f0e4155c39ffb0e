"""Datasets for the configs in yaml_configs/ (built with torchdistill's ``!import_call``)."""
from . import in_memory
from . import digits
from . import sinusoid
from . import noisy_sinusoid
