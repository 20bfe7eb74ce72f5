"""Language-model LightningModule: masked-LM pretraining, causal LM, and UniLM seq2seq.

- `mlm`: BERT masking (15% of real, non-special tokens; 80% [MASK], 10% random, 10% kept),
  loss on the selected positions only; bidirectional mask.
- `causal`: next-token prediction under the causal mask; `val/perplexity` = exp(mean token NLL).
- `seq2seq`: UniLM (Dong et al. 2019): one model, prefix mask from `token_type_ids`
  (0 = source, 1 = target); next-token loss on target tokens only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.config import ModelConfig, TrainConfig, from_dict, to_dict
from attnlab.model import CausalLM, MaskedLM
from attnlab.train.common import AttnlabModule, check_finite
from attnlab.train.distributed import reduce_sum

OBJECTIVE_MASK = {"mlm": "bidirectional", "causal": "causal", "seq2seq": "prefix"}


def mlm_mask(input_ids: Tensor, attention_mask: Tensor, special: list[int], mask_id: int, vocab_size: int,
             prob: float, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BERT masking → (corrupted input_ids, labels with -100 where no loss is taken)."""
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special, device=input_ids.device))
    u = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    selected = candidates & (u < prob)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    r = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    corrupted = input_ids.clone()
    corrupted[selected & (r < 0.8)] = mask_id
    random_tokens = torch.randint(0, vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    swap = selected & (r >= 0.8) & (r < 0.9)
    corrupted[swap] = random_tokens[swap]
    return corrupted, labels


def next_token_labels(batch: dict[str, Tensor], objective: str) -> Tensor:
    """Labels aligned with logits[:, :-1]: token t+1, or -100 where no loss is taken."""
    target = batch["input_ids"][:, 1:].clone()
    keep = batch["attention_mask"][:, 1:].bool()
    if objective == "seq2seq":
        keep = keep & (batch["token_type_ids"][:, 1:] == 1)  # only target tokens (no in-place: keep views the batch)
    return target.masked_fill(~keep, -100)


class LanguageModelModule(AttnlabModule):
    def __init__(self, model_cfg: ModelConfig | dict[str, Any], train_cfg: TrainConfig | dict[str, Any],
                 total_steps: int, objective: str = "causal", special_ids: tuple[int, ...] = (0,), mask_id: int = 0,
                 mlm_prob: float = 0.15) -> None:
        super().__init__()
        if objective not in OBJECTIVE_MASK:
            raise ValueError(f"unknown LM objective {objective!r}; valid: {', '.join(OBJECTIVE_MASK)}")
        model_cfg, train_cfg = from_dict(ModelConfig, model_cfg), from_dict(TrainConfig, train_cfg)
        self.save_hyperparameters({"model_cfg": to_dict(model_cfg), "train_cfg": to_dict(train_cfg),
                                   "total_steps": total_steps, "objective": objective,
                                   "special_ids": list(special_ids), "mask_id": mask_id, "mlm_prob": mlm_prob})
        model_cfg = dataclasses.replace(model_cfg, mask=OBJECTIVE_MASK[objective])
        self.objective = objective
        self.model: torch.nn.Module = MaskedLM(model_cfg) if objective == "mlm" else CausalLM(model_cfg)
        self.train_cfg, self.total_steps = train_cfg, total_steps
        self.special, self.mask_id, self.mlm_prob = list(special_ids), mask_id, mlm_prob
        self.vocab_size = model_cfg.vocab_size
        self._nll = torch.zeros(())
        self._count = torch.zeros(())
        self._correct = torch.zeros(())

    def token_nll(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Summed NLL, number of predicted tokens, number predicted correctly."""
        ids, am, tt = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
        model = cast("CausalLM | MaskedLM", self.model)
        if self.objective == "mlm":
            inputs, labels = mlm_mask(ids, am, self.special, self.mask_id, self.vocab_size, self.mlm_prob, generator)
            h = model.transformer(inputs, am, tt)  # (B, T, D)
        else:
            h = model.transformer(ids, am, tt)[:, :-1]  # (B, T-1, D): position t predicts token t+1
            labels = next_token_labels(batch, self.objective)
        # The vocabulary projection runs only where a loss is taken (15% of MLM positions, the target of a
        # seq2seq pair): on a small model it is most of the compute. Same loss as projecting everything.
        valid = labels != -100  # (B, T')
        target = labels[valid]  # (N,)
        flat = model.logits(h[valid]).float()  # (N, V)
        nll = F.cross_entropy(flat, target, reduction="sum")
        correct = flat.argmax(-1) == target
        return nll, valid.sum(), correct.sum()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        nll, count, _ = self.token_nll(batch)
        loss = nll / count.clamp(min=1)
        check_finite(loss, self.global_step)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._nll, self._count, self._correct = (torch.zeros((), device=self.device) for _ in range(3))
        # A fixed generator makes validation masking identical across evaluations and runs.
        self._val_gen = torch.Generator(device=self.device).manual_seed(1234)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        nll, count, correct = self.token_nll(batch, self._val_gen)
        self._nll += nll.detach()
        self._count += count
        self._correct += correct

    def on_validation_epoch_end(self) -> None:
        nll, count, correct = reduce_sum(self, torch.stack([self._nll, self._count, self._correct]).float())
        n = max(1.0, float(count))
        loss = float(nll) / n
        values = {"val/loss": loss, "val/perplexity": math.exp(min(loss, 50.0)),
                  "val/accuracy": float(correct) / n, **self.attention_metrics()}
        self.last_val = values
        self.note_validation(values)
        self.log_dict(values)
