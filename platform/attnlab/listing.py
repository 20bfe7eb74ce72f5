"""Human-readable tables of what is registered (for `attnlab list`)."""

from __future__ import annotations

import dataclasses

from attnlab.attention import ATTENTION


def format_attention_table() -> str:
    lines = ["Attention variants (model.attention.kind) — masks: padding always; causal/prefix as listed",
             f"{'kind':<32}{'masks':<26}{'perm-eq':<9}options (defaults)"]
    for name in sorted(ATTENTION):
        cls = ATTENTION[name]
        masks = ",".join(sorted(cls.supported_masks))
        opts = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Options)) or "-"
        extra = " [needs max_len]" if cls.needs_max_len else ""
        lines.append(f"{name:<32}{masks:<26}{'yes' if cls.permutation_equivariant else 'no':<9}{opts}{extra}")
    lines.append("Model-level options crossing every variant: key_size, value_size, sharing "
                 "(none|all|attention|ffn), mask (bidirectional|causal|prefix), condition_size (CLN).")
    return "\n".join(lines)


def format_task_table() -> str:
    try:
        from attnlab.tasks import TASKS
    except ImportError:  # pragma: no cover - tasks need the `datasets` extra
        return "Tasks: unavailable (install attnlab with its dependencies)"
    lines = ["", "Tasks (task.name)", f"{'name':<22}{'labels':<8}{'metrics':<26}primary"]
    for name in sorted(TASKS):
        spec = TASKS[name]
        labels = "reg" if spec.is_regression else str(len(spec.labels) or "-")
        lines.append(f"{name:<22}{labels:<8}{','.join(spec.metrics):<26}{spec.primary_metric}")
    return "\n".join(lines)
