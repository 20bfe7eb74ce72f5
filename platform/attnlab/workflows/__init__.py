"""What the commands do, above every layer: a study runs (here or in K workers), then its leaderboard is written
from the storage — for sweeps and grids alike — and logged to W&B in the study's group: a "leaderboard" run with
the table, the report files as a "report" artifact, and the best trial in its summary. The CLI only parses and calls
these.
"""

from attnlab.workflows.grid import reproduce, write_grid_report
from attnlab.workflows.report import report
from attnlab.workflows.run import run_one
from attnlab.workflows.studies import open_existing_study, sweep_status
from attnlab.workflows.sweep import sweep, write_sweep_report
from attnlab.workflows.wandb_glue import log_leaderboard, tracker_for

__all__ = ["log_leaderboard", "open_existing_study", "report", "reproduce", "run_one", "sweep", "sweep_status",
           "tracker_for", "write_grid_report", "write_sweep_report"]
