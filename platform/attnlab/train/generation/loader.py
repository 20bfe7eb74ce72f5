"""Text generation from a checkpoint: an attnlab Lightning checkpoint (`attnlab run
--save-checkpoint`; its tokenizer inside it, or tokenizer.json beside a checkpoint older than that)
of a causal LM, UniLM seq2seq or label-conditioned (CLN) model, or a Hugging Face GPT-2 directory."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from attnlab.config import ModelConfig, from_dict
from attnlab.model import CausalLM
from attnlab.model.checkpoints import load_pretrained, transformer_of
from attnlab.model.generation import GenerationConfig, generate
from attnlab.tasks.tokenizer import load_pretrained_tokenizer, special_ids
from attnlab.train.generation.modules import CAUSAL_DECODING, SEQ2SEQ_DECODING

DECODING_CONTROLS = ("length_penalty", "repetition_penalty", "no_repeat_ngram_size", "min_new_tokens")


@dataclass
class Generator:
    model: CausalLM
    tokenizer: Tokenizer
    kind: str  # causal | seq2seq | conditional
    label_embedding: torch.nn.Embedding | None = None
    labels: tuple[str, ...] = ()

    def decoding(self, **values: Any) -> GenerationConfig:
        """A GenerationConfig from the given values; a control given as None takes the default of this kind
        of model, the one its evaluation decodes with (`SEQ2SEQ_DECODING` or `CAUSAL_DECODING`)."""
        defaults = SEQ2SEQ_DECODING if self.kind == "seq2seq" else CAUSAL_DECODING
        chosen = {k: getattr(defaults, k) if v is None and k in DECODING_CONTROLS else v for k, v in values.items()}
        return GenerationConfig(**chosen)

    def encode_prompt(self, text: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = special_ids(self.tokenizer)
        body = self.tokenizer.encode(text, add_special_tokens=False).ids if text else []
        if self.kind == "seq2seq":
            prompt = [ids.cls, *body, ids.sep]
            return torch.tensor([prompt]), torch.zeros(1, len(prompt), dtype=torch.long)
        # a corpus LM saw documents separated by [SEP] (no [CLS]); a CLN model saw [CLS] text [SEP]
        start = {"hf": [], "causal": [ids.sep]}.get(self.kind, [ids.cls])
        return torch.tensor([start + body or [ids.cls]]), None

    def __call__(self, text: str, cfg: GenerationConfig, label: str | None = None) -> str:
        if label is not None and self.kind != "conditional":
            raise ValueError(f"--label {label!r}: this {self.kind} model is not label-conditioned (no CLN label "
                             "embedding); drop --label")
        prompt, types = self.encode_prompt(text)
        condition = None
        if self.kind == "conditional":
            if label is None or (label not in self.labels and not label.isdigit()):
                raise ValueError(f"this model is conditioned on a label: pass --label, one of {', '.join(self.labels)}")
            index = int(label) if label.isdigit() else self.labels.index(label)
            assert self.label_embedding is not None
            condition = self.label_embedding(torch.tensor([index]))
        if cfg.eos_id is None and self.kind != "hf":
            cfg = replace(cfg, eos_id=special_ids(self.tokenizer).sep)
        out = generate(self.model, prompt, cfg, token_type_ids=types, condition=condition)[0].tolist()
        text_out = str(self.tokenizer.decode(out, skip_special_tokens=True))
        chinese = sum("\u4e00" <= ch <= "\u9fff" for ch in text_out) > len(text_out) // 3
        return text_out.replace(" ", "") if chinese else text_out


def load_generator(path: str | Path) -> Generator:
    p = Path(path)
    if p.is_dir() and (p / "config.json").exists():
        model, tok = load_with_tokenizer(p, head="lm")
        return Generator(model, tok, "hf")  # type: ignore[arg-type]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: expected an attnlab .ckpt (attnlab run --save-checkpoint) or an HF model dir")
    ckpt: dict[str, Any] = torch.load(p, map_location="cpu", weights_only=True)
    hp = ckpt.get("hyper_parameters", {})
    objective = hp.get("objective")
    if objective not in ("causal", "seq2seq"):
        raise ValueError(f"{p}: not a generative checkpoint (objective {objective!r}); train one with "
                         "task.objective causal / seq2seq / conditional_lm")
    cfg = from_dict(ModelConfig, hp["model_cfg"])
    cfg = replace(cfg, mask="prefix" if objective == "seq2seq" else "causal")
    model = CausalLM(cfg)
    state = ckpt["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    model.eval()
    from attnlab.train.callbacks import checkpoint_tokenizer

    tokenizer = checkpoint_tokenizer(ckpt)
    if tokenizer is None:  # a checkpoint saved before the tokenizer travelled inside it
        tok_path = p.parent / "tokenizer.json"
        if not tok_path.exists():
            raise FileNotFoundError(f"{tok_path}: the checkpoint has no tokenizer inside and none beside it")
        tokenizer = load_pretrained_tokenizer(p.parent)
    if tokenizer.get_vocab_size() != cfg.vocab_size:
        raise ValueError(f"{p}: vocabulary mismatch: the tokenizer has {tokenizer.get_vocab_size()} tokens, the "
                         f"model {cfg.vocab_size} (a tokenizer.json of another checkpoint?)")
    if "label_embedding.weight" in state:
        weight = state["label_embedding.weight"]
        emb = torch.nn.Embedding(weight.shape[0], weight.shape[1])
        emb.weight.data.copy_(weight)
        labels = tuple(hp.get("label_names") or [str(i) for i in range(weight.shape[0])])
        return Generator(model, tokenizer, "conditional", emb, labels)
    return Generator(model, tokenizer, "seq2seq" if objective == "seq2seq" else "causal")


def load_with_tokenizer(path: str | Path, head: str = "encoder", **kwargs: Any) -> tuple[nn.Module, Tokenizer]:
    """`load_pretrained` plus the checkpoint's tokenizer (tokenizer.json or vocab.txt)."""
    model = load_pretrained(path, head, **kwargs)
    tokenizer = load_pretrained_tokenizer(path)
    vocab = transformer_of(model).cfg.vocab_size
    if tokenizer.get_vocab_size() > vocab:
        raise ValueError(f"{path}: tokenizer has {tokenizer.get_vocab_size()} tokens, the model only {vocab}")
    return model, tokenizer
