"""Ablation reports: leaderboard (CSV, Markdown), paper-vs-here verdicts, plots, one HTML page.

`build_report(meta, records, out_dir, speed=None)` writes everything; `load_exported(out_dir)`
gives back the inputs it exported, so `attnlab report` can rebuild the report without rerunning.
The arithmetic is exposed as plain-data functions for tests: `leaderboard_rows`, `claim_rows`,
`paired_diff`, `verdict`, `t_interval`, `mean_std`, `pareto_front`.
"""

from attnlab.report.build import build_report
from attnlab.report.export import load_exported
from attnlab.report.grid import claim_metric, primary_metric, task_metric
from attnlab.report.leaderboard import claim_rows, leaderboard_rows, paired_diff
from attnlab.report.markdown import format_markdown
from attnlab.report.stats import SIMILAR_BAND, mean_std, pareto_front, rank, t_interval, verdict

__all__ = [
    "SIMILAR_BAND",
    "build_report",
    "claim_metric",
    "claim_rows",
    "format_markdown",
    "leaderboard_rows",
    "load_exported",
    "mean_std",
    "paired_diff",
    "pareto_front",
    "primary_metric",
    "rank",
    "t_interval",
    "task_metric",
    "verdict",
]
