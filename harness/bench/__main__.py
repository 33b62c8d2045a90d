"""``python -m harness.bench``: the same as ``harness bench``."""

import sys

from harness.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
