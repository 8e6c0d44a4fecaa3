"""``python -m edgesam``: the ``edgesam`` command."""

from __future__ import annotations

import sys

from edgesam.cli import main

if __name__ == "__main__":
    sys.exit(main())
