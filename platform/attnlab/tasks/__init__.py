"""Benchmark tasks: specs and registry (GLUE, CLUE, LM corpora), loading, tokenizers, data, metrics.

Importing this package registers every task and stays light (no torch, Lightning or `datasets`).
Heavier pieces live in submodules: `loading.load_split`, `tokenizer.build_tokenizer`,
`data.TaskDataModule`, `lm_data.LMDataModule`, `metrics.build_metrics` / `glue_score` / `clue_score`;
reading comprehension (CMRC 2018, C3): `clue_mrc`, `span_data`, `choice_data`, `mrc_metrics`, `mrc_baselines`.
"""

from attnlab.tasks import clue, clue_mrc, glue, lm  # noqa: F401  (registers the tasks)
from attnlab.tasks.spec import TASKS, DataError, TaskSpec, get_task, tasks_of

__all__ = ["TASKS", "DataError", "TaskSpec", "get_task", "tasks_of"]
