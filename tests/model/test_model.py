"""Model-level behaviour: sharing and untie, CLN, key_size, parameter formulas, heads, learning."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnlab.attention import ATTENTION
from attnlab.config import AttentionConfig, ModelConfig, from_dict
from attnlab.model import CausalLM, MaskedLM, SequenceClassifier, Transformer, untie
from attnlab.model.blocks import ConditionalLayerNorm

V, L, D, H, F_, N = 50, 16, 16, 4, 32, 3


def cfg(**kw: object) -> ModelConfig:
    base: dict[str, object] = dict(vocab_size=V, max_len=L, d_model=D, n_heads=H, n_layers=N, d_ff=F_, dropout=0.0,
                                   attention_dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)  # type: ignore[arg-type]


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (2, 7), generator=g)
    pad = torch.ones(2, 7, dtype=torch.bool)
    pad[1, 5:] = False
    seg = torch.zeros(2, 7, dtype=torch.long)
    seg[:, 4:] = 1
    return ids, pad, seg


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def expected_params(c: ModelConfig) -> int:
    d, e, hk, hv = c.d_model, c.emb_size, c.n_heads * c.head_key_size, c.n_heads * c.head_value_size
    emb = c.vocab_size * e + c.max_len * e + c.type_vocab_size * e + (2 * e if c.norm_position == "post" else 0)
    emb += e * d + d if e != d else 0
    attn = 2 * (d * hk + hk) + (d * hv + hv) + (hv * d + d) + 2 * d
    ffn = d * c.d_ff + c.d_ff + c.d_ff * d + d + 2 * d
    n_attn = 1 if c.sharing in ("all", "attention") else c.n_layers
    n_ffn = 1 if c.sharing in ("all", "ffn") else c.n_layers
    return emb + n_attn * attn + n_ffn * ffn + (2 * d if c.norm_position == "pre" else 0)


@pytest.mark.parametrize("sharing", ["none", "all", "attention", "ffn"])
@pytest.mark.parametrize("sizes", [{}, {"key_size": 12}, {"key_size": 12, "value_size": 2}, {"embedding_size": 8}])
def test_parameter_count_formula(sharing: str, sizes: dict[str, int]) -> None:
    c = cfg(sharing=sharing, **sizes)
    assert n_params(Transformer(c)) == expected_params(c)


@pytest.mark.parametrize("sharing", ["all", "attention", "ffn"])
@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_untie_gives_identical_outputs_and_full_parameters(sharing: str, norm_position: str) -> None:
    shared = MaskedLM(cfg(sharing=sharing, norm_position=norm_position)).double().eval()
    ids, pad, seg = batch()
    before = shared(ids, pad, seg)
    untied = untie(shared)
    assert untied.transformer.cfg.sharing == "none"
    assert_close(untied(ids, pad, seg), before)
    assert n_params(untied.transformer) == expected_params(untied.transformer.cfg)
    # layers are now independent: changing layer 0 no longer changes layer 1
    pool = untied.transformer.attn_pool
    assert pool[0] is not pool[1]
    with torch.no_grad():
        next(pool[0].parameters()).add_(1.0)
    assert not torch.equal(next(pool[0].parameters()), next(pool[1].parameters()))


def test_default_key_size_equals_plain_model() -> None:
    ids, pad, seg = batch()
    torch.manual_seed(3)
    plain = Transformer(cfg()).double().eval()
    torch.manual_seed(3)
    explicit = Transformer(cfg(key_size=D // H, value_size=D // H)).double().eval()
    assert_close(explicit(ids, pad, seg), plain(ids, pad, seg))


@pytest.mark.parametrize("kind", sorted(ATTENTION))
def test_expanded_key_size_crosses_with_every_variant(kind: str) -> None:
    c = cfg(key_size=10, value_size=6, attention=from_dict(AttentionConfig, {"kind": kind}), mask="prefix")
    m = Transformer(c)
    ids, pad, seg = batch()
    assert m(ids, pad, seg).shape == (2, 7, D)
    for name, p in m.named_parameters():
        if name.endswith(("query.weight", "key.weight")):
            assert p.shape[0] == H * 10, name
        if name.endswith("value.weight"):
            assert p.shape[0] == H * 6, name


def test_cln_at_init_equals_layernorm() -> None:
    x = torch.randn(2, 7, D, dtype=torch.float64)
    cond = torch.randn(2, 5, dtype=torch.float64)
    for hidden in (0, 3):
        cln = ConditionalLayerNorm(D, 5, hidden).double()
        with torch.no_grad():
            cln.weight.normal_()
            cln.bias.normal_()
        assert_close(cln(x, cond), F.layer_norm(x, (D,), cln.weight, cln.bias, 1e-12))
        with torch.no_grad():
            cln.to_gamma.weight.fill_(0.1)
        assert not torch.allclose(cln(x, cond), F.layer_norm(x, (D,), cln.weight, cln.bias, 1e-12))


def test_cln_model_at_init_equals_unconditional_model() -> None:
    ids, pad, seg = batch()
    plain = Transformer(cfg()).double().eval()
    cond_model = Transformer(cfg(condition_size=5, condition_hidden=3)).double().eval()
    missing, unexpected = cond_model.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    assert missing and all("to_gamma" in k or "to_beta" in k or "hidden" in k for k in missing), missing
    cond = torch.randn(2, 5, dtype=torch.float64)
    assert_close(cond_model(ids, pad, seg, condition=cond), plain(ids, pad, seg))
    with pytest.raises(ValueError, match="condition"):
        cond_model(ids, pad, seg)


def test_heads_shapes_and_tied_embeddings() -> None:
    ids, pad, seg = batch()
    assert SequenceClassifier(cfg(), 3)(ids, pad, seg).shape == (2, 3)
    mlm = MaskedLM(cfg(embedding_size=8))
    assert mlm(ids, pad, seg).shape == (2, 7, V)
    assert mlm.decoder.weight is mlm.transformer.embeddings.word.weight
    lm = CausalLM(cfg(mask="causal", norm_position="pre"))
    assert lm(ids, pad).shape == (2, 7, V)
    assert lm.decoder.weight is lm.transformer.embeddings.word.weight


def test_causal_lm_does_not_see_the_future_end_to_end() -> None:
    lm = CausalLM(cfg(mask="causal")).double().eval()
    ids, _, _ = batch()
    changed = ids.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % V
    assert_close(lm(ids)[:, :4], lm(changed)[:, :4])


def test_sequence_longer_than_max_len_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="max_len"):
        Transformer(cfg())(torch.zeros(1, L + 1, dtype=torch.long))


@pytest.mark.parametrize("kind", sorted(ATTENTION))
def test_training_lowers_loss_for_every_variant(kind: str) -> None:
    """A few AdamW steps on a tiny synthetic task (label = is token 1 present) lower the loss."""
    torch.manual_seed(0)
    c = cfg(attention=from_dict(AttentionConfig, {"kind": kind}), n_layers=2)
    model = SequenceClassifier(c, 2)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, V, (32, 10), generator=g)
    labels = torch.randint(0, 2, (32,), generator=g)
    ids[labels == 1, 5] = 1
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(model(ids), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_model_package_imports_only_torch() -> None:
    code = (
        "import sys, attnlab.model, attnlab.attention\n"
        "from attnlab.model import Transformer\n"
        "bad = [m for m in ('wandb', 'optuna', 'pytorch_lightning', 'lightning', 'datasets', 'torchmetrics')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": "platform", "PATH": ""}, cwd=str(_repo()))
    assert out.stdout.strip() == "", f"attnlab.model imported {out.stdout.strip()}"


def test_import_platform_is_the_standard_library() -> None:
    out = subprocess.run([sys.executable, "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": "platform"}, cwd=str(_repo()))
    assert out.stdout.strip() == ".".join(map(str, sys.version_info[:3]))
    assert not (_repo() / "platform" / "__init__.py").exists()


def _repo():  # type: ignore[no-untyped-def]
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def test_replace_keeps_configs_frozen() -> None:
    c = cfg()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.d_model = 3  # type: ignore[misc]
