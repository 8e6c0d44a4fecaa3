"""Masks for a whole dataset: ``edgesam batch`` and :func:`run_batch`.

A folder of images, or a manifest (JSONL, CSV, Parquet) with per-image
boxes and/or points, goes in; Parquet (or JSONL) shards with one row per
image come out, each with its masks as COCO RLE. Runs resume (images already
in the output, by name and content sha256, are skipped), bad images are
recorded in ``_errors.jsonl`` and skipped, and the masks are identical to
what :class:`~edgesam.SamPredictor` (``predict_batch``) and
:class:`~edgesam.SamAutomaticMaskGenerator` give for the same image and
prompts. The same steps run on Ray Data with :mod:`edgesam.ray`.

Parquet needs the ``batch`` extra (``pip install "edgesam[batch]"``); JSONL
output and folder/JSONL/CSV inputs work without it.
"""

from __future__ import annotations

from edgesam.batch._manifest import OUTPUT_COLUMNS, Item, read_items
from edgesam.batch._output import ERRORS_FILE, iter_rows, write_coco
from edgesam.batch._run import BatchSummary, run_batch

__all__ = [
    "ERRORS_FILE",
    "OUTPUT_COLUMNS",
    "BatchSummary",
    "Item",
    "iter_rows",
    "read_items",
    "run_batch",
    "write_coco",
]
