"""Multi-device training: the Trainer's device arguments, sharded data with a single device's order, and the
launch of one process per device.

The rule (see README, "Scaling out"): `train.batch_size` is the GLOBAL batch. Every rank walks the batches a
single device would see, in the same order, and takes its consecutive 1/world share of each, so the union of
the ranks' step-s batches is the single-device step-s batch; DDP averages the ranks' gradients, which for a
per-example mean loss is the single-device gradient. Evaluation splits each dev set into consecutive,
unpadded shards (Lightning's DistributedSampler would repeat examples to even the shards out and bias the
metrics); torchmetrics and the modules' sums are reduced over ranks.

Launch: `attnlab` starts the ranks itself. A multi-device run in a process that was not started as a rank
(`attnlab run`, a study's trial) trains in a child `python -m attnlab.train.ranks SPEC.json`, which
Lightning's `ddp` re-executes once per further device; rank 0 writes the record the parent reads back.
Under `torchrun` / `srun` (processes created outside; the only way to span nodes) each process trains in place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from attnlab.config import ConfigError, RunConfig, TrainConfig, build_run_config, to_dict
from attnlab.record import Record

RANKS_ENV = "ATTNLAB_RANKS_LAUNCHED"  # set in the processes attnlab launched as ranks


def launched_externally() -> bool:
    """Ranks created outside attnlab: torchrun, or srun with several tasks."""
    if os.environ.get(RANKS_ENV):
        return False
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ or \
        int(os.environ.get("SLURM_NTASKS", "1")) > 1


def needs_launch(tr: TrainConfig) -> bool:
    """True when this process must start the ranks (in a child) rather than train in place."""
    return tr.world_size > 1 and not os.environ.get(RANKS_ENV) and not launched_externally()


def global_rank() -> int:
    """This process's rank, also before the process group exists (from the launcher's environment)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    if os.environ.get(RANKS_ENV):  # attnlab's own launch: one node, Lightning numbers the ranks LOCAL_RANK
        return int(os.environ.get("LOCAL_RANK", "0"))
    if launched_externally():
        return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    return 0


def is_global_zero() -> bool:
    return global_rank() == 0


def trainer_kwargs(tr: TrainConfig) -> dict[str, Any]:
    """Lightning's device arguments. Data sharding is ours (`use_distributed_sampler=False`)."""
    kw: dict[str, Any] = {"accelerator": tr.accelerator, "devices": tr.devices, "num_nodes": tr.num_nodes,
                          "strategy": tr.strategy, "use_distributed_sampler": False}
    if tr.world_size > 1:
        kw["strategy"] = "ddp" if tr.strategy == "auto" else tr.strategy
        if os.environ.get(RANKS_ENV):  # our own launch: ignore a SLURM allocation around this worker
            from lightning_fabric.plugins.environments import LightningEnvironment

            kw["plugins"] = [LightningEnvironment()]
    return kw


# ---- data ----------------------------------------------------------------------------------------
class StepBatchSampler(Sampler[list[int]]):
    """The single-device batches of `inner`, epoch by epoch, each cut into `world` consecutive shards of which
    this rank takes one. Epoch e's order does not depend on where the loader started (a resumed run starts at
    its checkpoint's epoch): samplers with `set_epoch` are told the epoch, others (a RandomSampler with a
    seeded generator) are replayed. `skip` drops the first batches of epoch `skip_epoch` (resumed mid-epoch).

    The epoch comes from Lightning, which calls `set_epoch` on `batch_sampler.sampler` (never on the batch
    sampler itself): `sampler` is that hook. `generator`: the loader's generator, if the inner sampler shuffles
    with it; a replayed epoch also draws the loader's per-epoch base seed from it, as the DataLoader did."""

    def __init__(self, inner: Any, rank: int = 0, world: int = 1, skip: int = 0, skip_epoch: int = 0,
                 generator: torch.Generator | None = None) -> None:
        self.inner, self.rank, self.world = inner, rank, world
        self.skip, self.skip_epoch, self.generator = skip, skip_epoch, generator
        self.epoch = skip_epoch
        self.sampler = _EpochHook(self)
        self._iterated = 0  # epochs drawn from a sampler without set_epoch
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.inner)

    def _global_batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]  # iter() twice in one epoch gives the same batches
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(self.epoch)
        else:
            for _ in range(self._iterated, self.epoch):  # replay the epochs a resumed loader skipped
                if self.generator is not None:
                    torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # their base seeds
                list(self.inner)
            self._iterated = self.epoch + 1
        batches = [list(b) for b in self.inner]
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._global_batches()
        if self.skip and self.epoch == self.skip_epoch:
            batches, self.skip = batches[self.skip:], 0
        for batch in batches:
            yield shard(batch, self.rank, self.world)


class _EpochHook:
    """What Lightning finds at `batch_sampler.sampler`: it passes the epoch on."""

    def __init__(self, owner: StepBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


def shard(batch: list[int], rank: int, world: int) -> list[int]:
    """Rank's consecutive share; a short last batch is split as evenly as it goes, and a rank left with
    nothing repeats the batch's first example (DDP needs every rank to step)."""
    if world == 1:
        return batch
    lo, hi = rank * len(batch) // world, (rank + 1) * len(batch) // world
    return batch[lo:hi] or batch[:1]


class ShardSampler(Sampler[int]):
    """Consecutive, unpadded shard of `n` evaluation examples."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.lo, self.hi = rank * n // world, (rank + 1) * n // world

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.lo, self.hi))

    def __len__(self) -> int:
        return self.hi - self.lo


def _rebuild(loader: DataLoader[Any], **kw: Any) -> DataLoader[Any]:
    return DataLoader(loader.dataset, collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory, persistent_workers=loader.num_workers > 0, **kw)


def prepare_loaders(dm: Any, skip: int = 0, skip_epoch: int = 0) -> None:
    """Route the datamodule's loaders through `StepBatchSampler` / `ShardSampler` (rank and world are read
    from its trainer when Lightning asks for them)."""
    train_fn, val_fn = dm.train_dataloader, dm.val_dataloader

    def rank_world() -> tuple[int, int]:
        trainer = dm.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader() -> DataLoader[Any]:
        loader = train_fn()
        rank, world = rank_world()
        sampler = StepBatchSampler(loader.batch_sampler, rank, world, skip, skip_epoch, loader.generator)
        return _rebuild(loader, batch_sampler=sampler, generator=loader.generator)

    def val_dataloader() -> Any:
        loaders = val_fn()
        rank, world = rank_world()
        if world == 1:
            return loaders
        many = isinstance(loaders, list)
        out = [_rebuild(lo, batch_size=lo.batch_size, sampler=ShardSampler(len(lo.dataset), rank, world))  # type: ignore[arg-type]
               for lo in (loaders if many else [loaders])]
        return out if many else out[0]

    dm.train_dataloader, dm.val_dataloader = train_dataloader, val_dataloader


def reduce_sum(module: Any, value: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (identity on one device)."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size == 1:
        return value
    return trainer.strategy.reduce(value, reduce_op="sum")


# ---- launch ----------------------------------------------------------------------------------------
def launch(cfg: RunConfig, progress: bool, checkpoint_path: str | Path | None,
           checkpoint_dir: str | Path | None) -> Record:
    """Train a multi-device run in a child process (its ranks started by Lightning's ddp); rank 0's record."""
    if cfg.train.num_nodes > 1:
        raise ConfigError(f"train.num_nodes: {cfg.train.num_nodes} nodes need one process per device on every "
                          "node: start `attnlab run` under srun or torchrun (see README, Scaling out)")
    with tempfile.TemporaryDirectory(prefix="attnlab-ranks-") as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps({"config": to_dict(cfg), "result": str(out), "progress": progress,
                                    "checkpoint_path": None if checkpoint_path is None else str(checkpoint_path),
                                    "checkpoint_dir": None if checkpoint_dir is None else str(checkpoint_dir)}))
        env = dict(os.environ, **{RANKS_ENV: "1"})
        code = subprocess.run([sys.executable, "-m", "attnlab.train.ranks", str(spec)], env=env).returncode
        result = json.loads(out.read_text()) if out.is_file() else {}
    if "record" in result:
        return Record.from_dict(result["record"], "rank 0")
    error = result.get("error", f"exit code {code}")
    from attnlab.train.common import NonFiniteLossError

    if result.get("kind") == "NonFiniteLossError":
        raise NonFiniteLossError(error)
    if result.get("kind") == "OutOfMemoryError":
        raise torch.OutOfMemoryError(error)
    raise RuntimeError(f"multi-device training failed: {error}")


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies (a killed worker takes its rank-0 child with it,
    which takes the further ranks), so no orphan keeps training and writing the trial's checkpoint."""
    if not sys.platform.startswith("linux"):
        return
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def run_spec(spec_path: str) -> int:
    """Body of `python -m attnlab.train.ranks SPEC.json`: every rank trains; rank 0 writes the result."""
    from attnlab.train.runner import train_run

    die_with_parent()

    spec = json.loads(Path(spec_path).read_text())
    cfg = build_run_config(spec["config"], source="rank launch spec")
    try:
        record = train_run(cfg, progress=spec["progress"], checkpoint_path=spec["checkpoint_path"],
                           checkpoint_dir=spec["checkpoint_dir"])
        result: dict[str, Any] = {"record": record.to_dict()}
    except Exception as e:  # reported to the parent, which re-raises it as the same kind of failure
        result = {"error": f"{type(e).__name__}: {e}", "kind": type(e).__name__}
    if is_global_zero():
        tmp = Path(spec["result"] + ".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(spec["result"])
    return 0 if "record" in result else 1
