"""ONNX files that break the EdgeSAM contract in their declared sizes are refused at load.

Each crafted file is loaded in a child process limited in time and memory
(``sandbox.run_limited``); the tiny, valid models are the control.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sandbox import run_limited

Shape = list[int | str]


def _decoder(path: Path, *, scores: Shape, masks: Shape, embeddings: Shape | None = None) -> Path:
    """A decoder-shaped graph whose outputs are constants of the declared (static) shapes."""
    inputs = [
        helper.make_tensor_value_info(
            "image_embeddings", TensorProto.FLOAT, embeddings or [1, 256, 64, 64]
        ),
        helper.make_tensor_value_info("point_coords", TensorProto.FLOAT, [1, "n", 2]),
        helper.make_tensor_value_info("point_labels", TensorProto.FLOAT, [1, "n"]),
    ]
    concrete = [
        [size if isinstance(size, int) else 1 for size in shape] for shape in (scores, masks)
    ]
    initializers = [
        numpy_helper.from_array(np.zeros(concrete[0], np.float32), "scores_value"),
        numpy_helper.from_array(np.zeros(concrete[1], np.float32), "masks_value"),
    ]
    nodes = [
        helper.make_node("Identity", ["scores_value"], ["scores"]),
        helper.make_node("Identity", ["masks_value"], ["masks"]),
    ]
    outputs = [
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, scores),
        helper.make_tensor_value_info("masks", TensorProto.FLOAT, masks),
    ]
    graph = helper.make_graph(nodes, "crafted", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _load(path: Path) -> str:
    return run_limited(
        f"""
        from edgesam._session import DECODER_CONTRACT, ModelSession
        _report(lambda: ModelSession({str(path)!r}, DECODER_CONTRACT, ["CPUExecutionProvider"]))
        """,
        seconds=60,
    )


def test_a_decoder_with_the_declared_contract_loads(tmp_path: Path) -> None:
    path = _decoder(tmp_path / "ok.onnx", scores=[1, 4], masks=[1, 4, 256, 256])
    assert _load(path) == "OK"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"scores": [1, 4], "masks": [1, 4, 128, 128]}, "output 'masks'"),
        ({"scores": [1, 2], "masks": [1, 4, 256, 256]}, "output 'scores'"),
        ({"scores": [1, 4], "masks": [1, 3, 256, 256]}, "output 'masks'"),
        (
            {"scores": [1, 4], "masks": [1, 4, 256, 256], "embeddings": [1, 256, 32, 32]},
            "input 'image_embeddings'",
        ),
    ],
    ids=["masks-128", "scores-2", "three-masks", "embeddings-32"],
)
def test_static_sizes_that_differ_from_the_contract_are_refused_at_load(
    tmp_path: Path, options: dict[str, Shape], named: str
) -> None:
    path = _decoder(tmp_path / "bad.onnx", **options)  # type: ignore[arg-type]
    result = _load(path)
    assert result.startswith("RAISED ModelContractError"), result
    assert named in result
    assert "declared with shape" in result
