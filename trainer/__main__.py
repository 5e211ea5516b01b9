"""``python -m edgerec.trainer``: the same command as ``edgerec-train`` (:mod:`.cli`)."""

import sys

from .cli import main

sys.exit(main())
