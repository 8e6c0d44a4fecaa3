"""Section ``device``: pre- and post-processing in the device graphs vs on the host.

Two predictors over the same files and provider, one with
``device_pipeline=True`` (the graphs of ``edgesam/graphs``), one with
``device_pipeline=False`` (numpy and Pillow), timed round-robin with the bare
encoder and decoder runs. On CUDA these are the rows of issue 19's goals
(``set_image`` and ``predict`` at most 1.3x the bare runs); on CPU they show
what the graphs cost where ``"auto"`` does not choose them.

Everything mode (``SamAutomaticMaskGenerator.generate``) is timed the same way,
graphs against host, and the two runs' records are compared field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks._bare import BareSam, bare_preprocess, bare_prompt
from benchmarks._latency import POINT, Settings, _row
from benchmarks._report import Row, Target
from benchmarks._timing import interleaved, paired_ratio
from benchmarks._variants import ModelVariant

__all__ = ["device_rows"]


def device_rows(
    bare: BareSam,
    rgb: NDArray[np.uint8],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
    *,
    points_per_side: int | None = None,
) -> list[Row]:
    """set_image, predict and everything mode with the graphs and with the host path.

    ``points_per_side`` sets the everything rows' grid (None: the generator's
    defaults, 32x32).
    """
    from edgesam import SamPredictor

    def predictor(choice: bool) -> SamPredictor:
        return SamPredictor.from_files(
            variant.encoder,
            variant.decoder,
            checkpoint=variant.checkpoint,
            providers=[provider],
            device_pipeline=choice,
        )

    graphs, host = predictor(True), predictor(False)
    where = graphs.pipeline_providers
    image_input, input_size = bare_preprocess(rgb)
    original = (int(rgb.shape[0]), int(rgb.shape[1]))
    labels = np.array([1.0], dtype=np.float32)
    graphs.set_image(rgb)
    host.set_image(rgb)
    embedding = np.asarray(host.get_image_embedding().array, dtype=np.float32)
    coords, point_labels = bare_prompt(POINT, labels, None, original, input_size)
    encoder_cases: dict[str, Callable[[], object]] = {
        "graphs": lambda: graphs.set_image(rgb),
        "host": lambda: host.set_image(rgb),
        "bare": lambda: bare.encode(image_input),
    }
    encoder = interleaved(encoder_cases, repeat=settings.encoder_repeat, warmup=settings.warmup)
    decoder_cases: dict[str, Callable[[], object]] = {
        "graphs": lambda: graphs.predict(POINT, labels, multimask_output=True),
        "host": lambda: host.predict(POINT, labels, multimask_output=True),
        "bare": lambda: bare.decode(embedding, coords, point_labels),
    }
    decoder = interleaved(decoder_cases, repeat=settings.decoder_repeat, warmup=settings.warmup)
    size = f"{original[0]}x{original[1]}"
    # Issue 19's goals are for CUDA; elsewhere the rows are for comparison only.
    goal = Target("<=", 1.3) if provider == "cuda" else None
    ran = f"pre on {where['preprocess'][0]}, post on {where['postprocess'][0]}"
    rows = [
        _row(
            "device",
            f"set_image {size}, device graphs",
            variant,
            provider,
            encoder["graphs"],
            encoder["bare"],
            goal,
            f"vs bare encoder run; {ran}",
        ),
        _row(
            "device",
            f"set_image {size}, host path",
            variant,
            provider,
            encoder["host"],
            encoder["bare"],
            note="vs bare encoder run",
        ),
        Row(
            "device",
            "  set_image graphs / host",
            variant=variant.name,
            provider=provider,
            unit="x",
            value=paired_ratio(encoder["graphs"], encoder["host"]),
            note="below 1: the graphs are faster here",
        ),
        _row(
            "device",
            f"predict 1 point, 3 masks {size}, device graphs",
            variant,
            provider,
            decoder["graphs"],
            decoder["bare"],
            goal,
            f"vs bare decoder run; {ran}",
        ),
        _row(
            "device",
            f"predict 1 point, 3 masks {size}, host path",
            variant,
            provider,
            decoder["host"],
            decoder["bare"],
            note="vs bare decoder run",
        ),
        Row(
            "device",
            "  predict graphs / host",
            variant=variant.name,
            provider=provider,
            unit="x",
            value=paired_ratio(decoder["graphs"], decoder["host"]),
            note="below 1: the graphs are faster here",
        ),
    ]
    grid = "defaults" if points_per_side is None else f"{points_per_side}x{points_per_side} grid"
    options: dict[str, Any] = {}
    if points_per_side is not None:
        options["points_per_side"] = points_per_side
    rows.extend(_everything_rows(graphs, host, rgb, variant, provider, settings, grid, options))
    # Random weights pass few masks through pred_iou_thresh, so the rows above upsample
    # little: these upsample every candidate (192 masks of full size per decoder batch).
    every: dict[str, Any] = {
        "points_per_side": 8,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
    }
    label = "8x8 grid, no IoU/stability filter"
    rows.extend(_everything_rows(graphs, host, rgb, variant, provider, settings, label, every))
    return rows


def _everything_rows(
    graphs: Any,
    host: Any,
    rgb: NDArray[np.uint8],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
    grid: str,
    options: dict[str, Any],
) -> list[Row]:
    """Everything mode with the everything graph and on the host; are the records equal?"""
    from edgesam import SamAutomaticMaskGenerator

    generators = {
        "graphs": SamAutomaticMaskGenerator(graphs, output_mode="uncompressed_rle", **options),
        "host": SamAutomaticMaskGenerator(host, output_mode="uncompressed_rle", **options),
    }
    records: dict[str, list[Any]] = {}

    def case(name: str) -> Callable[[], object]:
        def run() -> None:
            records[name] = generators[name].generate(rgb)

        return run

    timings = interleaved(
        {name: case(name) for name in generators}, repeat=settings.everything_repeat, warmup=0
    )
    same = records["graphs"] == records["host"]
    size = f"{rgb.shape[0]}x{rgb.shape[1]}"
    where = graphs.pipeline_providers["postprocess"][0]
    count = len(records["host"])
    compared = f"{count} records, {'identical' if same else 'DIFFERENT'} to the host's"
    rows = [
        Row(
            "device",
            f"everything {size}, {grid}, device graphs",
            variant=variant.name,
            provider=provider,
            unit="s",
            value=timings["graphs"].median,
            note=f"post on {where}; {compared}; includes set_image",
            details={"sdk": timings["graphs"].as_dict(), "identical": same},
        ),
        Row(
            "device",
            f"everything {size}, {grid}, host path",
            variant=variant.name,
            provider=provider,
            unit="s",
            value=timings["host"].median,
            note="includes set_image",
            details={"sdk": timings["host"].as_dict()},
        ),
        Row(
            "device",
            "  everything graphs / host",
            variant=variant.name,
            provider=provider,
            unit="x",
            value=paired_ratio(timings["graphs"], timings["host"]),
            note="below 1: the graphs are faster here",
        ),
    ]
    return rows
