from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from attnlab.tasks import DataError, TaskSpec, get_task
from attnlab.tasks.batching import BucketBatchSampler, Collator
from attnlab.tasks.data import TaskDataModule
from attnlab.tasks.loading import load_split
from attnlab.tasks.tokenizer import SpecialIds


def check_batch(batch: dict[str, torch.Tensor], spec: TaskSpec, ids: SpecialIds, max_length: int) -> None:
    input_ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    size, length = input_ids.shape
    assert input_ids.dtype == types.dtype == torch.long and mask.dtype == torch.bool
    assert mask.shape == types.shape == (size, length) and length <= max_length
    assert batch["labels"].shape == (size,)
    assert bool(mask.any(dim=0).all()), "padded to the longest sequence in the batch, not further"
    lengths = mask.sum(dim=1)
    assert torch.equal(mask, torch.arange(length) < lengths[:, None]), "real tokens first, then padding"
    assert bool((input_ids[~mask] == ids.pad).all()) and bool((input_ids[mask] != ids.pad).all())
    assert bool((input_ids[:, 0] == ids.cls).all())
    assert bool((input_ids[torch.arange(size), lengths - 1] == ids.sep).all())
    assert bool((types[~mask] == 0).all())
    for row in range(size):
        seps = (input_ids[row] == ids.sep).nonzero().flatten().tolist()
        expected = torch.zeros(length, dtype=torch.long)
        if spec.is_pair:
            assert len(seps) == 2
            expected[seps[0] + 1 : seps[1] + 1] = 1  # second sentence and its [SEP]
        else:
            assert len(seps) == 1
        assert torch.equal(types[row], expected)
    if spec.is_regression:
        assert batch["labels"].dtype == torch.float32
    else:
        assert batch["labels"].dtype == torch.long
        assert bool(((batch["labels"] >= 0) & (batch["labels"] < spec.num_labels)).all())


@pytest.mark.parametrize(
    ("name", "max_length"), [("glue/rte", 48), ("glue/sst2", 64), ("glue/stsb", 40), ("clue/ocnli", 32)]
)
def test_batches_have_the_documented_layout(
    data_root: Path, tmp_path: Path, name: str, max_length: int
) -> None:
    dm = TaskDataModule(
        name,
        data_root,
        vocab_size=600,
        max_length=max_length,
        batch_size=16,
        eval_batch_size=32,
        max_train_examples=400,
        max_eval_examples=64,
        cache_dir=tmp_path,
    )
    dm.setup("fit")
    assert dm.tokenizer_vocab_size <= 600 and dm.special_ids.pad == 0
    train = list(dm.train_dataloader())
    assert sum(len(b["labels"]) for b in train) == 400
    for batch in train[:5]:
        check_batch(batch, dm.spec, dm.special_ids, max_length)
    assert isinstance(dm.val_dataloader(), torch.utils.data.DataLoader) and dm.val_split_names == (
        "validation",
    )
    val_batches = list(dm.eval_dataloader("validation"))
    check_batch(val_batches[0], dm.spec, dm.special_ids, max_length)
    expected = load_split(name, "validation", data_root, max_examples=64, seed=0)["label"]
    torch.testing.assert_close(torch.cat([b["labels"] for b in val_batches]), torch.tensor(list(expected)))


def test_checker_catches_broken_batches(data_root: Path, tmp_path: Path) -> None:
    dm = TaskDataModule(
        "glue/rte",
        data_root,
        vocab_size=400,
        max_train_examples=64,
        max_eval_examples=8,
        batch_size=8,
        cache_dir=tmp_path,
    )
    dm.setup("fit")
    good = next(iter(dm.eval_dataloader("validation")))
    check_batch(good, dm.spec, dm.special_ids, 256)
    broken = {k: v.clone() for k, v in good.items()}
    broken["token_type_ids"][broken["attention_mask"]] = 0  # segment ids lost
    with pytest.raises(AssertionError):
        check_batch(broken, dm.spec, dm.special_ids, 256)
    wrong_pad = Collator(pad_id=dm.special_ids.unk)([dm.val_splits["validation"][i] for i in range(8)])
    with pytest.raises(AssertionError):
        check_batch(wrong_pad, dm.spec, dm.special_ids, 256)


def test_truncation_keeps_both_sentences(data_root: Path, tmp_path: Path) -> None:
    dm = TaskDataModule(
        "clue/csl",
        data_root,
        vocab_size=800,
        max_length=24,
        max_train_examples=100,
        max_eval_examples=20,
        cache_dir=tmp_path,
    )
    dm.setup("fit")
    split = dm.val_splits["validation"]
    for ids, types in zip(split.input_ids, split.token_type_ids, strict=True):
        assert len(ids) == 24 and ids.count(dm.special_ids.sep) == 2 and sum(types) >= 2


def test_mnli_has_two_validation_dataloaders(tmp_path: Path, mnli_root: Path) -> None:
    dm = TaskDataModule("glue/mnli", mnli_root, vocab_size=100, batch_size=4, cache_dir=tmp_path / "cache")
    dm.setup("fit")
    loaders = dm.val_dataloader()
    assert isinstance(loaders, list) and len(loaders) == 2
    assert dm.val_split_names == ("validation_matched", "validation_mismatched")
    labels = torch.cat([b["labels"] for b in loaders[1]])
    assert labels.tolist() == [0, 2, 1] * 3


def test_missing_train_split_fails_early_and_clearly(data_root: Path, tmp_path: Path) -> None:
    dm = TaskDataModule("clue/iflytek", data_root, cache_dir=tmp_path)
    with pytest.raises(DataError, match=r"iflytek/train\.json"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="LMDataModule"):
        TaskDataModule("lm/wikitext2", data_root)


def test_validate_stage_with_a_given_tokenizer_skips_train(data_root: Path, tmp_path: Path) -> None:
    fit = TaskDataModule("clue/iflytek", data_root, vocab_size=300, max_eval_examples=50, cache_dir=tmp_path)
    with pytest.raises(DataError):
        fit.setup("validate")  # no tokenizer: would need train texts
    other = TaskDataModule(
        "clue/tnews", data_root, vocab_size=300, max_train_examples=200, cache_dir=tmp_path
    )
    other.setup("fit")
    dm = TaskDataModule(
        "clue/iflytek", data_root, tokenizer=other.tokenizer, max_eval_examples=50, max_length=64
    )
    dm.setup("validate")
    assert dm.train_split is None and len(dm.val_splits["validation"]) == 50
    check_batch(next(iter(dm.eval_dataloader("validation"))), dm.spec, dm.special_ids, 64)


def _padding(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_length_bucketing_reduces_padding(data_root: Path, tmp_path: Path) -> None:
    dm = TaskDataModule("glue/sst2", data_root, vocab_size=1000, max_train_examples=3000, cache_dir=tmp_path)
    dm.setup("fit")
    assert dm.train_split is not None
    lengths = dm.train_split.lengths
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=0, chunk_batches=20)
    bucketed = list(sampler)
    assert sorted(i for b in bucketed for i in b) == list(range(len(lengths))) and len(bucketed) == len(
        sampler
    )
    order = list(range(len(lengths)))
    random.Random(0).shuffle(order)
    shuffled = [order[i : i + 32] for i in range(0, len(order), 32)]
    assert _padding(lengths, bucketed) < 0.3 * _padding(lengths, shuffled)
    # Seeded and epoch-dependent, still random across batches.
    assert (
        list(sampler) != bucketed
        and list(BucketBatchSampler(lengths, 32, seed=0, chunk_batches=20)) == bucketed
    )
    sampler.set_epoch(0)
    assert list(sampler) == bucketed
    first_lengths = [lengths[b[0]] for b in bucketed]
    assert first_lengths != sorted(first_lengths)


def test_sampler_drop_last_and_rejects_bad_sizes() -> None:
    sampler = BucketBatchSampler(list(range(10)), batch_size=4, drop_last=True)
    assert len(sampler) == 2 and all(len(b) == 4 for b in sampler)
    with pytest.raises(ValueError):
        BucketBatchSampler([1, 2], batch_size=0)


def test_spec_metadata_is_reachable_from_the_module(tmp_path: Path) -> None:
    dm = TaskDataModule("sst2", tmp_path, max_length=None)
    assert dm.spec is get_task("glue/sst2") and dm.max_length == 64
    with pytest.raises(RuntimeError, match="setup"):
        dm.train_dataloader()
