"""Does a label-conditioned LM follow its condition? Sample texts for every label, classify them
with a classifier trained on the same task (same tokenizer), and report how often the classifier
agrees with the requested label — against chance (1 / number of labels)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch

from attnlab.config import RunConfig


def condition_agreement(cfg: RunConfig, lm: Any, dm: Any, progress: bool = False) -> dict[str, float]:
    from attnlab.train.fit import fit
    from attnlab.train.generation.modules import decode_text

    with tempfile.TemporaryDirectory() as tmp:
        dm.tokenizer.save(str(Path(tmp) / "tokenizer.json"))  # the classifier reads exactly the LM's tokens
        ccfg = dataclasses.replace(
            cfg, name=f"{cfg.name}-judge",
            task=dataclasses.replace(cfg.task, objective="classify", tokenizer=tmp),
            model=dataclasses.replace(cfg.model, condition_size=0, condition_hidden=0, mask="bidirectional",
                                      norm_position="post", init_from=None, untie=False))
        judge, _, judge_record = fit(ccfg, progress=progress)
    ids = dm.special_ids
    n_labels = len(dm.spec.labels)
    lm.eval()
    judge.eval()
    agree = total = 0
    samples = []
    for label in range(n_labels):
        seqs = lm.sample(label, cfg.task.samples_per_label, ids.cls, ids.sep, cfg.task.max_length - 2,
                         seed=cfg.train.seed * 1000 + label)
        rows = [[ids.cls, *s[: cfg.task.max_length - 2], ids.sep] for s in seqs]
        width = max(len(r) for r in rows)
        batch = torch.full((len(rows), width), ids.pad, dtype=torch.long)
        for i, r in enumerate(rows):
            batch[i, : len(r)] = torch.tensor(r)
        mask = batch != ids.pad
        with torch.no_grad():
            pred = judge.model(batch.to(judge.device), mask.to(judge.device)).argmax(-1).cpu()
        agree += int((pred == label).sum())
        total += len(rows)
        text = decode_text(dm.tokenizer, seqs[0], dm.spec.language == "zh")
        samples.append({"label": dm.spec.labels[label], "generated": text, "judged": dm.spec.labels[int(pred[0])]})
    lm.samples = samples
    return {"gen/label_agreement": agree / total, "gen/chance": 1.0 / n_labels,
            "judge/val_accuracy": float(judge_record.metrics.get("val/accuracy", float("nan")))}
