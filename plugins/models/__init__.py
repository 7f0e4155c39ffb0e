"""Models registered into torchdistill's model registry."""
from . import mlp
from . import cifar
from . import analytic
