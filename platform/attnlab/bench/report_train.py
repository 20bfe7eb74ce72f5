"""Markdown report of `attnlab bench train` from its JSON (the JSON is the record; this only formats it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attnlab.bench.report import profile_sections, provenance, table, targets_table


def train_markdown(data: dict[str, Any]) -> str:
    cfg = data["config"]
    sizes = data["sizes"]
    out = [
        "# attnlab bench train", "", provenance(data), "",
        f"Full models (embeddings → {cfg['n_layers']} layers → pooler → classifier), attention `{cfg['attention']}`, "
        f"{cfg['n_heads']} heads, d_ff = {cfg['d_ff_mult']}·d_model, vocab {cfg['vocab_size']}, sequence length "
        f"{cfg['seq_len']} (no padding), batch {cfg['batch']}, dropout 0, fp32; one step = forward, cross-entropy, "
        f"backward, AdamW. The two models and a {cfg['matmul_size']}³ fp32 matmul loop run once per round, "
        f"{cfg['repeats']} rounds after 2 warm-up rounds, order rotated; medians, ratios = median of per-round ratios.",
        "", f"MFU formula: {data['mfu_formula']} (Kaplan et al. 2020; PaLM App. B: the 12·L·T·d term is QKᵀ and AV).",
        "", "## Targets", "", targets_table(data["targets"]), "",
        "## Training throughput and MFU", "",
        table(["d_model", "params (attnlab / HF)", "attnlab tokens/s", "HF BERT tokens/s", "attnlab / HF",
               "attnlab MFU", "HF MFU", "GFLOP/step", "matmul peak GFLOP/s (median / best)",
               "other load (cores)"],
              [[r["d_model"], f"{r['attnlab']['params']:,} / {r['hf_bert']['params']:,}",
                r["attnlab"]["tokens_per_s"], r["hf_bert"]["tokens_per_s"], r["attnlab/hf_bert tokens_per_s"],
                f"{100 * r['attnlab']['mfu']:.1f}%", f"{100 * r['hf_bert']['mfu']:.1f}%",
                r["attnlab"]["gflops_per_step"], f"{r['matmul_gflops']:.0f} / {r['matmul_gflops_best']:.0f}",
                r.get("other_cpu_cores")]
               for r in sizes]), "",
        *_compile_section(sizes),
        "## Platform overhead (one real trial vs a bare loop)", "", _overhead_section(data["overhead"]), "",
    ]
    out += profile_sections(data["targets"])
    return "\n".join(out)


def _compile_section(sizes: list[dict[str, Any]]) -> list[str]:
    timed = [r for r in sizes if "compiled/eager tokens_per_s" in r]
    if not timed:
        return []
    return ["## train.compile: torch.compile vs eager (same weights, same batches)", "",
            table(["d_model", "eager tokens/s", "compiled tokens/s", "compiled / eager", "compile + 1st step s",
                   "loss max rel. diff", "steps compared"],
                  [[r["d_model"], r["attnlab"]["tokens_per_s"], r["attnlab_compiled"]["tokens_per_s"],
                    r["compiled/eager tokens_per_s"], r["compile_s"], r["loss_max_rel_diff"],
                    min(len(r["loss_curve"]["eager"]), len(r["loss_curve"]["compiled"]))] for r in timed]),
            "", "The compiled model is `attnlab.train.fit.compile_model` applied to a copy of the eager model "
            "before its first step (what `train.compile: true` does in a run); both train in the same "
            "interleaved rounds.", ""]


def _overhead_section(overhead: dict[str, Any]) -> str:
    if overhead.get("status") != "ok":
        return str(overhead.get("status"))
    task, model, train = overhead["config"]["task"], overhead["config"]["model"], overhead["config"]["train"]
    lines = [
        f"Task {task['name']} (real data, max_train_examples {task['max_train_examples']}, max_length "
        f"{task['max_length']}), model d_model {model['d_model']}, {model['n_layers']} layers, batch "
        f"{train['batch_size']}, {overhead['steps']} steps + one dev evaluation. Platform = "
        "optuna.create_study (RDBStorage, sqlite in a temp dir) + study.optimize(n_trials=1) whose objective "
        f"starts a W&B offline run ({'included' if overhead['wandb_included'] else 'NOT included'}) and calls "
        "runner.train_run with the WandbCallback. Bare = the same TaskDataModule batches, model, AdamW + "
        "schedule + grad clipping, dev evaluation, in a plain loop. Run order: " + ", ".join(overhead["order"]) + ".",
        "",
        table(["run", "side", "wall s", "in training steps s", "steps", "dev accuracy", "slowed by other load",
               "other load (cores)"],
              [[i + 1, r["side"], r["wall_s"], r["train_step_s"], r["steps"], r["val/accuracy"],
                "yes" if r.get("disturbed") else "no", r.get("other_cpu_cores")]
               for i, r in enumerate(overhead["runs"])]),
        "",
        f"Fastest run per side (other load only adds time; a run is marked slowed when its training steps "
        f"alone took > 1.2× the fastest run's, both sides doing the same steps): platform "
        f"{overhead['platform_wall_s']:.1f} s vs bare {overhead['bare_wall_s']:.1f} s → **{overhead['ratio']:.3f}×** "
        f"({overhead['fixed_overhead_s']:+.1f} s); time inside training steps {overhead['step_time_ratio']:.3f}×; "
        f"ratio of the medians {overhead['ratio_median']:.3f}×. The platform's \"training steps\" time is its "
        "Throughput counter (batch start → batch end hooks); the bare loop's is the same span.",
    ]
    return "\n".join(lines)


def write_train_report(data: dict[str, Any], out: Path) -> None:
    (out / "train.md").write_text(train_markdown(data))
