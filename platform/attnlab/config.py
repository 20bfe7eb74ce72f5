"""Typed, frozen configs and the strict YAML loader.

Defaults live only here, in the dataclasses. The loader rejects unknown keys (with a
did-you-mean), wrong types, out-of-range values, unknown registry names (listing the valid ones)
and impossible combinations, naming the file and the dotted key. YAML holds data only.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from attnlab.config_io import load_yaml, parse_override, set_dotted
from attnlab.errors import ConfigError
from attnlab.model.config import (
    ACTIVATIONS,
    NORM_POSITIONS,
    SHARING,
    AttentionConfig,
    ModelConfig,
    _check_choice,
)

__all__ = ["ACTIVATIONS", "NORM_POSITIONS", "SHARING", "AttentionConfig", "ConfigError", "ModelConfig", "RunConfig",
           "TaskConfig", "TrainConfig", "build_run_config", "config_hash", "from_dict", "load_run_config",
           "load_yaml", "to_dict"]


@dataclass(frozen=True)
class TaskConfig:
    name: str = "glue/sst2"
    data_root: str | None = None  # local official-format data; None → $ATTNLAB_DATA, else the HF hub
    source: str = "auto"  # auto | local | hub
    max_length: int = 128
    vocab_size: int = 8000
    tokenizer: str | None = None  # a pretrained checkpoint dir with vocab.txt / tokenizer.json
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    # auto: classify (GLUE/CLUE) or causal (LM corpora); mlm | causal | seq2seq (UniLM) for LM corpora;
    # seq2seq (text_a → text_b, e.g. CSL abstract → keywords) | conditional_lm (label → text, via CLN) for tasks
    objective: str = "auto"
    target_length: int = 32  # seq2seq: max target tokens (generation length at evaluation); causal: sample length
    gen_examples: int = 100  # seq2seq: dev examples decoded for the generation metrics; causal: 0 = no samples
    samples_per_label: int = 20  # conditional_lm: generated texts per label, judged by a classifier
    # reading comprehension (CMRC 2018, C3; objective auto → span_extraction | multiple_choice):
    max_question_length: int = 64  # tokens kept of the question (C3: question + choice)
    # CMRC: tokens between the starts of consecutive context windows; None → half the shortest window
    # (max_length − max_question_length − 3) // 2, so that any max_length works without setting it
    doc_stride: int | None = None
    max_answer_len: int = 64  # CMRC: longest predicted span, in tokens (≈ characters)


PRECISION_ALIASES = {"bf16": "bf16-mixed", "16": "16-mixed", "32-true": "32"}
STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true", "fsdp", "deepspeed", "deepspeed_stage_1",
              "deepspeed_stage_2", "deepspeed_stage_2_offload", "deepspeed_stage_3", "deepspeed_stage_3_offload")
SPAWNING_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook")


@dataclass(frozen=True)
class TrainConfig:
    max_steps: int = 1000
    max_epochs: int = 100
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"  # auto | 32 | bf16-mixed | 16-mixed (aliases: bf16, 16, 32-true)
    seed: int = 0
    val_every_n_steps: int = 0  # 0 → validate once at the end
    log_every_n_steps: int = 10
    accelerator: str = "auto"  # auto | cpu | gpu | cuda | mps
    # Scale-out (Lightning does the work). `batch_size` is the GLOBAL batch: each of the devices × num_nodes
    # ranks gets batch_size / (devices × num_nodes) examples of the same batches a single device would see.
    devices: int = 1  # devices per node
    num_nodes: int = 1
    strategy: str = "auto"  # auto (ddp when devices × num_nodes > 1) | ddp | fsdp | deepspeed[_stage_N]
    checkpoint_every_n_steps: int = 0  # in a study: checkpoint every N steps so a re-queued trial resumes; 0 = off
    # CPU threads of one run (torch intra-op threads), pinned so that a rerun reproduces it bit-for-bit: a
    # fixed number, never derived from the machine or from --workers (README "Reproducible reruns")
    num_threads: int = 1
    deterministic: bool = True  # torch deterministic algorithms (ops without one warn and are recorded)
    compile: bool = False  # torch.compile the model's Transformer (in place: parameter names unchanged)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", PRECISION_ALIASES.get(str(self.precision), str(self.precision)))

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        self.model.validate()
        if self.train.max_steps < 1:
            raise ConfigError(f"train.max_steps: must be >= 1, got {self.train.max_steps}")
        if not (math.isfinite(self.train.lr) and self.train.lr > 0):
            raise ConfigError(f"train.lr: must be a finite number > 0, got {self.train.lr}")
        self._validate_ranges()
        if self.train.num_threads < 1:
            raise ConfigError(f"train.num_threads: must be >= 1, got {self.train.num_threads}")
        _check_choice("train.precision", self.train.precision, ("auto", "32", "bf16-mixed", "16-mixed"))
        self._validate_scale()
        _check_choice("task.source", self.task.source, ("auto", "local", "hub"))
        _check_choice("task.objective", self.task.objective,
                      ("auto", "classify", "mlm", "causal", "seq2seq", "conditional_lm", "span_extraction",
                       "multiple_choice"))
        if self.task.max_length > self.model.max_len:
            raise ConfigError(f"task.max_length: {self.task.max_length} exceeds model.max_len={self.model.max_len}; "
                              "raise model.max_len or lower task.max_length")
        from attnlab.tasks.spec import TASKS, get_task

        if self.task.name not in TASKS:
            try:
                get_task(self.task.name)
            except ValueError as e:
                raise ConfigError(f"task.name: {e}") from None
        self._validate_reading(get_task(self.task.name).kind)

    def _validate_ranges(self) -> None:
        """Every numeric field in its range, so a typo fails at load instead of training nothing."""
        from attnlab.paths import check_name

        try:
            check_name(self.name, "name")
        except ValueError as e:
            raise ConfigError(f"name: {e}") from None
        tr, t = self.train, self.task
        at_least = {"train.max_epochs": (tr.max_epochs, 1), "train.batch_size": (tr.batch_size, 1),
                    "train.eval_batch_size": (tr.eval_batch_size, 1), "train.val_every_n_steps": (tr.val_every_n_steps, 0),
                    "train.log_every_n_steps": (tr.log_every_n_steps, 1), "task.max_length": (t.max_length, 1),
                    "task.vocab_size": (t.vocab_size, 1), "task.target_length": (t.target_length, 1),
                    "task.gen_examples": (t.gen_examples, 0), "task.samples_per_label": (t.samples_per_label, 0)}
        for key, (value, low) in at_least.items():
            if value < low:
                raise ConfigError(f"{key}: must be >= {low}, got {value}")
        for key in ("max_train_examples", "max_eval_examples"):
            limit = getattr(t, key)
            if limit is not None and limit < 1:
                raise ConfigError(f"task.{key}: must be >= 1 or null (all examples), got {limit}")
        for key, number, low_f, high_f in (("weight_decay", tr.weight_decay, 0.0, math.inf),
                                      ("warmup_ratio", tr.warmup_ratio, 0.0, 1.0),
                                      ("grad_clip", tr.grad_clip, 0.0, math.inf)):
            if not (math.isfinite(number) and low_f <= number <= high_f):
                raise ConfigError(f"train.{key}: must be a finite number in [{low_f}, {high_f}], got {number}")

    def _validate_scale(self) -> None:
        tr = self.train
        _check_choice("train.accelerator", tr.accelerator, ("auto", "cpu", "gpu", "cuda", "mps"))
        for key in ("devices", "num_nodes"):
            if getattr(tr, key) < 1:
                raise ConfigError(f"train.{key}: must be >= 1, got {getattr(tr, key)}")
        if tr.checkpoint_every_n_steps < 0:
            raise ConfigError(f"train.checkpoint_every_n_steps: must be >= 0 (0 = off), got {tr.checkpoint_every_n_steps}")
        if tr.strategy in SPAWNING_STRATEGIES:
            raise ConfigError(f"train.strategy: {tr.strategy!r} keeps the trained state in spawned processes; use "
                              "'ddp' (attnlab starts one process per device itself)")
        _check_choice("train.strategy", tr.strategy, STRATEGIES)
        if tr.world_size > 1 and tr.batch_size % tr.world_size:
            raise ConfigError(f"train.batch_size: {tr.batch_size} is the global batch and must divide evenly over "
                              f"devices × num_nodes = {tr.world_size} (each device gets batch_size / {tr.world_size})")

    def _validate_reading(self, kind: str) -> None:
        t = self.task
        for key in ("max_question_length", "doc_stride", "max_answer_len"):
            if getattr(t, key) is not None and getattr(t, key) < 1:
                raise ConfigError(f"task.{key}: must be >= 1, got {getattr(t, key)}")
        reading = ("span_extraction", "multiple_choice")
        if kind in reading and self.train.world_size > 1:
            raise ConfigError(f"train.devices: {t.name} assembles answers from windows at evaluation, which "
                              "sharded evaluation would split over devices; train it on one device (devices: 1, "
                              "num_nodes: 1)")
        if kind not in reading:
            if t.objective in reading:
                raise ConfigError(f"task.objective: {t.objective!r} needs a reading-comprehension task "
                                  f"(clue/cmrc2018, clue/c3), not {t.name}")
            return
        if t.objective not in ("auto", kind):
            raise ConfigError(f"task.objective: {t.name} is a {kind} task: use auto or {kind}, not {t.objective!r}")
        room = t.max_length - t.max_question_length - 3  # [CLS] question [SEP] context [SEP]
        if room < 1:
            raise ConfigError(f"task.max_question_length: {t.max_question_length} leaves no room for the context "
                              f"in task.max_length={t.max_length}")
        if kind == "span_extraction" and t.doc_stride is not None and t.doc_stride > room:
            raise ConfigError(f"task.doc_stride: {t.doc_stride} exceeds the shortest context window "
                              f"(max_length − max_question_length − 3 = {room}): context between windows "
                              "would never be seen")


# ---- generic strict conversion ----------------------------------------------------------------
T = TypeVar("T")


def from_dict(cls: type[T], data: Any, prefix: str = "") -> T:
    """Build dataclass `cls` from plain data, strictly."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or '<root>'}: expected a mapping, got {type(data).__name__}")
    if cls is AttentionConfig:
        return _attention_from_dict(data, prefix)  # type: ignore[return-value]
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{dotted}: unknown key.{hint} Valid keys: {', '.join(names)}")
        kwargs[key] = _convert(hints[key], value, dotted)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)  # type: ignore[arg-type]
    if tp is Any or origin is dict:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin in (tuple, list) and isinstance(value, (list, tuple)):
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r} ({type(value).__name__})")


def _attention_from_dict(data: dict[str, Any], prefix: str) -> AttentionConfig:
    from attnlab.attention import get_attention_class
    from attnlab.attention.base import resolve_option_aliases

    data = dict(data)
    kind = data.pop("kind", AttentionConfig.kind)
    data.update(data.pop("options", None) or {})
    try:
        cls = get_attention_class(str(kind))
    except ValueError as e:
        raise ConfigError(f"{prefix}.kind: {e}") from None
    try:
        data = resolve_option_aliases(cls, data)  # earlier option names, e.g. talking-heads logit_heads → h_k
        opts: Any = from_dict(cls.Options, data, prefix)
    except ConfigError as e:
        raise ConfigError(f"{e} (options of attention {kind!r})") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix}: {e}") from None
    return AttentionConfig(kind=str(kind), options=dataclasses.asdict(opts))


def to_dict(cfg: Any) -> Any:
    """Plain data (YAML/JSON-ready); the attention options are flattened back next to `kind`."""
    if isinstance(cfg, AttentionConfig):
        return {"kind": cfg.kind, **cfg.options}
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple):
        return [to_dict(v) for v in cfg]
    return cfg


def config_hash(cfg: Any) -> str:
    """Stable short hash of a resolved config: identifies a run (and a cached pretraining stage)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_run_config(data: dict[str, Any], overrides: typing.Sequence[str] = (), source: str = "<config>",
                     values: typing.Mapping[str, Any] | None = None) -> RunConfig:
    """Raw mapping + dotted `values` (typed, from sweep/ablation files) + `--set KEY=VALUE` overrides (text, from
    the command line) → a validated RunConfig; errors name `source` (or the command line) and the key."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for key, value in (values or {}).items():
        set_dotted(data, key, value)
    parsed = []
    for text in overrides:
        key, value = parse_override(text)
        try:
            set_dotted(data, key, value)
        except ConfigError as e:
            raise ConfigError(f"command line: --set {text}: {e}") from None
        parsed.append((key, text))
    try:
        cfg = from_dict(RunConfig, data)
        cfg.validate()
    except ConfigError as e:
        # an error about a key the command line set blames the command line, not the file
        blamed = next((text for key, text in parsed if str(e).startswith((f"{key}:", f"{key}.", f"{key}["))), None)
        if blamed is not None:
            raise ConfigError(f"command line: --set {blamed}: {e}") from None
        where = f"{source} with --set {' '.join(overrides)}" if overrides else source
        raise ConfigError(f"{where}: {e}") from None
    return cfg


def load_run_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> RunConfig:
    return build_run_config(load_yaml(path), overrides, source=str(path))
