"""Capabilities declared on each attention class, measured registry-wide: `linear_memory`,
`decoding`, `exact_weights`, `supported_masks` — and every Attention subclass is registered.
Each checker is also run against a deliberately wrong declaration to show it can fail."""

from __future__ import annotations

import gc
import importlib
import pkgutil
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from attnlab.attention import ATTENTION, Attention, AttentionDims, build_attention
from attnlab.attention.base import HF_FAMILIES
from attnlab.attention.dot import DotAttention
from attnlab.attention.masks import AttentionMask
from attnlab.config import AttentionConfig, ModelConfig, from_dict
from attnlab.model import Transformer
from attnlab.model.checkpoints import assign

B, T, D, H = 2, 7, 16, 4
DIMS = AttentionDims(d_model=D, n_heads=H, key_size=4, value_size=4, max_len=96)
LONG_T = 67  # a length no other dimension equals, so a (…, T, …, T) tensor is a T×T matrix
ALL = sorted(ATTENTION)


def make(name: str) -> Attention:
    torch.manual_seed(1)
    return build_attention(name, DIMS).eval()


# ---- linear_memory: no T×T tensor anywhere in forward + backward -------------------------------
class SquareTensors(TorchDispatchMode):
    """Records every op that produces a tensor with two dimensions of size `t`."""

    def __init__(self, t: int) -> None:
        super().__init__()
        self.t = t
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, Tensor) and sum(d == self.t for d in leaf.shape) >= 2:
                self.ops.append(str(func))
        return out


def t_by_t_ops(m: Attention) -> list[str]:
    """Ops that built a T×T tensor while running forward and backward, unmasked and causal (float32,
    dk == dv: the settings where fused kernels apply)."""
    x = torch.randn(B, LONG_T, D, requires_grad=True, generator=torch.Generator().manual_seed(0))
    with SquareTensors(LONG_T) as mode:
        for kind in ("bidirectional", "causal"):
            m(x, AttentionMask(kind)).sum().backward()
    return mode.ops


def check_linear_memory(m: Attention, declared: bool) -> None:
    ops = t_by_t_ops(m)
    assert (not ops) == declared, (f"declared linear_memory={declared}, but "
                                   f"{'T×T tensors from ' + ', '.join(sorted(set(ops))) if ops else 'no T×T tensor'}")


@pytest.mark.parametrize("name", ALL)
def test_linear_memory_as_declared(name: str) -> None:
    check_linear_memory(make(name), ATTENTION[name].linear_memory)


class ExplicitSoftmax(DotAttention):
    """Dot attention written out: softmax(QKᵀ/√dk)V materialises the T×T matrix."""

    def forward(self, x: Tensor, mask: AttentionMask) -> Tensor:
        q, k, v = self.proj.qkv(x)
        w = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
        return self.proj.output((w @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


def test_linear_memory_checker_catches_wrong_declarations() -> None:
    torch.manual_seed(1)
    with pytest.raises(AssertionError, match="T×T tensors from"):
        check_linear_memory(ExplicitSoftmax(DIMS), declared=True)
    with pytest.raises(AssertionError, match="no T×T tensor"):
        check_linear_memory(DotAttention(DIMS), declared=False)


# ---- decoding: what the state holds, and that stepping equals the causal forward --------------
def state_numel(state: Any) -> int:
    if isinstance(state, Tensor):
        return state.numel()
    if isinstance(state, dict):
        return sum(state_numel(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_numel(v) for v in state)
    return 0


def measured_decoding(m: Attention) -> str:
    """Per-token growth of the exactly-sized prefill state: 0 → recurrent, the inputs (B·D) →
    history, keys + values (B·H·(dk+dv)) → kv_cache. Also checks prefill + steps == forward."""
    x = torch.randn(B, T, D, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    m = m.double()
    causal = AttentionMask("causal")
    sizes = [state_numel(m.prefill(x[:, :n], causal)[1]) for n in (3, 5)]
    out, state = m.prefill(x[:, :3], causal)
    outs = [out]
    for t in range(3, T):
        y, state = m.step(x[:, t : t + 1], state, "causal")
        outs.append(y)
    assert_close(torch.cat(outs, dim=1), m(x, causal))
    growth = (sizes[1] - sizes[0]) // 2
    return {0: "recurrent", B * D: "history", B * H * (DIMS.key_size + DIMS.value_size): "kv_cache"}.get(
        growth, f"unknown (state grows by {growth} numbers per token)")


@pytest.mark.parametrize("name", ALL)
def test_decoding_as_declared(name: str) -> None:
    assert measured_decoding(make(name)) == ATTENTION[name].decoding


def test_decoding_declaration_must_match_step() -> None:
    with pytest.raises(TypeError, match="decoding='kv_cache' but it inherits step"):
        type("Wrong", (Attention,), {"decoding": "kv_cache", "__module__": __name__})
    with pytest.raises(TypeError, match="decoding='history' but it overrides step"):
        type("Wrong", (DotAttention,), {"decoding": "history", "__module__": __name__})
    gc.collect()


# ---- exact_weights: dot's q/k/v/o loaded by role give dot's function exactly, or not ----------
def transformer(kind: str) -> Transformer:
    cfg = ModelConfig(vocab_size=30, max_len=16, d_model=D, n_heads=H, n_layers=2, d_ff=32, dropout=0.0,
                      attention_dropout=0.0, mask="prefix", attention=from_dict(AttentionConfig, {"kind": kind}))
    return Transformer(cfg).double().eval()


def loads_dot_exactly(kind: str) -> bool:
    torch.manual_seed(3)
    dot = transformer("dot")
    with torch.no_grad():
        for p in dot.parameters():
            p.normal_(0.0, 0.3)
    model = transformer(kind)
    assign(model, {"transformer." + k: v for k, v in dot.state_dict().items()}, swapped=kind != "dot")
    ids = torch.randint(0, 30, (2, 7), generator=torch.Generator().manual_seed(4))
    seg = torch.tensor([[0, 0, 0, 1, 1, 1, 1]] * 2)
    return torch.allclose(model(ids, None, seg), dot(ids, None, seg), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_exact_weights_as_declared(name: str) -> None:
    declared = ATTENTION[name].exact_weights
    assert loads_dot_exactly(name) == ("dot" in declared), sorted(declared)
    assert ("dot" in declared) == (declared >= HF_FAMILIES), "BERT/ALBERT/GPT-2 attention is dot attention"


# ---- supported_masks --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_config_rejects_exactly_the_unsupported_masks(name: str) -> None:
    cls = ATTENTION[name]
    for kind in ("causal", "prefix"):
        if kind in cls.supported_masks:
            cls.check_config(DIMS, kind)
        else:
            with pytest.raises(ValueError, match=f"does not support the '{kind}' mask"):
                cls.check_config(DIMS, kind)


# ---- every Attention subclass in the package is registered ------------------------------------
def all_subclasses(cls: type) -> list[type]:
    out: list[type] = []
    for sub in cls.__subclasses__():
        out += [sub, *all_subclasses(sub)]
    return out


def unregistered(classes: list[type[Attention]]) -> list[str]:
    """Classes of the attnlab package neither registered under their name nor an unnamed base of
    registered variants (like `Synthesizer`)."""
    bad = []
    for cls in classes:
        if not cls.__module__.startswith("attnlab."):
            continue  # test doubles
        if cls.name and ATTENTION.get(cls.name) is cls:
            continue
        if not cls.name and any(ATTENTION.get(s.name) is s for s in all_subclasses(cls)):
            continue
        bad.append(f"{cls.__module__}.{cls.__qualname__}")
    return bad


def import_layers(*packages: str) -> None:
    """Import every module of the given attnlab packages (variants may live in any of them)."""
    for package in packages:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if not info.name.endswith("__main__"):  # a script: importing it runs it
                importlib.import_module(info.name)


def test_every_attention_subclass_is_registered() -> None:
    import_layers("attnlab.attention", "attnlab.model", "attnlab.bench")
    assert unregistered(all_subclasses(Attention)) == []


def test_registration_guard_catches_an_unregistered_variant() -> None:
    stray: type[Attention] = type("Stray", (Attention,), {"name": "stray", "__module__": "attnlab.attention.stray"})
    assert unregistered([stray]) == ["attnlab.attention.stray.Stray"]
    del stray
    gc.collect()


class _RejectsCausal(DotAttention):
    supported_masks: ClassVar[frozenset[str]] = frozenset({"padding"})


def test_mask_check_reads_the_declaration() -> None:
    with pytest.raises(ValueError, match="does not support the 'causal' mask"):
        _RejectsCausal.check_config(DIMS, "causal")


