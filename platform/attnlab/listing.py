"""Human-readable tables of what is registered (for `attnlab list`)."""

from __future__ import annotations

import dataclasses

from attnlab.attention import ATTENTION


def format_attention_table() -> str:
    lines = ["Attention variants (model.attention.kind) — masks: padding always; causal/prefix as listed. "
             "O(T) mem: no T×T tensor; decoding: kv_cache | recurrent | history; exact: pretrained "
             "attention it loads exactly",
             f"{'kind':<32}{'masks':<26}{'perm-eq':<9}{'O(T) mem':<10}{'decoding':<10}{'exact':<7}options (defaults)"]
    for name in sorted(ATTENTION):
        cls = ATTENTION[name]
        masks = ",".join(sorted(cls.supported_masks))
        opts = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Options)) or "-"
        extra = " [needs max_len]" if cls.needs_max_len else ""
        exact = "bert+" if "bert" in cls.exact_weights else "-"
        lines.append(f"{name:<32}{masks:<26}{'yes' if cls.permutation_equivariant else 'no':<9}"
                     f"{'yes' if cls.linear_memory else 'no':<10}{cls.decoding:<10}{exact:<7}{opts}{extra}")
    lines.append("exact bert+ = BERT, RoBERTa, ALBERT, GPT-2 and attnlab dot checkpoints. talking_heads: h_k "
                 "query/key heads, h = n_heads logit/weight heads, h_v value heads (Shazeer et al. 2020).")
    lines.append("Model-level options crossing every variant: key_size, value_size, sharing "
                 "(none|all|attention|ffn), mask (bidirectional|causal|prefix), condition_size (CLN), "
                 "condition_embedding (CLN on the embeddings too).")
    return "\n".join(lines)


def format_task_table() -> str:
    try:
        from attnlab.tasks import TASKS
    except ImportError:  # pragma: no cover - tasks need the `datasets` extra
        return "Tasks: unavailable (install attnlab with its dependencies)"
    lines = ["", "Tasks (task.name)", f"{'name':<22}{'labels':<8}{'metrics':<26}{'primary':<12}kind"]
    for name in sorted(TASKS):
        spec = TASKS[name]
        labels = "reg" if spec.is_regression else str(len(spec.labels) or "-")
        kind = "lm" if spec.is_lm else spec.kind  # multiple_choice: labels = the most choice positions scored
        lines.append(f"{name:<22}{labels:<8}{','.join(spec.metrics):<26}{spec.primary_metric:<12}{kind}")
    return "\n".join(lines)
