"""This machine's float32 matrix-multiply peak: the ceiling for the encoder's GFLOP/s."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks._report import Row
from benchmarks._timing import interleaved

__all__ = ["matmul_peak_rows"]


def _onnx_matmul_session(size: int) -> Any:
    """An onnxruntime session computing one ``size x size`` MatMul; None without ``onnx``."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        return None
    import onnxruntime as ort

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def matmul_peak_rows(size: int, repeat: int) -> tuple[list[Row], float]:
    """numpy (BLAS) and onnxruntime (MLAS) ``size``-square float32 MatMul GFLOP/s.

    A peak is what the machine can do, so each library's row is its best round
    (the median is in the note); the returned peak is the better of the two.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    session = _onnx_matmul_session(size)
    cases = {"numpy": lambda: np.matmul(a, b, out=out)}
    if session is not None:
        cases["onnxruntime"] = lambda: session.run(None, {"a": a, "b": b})
    timings = interleaved(cases, repeat=repeat, warmup=1)
    flop = 2.0 * size**3 / 1e9
    rows: list[Row] = []
    peaks: list[float] = []
    for name, stats in timings.items():
        rates = [flop / seconds for seconds in stats.samples]
        best, median = max(rates), float(np.median(rates))
        peaks.append(best)
        rows.append(
            Row(
                "compute",
                f"float32 matmul {size}^3, {name} (best)",
                unit="GFLOP/s",
                value=best,
                note=f"median {median:.0f} over {len(rates)} rounds",
                details={"gflops": rates},
            )
        )
    if session is None:
        rows.append(
            Row(
                "compute",
                f"float32 matmul {size}^3, onnxruntime",
                status="not run",
                note="needs the onnx package to build the one-node model",
            )
        )
    return rows, max(peaks)
