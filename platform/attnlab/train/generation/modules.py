"""Generation tasks as LightningModules:

- `Seq2SeqModule`: UniLM fine-tuning (prefix mask, loss on target tokens only) plus, at each
  validation, beam-search decoding of the target from the source with the decoding controls of
  `SEQ2SEQ_DECODING`, scored by keyword precision / recall / F1 and character ROUGE-L
  (`attnlab.tasks.keywords`) — beside the same scores of the extractive TF-IDF reference
  (`val/tfidf_*`, idf over the training sources), so every result says how good it should be.
- `CausalSamplesModule`: a causal LM that also samples `CAUSAL_SAMPLES` texts after each validation
  (controls of `CAUSAL_DECODING`) and reports how often they repeat themselves, with and without
  the controls.
- `ConditionalLMModule`: a causal LM whose Conditional LayerNorms receive a learned embedding of
  the example's class (e.g. TNEWS category → headline).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.config import ModelConfig, TrainConfig, from_dict
from attnlab.model.generation import GenerationConfig, generate
from attnlab.tasks.keywords import TfidfKeywords, keyword_scores
from attnlab.train.lm import LanguageModelModule

# Keywords share characters ("神经网络，神经元") and the separator recurs after every keyword, so a
# repetition penalty would punish what the target needs: only repeated 3-grams are forbidden.
SEQ2SEQ_DECODING = GenerationConfig(strategy="beam", num_beams=4, length_penalty=1.0, no_repeat_ngram_size=3,
                                    min_new_tokens=2)
CAUSAL_DECODING = GenerationConfig(strategy="sample", top_k=40, top_p=0.95, temperature=1.0, repetition_penalty=1.2,
                                   no_repeat_ngram_size=3, min_new_tokens=8)
CAUSAL_SAMPLES = 16  # texts sampled per validation; the record keeps the first SAMPLES_KEPT
SAMPLES_KEPT = 8


def decode_text(tokenizer: Any, ids: list[int], chinese: bool) -> str:
    text = str(tokenizer.decode(ids, skip_special_tokens=True))
    return text.replace(" ", "") if chinese else text


def until_eos(ids: list[int], eos_id: int) -> list[int]:
    return ids[: ids.index(eos_id)] if eos_id in ids else ids


def repeat_rate(rows: list[list[int]], n: int = 3) -> float:
    """Share of token n-grams that repeat an earlier n-gram of the same text (0 = no repetition)."""
    repeats = total = 0
    for row in rows:
        grams = [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]
        repeats += len(grams) - len(set(grams))
        total += len(grams)
    return repeats / total if total else 0.0


class Seq2SeqModule(LanguageModelModule):
    def __init__(self, model_cfg: ModelConfig | dict[str, Any], train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int, gen_examples: int = 100, target_length: int = 32, **kw: Any) -> None:
        super().__init__(model_cfg, train_cfg, total_steps, objective="seq2seq", **kw)
        self.gen_examples, self.target_length = gen_examples, target_length
        self.samples: list[dict[str, str]] = []
        self._reference: TfidfKeywords | None = None

    def reference(self, dm: Any) -> TfidfKeywords:
        if self._reference is None:
            self._reference = TfidfKeywords(row["text_a"] for row in dm.raw["train"])
        return self._reference

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        dm = self.trainer.datamodule  # type: ignore[attr-defined]
        if dm is None or self.gen_examples <= 0:
            return
        chinese, eos = dm.spec.language == "zh", dm.special_ids.sep
        cfg = dataclasses.replace(SEQ2SEQ_DECODING, max_new_tokens=self.target_length, eos_id=eos,
                                  pad_id=dm.special_ids.pad)
        reference = self.reference(dm)
        preds, refs, golds, outs = [], [], [], []
        for i in range(min(self.gen_examples, len(dm.splits["validation"]))):
            row = dm.raw["validation"][i]
            prompt = torch.tensor([dm.source_ids("validation", i)], device=self.device)
            out = until_eos(generate(self.model, prompt, cfg)[0].tolist(), eos)  # type: ignore[arg-type]
            outs.append(out)
            preds.append(decode_text(dm.tokenizer, out, chinese))
            refs.append(reference(row["text_a"]))
            golds.append(row["text_b"])
        self.samples = [{"source": dm.raw["validation"][i]["text_a"][:100], "gold": golds[i], "generated": preds[i],
                         "tfidf": refs[i]} for i in range(min(SAMPLES_KEPT, len(preds)))]
        values = {**keyword_scores(preds, golds, "val/"), **keyword_scores(refs, golds, "val/tfidf_"),
                  "gen/repeat_rate": repeat_rate(outs)}
        self.last_val.update(values)
        self.log_dict(values)


class CausalSamplesModule(LanguageModelModule):
    """Causal LM on a corpus; each validation also samples texts that start a new document (after [SEP])."""

    def __init__(self, model_cfg: ModelConfig | dict[str, Any], train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int, bos_id: int = 0, sample_length: int = 64, seed: int = 0, **kw: Any) -> None:
        kw.pop("objective", None)
        super().__init__(model_cfg, train_cfg, total_steps, objective="causal", **kw)
        self.bos_id, self.sample_length, self.seed = bos_id, sample_length, seed
        self.samples: list[dict[str, str]] = []

    @torch.no_grad()
    def draw(self, cfg: GenerationConfig) -> list[list[int]]:
        prompt = torch.full((CAUSAL_SAMPLES, 1), self.bos_id, dtype=torch.long, device=self.device)
        out = generate(self.model, prompt, cfg)  # type: ignore[arg-type]
        return [until_eos(row, self.bos_id) for row in out.tolist()]

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        dm = self.trainer.datamodule  # type: ignore[attr-defined]
        if dm is None:
            return
        cfg = dataclasses.replace(CAUSAL_DECODING, max_new_tokens=self.sample_length, eos_id=self.bos_id,
                                  pad_id=dm.special_ids.pad, seed=self.seed)
        controlled = self.draw(cfg)
        plain = self.draw(dataclasses.replace(cfg, repetition_penalty=1.0, no_repeat_ngram_size=0, min_new_tokens=0))
        chinese = dm.spec.language == "zh"
        self.samples = [{"generated": decode_text(dm.tokenizer, row, chinese)} for row in controlled[:SAMPLES_KEPT]]
        values = {"gen/repeat_rate": repeat_rate(controlled), "gen/repeat_rate_no_controls": repeat_rate(plain),
                  "gen/mean_length": sum(map(len, controlled)) / len(controlled)}
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
