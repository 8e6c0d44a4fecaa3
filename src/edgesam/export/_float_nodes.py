"""The nodes of the encoder that the int8 quantiser must leave in float32.

* **Every LayerNorm** (the neck's two ``LayerNorm2d``, which the torch exporter
  writes as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add).
  Quantised, each intermediate gets one 8-bit range for the whole tensor. The
  per-pixel variance spans three orders of magnitude, so on the reference
  images a fifth of the pixels of the first LayerNorm have a variance below
  half a quantisation step: it becomes 0, and those pixels are divided by
  ``sqrt(eps)``. Quantising the neck's two LayerNorms and nothing else moved
  the embedding by 95-120 % (relative L2); the neck's convolutions alone, 14-18 %.
  Kept in float, the LayerNorms also leave the embedding itself in float32
  instead of 256 levels.
* **The convolutions that read the image.** Quantising the normalised image to
  8 bits adds about a grey level of noise to every pixel, and onnxruntime's
  int8 convolution with three input channels is no faster than the float one.
"""

from __future__ import annotations

import onnx

__all__ = ["float_node_names", "image_convolutions", "layer_norm_nodes"]


def _consumer(
    consumers: dict[str, list[onnx.NodeProto]], name: str, op_type: str
) -> onnx.NodeProto | None:
    return next((node for node in consumers.get(name, []) if node.op_type == op_type), None)


def _path(
    consumers: dict[str, list[onnx.NodeProto]], start: onnx.NodeProto, op_types: list[str]
) -> list[onnx.NodeProto] | None:
    """The nodes after ``start``, each a reader of the one before, of these types."""
    path: list[onnx.NodeProto] = []
    current = start
    for op_type in op_types:
        following = _consumer(consumers, current.output[0], op_type)
        if following is None:
            return None
        path.append(following)
        current = following
    return path


def layer_norm_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Each LayerNorm spelled out as ``(x - mean) / sqrt(var + eps) * w + b``, all its nodes.

    Matched from each ``ReduceMean`` whose input is also the first input of a
    ``Sub`` of that mean: the centring, the variance (Pow, ReduceMean), Add eps,
    Sqrt, the Div of the centred values, then the affine Mul and Add where
    they follow.
    """
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found: list[onnx.NodeProto] = []
    for mean in graph.node:
        if mean.op_type != "ReduceMean":
            continue
        centre = _consumer(consumers, mean.output[0], "Sub")
        if centre is None or list(centre.input) != [mean.input[0], mean.output[0]]:
            continue
        square = _consumer(consumers, centre.output[0], "Pow")
        if square is None:
            continue
        variance = _path(consumers, square, ["ReduceMean", "Add", "Sqrt", "Div"])
        if variance is None:
            continue
        divide = variance[-1]
        if list(divide.input) != [centre.output[0], variance[-2].output[0]]:
            continue
        affine = _path(consumers, divide, ["Mul", "Add"]) or _path(consumers, divide, ["Mul"])
        found.extend([mean, centre, square, *variance, *(affine or [])])
    return found


def image_convolutions(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The ``Conv`` nodes that read a graph input directly."""
    inputs = {graph_input.name for graph_input in graph.input}
    return [node for node in graph.node if node.op_type == "Conv" and node.input[0] in inputs]


def float_node_names(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes to pass as the quantiser's ``nodes_to_exclude``.

    Raises
    ------
    ValueError
        A node that must stay in float has no name, so it cannot be excluded.
    """
    nodes = layer_norm_nodes(model.graph) + image_convolutions(model.graph)
    unnamed = [node.op_type for node in nodes if not node.name]
    if unnamed:
        raise ValueError(f"nodes without names cannot be kept in float32: {unnamed}")
    return [node.name for node in nodes]
