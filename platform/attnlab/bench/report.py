"""Markdown and PNG reports from the benchmark JSON (the JSON is the record; these only format it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(data: dict[str, Any]) -> str:
    m = data["machine"]
    code = m.get("model_code") or {}
    commit = m["attnlab_commit"] + (" (working tree has uncommitted changes)" if m.get("worktree_dirty") else "")
    return "\n".join([
        f"- command: `{data['command']}`",
        f"- machine: {m['cpu_model']}, {m['cores']} cores, torch threads {m['torch_threads']}, device {m['device']}",
        f"- versions: python {m['python']}, torch {m['torch']}, transformers {m['transformers']}",
        f"- attnlab commit: {commit}; date {m['date']}; wall time {data.get('wall_time_s', 0):.0f} s",
        f"- model code (attention/, model/, config.py) sha256 {code.get('sha256', 'not recorded')}"
        + (", differs from the commit" if code.get("differs_from_commit") else ", as committed" if code else "")
        + ("; CHANGED DURING THE RUN" if code.get("changed_during_run") else ""),
        f"- load average (1/5/15 min; {m['cores']} cores) at start {m['load_average']['start']}, at end "
        f"{m['load_average']['end']}: other work on this shared machine slows some rounds; interleaving and "
        "medians keep the ratios fair, absolute times are less reliable",
    ])


def targets_table(targets: Sequence[dict[str, Any]]) -> str:
    return table(["target", "goal", "measured", "status", "detail"],
                 [[t["name"], t["goal"], t["measured"], f"**{t['status']}**", t["detail"]] for t in targets])


# What the profile of a missed target shows, where the reason is structural (the same on any machine).
MISS_NOTES = {
    "synthesizer_dense_dot_vs_dot": (
        "The dense synthesizer's own MLP is the floor: its output layer maps d_model to h·max_len logits "
        "per token, 2·B·T·d·h·T = 4.3 GFLOP forward at T=1024, 12.9 with backward — 1.2× dot's whole layer "
        "(projections + fused attention ≈ 3.2 + 7.5 GFLOP) before any attention is done; the biased fused "
        "attention itself costs what `synthesizer_random_dot` costs (~1.5× dot), so the sum stays above 2.5×."),
    "talking_heads_vs_dot": (
        "The fused form does ~h× dot's attention FLOPs (keys and values h·dk = 256 wide instead of 64, "
        "h = 4): its flash forward and backward take ~3× dot's, which is the floor for one SDPA call. "
        "Below it needs a kernel that mixes the heads' logits inside each tile (FLOPs ≈ dot + h²·T² "
        "mixing), which torch does not have on CPU."),
    "decode_attention_vs_dot": (
        "linear's step is about ten µs-sized dispatcher ops (one fused q/k/v addmm, one baddbmm, one bmm, "
        "the feature map, the output addmm): its time is per-op overhead, not arithmetic, so the ratio "
        "grows with L only through dot's side."),
    "decode_model_vs_dot": (
        "Both models share the per-token cost outside attention (embeddings, 5 LayerNorms, 2 FFNs and the "
        "8000×256 LM head, which reads 8 MB of weights per token); with linear's attention nearly free, "
        "that shared part bounds the whole-model ratio."),
}


def profile_sections(targets: Sequence[dict[str, Any]], level: str = "##") -> list[str]:
    """One table of top ops (torch.profiler, self time) per profiled target: where the time goes."""
    out: list[str] = []
    for tg in targets:
        if tg["status"] == "MISS" and tg["name"] in MISS_NOTES:
            out += [f"{level} Why `{tg['name']}` misses", "", MISS_NOTES[tg["name"]], ""]
        for name, ops in tg.get("profile", {}).items():
            out += [f"{level} Profile behind `{tg['name']}` ({tg['status']}): {name}", "",
                    table(["op", "self ms", "share", "calls"],
                          [[o["op"], o["self_ms"], f"{100 * o['share']:.1f}%", o["calls"]] for o in ops]), ""]
    return out


# ---- attention ----------------------------------------------------------------------------------
def _short(status: str) -> str:
    return status.split("(")[0].strip()  # "skipped: too big (~9 GiB ...)" → "skipped: too big"


def _cell(row: dict[str, Any] | None, key: str) -> str:
    """A table cell: the number, or why there is none (skipped / not measured)."""
    if row is None:
        return "—"
    if row["status"] != "ok":
        return _short(row["status"])
    if key in row:
        return _fmt(row[key])
    return _short(row.get("memory_status", "—"))


def _by_layer(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["layer"], {})[r["T"]] = r
    return out


def attention_markdown(data: dict[str, Any]) -> str:
    cfg = data["config"]
    lengths = sorted(cfg["lengths"])
    layers = _by_layer(data["rows"])
    names = list(data["layers"])
    label = {n: f"{n} (ref)" if data["layers"][n] == "reference" else n for n in names}
    ratio_keys = ["dot/sdpa", "dot/explicit_softmax", "dot/hf_bert", "linear/dot", "linear/explicit_linear"]
    other_keys = sorted({k for r in data["ratios"].values() for k in r} - set(ratio_keys))
    out = [
        "# attnlab bench attention", "", provenance(data), "",
        f"One attention layer, batch {cfg['batch']}, d_model {cfg['d_model']}, {cfg['n_heads']} heads, fp32, "
        "bidirectional, no padding, dropout 0. Time: forward+backward (grads freed before each call), median "
        f"over up to {cfg['repeats']} rounds in which every layer runs once (order rotated); a ratio A/B is the "
        "median of the per-round ratios. References (same Linear projections): `sdpa` = raw "
        "F.scaled_dot_product_attention, `explicit_softmax` = softmax(QKᵀ/√d)V, `hf_bert` = transformers "
        "BertSelfAttention (SDPA) + BertSelfOutput.dense, `explicit_linear` = O(T²) normalised-kernel form. "
        f"Peak memory: {data['memory_method']}. Skips: a layer whose T×T tensors would exceed "
        f"{cfg['memory_budget_gib']:g} GiB is skipped (too big); beyond T=4096 only, a layer no target needs is skipped "
        f"(too slow) when its time per call, extrapolated ∝ T² from the previous T, exceeds {cfg['max_call_s']:g} s. When one "
        f"round would take over {cfg['length_budget_s']:g} s / {cfg['repeats']}, a length gets fewer rounds "
        f"(at least {cfg['min_repeats']}).", "",
        "## Targets", "", targets_table(data["targets"]), "",
        *profile_sections(data["targets"], "###"),
        "## Forward+backward time (ms)", "",
        table(["layer", *[f"T={t}" for t in lengths]],
              [[label[n], *[_cell(layers.get(n, {}).get(t), "time_ms") for t in lengths]] for n in names]), "",
        "Cores other processes kept busy while each length was timed (0 = quiet machine): "
        + ", ".join(f"T={t}: {_other_load(data['rows'], t)}" for t in lengths) + ".", "",
        "## Ratios vs the references (time A / time B; < 1 means A is faster)", "",
        table(["T", *ratio_keys], [[t, *[data["ratios"].get(str(t), {}).get(k) for k in ratio_keys]]
                                   for t in lengths]), "",
    ]
    if other_keys:
        out += ["## Other variants vs dot (time ratio)", "",
                table(["T", *other_keys], [[t, *[data["ratios"].get(str(t), {}).get(k) for k in other_keys]]
                                           for t in lengths]), ""]
    out += ["## Peak memory of one forward+backward (MiB above the resting process)", "",
            table(["layer", *[f"T={t}" for t in lengths]],
                  [[label[n], *[_cell(layers.get(n, {}).get(t), "peak_mib") for t in lengths]] for n in names]), "",
            "## Linear attention memory growth", "", _memory_growth(layers, lengths), "",
            "## Causal decoding (per generated token, after L tokens)", "", _decode_table(data["decode"]), ""]
    return "\n".join(out)


def _other_load(rows: Sequence[dict[str, Any]], t: int) -> str:
    values = [r["other_cpu_cores"] for r in rows if r["T"] == t and r.get("other_cpu_cores") is not None]
    return _fmt(values[0]) if values else "—"


def _memory_growth(layers: dict[str, dict[int, dict[str, Any]]], lengths: list[int]) -> str:
    rows, prev = [], None
    for t in lengths:
        mem = {n: layers.get(n, {}).get(t, {}).get("peak_mib") for n in ("linear", "dot", "explicit_softmax")}
        growth: float | None = mem["linear"] / prev if mem["linear"] and prev else None
        rows.append([t, mem["linear"], growth, mem["dot"], mem["explicit_softmax"]])
        prev = mem["linear"]
    return table(["T", "linear MiB", "× previous T", "dot MiB", "explicit softmax MiB"], rows)


def _decode_table(decode: dict[str, Any]) -> str:
    rows = decode["rows"]
    if not rows:
        return "not measured"
    model = decode["model"]
    out = []
    for level, prefix in (("model", "model"), ("attention layer", "attn")):
        names = [k.removesuffix(" ms/token") for k in rows[0]
                 if k.startswith(prefix + ":") and k.endswith(" ms/token") and not k.endswith(" best ms/token")]
        if not names:
            continue
        ratios = [k for k in rows[0] if k.startswith(prefix + " ") and "/" in k]
        head = ["L", *[f"{n} ms/token (best)" for n in names], *ratios, *[f"{n} state MiB" for n in names]]
        body = [[r["L"], *[f"{_fmt(r[f'{n} ms/token'])} ({_fmt(r[f'{n} best ms/token'])})" for n in names],
                 *[r[k] for k in ratios], *[r[f"{n} state MiB"] for n in names]] for r in rows]
        out += [f"### {level}", "", table(head, body), ""]
    note = (f"Median (and best) over {decode.get('rounds', '?')} rounds that time every (L, decoder) pair, "
            f"{decode.get('threads', '?')} intra-op thread(s); other processes kept "
            f"{_fmt(decode.get('other_cpu_cores'))} cores busy meanwhile. "
            f"`model:*` = CausalLM.prefill(L random tokens), then {rows[0]['steps']} × CausalLM.step, timed "
            f"({model['n_layers']} layers, pre-norm, d_ff {model['d_ff']}, vocab {model['vocab_size']}, "
            f"batch {decode['batch']}). " if isinstance(model, dict) else f"Model level {model}. ")
    note += ("`attn:*` = one attention layer's own prefill/step; `attn:dot_prealloc_ref` = a bench-only dot "
             "step writing into a preallocated KV buffer. State = bytes of the decoding cache's tensors "
             "(all layers for `model:*`; a growable KV buffer counts with its spare capacity). "
             "A ratio is time A / time B.")
    return note + "\n\n" + "\n".join(out)


def attention_plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    layers = _by_layer(data["rows"])
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
               "tab:olive", "tab:cyan", "gold", "navy", "teal", "lime", "salmon"]  # no red/black: dot, linear
    others = [n for n in data["layers"] if n not in ("dot", "linear")]
    style = {"dot": ("black", 3.0), "linear": ("tab:red", 3.0),
             **{n: (palette[i % len(palette)], 1.3) for i, n in enumerate(others)}}
    fig, axes = plt.subplots(1, 3, figsize=(20, 6.5))
    for ax, key, title in ((axes[0], "time_ms", "forward+backward time (ms)"),
                           (axes[1], "peak_mib", "peak memory of fwd+bwd (MiB); legend on the left")):
        for name in data["layers"]:
            pts = sorted((t, r[key]) for t, r in layers.get(name, {}).items() if r.get(key))
            if pts:
                ref = data["layers"][name] == "reference"
                color, width = style[name]
                ax.plot(*zip(*pts), "--" if ref else "-", marker="o", ms=3, lw=width, color=color,
                        label=f"{name} (ref)" if ref else name, zorder=3 if name in ("dot", "linear") else 2)
        ax.set(xscale="log", yscale="log", xlabel="sequence length T", title=title)
    axes[0].legend(fontsize=8, loc="upper left")
    rows = data["decode"]["rows"]
    for key in [k for k in (rows[0] if rows else {}) if k.endswith(" ms/token") and " best " not in k]:
        color = "black" if "dot" in key else "tab:red"
        axes[2].plot([r["L"] for r in rows], [r[key] for r in rows], marker="o", color=color,
                     alpha=0.5 if "prealloc" in key else 1.0,
                     ls="-" if key.startswith("model") else (":" if "prealloc" in key else "--"),
                     label=key.removesuffix(" ms/token"))
    axes[2].set(xscale="log", yscale="log", xlabel="tokens already decoded L",
                title="causal decoding: time per token (ms), solid = whole model")
    axes[2].legend(fontsize=8)
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.2, 3 instead of 2×10⁻¹, 3×10⁰ (under a decade)
    axes[2].yaxis.set_major_formatter(plain)
    axes[2].yaxis.set_minor_formatter(plain)
    lengths = sorted(data["config"]["lengths"])
    for ax in axes:  # label the measured lengths themselves, not 2×10², 3×10², ...
        ax.set_xticks(lengths, [str(t) for t in lengths])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    m, c = data["machine"], data["config"]
    fig.suptitle(f"attnlab attention benchmark — B={c['batch']}, d_model={c['d_model']}, heads={c['n_heads']}, "
                 f"fp32, {m['device']} ({m['cpu_model']}, {m['torch_threads']} thread{'s' * (m['torch_threads'] != 1)}), "
                 f"torch {m['torch']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_attention_report(data: dict[str, Any], out: Path) -> None:
    (out / "attention.md").write_text(attention_markdown(data))
    attention_plot(data, out / "attention.png")
