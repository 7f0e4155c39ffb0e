"""torch.distributed set-up for runs launched by torchrun: NCCL on GPUs, gloo on CPUs.

torchdistill's ``init_distributed_mode`` hard-codes NCCL and ``torch.cuda.set_device``, and its
``wrap_model`` only wraps models on CUDA, so CPU runs need both done here.
"""
import datetime
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ['init_distributed', 'is_main_process', 'wrap_student_for_cpu', 'barrier', 'cleanup']


def init_distributed(device, timeout_minutes=30):
    """Initialises the process group when launched by torchrun (RANK / WORLD_SIZE / LOCAL_RANK set).

    Returns ``(distributed, world_size, device_ids, device)``; on CUDA each rank gets ``cuda:LOCAL_RANK``.
    The timeout bounds every collective, so a rank that dies makes the others fail instead of hanging.
    """
    if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
        return False, 1, None, device
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if device.type == 'cuda':
        torch.cuda.set_device(local_rank)
        device = torch.device('cuda', local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend='nccl' if device.type == 'cuda' else 'gloo',
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    device_ids = [local_rank] if device.type == 'cuda' else None
    return True, dist.get_world_size(), device_ids, device


def is_main_process():
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier():
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def wrap_student_for_cpu(box, distributed):
    """Wraps the box's student in DistributedDataParallel on CPU (torchdistill wraps on CUDA only)."""
    attribute = 'student_model' if hasattr(box, 'student_model') else 'model'
    model = getattr(box, attribute)
    if distributed and not isinstance(model, DistributedDataParallel) and \
            next(model.parameters()).device.type == 'cpu':
        setattr(box, attribute, DistributedDataParallel(model))


def cleanup():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
