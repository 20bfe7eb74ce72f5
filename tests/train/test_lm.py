"""Language-model objectives: masking statistics, seq2seq labels on target tokens only."""

from __future__ import annotations

import torch

from attnlab.config import ModelConfig, TrainConfig
from attnlab.train.lm import LanguageModelModule, mlm_mask, next_token_labels


def test_mlm_mask_statistics_and_specials_untouched() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (64, 128), generator=g)
    ids[:, 0] = 2  # [CLS]
    am = torch.ones_like(ids, dtype=torch.bool)
    am[:, 100:] = False
    corrupted, labels = mlm_mask(ids, am, special=[0, 1, 2, 3], mask_id=4, vocab_size=100, prob=0.15, generator=g)
    selected = labels != -100
    assert not selected[:, 0].any() and not selected[:, 100:].any()
    rate = selected[:, 1:100].float().mean().item()
    assert 0.13 < rate < 0.17
    masked = (corrupted == 4) & selected
    assert 0.75 < masked.sum().item() / selected.sum().item() < 0.85
    kept = (corrupted == ids) & selected
    assert 0.07 < kept.sum().item() / selected.sum().item() < 0.14  # 10% kept + random hits of the same id
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(corrupted[~selected], ids[~selected])


def test_seq2seq_labels_only_on_target_tokens() -> None:
    ids = torch.tensor([[10, 11, 12, 20, 21, 22, 0]])
    batch = {"input_ids": ids, "attention_mask": ids != 0,
             "token_type_ids": torch.tensor([[0, 0, 0, 1, 1, 1, 1]])}
    labels = next_token_labels(batch, "seq2seq")
    assert labels.tolist() == [[-100, -100, 20, 21, 22, -100]]
    assert next_token_labels(batch, "causal").tolist() == [[11, 12, 20, 21, 22, -100]]


def test_seq2seq_loss_ignores_source_and_model_uses_prefix_mask() -> None:
    cfg = ModelConfig(vocab_size=30, max_len=8, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0)
    module = LanguageModelModule(cfg, TrainConfig(), total_steps=10, objective="seq2seq")
    assert module.model.transformer.cfg.mask == "prefix"
    ids = torch.tensor([[3, 4, 5, 6, 7, 8]])
    tt = torch.tensor([[0, 0, 0, 1, 1, 1]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids, dtype=torch.bool), "token_type_ids": tt}
    _, count, _ = module.token_nll(batch)
    assert int(count) == 3  # predicts tokens 6, 7, 8 (the target) only
    other = dict(batch, input_ids=torch.tensor([[9, 9, 9, 6, 7, 8]]))
    nll_a, _, _ = module.token_nll(batch)
    nll_b, _, _ = module.token_nll(other)
    assert not torch.isclose(nll_a, nll_b), "target predictions must depend on the source"


def test_loss_from_scored_positions_only_equals_the_full_projection() -> None:
    """token_nll projects to the vocabulary only where a loss is taken; the sums match projecting everything."""
    import pytest
    from torch.testing import assert_close

    cfg = ModelConfig(vocab_size=30, max_len=12, d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                      attention_dropout=0.0)
    ids = torch.randint(5, 30, (3, 10), generator=torch.Generator().manual_seed(0))
    am = torch.ones_like(ids, dtype=torch.bool)
    am[0, 7:] = False
    tt = torch.zeros_like(ids)
    tt[:, 6:] = 1
    batch = {"input_ids": ids, "attention_mask": am, "token_type_ids": tt}
    for objective in ("mlm", "causal", "seq2seq"):
        module = LanguageModelModule(cfg, TrainConfig(), total_steps=1, objective=objective, special_ids=(0, 1, 2, 3),
                                     mask_id=4)
        nll, count, correct = module.token_nll(batch, torch.Generator().manual_seed(1))
        if objective == "mlm":
            inputs, labels = mlm_mask(ids, am, [0, 1, 2, 3], 4, 30, 0.15, torch.Generator().manual_seed(1))
            logits = module.model(inputs, am, tt)
        else:
            logits, labels = module.model(ids, am, tt)[:, :-1], next_token_labels(batch, objective)
        flat, target = logits.reshape(-1, 30), labels.reshape(-1)
        full = torch.nn.functional.cross_entropy(flat, target, ignore_index=-100, reduction="sum")
        assert int(count) == int((target != -100).sum()) > 0
        assert_close(nll, full)
        assert int(correct) == int(((flat.argmax(-1) == target) & (target != -100)).sum())
        with pytest.raises(AssertionError):  # the check can fail: one position fewer changes the sum
            assert_close(nll, full - torch.nn.functional.cross_entropy(flat[target != -100][:1],
                                                                        target[target != -100][:1], reduction="sum"))
