"""Multi-device training: the config keys, sharded data with a single device's order, and DDP on two CPU
processes (gloo) giving one process's dev metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler

from attnlab.config import ConfigError, TrainConfig, build_run_config, load_run_config
from attnlab.tasks.batching import BucketBatchSampler
from attnlab.train.distributed import ShardSampler, StepBatchSampler, shard
from attnlab.train.runner import train_run

REPO = Path(__file__).resolve().parents[2]


def cfg_with(**train: object):  # type: ignore[no-untyped-def]
    return build_run_config({"task": {"name": "glue/sst2"}, "train": dict(train)})


@pytest.mark.parametrize(("given", "resolved"), [("bf16", "bf16-mixed"), (16, "16-mixed"), (32, "32"),
                                                 ("32-true", "32"), ("bf16-mixed", "bf16-mixed")])
def test_precision_aliases(given: object, resolved: str) -> None:
    assert cfg_with(precision=given).train.precision == resolved


@pytest.mark.parametrize(("train", "message"), [
    ({"strategy": "ddp_spawn"}, "train.strategy: 'ddp_spawn' keeps the trained state"),
    ({"strategy": "dpp"}, "Did you mean 'ddp'"),
    ({"devices": 0}, "train.devices: must be >= 1"),
    ({"num_nodes": 0}, "train.num_nodes: must be >= 1"),
    ({"devices": 4, "batch_size": 30}, "train.batch_size: 30 is the global batch and must divide evenly over "
                                       "devices × num_nodes = 4"),
    ({"devices": 2, "num_nodes": 2, "batch_size": 6}, "devices × num_nodes = 4"),
    ({"precision": "bf17"}, "train.precision"),
    ({"accelerator": "tpuu"}, "train.accelerator"),
    ({"checkpoint_every_n_steps": -1}, "train.checkpoint_every_n_steps: must be >= 0"),
])
def test_scale_keys_are_validated(train: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cfg_with(**train)


def test_reading_comprehension_stays_on_one_device() -> None:
    with pytest.raises(ConfigError, match=r"train\.devices: clue/cmrc2018 assembles answers"):
        build_run_config({"task": {"name": "clue/cmrc2018"}, "train": {"devices": 2}})


def test_world_size_and_valid_multi_device_config() -> None:
    cfg = cfg_with(devices=2, num_nodes=2, strategy="ddp", batch_size=32)
    assert cfg.train.world_size == 4
    assert TrainConfig().world_size == 1


def _shards(inner: object, world: int, epoch: int = 0) -> list[list[list[int]]]:
    """Per rank, the batches of `epoch` (each rank gets a fresh sampler over an equal inner)."""
    out = []
    for rank in range(world):
        sampler = StepBatchSampler(inner() if callable(inner) else inner, rank, world)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("kind", ["bucket", "random"])
def test_ranks_split_each_single_device_batch(kind: str, world: int) -> None:
    lengths = [(i * 7) % 23 + 1 for i in range(101)]

    def inner() -> object:
        if kind == "bucket":
            return BucketBatchSampler(lengths, 12, seed=3, chunk_batches=2)
        return BatchSampler(RandomSampler(range(101), generator=torch.Generator().manual_seed(3)), 12, False)

    for epoch in (0, 2):
        single = _shards(inner, 1, epoch)[0]
        ranks = _shards(inner, world, epoch)
        assert all(len(r) == len(single) for r in ranks)  # every rank steps as often as one device
        for step, batch in enumerate(single):
            joined = [i for r in ranks for i in r[step]]
            if len(batch) >= world:
                assert joined == batch, f"step {step}: the ranks' shards are not the single-device batch"
                assert max(len(r[step]) for r in ranks) - min(len(r[step]) for r in ranks) <= 1


def test_a_resumed_sampler_replays_earlier_epochs_and_skips_consumed_batches() -> None:
    def inner() -> BatchSampler:
        return BatchSampler(RandomSampler(range(50), generator=torch.Generator().manual_seed(0)), 8, False)

    through = StepBatchSampler(inner())
    epochs = []
    for e in range(3):
        through.set_epoch(e)
        epochs.append(list(through))
    assert epochs[0] != epochs[2]
    resumed = StepBatchSampler(inner(), skip=3, skip_epoch=2)  # a fresh loader, resumed mid-epoch 2
    resumed.set_epoch(2)
    assert list(resumed) == epochs[2][3:]
    resumed.set_epoch(3)
    through.set_epoch(3)
    assert list(resumed) == list(through)  # later epochs are whole again


def test_shard_never_leaves_a_rank_empty_and_eval_shards_cover_once() -> None:
    assert [shard([5], r, 2) for r in range(2)] == [[5], [5]]
    assert [shard([1, 2, 3], r, 2) for r in range(2)] == [[1], [2, 3]]
    seen = [i for r in range(3) for i in ShardSampler(10, r, 3)]
    assert seen == list(range(10))


TINY = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.d_ff=64", "model.max_len=32",
        "task.max_length=32", "task.vocab_size=500", "train.batch_size=16", "train.max_steps=8",
        "task.max_train_examples=200", "task.max_eval_examples=100", "model.dropout=0",
        "model.attention_dropout=0", "train.accelerator=cpu", "train.precision=32"]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gives_one_process_metrics(data_root: Path, tmp_path: Path) -> None:
    """8 steps over 13 batches of SST-2, once on one process and once with `strategy: ddp, devices: 2`
    (gloo; attnlab launches the second rank): same batches, same steps, same dev metrics. Dropout is off:
    two ranks draw their dropout masks from two streams, one device from one."""
    one = load_run_config(REPO / "sweeps/base/sst2.yaml", [*TINY, f"task.data_root={data_root}"])
    two = dataclasses.replace(one, train=dataclasses.replace(one.train, devices=2, strategy="ddp"))
    single, ddp = train_run(one, progress=False), train_run(two, out_dir=tmp_path, progress=False)
    assert ddp.cost.train_steps == single.cost.train_steps == 8
    assert ddp.cost.train_tokens == single.cost.train_tokens  # summed over the ranks' shards
    for key in ("val/accuracy", "val/loss", "val/score"):
        # float32 sums in another order (two ranks' partial gradients): ~1e-7 after 8 Adam steps
        torch.testing.assert_close(ddp.metrics[key], single.metrics[key], rtol=0, atol=1e-4)
    assert len(list(tmp_path.glob("*.json"))) == 1  # one record: rank 0 wrote it


def test_who_starts_the_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning_fabric.plugins.environments import LightningEnvironment

    from attnlab.train.distributed import RANKS_ENV, launch, needs_launch, trainer_kwargs

    for key in (RANKS_ENV, "LOCAL_RANK", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    two = cfg_with(devices=2)
    assert needs_launch(two.train) and not needs_launch(cfg_with().train)
    kw = trainer_kwargs(two.train)
    assert kw["strategy"] == "ddp" and kw["devices"] == 2 and kw["use_distributed_sampler"] is False
    assert "plugins" not in kw  # outside attnlab's own launch Lightning detects torchrun / SLURM itself
    monkeypatch.setenv("SLURM_NTASKS", "2")  # srun started one process per device: train in place
    assert not needs_launch(two.train)
    monkeypatch.delenv("SLURM_NTASKS")
    monkeypatch.setenv(RANKS_ENV, "1")  # a rank attnlab launched: train in place, ignore a SLURM allocation
    assert not needs_launch(two.train)
    assert isinstance(trainer_kwargs(two.train)["plugins"][0], LightningEnvironment)
    with pytest.raises(ConfigError, match=r"train\.num_nodes: 2 nodes need one process per device on every node"):
        launch(cfg_with(devices=2, num_nodes=2, batch_size=32), False, None, None)
