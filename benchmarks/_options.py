"""What each onnxruntime session option costs: encoder and decoder runs per configuration.

Every configuration gets its own session over the same file; all of them run
round-robin on the same input, and each is compared with a plain
``SessionOptions()`` (onnxruntime's defaults) by the median of per-round ratios.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks._bare import bare_prompt
from benchmarks._latency import POINT, Settings
from benchmarks._report import Row
from benchmarks._timing import interleaved, paired_ratio
from benchmarks._variants import ModelVariant

__all__ = ["CONFIGURATIONS", "option_rows"]


def _edgesam() -> Any:
    from edgesam._session import default_session_options

    return default_session_options()


def _changed(**changes: Any) -> Callable[[], Any]:
    def build() -> Any:
        options = ort.SessionOptions()
        for name, value in changes.items():
            if name.startswith("config:"):
                options.add_session_config_entry(name.removeprefix("config:"), str(value))
            else:
                setattr(options, name, value)
        return options

    return build


CONFIGURATIONS: dict[str, Callable[[], Any]] = {
    "onnxruntime defaults": ort.SessionOptions,
    "edgesam defaults": _edgesam,
    "memory pattern off": _changed(enable_mem_pattern=False),
    "CPU arena off": _changed(enable_cpu_mem_arena=False),
    "arena + pattern off": _changed(enable_cpu_mem_arena=False, enable_mem_pattern=False),
    "1 intra-op thread": _changed(intra_op_num_threads=1),
    "thread spinning off": _changed(**{"config:session.intra_op.allow_spinning": "0"}),
    "graph opt. basic only": _changed(
        graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    ),
}


def option_rows(
    variant: ModelVariant, provider_name: str, image_input: Any, settings: Settings
) -> list[Row]:
    """Encoder and decoder time per configuration, relative to onnxruntime's defaults."""
    rows: list[Row] = []
    embedding: Any = None
    original, input_size = (1200, 1800), (683, 1024)
    coords, labels = bare_prompt(
        POINT, np.array([1.0], dtype=np.float32), None, original, input_size
    )
    for role, path, repeat in (
        ("encoder", variant.encoder, max(2, settings.encoder_repeat // 2)),
        ("decoder", variant.decoder, settings.decoder_repeat),
    ):
        sessions = {
            name: ort.InferenceSession(str(path), build(), providers=[provider_name])
            for name, build in CONFIGURATIONS.items()
        }
        if role == "encoder":
            feeds = {"image": image_input}
            embedding = sessions["onnxruntime defaults"].run(None, feeds)[0]
        else:
            feeds = {"image_embeddings": embedding, "point_coords": coords, "point_labels": labels}
            names = {node.name for node in sessions["onnxruntime defaults"].get_inputs()}
            if "mask_input" in names:
                feeds["mask_input"] = np.zeros((1, 1, 256, 256), dtype=np.float32)
                feeds["has_mask_input"] = np.zeros((1,), dtype=np.float32)
        cases: dict[str, Callable[[], object]] = {
            name: partial(session.run, None, feeds) for name, session in sessions.items()
        }
        timings = interleaved(cases, repeat=repeat, warmup=settings.warmup)
        baseline = timings["onnxruntime defaults"]
        for name, stats in timings.items():
            rows.append(
                Row(
                    "options",
                    f"{role}: {name}",
                    variant=variant.name,
                    unit="ms",
                    value=stats.median * 1e3,
                    baseline=baseline.median * 1e3,
                    ratio=paired_ratio(stats, baseline),
                    note="vs onnxruntime defaults (bare column)",
                    details={"sdk": stats.as_dict()},
                )
            )
        del sessions
    return rows
