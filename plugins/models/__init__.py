"""Models registered into torchdistill's model registry."""
from . import mlp
