from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from attnlab.tasks.lm_data import LMDataModule, pack_blocks
from attnlab.tasks.tokenizer import build_tokenizer


@pytest.mark.parametrize("name", ["lm/wikitext2", "lm/songci"])
def test_lm_blocks(data_root: Path, tmp_path: Path, name: str) -> None:
    dm = LMDataModule(
        name,
        data_root,
        vocab_size=800,
        max_length=32,
        batch_size=4,
        max_train_examples=300,
        max_eval_examples=60,
        cache_dir=tmp_path,
    )
    dm.setup("fit")
    assert dm.train_blocks is not None and dm.val_blocks is not None
    assert dm.train_blocks.shape[1] == 32 and dm.train_blocks.shape[0] > 50
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, 32) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].dtype == torch.bool and bool(batch["attention_mask"].all())
    assert torch.equal(batch["labels"], batch["input_ids"]) and not bool(batch["token_type_ids"].any())
    ids = dm.special_ids
    stream = dm.train_blocks.flatten()
    assert not bool((stream == ids.pad).any()) and not bool((stream == ids.cls).any())
    assert bool((stream == ids.sep).any())  # documents end with [SEP]
    val = list(dm.val_dataloader())
    torch.testing.assert_close(torch.cat([b["input_ids"] for b in val]), dm.val_blocks)
    again = LMDataModule(
        name,
        data_root,
        tokenizer=dm.tokenizer,
        max_length=32,
        batch_size=4,
        max_train_examples=300,
        max_eval_examples=60,
    )
    again.setup("fit")
    assert torch.equal(next(iter(again.train_dataloader()))["input_ids"], batch["input_ids"])  # seeded order


def test_pack_blocks_concatenates_documents_in_order(tmp_path: Path) -> None:
    tok: Tokenizer = build_tokenizer(
        "lm/wikitext2", ["the cat sat", "on the mat"] * 5, 60, cache_dir=tmp_path
    )
    blocks = pack_blocks(tok, ["the cat sat", "on the mat"], block_size=3)
    sep = tok.token_to_id("[SEP]")
    expected = [*tok.encode("the cat sat", add_special_tokens=False).ids, sep]
    expected += [*tok.encode("on the mat", add_special_tokens=False).ids, sep]
    assert blocks.flatten().tolist() == expected[: len(expected) // 3 * 3]
    with pytest.raises(ValueError, match="one block"):
        pack_blocks(tok, ["cat"], block_size=100)


def test_lm_module_rejects_classification_tasks() -> None:
    with pytest.raises(ValueError, match="TaskDataModule"):
        LMDataModule("glue/sst2")
