"""Load a task split as a `datasets.Dataset` with normalised columns (`text_a`, `text_b`, `label`).

source="local" parses the official files under `<data_root>/<benchmark>/` (data_root defaults to
$ATTNLAB_DATA) and never touches the network; source="hub" calls `datasets.load_dataset`;
"auto" picks local when a data root is known, else the hub.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from attnlab.tasks import clue, clue_mrc, glue, lm
from attnlab.tasks.records import Example, make_example
from attnlab.tasks.spec import DataError, TaskSpec, get_task

if TYPE_CHECKING:
    import datasets

Source = Literal["auto", "local", "hub"]
DATA_ENV = "ATTNLAB_DATA"


class _Parser(Protocol):
    def read_local(self, spec: TaskSpec, path: Path, split: str) -> list[Example]: ...
    def hub_texts(self, spec: TaskSpec, record: Any) -> tuple[str, ...]: ...


PARSERS: dict[str, _Parser] = {"glue": glue, "clue": clue, "lm": lm}  # type: ignore[dict-item]


def resolve_data_root(data_root: str | Path | None = None) -> Path | None:
    root = str(data_root) if data_root is not None else os.environ.get(DATA_ENV, "")
    return Path(root).expanduser() if root else None


def check_split(spec: TaskSpec, split: str) -> None:
    if split not in spec.splits:
        raise DataError(f"{spec.name} has no split {split!r}; valid splits: {', '.join(spec.splits)}")


def where_to_get(spec: TaskSpec) -> str:
    ways = []
    if spec.hub_path:
        ways.append(
            f"the Hugging Face hub: datasets.load_dataset({spec.hub_path!r}, {spec.hub_config!r}), i.e. source='hub'"
        )
    ways.append(f"the official release: {spec.release_url}")
    return "Get it from " + ", or from ".join(ways) + "."


def local_path(spec: TaskSpec, split: str, data_root: Path) -> Path:
    """The official file (or folder) for a split; raises DataError naming it when it is absent."""
    check_split(spec, split)
    path = data_root / spec.benchmark / spec.splits[split]
    if not path.exists():
        raise DataError(
            f"{spec.name}: split {split!r} needs {path}, which does not exist "
            f"(data root: {data_root}). {where_to_get(spec)}"
        )
    return path


def _hub_label_map(spec: TaskSpec, feature: Any) -> dict[int, int] | None:
    """Hub ClassLabel id -> our class id, matched by label name or code (hub orders differ)."""
    names = getattr(feature, "names", None)
    if spec.is_regression or not names:
        return None
    mapping = {}
    for hub_id, name in enumerate(names):
        ours = spec.label_index(str(name))
        if ours is None:
            raise DataError(f"{spec.hub_path}/{spec.hub_config}: hub label {name!r} not in {spec.labels}")
        mapping[hub_id] = ours
    return mapping


def is_labelled(spec: TaskSpec, split: str) -> bool:
    return not spec.is_lm and not split.startswith("test")


def _load_hub(spec: TaskSpec, split: str) -> list[Example]:
    check_split(spec, split)
    if spec.hub_path is None:
        raise DataError(f"{spec.name} has no Hugging Face hub copy; pass a data root. {where_to_get(spec)}")
    if split not in clue_mrc.HUB_SPLITS.get(spec.name, (split,)):
        raise DataError(f"{spec.name}: split {split!r} is not on the hub ({spec.hub_path}/{spec.hub_config} has "
                        f"{', '.join(clue_mrc.HUB_SPLITS[spec.name])}); it needs the local files. {where_to_get(spec)}")
    import datasets

    try:
        hub = datasets.load_dataset(spec.hub_path, spec.hub_config, split=split)
    except (ConnectionError, OSError) as e:  # no network, or the hub is down
        raise DataError(
            f"{spec.name}: could not load {spec.hub_path}/{spec.hub_config} split {split!r} from the Hugging Face "
            f"hub ({type(e).__name__}: {str(e)[:200]}). Without internet, point attnlab at a local copy of the "
            f"official files with --data-root DIR or ATTNLAB_DATA=DIR. {where_to_get(spec)}"
        ) from None
    if spec.is_reading_comprehension:
        return [clue_mrc.from_hub(spec, record, is_labelled(spec, split)) for record in hub]
    label_map = _hub_label_map(spec, hub.features.get("label"))
    texts_of = PARSERS[spec.benchmark].hub_texts
    examples = []
    for row, record in enumerate(hub):
        texts = texts_of(spec, record)
        if spec.is_lm:
            if texts[0]:
                examples.append(make_example(spec, texts, None))
            continue
        raw = record.get("label")
        label: int | float | None = None  # test splits: hub labels are -1, ours are absent
        if is_labelled(spec, split):
            if raw is None or raw == -1:
                raise DataError(f"{spec.hub_path}/{spec.hub_config} split {split!r}, row {row}: no label")
            if spec.is_regression:
                label = float(raw)
            else:
                label = label_map[raw] if label_map is not None else int(raw)
        examples.append(make_example(spec, texts, label))
    return examples


def subset(examples: list[Example], max_examples: int | None, seed: int | None = None) -> list[Example]:
    """The first `max_examples` (seed=None) or a seeded random subset kept in file order."""
    if max_examples is None or max_examples >= len(examples):
        return examples
    if seed is None:
        return examples[:max_examples]
    keep = sorted(random.Random(seed).sample(range(len(examples)), max_examples))
    return [examples[i] for i in keep]


def load_examples(
    task: TaskSpec | str,
    split: str,
    data_root: str | Path | None = None,
    *,
    source: Source = "auto",
    max_examples: int | None = None,
    seed: int | None = None,
) -> list[Example]:
    spec = get_task(task)
    root = resolve_data_root(data_root)
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub', got {source!r}")
    if source == "hub" or (source == "auto" and root is None):
        return subset(_load_hub(spec, split), max_examples, seed)
    if root is None:
        raise DataError(f"source='local' needs a data root: pass data_root or set ${DATA_ENV}")
    # A local root means offline: make sure no later `datasets` call reaches for the network.
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    path = local_path(spec, split, root)
    if spec.is_reading_comprehension:
        examples = clue_mrc.read_local(spec, path, split, is_labelled(spec, split))
    else:
        examples = PARSERS[spec.benchmark].read_local(spec, path, split)
    return subset(examples, max_examples, seed)


def features_of(spec: TaskSpec, labelled: bool) -> datasets.Features:
    import datasets

    columns = {name: datasets.Value("string") for name in spec.text_fields}
    if labelled:
        columns["label"] = datasets.Value("float32" if spec.is_regression else "int64")
    return datasets.Features(columns)


def load_split(
    task: TaskSpec | str,
    split: str,
    data_root: str | Path | None = None,
    *,
    source: Source = "auto",
    max_examples: int | None = None,
    seed: int | None = None,
) -> datasets.Dataset:
    import datasets

    spec = get_task(task)
    if spec.is_reading_comprehension:
        raise ValueError(f"{spec.name} examples are not text_a/text_b rows: use load_examples")
    examples = load_examples(spec, split, data_root, source=source, max_examples=max_examples, seed=seed)
    features = features_of(spec, is_labelled(spec, split))
    columns = {name: [e[name] for e in examples] for name in features}
    return datasets.Dataset.from_dict(columns, features=features, split=datasets.Split(split))
