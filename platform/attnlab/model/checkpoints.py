"""Pretrained checkpoints → attnlab models: HF BERT, RoBERTa, ALBERT and GPT-2 directories
(`config.json` + `model.safetensors` / `pytorch_model.bin`), and attnlab Lightning `.ckpt` files.

The name maps below are the only place that knows HF's layout. Loading is strict: after mapping,
every checkpoint tensor must land in a parameter and every parameter must be filled. The only
exceptions, each listed in the `LoadReport`:
- dropped: HF buffers that are not weights (`position_ids`, GPT-2's causal `attn.bias`) and known
  head tensors the requested model has no place for (NSP/SOP heads, a pooler under a bare encoder);
- fresh: the classifier head (pooler + classifier) when the checkpoint has none;
- neutral: parameters whose own init leaves the function unchanged (talking-heads identity mixers,
  Conditional LayerNorm's zero projections);
- with a swapped attention variant, what it cannot take by role (q/k/v/o): re-initialised, warned.
A variant only takes another family's attention weights when its class declares that family in
`exact_weights` (HF model types; attnlab attention kinds for attnlab checkpoints); any other swap
is refused unless the caller passes `inexact_attention=True`.
Anything else raises a ValueError that lists the unused and the missing names.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.attention.registry import ATTENTION, get_attention_class
from attnlab.model.config import AttentionConfig, ModelConfig
from attnlab.model.heads import CausalLM, MaskedLM, SequenceClassifier
from attnlab.model.transformer import Transformer

HEADS = ("encoder", "mlm", "lm", "classifier")
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
_ROLE = re.compile(r"(.*\.attn_pool\.\d+\.fn\.)(?:[a-z_]+\.)?(query|key|value|output)\.(weight|bias)")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)  # our parameters filled from the checkpoint
    dropped: list[str] = field(default_factory=list)  # checkpoint tensors deliberately not used
    fresh: list[str] = field(default_factory=list)  # our parameters left at their (allowed) init
    reinitialised: list[str] = field(default_factory=list)  # attention params a swapped variant could not take
    attention_unused: list[str] = field(default_factory=list)  # checkpoint tensors it had no role for
    notes: list[str] = field(default_factory=list)


# ---- config ------------------------------------------------------------------------------------
def _read_hf_config(path: str | Path) -> dict[str, Any]:
    file = Path(path).expanduser() / "config.json"
    if not file.is_file():
        raise ValueError(f"{path}: no config.json (expected a Hugging Face checkpoint directory)")
    return dict(json.loads(file.read_text(encoding="utf-8")))


def _activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} has no attnlab counterpart; supported: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _hf_to_config(hf: dict[str, Any]) -> tuple[ModelConfig, str]:
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
    return _hf_to_config(_read_hf_config(path))


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


# ---- strict assignment -------------------------------------------------------------------------
def _targets(model: nn.Module) -> dict[str, Tensor]:
    prefix = "transformer." if isinstance(model, Transformer) else ""
    return {prefix + k: v for k, v in model.state_dict(keep_vars=True).items()}


def _by_role(name: str, targets: dict[str, Tensor]) -> str | None:
    """Where a swapped attention variant keeps the q/k/v/o role that `name` holds (or None)."""
    m = _ROLE.fullmatch(name)
    if m is None:
        return None
    pattern = re.compile(rf"(?:[a-z_]+\.)?{m[2]}\.{m[3]}")
    hits = [k for k in targets if k.startswith(m[1]) and pattern.fullmatch(k[len(m[1]):])]
    return hits[0] if len(hits) == 1 else None


def _neutral(name: str, targets: dict[str, Tensor]) -> bool:
    """A parameter whose construction init leaves the function equal to its parent's."""
    t = targets[name].detach()
    if name.endswith(("pre_mix", "post_mix")):  # talking-heads mixers: identity when square
        return t.shape[0] == t.shape[1] and torch.equal(t, torch.eye(t.shape[0], dtype=t.dtype))
    if ".to_gamma." in name or ".to_beta." in name:  # Conditional LayerNorm: zero projections
        return not bool(t.any())
    if name.endswith(".hidden.weight"):  # CLN hidden layer: feeds only the (zero) projections
        base = name[: -len("hidden.weight")]
        return all(not bool(targets[base + p].detach().any()) for p in ("to_gamma.weight", "to_beta.weight"))
    return False


def assign(model: nn.Module, mapped: dict[str, Tensor], *, fresh_ok: tuple[str, ...] = (),
           swapped: bool = False, strict_heads: bool = True, report: LoadReport | None = None) -> LoadReport:
    """Copy `mapped` (attnlab names, body under "transformer.") into `model`, strictly (module docstring).

    `swapped`: the checkpoint's attention kind differs from the model's → place q/k/v/o by role and
    let the variant keep its own init for the rest. `strict_heads=False`: parameters outside the
    transformer load when names and shapes match and otherwise stay fresh (for `init_from`).
    """
    report = report or LoadReport()
    targets = _targets(model)
    plan: dict[str, tuple[str, Tensor]] = {}  # target name → (source name, tensor)
    owner = {id(v): k for k, v in reversed(list(targets.items()))}  # tied tensors → their first name
    unused: list[str] = []
    mismatched: list[str] = []
    att_unused: list[str] = []
    for name, tensor in mapped.items():
        dest = name if name in targets else (_by_role(name, targets) if swapped else None)
        in_body = name.startswith("transformer.")
        if dest is None:
            layer = name.split(".fn.")[0] + ".fn."  # an attention layer the model has, but no slot in it
            in_attention = swapped and ".attn_pool." in name and any(k.startswith(layer) for k in targets)
            (att_unused if in_attention else unused if in_body else report.dropped).append(name)
            continue
        p = targets[dest]
        if p.shape != tensor.shape:
            if swapped and _ROLE.fullmatch(name):  # the variant sizes this role differently
                att_unused.append(f"{name} {tuple(tensor.shape)}")
            elif not strict_heads and not in_body:  # e.g. another label count
                report.dropped.append(f"{name} {tuple(tensor.shape)}")
            else:
                mismatched.append(f"{name}: checkpoint {tuple(tensor.shape)} vs model {tuple(p.shape)}")
            continue
        key = owner[id(p)]
        if key in plan and not torch.equal(plan[key][1].to(p.dtype), tensor.to(p.dtype)):
            raise ValueError(f"{plan[key][0]} and {name} differ, but this model ties them (untied checkpoint)")
        plan[key] = (name, tensor)
    missing = []
    for key in dict.fromkeys(owner.values()):
        if key in plan:
            continue
        if key in fresh_ok or (not strict_heads and not key.startswith("transformer.")) or _neutral(key, targets):
            report.fresh.append(key)
        elif swapped and ".attn_pool." in key and ".fn." in key:
            report.reinitialised.append(key)
        else:
            missing.append(key)
    if unused or missing or mismatched:
        lines = [f"{label} ({len(names)}): {', '.join(names)}" for label, names in
                 (("unused checkpoint tensors", unused), ("parameters missing from the checkpoint", missing),
                  ("shape mismatches", mismatched)) if names]
        raise ValueError("checkpoint does not fit the model: " + "; ".join(lines))
    with torch.no_grad():
        for key, (_, tensor) in plan.items():
            targets[key].copy_(tensor)
    report.loaded.extend(plan)
    report.attention_unused.extend(att_unused)
    return report


def check_attention_family(kind: str, family: str, inexact_attention: bool = False) -> None:
    """Refuse `family`'s pretrained attention weights for a variant whose class does not declare
    that it reproduces them exactly (`Attention.exact_weights`), unless asked to go ahead."""
    cls = get_attention_class(kind)
    if family in cls.exact_weights or inexact_attention:
        return
    able = sorted(name for name, c in ATTENTION.items() if family in c.exact_weights)
    raise ValueError(
        f"attention {kind!r} cannot load {family!r} attention weights exactly (its class declares "
        f"exact_weights: {', '.join(sorted(cls.exact_weights)) or 'none'}); variants that can: "
        f"{', '.join(able) or 'none'}. To start it from them anyway (q/k/v/o placed by role, the rest "
        "re-initialised, outputs differ until fine-tuned), pass inexact_attention=True.")


def _warn_swap(kind: str, family: str, report: LoadReport) -> None:
    exact = family in get_attention_class(kind).exact_weights
    if exact and not report.reinitialised and not report.attention_unused:
        return
    warnings.warn(
        f"attention {kind!r} loaded from another attention's weights (q/k/v/o by role); re-initialised: "
        f"{', '.join(report.reinitialised) or 'none'}; checkpoint tensors it has no use for: "
        f"{', '.join(report.attention_unused) or 'none'}. Outputs differ from the pretrained model "
        "until fine-tuned.", UserWarning, stacklevel=3)


# ---- public entry points -----------------------------------------------------------------------
def _build(cfg: ModelConfig, head: str, num_labels: int) -> nn.Module:
    if head == "encoder":
        return Transformer(cfg)
    if head == "mlm":
        return MaskedLM(cfg)
    if head == "lm":
        return CausalLM(cfg)
    if head == "classifier":
        return SequenceClassifier(cfg, num_labels)
    raise ValueError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")


def load_pretrained(path: str | Path, head: str = "encoder", num_labels: int = 2,
                    attention: AttentionConfig | None = None, dtype: torch.dtype = torch.float32,
                    inexact_attention: bool = False) -> nn.Module:
    """Build the attnlab model for an HF checkpoint directory and load its weights (in eval mode, as HF).
    `attention` swaps the variant: refused unless it loads this family exactly or `inexact_attention`."""
    hf = _read_hf_config(path)
    cfg, mt = _hf_to_config(hf)
    if attention is not None:
        cfg = dataclasses.replace(cfg, attention=attention)
    check_attention_family(cfg.attention.kind, mt, inexact_attention)
    if mt == "roberta" and head == "mlm" and cfg.activation != "gelu":
        raise ValueError("roberta: the lm_head always uses gelu; hidden_act differs, so head='mlm' would not match")
    model = _build(cfg, head, num_labels).to(dtype)
    mapped, dropped, unknown = map_hf_state_dict(mt, hf, read_state_dict(path))
    if unknown:
        raise ValueError(f"{path}: unknown {mt} checkpoint tensors ({len(unknown)}): {', '.join(unknown)}")
    swapped = cfg.attention.kind != "dot"
    report = assign(model, mapped, fresh_ok=CLASSIFIER_HEAD if head == "classifier" else (),
                    swapped=swapped, report=LoadReport(dropped=dropped))
    if swapped:
        _warn_swap(cfg.attention.kind, mt, report)
    return model.eval()


def transformer_of(model: nn.Module) -> Transformer:
    t = model if isinstance(model, Transformer) else getattr(model, "transformer", None)
    if not isinstance(t, Transformer):
        raise TypeError(f"{type(model).__name__} has no attnlab Transformer")
    return t


_ARCH_FIELDS = ("norm_position", "activation", "layer_norm_eps", "sharing")


def _check_arch(source: dict[str, Any], cfg: ModelConfig, path: str | Path) -> None:
    """Fields that change the function without changing any shape must agree."""
    bad = [f"{k}: checkpoint {source[k]!r} vs model {getattr(cfg, k)!r}"
           for k in _ARCH_FIELDS if k in source and source[k] != getattr(cfg, k)]
    if bad:
        hint = " (ALBERT: init with sharing='all', then attnlab.model.untie)" if "sharing" in " ".join(bad) else ""
        raise ValueError(f"{path}: checkpoint architecture differs from model: {'; '.join(bad)}{hint}")


def init_from(model: nn.Module, path: str | Path, inexact_attention: bool = False) -> LoadReport:
    """Start an existing attnlab model from a checkpoint: an HF directory or an attnlab Lightning
    `.ckpt` (state_dict keys under "model."). Strict on the transformer; head parameters load where
    names and shapes match and otherwise keep their init. Longer position tables are cut to max_len."""
    cfg = transformer_of(model).cfg
    p = Path(path).expanduser()
    report = LoadReport()
    if p.is_dir():
        hf = _read_hf_config(p)
        source_cfg, mt = _hf_to_config(hf)
        _check_arch(dataclasses.asdict(source_cfg), cfg, p)
        mapped, report.dropped, unknown = map_hf_state_dict(mt, hf, read_state_dict(p))
        if unknown:
            raise ValueError(f"{p}: unknown {mt} checkpoint tensors ({len(unknown)}): {', '.join(unknown)}")
        source_kind: str | None = "dot"
        family = mt  # the checkpoint family: an HF model type
    elif p.is_file():
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"{p}: not a checkpoint (expected a dict with a 'state_dict')")
        mapped = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
        if not mapped:
            raise ValueError(f"{p}: no 'model.' keys in its state_dict; expected an attnlab Lightning checkpoint")
        report.dropped = [k for k in state if not k.startswith("model.")]
        source = (ckpt.get("hyper_parameters") or {}).get("model_cfg") or {}
        _check_arch(source, cfg, p)
        source_kind = (source.get("attention") or {}).get("kind")
        family = str(source_kind)  # an attnlab checkpoint's family: its attention kind
    else:
        raise ValueError(f"{p}: no such checkpoint file or directory")
    pos = "transformer.embeddings.position.weight"
    if pos in mapped and mapped[pos].shape[0] > cfg.max_len:
        report.notes.append(f"position embeddings cut from {mapped[pos].shape[0]} to max_len={cfg.max_len}")
        mapped[pos] = mapped[pos][: cfg.max_len]
    swapped = source_kind is not None and source_kind != cfg.attention.kind
    if swapped:
        check_attention_family(cfg.attention.kind, family, inexact_attention)
    assign(model, mapped, swapped=swapped, strict_heads=False, report=report)
    if swapped:
        _warn_swap(cfg.attention.kind, family, report)
    return report
