"""Which encoder nodes the int8 quantiser leaves in float32.

The LayerNorms (quantised, their per-pixel variance collapses to 0 for a fifth
of the pixels) and the convolutions that read the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from onnx import helper  # noqa: E402

from edgesam.export._float_nodes import (  # noqa: E402
    float_node_names,
    image_convolutions,
    layer_norm_nodes,
)
from edgesam.export._layers import LayerNorm2d  # noqa: E402
from edgesam.export._onnx_export import GraphSpec, export_graph  # noqa: E402

pytestmark = pytest.mark.torch

LAYER_NORM_OPS = ["ReduceMean", "Sub", "Pow", "ReduceMean", "Add", "Sqrt", "Div", "Mul", "Add"]


class _Neck(torch.nn.Module):
    """conv(image) -> LayerNorm2d -> conv -> LayerNorm2d, like the encoder's stem and neck."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.first = LayerNorm2d(8)
        self.conv = torch.nn.Conv2d(8, 8, 1)
        self.second = LayerNorm2d(8)

    def forward(self, image: Any) -> Any:
        return self.second(self.conv(self.first(self.stem(image))))


def _exported(tmp_path: Path) -> Any:
    path = tmp_path / "neck.onnx"
    spec = GraphSpec(_Neck().eval(), (torch.zeros(1, 3, 6, 6),), ["image"], ["out"], {})
    export_graph(spec, path, opset=11)
    return onnx.load(str(path))


def test_finds_both_torch_layer_norms_and_the_image_convolution(tmp_path: Path) -> None:
    model = _exported(tmp_path)
    found = layer_norm_nodes(model.graph)
    assert [node.op_type for node in found] == LAYER_NORM_OPS * 2
    assert len({id(node) for node in found}) == len(found)
    convolutions = image_convolutions(model.graph)
    assert len(convolutions) == 1
    assert convolutions[0].input[0] == "image"
    names = float_node_names(model)
    assert names == [node.name for node in [*found, *convolutions]]
    # The 1x1 convolution between the two LayerNorms is quantised as usual.
    others = {node.name for node in model.graph.node} - set(names)
    assert [n.op_type for n in model.graph.node if n.name in others].count("Conv") == 1


def _layer_norm(
    *, centre_inputs: tuple[str, str] = ("x", "mean"), extra_reader: bool = False
) -> Any:
    """(x - mean) / sqrt(var + eps) * w + b over axis 1, built by hand."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], name="mean", axes=[1]),
        helper.make_node("Sub", list(centre_inputs), ["centred"], name="centre"),
        helper.make_node("Pow", ["centred", "two"], ["squared"], name="square"),
        helper.make_node("ReduceMean", ["squared"], ["var"], name="var", axes=[1]),
        helper.make_node("Add", ["var", "eps"], ["var_eps"], name="eps"),
        helper.make_node("Sqrt", ["var_eps"], ["std"], name="sqrt"),
        helper.make_node("Div", ["centred", "std"], ["normalised"], name="div"),
        helper.make_node("Mul", ["normalised", "w"], ["scaled"], name="mul"),
        helper.make_node("Add", ["scaled", "b"], ["y"], name="add"),
    ]
    outputs = ["y", "var"] if extra_reader else ["y"]
    scalar = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "layer_norm",
        [helper.make_tensor_value_info("x", scalar, [1, 4, 2, 2])],
        [helper.make_tensor_value_info(name, scalar, None) for name in outputs],
        [
            helper.make_tensor("two", scalar, [], [2.0]),
            helper.make_tensor("eps", scalar, [], [1e-6]),
            helper.make_tensor("w", scalar, [4, 1, 1], np.ones(4)),
            helper.make_tensor("b", scalar, [4, 1, 1], np.zeros(4)),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def test_a_hand_built_layer_norm_is_found_whole() -> None:
    found = layer_norm_nodes(_layer_norm().graph)
    assert [node.name for node in found] == [
        "mean", "centre", "square", "var", "eps", "sqrt", "div", "mul", "add"
    ]  # fmt: skip


def test_a_mean_subtracted_the_other_way_round_is_not_a_layer_norm() -> None:
    assert layer_norm_nodes(_layer_norm(centre_inputs=("mean", "x")).graph) == []


def test_a_layer_norm_whose_variance_is_read_elsewhere_still_stays_float() -> None:
    assert len(layer_norm_nodes(_layer_norm(extra_reader=True).graph)) == len(LAYER_NORM_OPS)


def test_unnamed_nodes_cannot_be_excluded() -> None:
    model = _layer_norm()
    model.graph.node[3].name = ""
    with pytest.raises(ValueError, match="without names"):
        float_node_names(model)
