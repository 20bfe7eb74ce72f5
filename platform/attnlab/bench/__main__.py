"""`python -m attnlab.bench attention|train ...` — the same as `attnlab bench ...`."""

import sys

from attnlab.bench.cli import main

sys.exit(main())
