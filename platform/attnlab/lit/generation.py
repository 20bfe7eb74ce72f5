"""Generation tasks as LightningModules:

- `Seq2SeqModule`: UniLM fine-tuning (prefix mask, loss on target tokens only) plus, at each
  validation, greedy decoding of the target from the source, scored by keyword F1 (set overlap of
  "，"-separated keywords, micro-averaged) and character ROUGE-L F1.
- `ConditionalLMModule`: a causal LM whose Conditional LayerNorms receive a learned embedding of
  the example's class (e.g. TNEWS category → headline).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.config import ModelConfig, TrainConfig, from_dict
from attnlab.lit.lm import LanguageModelModule
from attnlab.model.generation import GenerationConfig, generate

KEYWORD_SEPARATORS = ("，", ",", "；", ";")


def lcs_length(a: str, b: str) -> int:
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b):
            cur.append(prev[j] + 1 if ca == cb else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, gold: str) -> float:
    """Character-level ROUGE-L F1 (Lin 2004 with β = 1)."""
    lcs = lcs_length(pred, gold)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(pred), lcs / len(gold)
    return 2 * p * r / (p + r)


def split_keywords(text: str) -> set[str]:
    for sep in KEYWORD_SEPARATORS[1:]:
        text = text.replace(sep, KEYWORD_SEPARATORS[0])
    return {k.strip() for k in text.split(KEYWORD_SEPARATORS[0]) if k.strip()}


def keyword_prf(preds: list[str], golds: list[str]) -> tuple[float, float, float]:
    """Micro precision / recall / F1 of predicted keyword sets against the gold sets."""
    tp = n_pred = n_gold = 0
    for p, g in zip(preds, golds):
        ps, gs = split_keywords(p), split_keywords(g)
        tp += len(ps & gs)
        n_pred += len(ps)
        n_gold += len(gs)
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def decode_text(tokenizer: Any, ids: list[int], chinese: bool) -> str:
    text = str(tokenizer.decode(ids, skip_special_tokens=True))
    return text.replace(" ", "") if chinese else text


class Seq2SeqModule(LanguageModelModule):
    def __init__(self, model_cfg: ModelConfig | dict[str, Any], train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int, gen_examples: int = 100, target_length: int = 32, **kw: Any) -> None:
        super().__init__(model_cfg, train_cfg, total_steps, objective="seq2seq", **kw)
        self.gen_examples, self.target_length = gen_examples, target_length
        self.samples: list[dict[str, str]] = []

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        dm = self.trainer.datamodule  # type: ignore[attr-defined]
        if dm is None or self.gen_examples <= 0:
            return
        chinese = dm.spec.language == "zh"
        preds: list[str] = []
        golds: list[str] = []
        samples: list[dict[str, str]] = []
        cfg = GenerationConfig(max_new_tokens=self.target_length, eos_id=dm.special_ids.sep)
        for i in range(min(self.gen_examples, len(dm.splits["validation"]))):
            prompt = torch.tensor([dm.source_ids("validation", i)], device=self.device)
            out = generate(self.model, prompt, cfg)[0].tolist()  # type: ignore[arg-type]
            pred = decode_text(dm.tokenizer, out, chinese)
            gold = dm.raw["validation"][i]["text_b"].replace(" ", "") if chinese else dm.raw["validation"][i]["text_b"]
            preds.append(pred)
            golds.append(gold)
            if len(samples) < 5:
                samples.append({"source": dm.raw["validation"][i]["text_a"][:120], "gold": gold, "generated": pred})
        _, _, f1 = keyword_prf(preds, golds)
        values = {"val/keyword_f1": f1, "val/rouge_l": sum(rouge_l(p, g) for p, g in zip(preds, golds)) / len(preds)}
        self.samples = samples
        self.last_val.update(values)
        self.log_dict(values)


class ConditionalLMModule(LanguageModelModule):
    """Causal LM with Conditional LayerNorm; the condition is a learned embedding of the label."""

    def __init__(self, model_cfg: ModelConfig | dict[str, Any], train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int, num_labels: int = 2, label_names: tuple[str, ...] = (), **kw: Any) -> None:
        cfg = from_dict(ModelConfig, model_cfg)
        if cfg.condition_size <= 0:
            cfg = dataclasses.replace(cfg, condition_size=cfg.d_model)
        kw.pop("objective", None)
        super().__init__(cfg, train_cfg, total_steps, objective="causal", **kw)
        self.hparams["num_labels"] = num_labels
        self.hparams["label_names"] = list(label_names)
        self.label_embedding = nn.Embedding(num_labels, cfg.condition_size)
        nn.init.normal_(self.label_embedding.weight, 0.0, 1.0)
        self.num_labels = num_labels

    def condition(self, labels: Tensor) -> Tensor:
        return self.label_embedding(labels)  # (B, C)

    def token_nll(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> tuple[
            Tensor, Tensor, Tensor]:
        logits = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                            self.condition(batch["labels"]))[:, :-1]
        labels = batch["input_ids"][:, 1:].masked_fill(~batch["attention_mask"][:, 1:].bool(), -100)
        flat = logits.float().reshape(-1, logits.shape[-1])
        nll = nn.functional.cross_entropy(flat, labels.reshape(-1), ignore_index=-100, reduction="sum")
        valid = labels.reshape(-1) != -100
        return nll, valid.sum(), ((flat.argmax(-1) == labels.reshape(-1)) & valid).sum()

    @torch.no_grad()
    def sample(self, label: int, n: int, start_id: int, eos_id: int, max_new_tokens: int, seed: int) -> list[list[int]]:
        prompt = torch.full((n, 1), start_id, dtype=torch.long, device=self.device)
        cond = self.condition(torch.full((n,), label, dtype=torch.long, device=self.device))
        cfg = GenerationConfig(max_new_tokens=max_new_tokens, strategy="sample", top_k=20, top_p=0.95,
                               eos_id=eos_id, seed=seed)
        out = generate(self.model, prompt, cfg, condition=cond)  # type: ignore[arg-type]
        rows = []
        for seq in out.tolist():
            rows.append(seq[: seq.index(eos_id)] if eos_id in seq else seq)
        return rows
