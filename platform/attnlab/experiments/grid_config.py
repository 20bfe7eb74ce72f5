"""Ablation files (`ablations/*.yaml`): one paper table each — a base config, rows of overrides,
tasks, seeds, presets (smoke / cpu / gpu: sizes and steps, never the code path), an optional
pretraining stage, and the paper's own claims and numbers for the comparison column.

```yaml
name: synthesizer
title: "Synthesizer: dot vs synthesized attention"
paper: "Tay et al. 2020, arXiv 2005.00743"
base: ../sweeps/base/sst2.yaml
set: {train.max_steps: 600}                # common overrides
baseline: dot
rows:
  dot: {}
  random: {model.attention.kind: synthesizer_random}
  untied: {set: {model.sharing: none}, untie: true}   # long form: overrides + untie after loading
tasks: [glue/sst2, clue/tnews]
seeds: [0, 1, 2]
pretrain: {task: lm/wikitext2, objective: mlm, set: {train.max_steps: 2000}}   # optional
claims:
  - {row: random_dot, vs: dot, expect: better, text: "R+V beats Transformer (28.47 vs 27.67 BLEU)",
     source: "Tay et al. 2021, arXiv 2005.00743v3, Table 2 (WMT'14 EnDe BLEU)",   # kind: paper (default)
     requires: [{measure: "attn/*/mix/dot", min: 0.1, why: "the mix must use its dot part"}]}   # row: the claim's
  - {kind: ours, row: dense, vs: dot, expect: similar, text: "dense ≈ dot at our sizes"}   # source optional
paper_numbers: {dot: "27.67 BLEU", random_dot: "28.47 BLEU"}
presets:
  smoke: {set: {...}, tasks: [glue/sst2], seeds: [0, 1], est_run_s: 5}
  cpu:   {set: {...}, est_run_s: 25}
  gpu:   {set: {...}}
```
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab.config import ConfigError, RunConfig, build_run_config, load_yaml
from attnlab.experiments.storage import check_storage_url
from attnlab.experiments.sweep_config import strict_section
from attnlab.paths import check_name

TOP_KEYS = ("name", "title", "paper", "description", "base", "set", "baseline", "rows", "tasks", "seeds", "pretrain",
            "claims", "paper_numbers", "presets", "notes", "speed_bench", "storage", "wandb")
ROW_KEYS = ("set", "untie", "pretrain")
PRESET_KEYS = ("set", "tasks", "seeds", "pretrain", "est_run_s", "speed_bench")
EXPECT = ("better", "worse", "similar")
PRETRAIN_KEYS = ("task", "objective", "set")
# task / metric: what the claim is judged on (report/grid.py claim_metric); effect: the paper's effect size
# in points of that metric (for the power statement: below the minimum detectable effect = underpowered)
# kind: paper (the default; needs `source`: a version and a location) or ours (our own hypothesis);
# requires: preconditions on measured diagnostics — on a task where one is not met the claim is "untestable here"
# numbers: the paper's figures for this claim's two rows, from the claim's own source ({row: "...", vs: "..."});
# a claim's numbers never come from another table (the file-level paper_numbers are only a fallback)
CLAIM_KEYS = ("row", "vs", "expect", "text", "task", "metric", "effect", "kind", "source", "requires", "numbers")
CLAIM_KINDS = ("paper", "ours")
REQUIRE_KEYS = ("measure", "row", "min", "max", "why")
SOURCE_EXAMPLE = "Tay et al. 2021, arXiv 2005.00743v3, Table 2 (WMT'14 EnDe BLEU)"
# a version: an arXiv id with its version suffix, or a URL (scheme optional: kexue.fm/archives/8610)
_ARXIV = re.compile(r"arXiv[: ]?\s*\d{4}\.\d{4,5}v\d+", re.IGNORECASE)
_URL = re.compile(r"\bhttps?://\S+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/\S+", re.IGNORECASE)
# a location inside that version: Table 2, Fig. 3, Section 4.1, §5, Appendix B, Eq. (7)
_LOCATION = re.compile(r"(?:\bTable|\bTab\.|\bFigure|\bFig\.|\bSection|\bSec\.|§|\bAppendix|\bEq\.)\s*\(?[\w.]+",
                       re.IGNORECASE)
_URL_LOCATION = re.compile(r"\b(?:table|section|results)\b", re.IGNORECASE)  # enough for a blog post's URL
WANDB_KEYS = ("project", "entity", "dir")
DEFAULT_PRESET = "default"  # the file as written, for comparisons without presets


@dataclass(frozen=True)
class Row:
    name: str
    set: dict[str, Any]
    untie: bool = False
    pretrain: bool = True  # use the ablation's pretraining stage (when it has one)


@dataclass(frozen=True)
class Pretrain:
    task: str
    objective: str
    set: dict[str, Any]


@dataclass(frozen=True)
class Resolved:
    """An ablation at one preset: everything the grid needs."""

    name: str
    preset: str
    rows: tuple[Row, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    common: dict[str, Any]
    pretrain: Pretrain | None
    est_run_s: float
    speed_bench: dict[str, Any] | None


@dataclass(frozen=True)
class AblationConfig:
    name: str
    path: Path
    title: str
    paper: str
    base: dict[str, Any]
    common: dict[str, Any]
    baseline: str
    rows: tuple[Row, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    pretrain: dict[str, Any] | None
    claims: tuple[dict[str, Any], ...]
    paper_numbers: dict[str, str]
    presets: dict[str, dict[str, Any]]
    notes: tuple[str, ...] = ()
    speed_bench: dict[str, Any] | None = None
    storage: str | None = None
    wandb: dict[str, Any] = field(default_factory=dict)

    def resolve(self, preset: str | None = None) -> Resolved:
        """The grid at `preset`; None → `cpu` when the file has it, else the file as written (preset "default")."""
        if preset is None:
            preset = "cpu" if "cpu" in self.presets else DEFAULT_PRESET
        if preset not in self.presets and preset != DEFAULT_PRESET:
            have = ", ".join(self.presets) or "none (run it without --preset)"
            raise ConfigError(f"{self.path}: unknown preset {preset!r}; this ablation has: {have}")
        p = self.presets.get(preset, {})
        pre = None
        pre_raw = p.get("pretrain", self.pretrain) if "pretrain" in p else self.pretrain
        if pre_raw:
            merged = {**(self.pretrain or {}), **(pre_raw or {})}
            sets = {**(self.pretrain or {}).get("set", {}), **(pre_raw or {}).get("set", {})}
            pre = Pretrain(str(merged.get("task", "auto")), str(merged.get("objective", "mlm")), sets)
        speed = p.get("speed_bench", self.speed_bench)
        return Resolved(self.name, preset, self.rows, tuple(p.get("tasks", self.tasks)),
                        tuple(int(s) for s in p.get("seeds", self.seeds)), {**self.common, **(p.get("set") or {})},
                        pre, float(p.get("est_run_s", 30.0)), speed)

    def run_config(self, r: Resolved, row: Row, task: str, seed: int, extra: dict[str, Any] | None = None) -> RunConfig:
        values = {**r.common, **row.set, "task.name": task, "train.seed": seed, **(extra or {})}
        return build_run_config(self.base, source=str(self.path), values=values)

    def pretrain_config(self, r: Resolved, row: Row, corpus: str) -> RunConfig:
        assert r.pretrain is not None
        values = {**r.common, **row.set, **r.pretrain.set, "task.name": corpus,
                  "task.objective": r.pretrain.objective, "train.seed": 0}
        return build_run_config(self.base, source=str(self.path), values=values)


PRETRAIN_CORPUS = {"en": "lm/wikitext2", "zh": "lm/songci"}


def pretrain_corpus(r: Resolved, language: str) -> str:
    """`pretrain.task: auto` (the default) picks the corpus by the fine-tuning task's language."""
    assert r.pretrain is not None
    return PRETRAIN_CORPUS[language] if r.pretrain.task == "auto" else r.pretrain.task


def _unknown(path: Path, key: str, valid: tuple[str, ...], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{path}: {where}{key}: unknown key.{hint} Valid: {', '.join(valid)}")


def _row(path: Path, name: str, raw: Any) -> Row:
    raw = raw or {}
    try:
        check_name(name, "row name")
    except ValueError as e:
        raise ConfigError(f"{path}: rows.{name}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: rows.{name}: expected a mapping of overrides")
    if any(k in ROW_KEYS for k in raw):  # long form: every key must be one of ROW_KEYS
        strict_section(path, f"rows.{name}", raw, ROW_KEYS)
        sets = raw.get("set") or {}
        if not isinstance(sets, dict):
            raise ConfigError(f"{path}: rows.{name}.set: expected a mapping of dotted keys to values")
        for key in ("untie", "pretrain"):
            if key in raw and not isinstance(raw[key], bool):
                raise ConfigError(f"{path}: rows.{name}.{key}: must be true or false, got {raw[key]!r}")
        return Row(name, dict(sets), bool(raw.get("untie", False)), bool(raw.get("pretrain", True)))
    return Row(name, dict(raw))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_source(source: str) -> str | None:
    """What a paper claim's `source` lacks ("a version" / "a location"), or None when it names both."""
    # an arxiv.org URL is a version only with its suffix (…/abs/2005.00743v3)
    urls = [u for u in _URL.findall(source) if "arxiv.org" not in u.lower() or re.search(r"\d{4,5}v\d+", u)]
    has_arxiv = _ARXIV.search(source) is not None
    if not has_arxiv and not urls:
        return ("no version: name the arXiv id with its version suffix (arXiv 2005.00743v3; an arxiv.org link "
                "needs it too: .../abs/2005.00743v3) or a URL, since tables move between versions")
    rest = _URL.sub(" ", source)  # a word inside the URL is not a location
    if _LOCATION.search(rest) is None and (has_arxiv or _URL_LOCATION.search(rest) is None):
        where = "Table/Figure/Section/§/Appendix/Eq. N" + ("" if has_arxiv else " (or, for a web page, the "
                                                          "words table/section/results)")
        return f"no location: say where in that version the number is: {where}"
    return None


def _claim(p: Path, i: int, c: dict[str, Any], names: list[str]) -> None:
    """Validate claims[i]: rows, expect, effect, kind, source, requires, numbers."""
    numbers = c.get("numbers")
    if numbers is not None and (not isinstance(numbers, dict) or not set(numbers) <= {"row", "vs"}
                                or not all(isinstance(v, str) for v in numbers.values())):
        raise ConfigError(f"{p}: claims[{i}].numbers: expected {{row: \"...\", vs: \"...\"}} (the paper's figures "
                          f"for the claim's two rows, as text), got {numbers!r}")
    for key in ("row", "vs"):
        if c.get(key) not in names:
            raise ConfigError(f"{p}: claims[{i}].{key}: {c.get(key)!r} is not a row; rows: {', '.join(names)}")
    if c.get("expect") not in EXPECT:
        raise ConfigError(f"{p}: claims[{i}].expect: must be one of {EXPECT}")
    if "effect" in c and not _is_number(c["effect"]):
        raise ConfigError(f"{p}: claims[{i}].effect: expected a number (points of the claim's metric), "
                          f"got {c['effect']!r}")
    kind = c.get("kind", "paper")
    if kind not in CLAIM_KINDS:
        raise ConfigError(f"{p}: claims[{i}].kind: {kind!r} is not a kind; valid: {', '.join(CLAIM_KINDS)} "
                          "(paper: the paper's claim, needs `source`; ours: our own hypothesis)")
    source = c.get("source")
    if source is not None and not (isinstance(source, str) and source.strip()):
        raise ConfigError(f"{p}: claims[{i}].source: expected text, got {source!r}; e.g. "
                          f"source: \"{SOURCE_EXAMPLE}\"")
    if kind == "paper":
        lack = ("missing: a paper claim must cite a version and a location" if source is None
                else check_source(source))
        if lack:
            raise ConfigError(f"{p}: claims[{i}].source: {lack}; e.g. source: \"{SOURCE_EXAMPLE}\" "
                              "(or `kind: ours` for our own hypothesis)")
    requires = c.get("requires")
    if requires is None:
        return
    if not isinstance(requires, list):
        raise ConfigError(f"{p}: claims[{i}].requires: expected a list of preconditions, e.g. requires: "
                          "[{measure: attn/*/random/rel_change, min: 0.05, why: \"the random part must move\"}], "
                          f"got {requires!r}")
    for j, req in enumerate(requires):
        where = f"claims[{i}].requires[{j}]"
        strict_section(p, where, req, REQUIRE_KEYS)
        if not isinstance(req, dict):  # None passes strict_section as {}
            raise ConfigError(f"{p}: {where}: expected a mapping with keys {', '.join(REQUIRE_KEYS)}")
        if not isinstance(req.get("measure"), str) or not req["measure"].strip():
            raise ConfigError(f"{p}: {where}.measure: missing: the record metric key to check (a * glob "
                              "matches per-layer keys), e.g. measure: attn/*/random/rel_change")
        if "row" in req and req["row"] not in names:
            raise ConfigError(f"{p}: {where}.row: {req['row']!r} is not a row; rows: {', '.join(names)} "
                              "(leave it out for the claim's row)")
        for key in ("min", "max"):
            if key in req and not _is_number(req[key]):
                raise ConfigError(f"{p}: {where}.{key}: expected a number, got {req[key]!r}")
        if "min" not in req and "max" not in req:
            raise ConfigError(f"{p}: {where}.min: missing: give min and/or max (the threshold the measure must meet)")
        if "min" in req and "max" in req and req["min"] > req["max"]:
            raise ConfigError(f"{p}: {where}.min: {req['min']!r} is above max {req['max']!r}")
        if not isinstance(req.get("why"), str) or not req["why"].strip():
            raise ConfigError(f"{p}: {where}.why: missing: say why the claim needs this (shown when it is not "
                              "met), e.g. why: \"random weights that never move are not a synthesizer\"")


def load_ablation(path: str | Path, validate: bool = True) -> AblationConfig:
    p = Path(path)
    raw = load_yaml(p)
    for key in raw:
        if key not in TOP_KEYS:
            raise _unknown(p, str(key), TOP_KEYS, "")
    for key in ("base", "rows"):
        if key not in raw:
            raise ConfigError(f"{p}: {key}: missing")
    if not isinstance(raw["rows"], dict) or not raw["rows"]:
        raise ConfigError(f"{p}: rows: expected a mapping of row name → overrides, e.g. rows: {{dot: {{}}}}")
    rows = tuple(_row(p, str(n), r) for n, r in raw["rows"].items())
    names = [r.name for r in rows]
    raw.setdefault("baseline", names[0])  # a comparison without a stated baseline compares to its first row
    if raw["baseline"] not in names:
        raise ConfigError(f"{p}: baseline: {raw['baseline']!r} is not a row; rows: {', '.join(names)}")
    raw_presets = raw.get("presets") or {}
    if not isinstance(raw_presets, dict):
        raise ConfigError(f"{p}: presets: expected a mapping of preset name → settings, e.g. {{smoke: {{...}}}}")
    presets = {str(k): strict_section(p, f"presets.{k}", v, PRESET_KEYS) for k, v in raw_presets.items()}
    for pname, pvalues in presets.items():
        for key in pvalues:
            if key not in PRESET_KEYS:
                raise _unknown(p, str(key), PRESET_KEYS, f"presets.{pname}.")
    claims = tuple(strict_section(p, f"claims[{i}]", c, CLAIM_KEYS) for i, c in enumerate(raw.get("claims") or []))
    for i, c in enumerate(claims):
        _claim(p, i, c, names)
    tasks = raw.get("tasks") or [raw.get("task", "glue/sst2")]
    tasks = [tasks] if isinstance(tasks, str) else tasks
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise ConfigError(f"{p}: tasks: expected a list of task names (e.g. [glue/sst2]), got {raw.get('tasks')!r}")
    seeds = raw.get("seeds") or [0]
    if not isinstance(seeds, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        raise ConfigError(f"{p}: seeds: expected a list of integers, got {raw.get('seeds')!r}")
    if raw.get("pretrain") is not None:
        strict_section(p, "pretrain", raw["pretrain"], PRETRAIN_KEYS)
    for pname, pvalues in presets.items():
        for key in ("tasks", "seeds"):
            if key in pvalues and not isinstance(pvalues[key], list):
                raise ConfigError(f"{p}: presets.{pname}.{key}: expected a list, got {pvalues[key]!r}")
        if isinstance(pvalues.get("pretrain"), dict):
            strict_section(p, f"presets.{pname}.pretrain", pvalues["pretrain"], PRETRAIN_KEYS)
    if raw.get("storage") is not None:
        check_storage_url(raw["storage"], f"{p}: storage")
    wandb = strict_section(p, "wandb", raw.get("wandb"), WANDB_KEYS)
    try:
        check_name(str(raw.get("name") or p.stem), "name")
    except ValueError as e:
        raise ConfigError(f"{p}: name: {e}") from None
    abl = AblationConfig(
        name=str(raw.get("name") or p.stem), path=p, title=str(raw.get("title", p.stem)), paper=str(raw.get("paper", "")),
        base=load_yaml((p.parent / str(raw["base"])).resolve()), common=dict(raw.get("set") or {}),
        baseline=str(raw["baseline"]), rows=rows, tasks=tuple(tasks), seeds=tuple(seeds),
        pretrain=raw.get("pretrain"), claims=claims, paper_numbers={str(k): str(v) for k, v in
                                                                      (raw.get("paper_numbers") or {}).items()},
        presets=presets, notes=tuple(raw.get("notes") or []), speed_bench=raw.get("speed_bench"),
        storage=raw.get("storage"), wandb=wandb)
    if validate:
        for preset in presets or [DEFAULT_PRESET]:
            r = abl.resolve(preset)
            for row in rows:
                for task in r.tasks:
                    try:
                        abl.run_config(r, row, task, r.seeds[0])
                    except ConfigError as e:
                        raise ConfigError(f"rows.{row.name} (preset {preset}, {task}): {e}") from None
                if r.pretrain is not None and row.pretrain:
                    from attnlab.tasks import get_task

                    corpora = {pretrain_corpus(r, get_task(t).language) for t in r.tasks}
                    try:
                        for corpus in sorted(corpora):
                            abl.pretrain_config(r, row, corpus)
                    except ConfigError as e:
                        raise ConfigError(f"pretrain (row {row.name}, preset {preset}): {e}") from None
    return abl


def find_ablation(name_or_path: str, root: Path | None = None) -> Path:
    """`synthesizer` → ablations/synthesizer.yaml (or a path as given)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    from attnlab.paths import ablations_dir

    root = root or ablations_dir()
    candidate = root / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(q.stem for q in root.glob("*.yaml"))
    close = difflib.get_close_matches(name_or_path, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"no ablation {name_or_path!r} in {root}/.{hint} Available: {', '.join(known) or 'none'}")
