"""Text of the statistics sections: the claims table (overall verdicts with power, bootstrap, Holm and, after
`--until-conclusive`, the sequential verdict), the per-task verdicts table, what the preset can test (the claims'
preconditions and the measured diagnostics), the reference rows (majority class, chance) of the leaderboard, and
the rules that define every verdict. Shared by Markdown and HTML."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attnlab.report.baselines import reference_rows
from attnlab.report.grid import Grid
from attnlab.report.power import ALPHA, POWER
from attnlab.report.preconditions import MET, NOT_MEASURED, NOT_MET, UNTESTABLE
from attnlab.report.sequential import METHOD
from attnlab.report.stats import SIMILAR_BAND

Table = tuple[list[str], list[list[str]]]


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def interval(stat: Mapping[str, Any] | None) -> str:
    if not stat or not stat.get("n"):
        return "—"
    if stat.get("lo") is None:
        return f"{_num(stat['mean'], signed=True)} (n={stat['n']})"
    return f"{_num(stat['mean'], signed=True)} [{_num(stat['lo'], signed=True)}, {_num(stat['hi'], signed=True)}]"


def mde_text(stat: Mapping[str, Any]) -> str:
    parts = [f"t {_num(stat['mde_t'])}" if stat.get("mde_t") is not None else "",
             f"boot {_num(stat['mde_boot'])}" if stat.get("mde_boot") is not None else ""]
    text = ", ".join(p for p in parts if p)
    return text or "—"


def effect_text(stat: Mapping[str, Any], expect: str) -> str:
    if expect == "similar":
        return f"±{SIMILAR_BAND:g} band"
    return _num(abs(stat["effect"])) if stat.get("effect") is not None else "not stated"


def holm_text(stat: Mapping[str, Any]) -> str:
    p = stat.get("holm_p")
    if stat.get("holm_verdict") is None:  # untestable here: not in the family
        return "—"
    return stat["holm_verdict"] if p is None else f"{stat['holm_verdict']} (p_adj {p:.3g})"


KIND_LABELS = {"paper": "Paper:", "ours": "Ours (hypothesis):"}


def claim_label(claim: Mapping[str, Any]) -> str:
    """"Paper: <text>" or "Ours (hypothesis): <text>"."""
    return f"{KIND_LABELS.get(claim.get('kind') or 'paper', 'Paper:')} {claim['text']}"


def sequential_text(claim: Mapping[str, Any]) -> str:
    seq = claim.get("sequential")
    if not seq:
        return "—"
    where = f"at n={seq['decided_at']}" if seq["decided_at"] else f"n={seq['n']}, undecided"
    return f"{seq['verdict']} ({where}; RCI {interval({**seq, 'n': seq['n']})})"


def claims_table(claims: Sequence[Mapping[str, Any]]) -> Table:
    sequential = any(c.get("sequential") for c in claims)
    header = ["Claim", "Source", "Paper: row", "Paper: vs", "Metric", "Here: row − vs, seed-paired t (95% CI)",
              "Bootstrap seeds × examples (95% CI)", f"MDE ({POWER:.0%} power)", "Paper effect", "Verdict",
              "Holm verdict"] + (["Sequential verdict"] if sequential else [])
    body = []
    for claim in claims:
        stat = claim["stats"]
        line = [f"{claim_label(claim)} [{claim['row']} vs {claim['vs']}, expect {claim['expect']}]",
                claim.get("source") or "—",
                f"{claim['row']}: {claim['paper_row'] or '—'}", f"{claim['vs']}: {claim['paper_vs'] or '—'}",
                claim["metric"], interval(stat["t"]), interval(stat["boot"]) if stat["boot"] else "n/a",
                mde_text(stat), effect_text(stat, claim["expect"]), claim["verdict"], holm_text(stat)]
        body.append(line + ([sequential_text(claim)] if sequential else []))
    return header, body


def task_verdicts_table(claims: Sequence[Mapping[str, Any]]) -> Table:
    header = ["Claim", "Task", "Here: row − vs, t (95% CI)", "Bootstrap (95% CI)", "MDE", "Paper effect",
              "Verdict", "Holm verdict"]
    body = []
    for claim in claims:
        for stat in claim.get("per_task") or []:
            body.append([f"{claim['row']} vs {claim['vs']} ({claim['expect']})", stat["metric"],
                         interval(stat["t"]), interval(stat["boot"]) if stat["boot"] else "n/a", mde_text(stat),
                         effect_text(stat, claim["expect"]), stat["verdict"], holm_text(stat)])
    return header, body


def _threshold(check: Mapping[str, Any]) -> str:
    lo, hi = check.get("min"), check.get("max")
    if lo is not None and hi is not None:
        return f"in [{lo:g}, {hi:g}]"
    return f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}"


def _measured(check: Mapping[str, Any]) -> str:
    return "—" if check["value"] is None else f"{check['value']:.4g} (n={check['n']})"


def preconditions_table(claims: Sequence[Mapping[str, Any]]) -> Table:
    """One line per (claim, precondition, task): what must hold, what was measured, met / not met / not measured."""
    header = ["Claim", "Task", "Precondition (row, measure, threshold, why)", "Measured", "Status"]
    body = []
    for claim in claims:
        for check in claim.get("preconditions") or []:
            body.append([f"{claim['row']} vs {claim['vs']} ({claim['expect']})", check["task"],
                         f"{check['row']}: {check['measure']} {_threshold(check)} — {check['why']}",
                         _measured(check), check["status"]])
    return header, body


def precondition_lines(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per claim: the tasks it is testable on, those it is untestable on (and why), those not measured."""
    lines = []
    for claim in claims:
        checks = claim.get("preconditions") or []
        if not checks:
            lines.append(f"{claim_label(claim)} — no precondition stated.")
            continue
        tasks = list(dict.fromkeys(c["task"] for c in checks))
        status = {t: {c["status"] for c in checks if c["task"] == t} for t in tasks}
        unmet = [t for t in tasks if NOT_MET in status[t]]
        unmeasured = [t for t in tasks if t not in unmet and NOT_MEASURED in status[t]]
        met = [t for t in tasks if status[t] == {MET}]
        whys = list(dict.fromkeys(c["why"] for c in checks if c["status"] == NOT_MET))
        parts = [f"testable on: {', '.join(met)}" if met else "",
                 f"{UNTESTABLE} on: {', '.join(unmet)}: {'; '.join(whys)}" if unmet else "",
                 f"not measured on: {', '.join(unmeasured)} (precondition unchecked)" if unmeasured else ""]
        lines.append(f"{claim_label(claim)} — " + "; ".join(p for p in parts if p) + ".")
    return lines


def diagnostics_table(grid: Grid) -> Table | None:
    """Rows × tasks: the mean over seeds of every `attn/` and `data/` metric, averaged over layers; None when the
    records have none."""
    diags = grid.diagnostics()
    if not diags:
        return None
    header = ["Row", "Measure (mean over layers and seeds)", *grid.tasks]
    body = []
    for row in grid.rows:
        for key, by_cell in diags.items():
            if any((row, t) in by_cell for t in grid.tasks):
                body.append([row, key, *(f"{by_cell[(row, t)]:.4g}" if (row, t) in by_cell else "—"
                                         for t in grid.tasks)])
    return header, body


def reference_lines(grid: Grid, n_benchmarks: int, n_columns: int) -> list[list[str]]:
    """Leaderboard lines for majority class and chance: task scores, overall score, "—" elsewhere."""
    lines = []
    for ref in reference_rows(grid):
        line = ["—", f"{ref['row']} (reference)"]
        line += [_num(ref["tasks"][t]) for t in grid.tasks] + ["—"] * n_benchmarks + [_num(ref["overall"])]
        lines.append(line + ["—"] * (n_columns - len(line)))
    return lines


REFERENCE_NOTE = (
    "Reference rows, from the dev labels stored with the predictions: majority class = every example predicted "
    "as its split's most frequent label; chance = uniformly random labels, scored on the expected confusion "
    "matrix (accuracy 1/K, MCC 0). They are not ranked."
)


def stats_rules(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    rules = [
        "Verdicts: agrees = the 95% interval of (row − vs) lies on the paper's side of 0 (better/worse) or inside "
        f"±{SIMILAR_BAND:g} (similar); disagrees = on the other side of 0, or entirely outside the band; "
        f"underpowered = neither, and the minimum detectable effect (MDE: {POWER:.0%} power, α = {ALPHA}, "
        "two-sided, exact noncentral t with n − 1 df) exceeds the paper's effect (`effect:` in points of the "
        "claim's metric; for similar, the band); inconclusive = neither, with the power to see the effect or with "
        "no stated effect; 'no data': no paired seed. Perplexity enters as the raw difference row − vs, lower = "
        "better (the rule flips the sign, the numbers are shown as measured).",
        "Intervals: seed-paired t = mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n over the per-seed differences (dev set held fixed). "
        "Bootstrap = 2,000 replicates resampling seeds and dev examples together (the same example indices for "
        "every seed and both rows; the task score recomputed from the resampled confusion matrix), shown as "
        "mean ± t₀.₉₇₅,ₙ₋₁ · SE_boot; n/a where a task has no per-example predictions (LM, regression, reading "
        "comprehension, older records). The verdict uses the bootstrap where present, else the t interval; the "
        "MDE and the p-value come from the same source.",
        "Holm: Holm–Bonferroni over the table's claims (one family: the overall tests; the per-task table is a "
        "second family), p-values two-sided from the same t or bootstrap distribution (similar claims: TOST "
        "equivalence vs non-equivalence, whichever is smaller); a verdict stands when its adjusted p < 0.05. "
        f"Claims {UNTESTABLE} are left out of both families (Holm column —).",
    ]
    if any(c.get("preconditions") for c in claims):
        rules.append(
            f"{UNTESTABLE.capitalize()}: the claim states a precondition (`requires:`: a measured diagnostic of a row, mean over "
            "its records and layers, within min/max) that these runs do not meet on the task, so they cannot test "
            "it; the intervals are still shown. Overall: when it is not met on every task the claim is judged on. "
            "A precondition no record measures (older records) changes nothing and reads 'not measured'.")
    if any(c.get("sequential") for c in claims):
        rules.append(
            f"Sequential verdict (`--until-conclusive`): {METHOD}. Seeds were added only to rows of undecided "
            "claims, at looks planned in advance; a claim is decided at the first look whose repeated interval "
            "(RCI) excludes 0 (or settles the band), and that decision keeps the 5% error rate across all looks. "
            "After adaptive seeds, read this column: the fixed-sample columns ignore the optional stopping.")
    return rules


CLAIMS_CSV_COLUMNS = ["claim", "kind", "source", "row", "vs", "expect", "scope", "metric", "n", "diff_mean", "t_lo",
                      "t_hi", "t_sd", "boot_lo", "boot_hi", "boot_se", "mde_t", "mde_boot", "paper_effect", "p",
                      "p_source", "testable", "verdict", "holm_p", "holm_verdict", "sequential_verdict",
                      "sequential_decided_at", "sequential_lo", "sequential_hi"]


def write_claims_csv(claims: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """claims.csv: one line per (claim, scope) — overall and each task — every statistic at full precision;
    testable: yes / no (a precondition not met: verdict "untestable here") / partly (overall: on some tasks) /
    unchecked (a precondition not measured)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CLAIMS_CSV_COLUMNS)
        for i, claim in enumerate(claims):
            seq = claim.get("sequential") or {}
            for stat in [claim["stats"], *(claim.get("per_task") or [])]:
                t, boot = stat["t"], stat["boot"] or {}
                line = [i, claim.get("kind") or "paper", claim.get("source"), claim["row"], claim["vs"],
                        claim["expect"], stat["scope"], stat["metric"], t["n"], t["mean"], t["lo"], t["hi"], t["sd"],
                        boot.get("lo"), boot.get("hi"), boot.get("se"), stat["mde_t"], stat["mde_boot"],
                        stat["effect"], stat["p"], stat["source"], stat.get("testable", "yes"), stat["verdict"],
                        stat["holm_p"], stat["holm_verdict"]]
                overall = stat is claim["stats"]
                line += [seq.get(k) if overall else None for k in ("verdict", "decided_at", "lo", "hi")]
                writer.writerow(["" if v is None else v for v in line])
    return path
