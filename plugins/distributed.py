"""torch.distributed for runs launched by torchrun: NCCL on GPUs, gloo on CPUs.

torchdistill's ``init_distributed_mode`` hard-codes NCCL and ``torch.cuda.set_device``; its ``wrap_model``
wraps a student in DistributedDataParallel only on CUDA and only when the config names a ``wrapper``; and
in distributed mode its ``build_data_loader`` replaces the config's sampler by a ``DistributedSampler`` with
that sampler's kwargs (``shuffle=True``, ``seed=0``, last shard padded by repeating samples). The helpers
below close those gaps so that a run under ``torchrun --nproc_per_node=N`` trains like one process whose
batch is N times the per-rank ``batch_size`` (to float rounding when the sampler does not shuffle; a
shuffled order is drawn differently) and reports exactly the single-process metrics.

Outside torchrun (no ``RANK`` / ``WORLD_SIZE`` in the environment) every helper is a no-op.
"""
import datetime
import logging
import os
from typing import List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, SequentialSampler, Subset
from torch.utils.data.distributed import DistributedSampler

from .config_util import loader_in_force

__all__ = ['TIMEOUT_ENV', 'init_distributed', 'is_distributed', 'get_rank', 'get_world_size', 'is_main_process',
           'barrier', 'wrap_student', 'align_train_sampler', 'train_loader_config', 'prepare_epoch',
           'sum_across_ranks', 'broadcast_module_state', 'load_ckpt_on_all_ranks', 'unpadded_shard',
           'gather_in_dataset_order', 'cleanup']

# Seconds a collective may wait for the other ranks (default 30 minutes); a rank that dies or hangs then
# makes the others raise instead of blocking forever, and torchrun ends the job with an error.
TIMEOUT_ENV = 'PLUGINS_DIST_TIMEOUT_S'


def init_distributed(device: torch.device, timeout_s: Optional[float] = None) \
        -> Tuple[bool, int, Optional[List[int]], torch.device]:
    """Initialises the process group when launched by torchrun (RANK / WORLD_SIZE / LOCAL_RANK set).

    Returns ``(distributed, world_size, device_ids, device)``; on CUDA each rank gets ``cuda:LOCAL_RANK``.
    ``timeout_s`` (default: ``$PLUGINS_DIST_TIMEOUT_S`` or 1800) bounds every collective.
    """
    if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
        return False, 1, None, device
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if device.type == 'cuda':
        torch.cuda.set_device(local_rank)
        device = torch.device('cuda', local_rank)
    if not dist.is_initialized():
        if timeout_s is None:
            try:
                timeout_s = float(os.environ.get(TIMEOUT_ENV, 1800))
            except ValueError:
                raise ValueError(f'{TIMEOUT_ENV} must be a number of seconds, got {os.environ[TIMEOUT_ENV]!r}')
        if timeout_s <= 0:
            raise ValueError(f'{TIMEOUT_ENV} must be a positive number of seconds, got {timeout_s!r}')
        dist.init_process_group(backend='nccl' if device.type == 'cuda' else 'gloo',
                                timeout=datetime.timedelta(seconds=timeout_s))
        if dist.get_rank() != 0:  # one copy of the INFO log (rank 0's); warnings and errors from every rank
            from torchdistill.common.constant import def_logger
            def_logger.setLevel(logging.WARNING)
    device_ids = [local_rank] if device.type == 'cuda' else None
    return True, dist.get_world_size(), device_ids, device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _is_wrapped(model):
    from torchdistill.common.module_util import check_if_wrapped
    return check_if_wrapped(model)


def wrap_student(box, device_ids: Optional[List[int]] = None) -> None:
    """Wraps the box's student in DistributedDataParallel unless it is wrapped already.

    Call it every epoch: a stage switch rebuilds ``box.student_model`` from the unwrapped model. The forward
    hooks torchdistill set on the inner modules keep filling the io_dict through the wrapper, and the
    optimizer already holds the same parameter tensors. DDP's constructor broadcasts rank 0's weights.
    """
    attribute = 'student_model' if hasattr(box, 'student_model') else 'model'
    model = getattr(box, attribute)
    if not is_distributed() or _is_wrapped(model) or not any(p.requires_grad for p in model.parameters()):
        return
    on_cuda = next(model.parameters()).device.type == 'cuda'
    setattr(box, attribute, DistributedDataParallel(model, device_ids=device_ids if on_cuda else None))


def align_train_sampler(data_loader: DataLoader, loader_config: Optional[dict], seed: int) -> None:
    """Makes torchdistill's ``DistributedSampler`` follow the config instead of its own defaults.

    A config's ``SequentialSampler`` means no shuffling (DistributedSampler would shuffle), and a shuffling
    sampler draws its order from the run's ``seed`` (DistributedSampler's default seed is 0 for every run)
    unless the sampler kwargs set ``shuffle`` or ``seed`` themselves.
    """
    sampler = getattr(getattr(data_loader, 'batch_sampler', None), 'sampler', None)
    if not isinstance(sampler, DistributedSampler):
        return
    sampler_config = (loader_config or {}).get('sampler') or {}
    kwargs = sampler_config.get('kwargs') or {}
    sampler_class = sampler_config.get('class_or_func')
    if 'shuffle' not in kwargs and isinstance(sampler_class, type):
        sampler.shuffle = not issubclass(sampler_class, SequentialSampler)
    if 'seed' not in kwargs:
        sampler.seed = int(seed)


def train_loader_config(train_config: dict, stage_number: int = 1) -> Optional[dict]:
    """The training-loader config in force at ``stage_number``; a stage without one keeps the previous one."""
    return loader_in_force(train_config, stage_number)


def prepare_epoch(box, train_config: dict, seed: int, device_ids: Optional[List[int]] = None) -> None:
    """Per-epoch distributed set-up (no-op outside torchrun): DDP-wraps the student, aligns the sampler."""
    if not is_distributed():
        return
    wrap_student(box, device_ids)
    loader_config = train_loader_config(train_config, getattr(box, 'stage_number', 1))
    align_train_sampler(box.train_data_loader, loader_config, seed)


def sum_across_ranks(*values: float) -> Tuple[float, ...]:
    """The sums over all ranks of the float ``values`` (the values themselves outside torchrun)."""
    if not is_distributed():
        return values
    backend_device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
    totals = torch.tensor([float(value) for value in values], dtype=torch.float64, device=backend_device)
    dist.all_reduce(totals)
    return tuple(totals.tolist())


@torch.no_grad()
def broadcast_module_state(module: torch.nn.Module, src: int = 0) -> None:
    """Copies rank ``src``'s parameters and buffers into every rank's ``module``."""
    if not is_distributed():
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=src)


def load_ckpt_on_all_ranks(ckpt_path: str, model: torch.nn.Module) -> None:
    """Rank 0 loads a checkpoint it wrote into ``model`` and broadcasts it, so every rank resumes from it.

    Only rank 0 reads the file, so nodes need no shared file system (torchdistill's ``load_ckpt`` silently
    skips a missing file and unpickles arbitrary objects: here the file is read with ``weights_only=True`` and
    a missing or damaged file is a :class:`~plugins.errors.CheckpointError`).
    """
    from .checkpoint import load_model_weights
    if is_main_process():
        load_model_weights(model, ckpt_path, what='stage checkpoint')
    broadcast_module_state(model)


def _distributed_sampler(data_loader):
    sampler = getattr(getattr(data_loader, 'batch_sampler', None), 'sampler', None)
    sampler = sampler if sampler is not None else getattr(data_loader, 'sampler', None)
    return sampler if isinstance(sampler, DistributedSampler) else None


def unpadded_shard(data_loader: DataLoader) -> Tuple[DataLoader, Optional[List[int]]]:
    """``(loader, indices)``: this rank's samples ``rank, rank + W, ...`` of the loader's dataset, unpadded.

    ``DistributedSampler`` pads the last shard by repeating samples, which would count them twice in a
    metric; this shard covers every sample exactly once across the ranks. Returns ``(data_loader, None)``
    outside torchrun or when the loader has no DistributedSampler (every rank then sees the whole split).
    The batch size, collate function and workers are the loader's own.
    """
    sampler = _distributed_sampler(data_loader)
    if not is_distributed() or sampler is None:
        return data_loader, None
    indices = list(range(sampler.rank, len(data_loader.dataset), sampler.num_replicas))
    batch_size = data_loader.batch_size or getattr(data_loader.batch_sampler, 'batch_size', None) or 1
    loader = DataLoader(Subset(data_loader.dataset, indices), batch_size=batch_size, shuffle=False,
                        num_workers=data_loader.num_workers, collate_fn=data_loader.collate_fn,
                        pin_memory=data_loader.pin_memory)
    return loader, indices


def gather_in_dataset_order(indices: Sequence[int], *batch_lists: List[torch.Tensor]) -> List[torch.Tensor]:
    """Gathers every rank's per-batch tensors and returns them concatenated in dataset-index order.

    ``indices`` are the dataset indices of this rank's samples, in the order of its concatenated batches
    (from :func:`unpadded_shard`); each of ``batch_lists`` is a list of per-batch tensors.
    """
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, (list(indices), [[batch.cpu() for batch in batches] for batches in batch_lists]))
    all_indices = torch.tensor([index for rank_indices, _ in gathered for index in rank_indices])
    if len(torch.unique(all_indices)) != len(all_indices):
        raise RuntimeError('the ranks evaluated overlapping samples: shards must be disjoint')
    order = torch.argsort(all_indices)
    results = []
    for position in range(len(batch_lists)):
        batches = [batch for _, rank_lists in gathered for batch in rank_lists[position]]
        results.append(torch.cat(batches)[order])
    return results


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
