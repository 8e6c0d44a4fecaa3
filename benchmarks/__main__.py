"""``python -m benchmarks``: see :mod:`benchmarks._cli` and ``--help``."""

from __future__ import annotations

from benchmarks._cli import main

raise SystemExit(main())
