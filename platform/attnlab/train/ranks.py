"""Entry point of the processes a multi-device run trains in: `python -m attnlab.train.ranks SPEC.json`.

Started by `attnlab.train.distributed.launch`; Lightning's `ddp` re-executes this same command once per
further device. Kept apart from `distributed` (which the package imports) so that `-m` runs a fresh module.
"""

import sys

from attnlab.train.distributed import run_spec

if __name__ == "__main__":
    sys.exit(run_spec(sys.argv[1]))
