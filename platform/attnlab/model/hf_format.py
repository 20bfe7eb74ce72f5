"""The Hugging Face checkpoint format: name maps (the only place that knows HF's layout), config.json →
ModelConfig, reading safetensors / pytorch_model.bin, and renaming tensors to attnlab names. Strict loading
(`assign`, `load_pretrained`, `init_from`) is in `attnlab.model.checkpoints`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from attnlab.model.config import ModelConfig

PREFIXES = {"bert": "bert.", "roberta": "roberta.", "albert": "albert.", "gpt2": "transformer."}
CLASSIFIER_HEAD = ("pooler.weight", "pooler.bias", "classifier.weight", "classifier.bias")
DROP = ""  # template for a known tensor with no counterpart here
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "relu": "relu"}
NOT_WEIGHTS = re.compile(r"(.*\.)?embeddings\.(position_ids|token_type_ids)|(.*\.)?h\.\d+\.attn\.(bias|masked_bias)")

# (regex over the checkpoint name without its model prefix, our name). Body names get the
# "transformer." prefix; "{qkv}" splits a fused projection; "T" marks a GPT-2 Conv1D weight (in, out).
_EMB = [
    (r"embeddings\.word_embeddings\.weight", "embeddings.word.weight"),
    (r"embeddings\.position_embeddings\.weight", "embeddings.position.weight"),
    (r"embeddings\.token_type_embeddings\.weight", "embeddings.segment.weight"),
    (r"embeddings\.LayerNorm\.(weight|bias)", r"embeddings.norm.\1"),
]
_BERT_BODY = [*_EMB,
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)", r"attn_pool.\1.fn.proj.\2.\3"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"attn_pool.\1.fn.proj.output.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", r"attn_pool.\1.norm.norm.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"ffn_pool.\1.fn.fc_in.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"ffn_pool.\1.fn.fc_out.\2"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"ffn_pool.\1.norm.norm.\2"),
]
_ALBERT_LAYER = r"encoder\.albert_layer_groups\.0\.albert_layers\.0\."  # one group of one layer, shared
_ALBERT_BODY = [*_EMB,
    (r"encoder\.embedding_hidden_mapping_in\.(weight|bias)", r"embeddings.project.\1"),
    (_ALBERT_LAYER + r"attention\.(query|key|value)\.(weight|bias)", r"attn_pool.0.fn.proj.\1.\2"),
    (_ALBERT_LAYER + r"attention\.dense\.(weight|bias)", r"attn_pool.0.fn.proj.output.\1"),
    (_ALBERT_LAYER + r"attention\.LayerNorm\.(weight|bias)", r"attn_pool.0.norm.norm.\1"),
    (_ALBERT_LAYER + r"ffn\.(weight|bias)", r"ffn_pool.0.fn.fc_in.\1"),
    (_ALBERT_LAYER + r"ffn_output\.(weight|bias)", r"ffn_pool.0.fn.fc_out.\1"),
    (_ALBERT_LAYER + r"full_layer_layer_norm\.(weight|bias)", r"ffn_pool.0.norm.norm.\1"),
]
_GPT2_BODY = [
    (r"wte\.weight", "embeddings.word.weight"),
    (r"wpe\.weight", "embeddings.position.weight"),
    (r"h\.(\d+)\.ln_1\.(weight|bias)", r"attn_pool.\1.norm.norm.\2"),
    (r"h\.(\d+)\.attn\.c_attn\.(weight|bias)", r"T attn_pool.\1.fn.proj.{qkv}.\2"),
    (r"h\.(\d+)\.attn\.c_proj\.(weight|bias)", r"T attn_pool.\1.fn.proj.output.\2"),
    (r"h\.(\d+)\.ln_2\.(weight|bias)", r"ffn_pool.\1.norm.norm.\2"),
    (r"h\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"T ffn_pool.\1.fn.fc_in.\2"),
    (r"h\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"T ffn_pool.\1.fn.fc_out.\2"),
    (r"ln_f\.(weight|bias)", r"final_norm.norm.\1"),
]
# Heads: decoder weights are tied to the word embeddings (checked equal when both are stored).
_HEADS = {
    "bert": [
        (r"pooler\.dense\.(weight|bias)", r"pooler.\1"),
        (r"classifier\.(weight|bias)", r"classifier.\1"),
        (r"cls\.predictions\.transform\.dense\.(weight|bias)", r"transform.0.\1"),
        (r"cls\.predictions\.transform\.LayerNorm\.(weight|bias)", r"transform.2.\1"),
        (r"cls\.predictions\.(decoder\.)?bias", "decoder.bias"),
        (r"cls\.predictions\.decoder\.weight", "decoder.weight"),
        (r"cls\.seq_relationship\.(weight|bias)", DROP),  # next-sentence prediction
    ],
    "roberta": [
        (r"pooler\.dense\.(weight|bias)", r"pooler.\1"),
        (r"classifier\.dense\.(weight|bias)", r"pooler.\1"),  # RobertaClassificationHead = pooler + out_proj
        (r"classifier\.out_proj\.(weight|bias)", r"classifier.\1"),
        (r"lm_head\.dense\.(weight|bias)", r"transform.0.\1"),
        (r"lm_head\.layer_norm\.(weight|bias)", r"transform.2.\1"),
        (r"lm_head\.(decoder\.)?bias", "decoder.bias"),
        (r"lm_head\.decoder\.weight", "decoder.weight"),
    ],
    "albert": [
        (r"pooler\.(weight|bias)", r"pooler.\1"),
        (r"classifier\.(weight|bias)", r"classifier.\1"),
        (r"predictions\.dense\.(weight|bias)", r"transform.0.\1"),
        (r"predictions\.LayerNorm\.(weight|bias)", r"transform.2.\1"),
        (r"predictions\.(decoder\.)?bias", "decoder.bias"),
        (r"predictions\.decoder\.weight", "decoder.weight"),
        (r"sop_classifier\.classifier\.(weight|bias)", DROP),  # sentence-order prediction
    ],
    "gpt2": [(r"lm_head\.weight", "decoder.weight"), (r"score\.weight", DROP)],  # score: last-token pooling
}
_BODY = {"bert": _BERT_BODY, "roberta": _BERT_BODY, "albert": _ALBERT_BODY, "gpt2": _GPT2_BODY}
ROLE_PATTERN = re.compile(r"(.*\.attn_pool\.\d+\.fn\.)(?:[a-z_]+\.)?(query|key|value|output)\.(weight|bias)")


# ---- config ------------------------------------------------------------------------------------
def read_hf_config(path: str | Path) -> dict[str, Any]:
    file = Path(path).expanduser() / "config.json"
    if not file.is_file():
        raise ValueError(f"{path}: no config.json (expected a Hugging Face checkpoint directory)")
    return dict(json.loads(file.read_text(encoding="utf-8")))


def _activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} has no attnlab counterpart; supported: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def hf_to_config(hf: dict[str, Any]) -> tuple[ModelConfig, str]:
    mt = str(hf.get("model_type"))
    if mt not in PREFIXES:
        raise ValueError(f"model_type {mt!r} is not supported; supported: {', '.join(PREFIXES)}")
    if hf.get("add_cross_attention") or (mt != "gpt2" and hf.get("is_decoder")):
        raise ValueError(f"{mt}: decoder / cross-attention checkpoints are not supported")
    if mt == "gpt2":
        if not hf.get("scale_attn_weights", True) or hf.get("scale_attn_by_inverse_layer_idx", False):
            raise ValueError("gpt2: only the standard 1/sqrt(dk) attention scaling is supported")
        d = hf["n_embd"]
        return ModelConfig(
            vocab_size=hf["vocab_size"], max_len=hf["n_positions"], d_model=d, n_heads=hf["n_head"],
            n_layers=hf["n_layer"], d_ff=hf.get("n_inner") or 4 * d, type_vocab_size=0,
            dropout=hf.get("resid_pdrop", 0.1), attention_dropout=hf.get("attn_pdrop", 0.1),
            activation=_activation(hf.get("activation_function", "gelu_new")), norm_position="pre",
            layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5), mask="causal",
            init_std=hf.get("initializer_range", 0.02),
        ), mt
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{mt}: position_embedding_type={hf['position_embedding_type']!r}; only 'absolute'")
    extra: dict[str, Any] = {}
    if mt == "albert":
        groups, inner = hf.get("num_hidden_groups", 1), hf.get("inner_group_num", 1)
        if groups != 1 or inner != 1:
            raise ValueError(f"albert: num_hidden_groups={groups}, inner_group_num={inner}; attnlab shares "
                             "one block across all layers, so both must be 1")
        if hf["embedding_size"] == hf["hidden_size"]:
            raise ValueError("albert: embedding_size == hidden_size has no embedding projection here")
        extra = {"embedding_size": hf["embedding_size"], "sharing": "all"}
    # RoBERTa numbers positions from pad_token_id + 1; the rows below are dropped on load (see _fix).
    offset = _roberta_pad(hf) + 1 if mt == "roberta" else 0
    return ModelConfig(
        vocab_size=hf["vocab_size"], max_len=hf["max_position_embeddings"] - offset, d_model=hf["hidden_size"],
        n_heads=hf["num_attention_heads"], n_layers=hf["num_hidden_layers"], d_ff=hf["intermediate_size"],
        type_vocab_size=hf.get("type_vocab_size", 2), dropout=hf.get("hidden_dropout_prob", 0.1),
        attention_dropout=hf.get("attention_probs_dropout_prob", 0.1),
        activation=_activation(hf.get("hidden_act", "gelu")), norm_position="post",
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12), mask="bidirectional",
        init_std=hf.get("initializer_range", 0.02), **extra,
    ), mt


def config_from_pretrained(path: str | Path) -> tuple[ModelConfig, str]:
    """An HF `config.json` (bert / roberta / albert / gpt2) → (ModelConfig, model_type)."""
    return hf_to_config(read_hf_config(path))


# ---- reading and mapping tensors ---------------------------------------------------------------
def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """All tensors of an HF directory: safetensors (single or sharded) or pytorch_model.bin."""
    from safetensors.torch import load_file

    root = Path(path).expanduser()
    for name, load in (("model.safetensors", load_file),
                       ("pytorch_model.bin", lambda f: torch.load(f, map_location="cpu", weights_only=True))):
        if (root / name).is_file():
            return dict(load(str(root / name)))
        index = root / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return {k: v for shard in shards for k, v in load(str(root / shard)).items()}
    raise ValueError(f"{root}: no model.safetensors or pytorch_model.bin (nor a sharded index)")


def map_hf_state_dict(model_type: str, hf: dict[str, Any],
                      tensors: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """HF names → attnlab names (body under "transformer."). Returns (mapped, dropped, unknown)."""
    prefix = PREFIXES[model_type]
    rules = [(re.compile(r), t.replace("T ", "T transformer.") if t.startswith("T ") else "transformer." + t)
             for r, t in _BODY[model_type]]
    rules += [(re.compile(r), t) for r, t in _HEADS[model_type]]
    mapped: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    dropped: list[str] = []
    unknown: list[str] = []
    for key, tensor in tensors.items():
        name = key[len(prefix):] if key.startswith(prefix) else key
        hit = next(((m, t) for r, t in rules if (m := r.fullmatch(name))), None)
        if NOT_WEIGHTS.fullmatch(key) or (hit is not None and hit[1] == DROP):
            dropped.append(key)
            continue
        if hit is None:
            unknown.append(key)
            continue
        target = hit[0].expand(hit[1])
        if target.startswith("T "):  # GPT-2 Conv1D stores (in, out); nn.Linear wants (out, in)
            target, tensor = target[2:], tensor.t() if tensor.dim() == 2 else tensor
        parts = tensor.chunk(3, dim=0) if "{qkv}" in target else (tensor,)  # fused c_attn → q, k, v
        for role, part in zip(("query", "key", "value"), parts):
            out = target.replace("{qkv}", role)
            part = _fix(model_type, hf, out, part.contiguous())
            if out in mapped and not torch.equal(mapped[out], part):  # e.g. predictions.bias / decoder.bias
                raise ValueError(f"{source[out]} and {key} differ, but both are {out} here (tied in HF)")
            mapped[out], source[out] = part, key
    return mapped, dropped, unknown


def _roberta_pad(hf: dict[str, Any]) -> int:
    pad = hf.get("pad_token_id")
    return 1 if pad is None else int(pad)


def _fix(model_type: str, hf: dict[str, Any], name: str, tensor: Tensor) -> Tensor:
    if model_type == "roberta" and name == "transformer.embeddings.position.weight":
        # Rows 0..pad_token_id are read only at padding tokens; real token i uses row pad_token_id + 1 + i
        # (for right-padded batches), which is our row i.
        return tensor[_roberta_pad(hf) + 1:]
    return tensor
