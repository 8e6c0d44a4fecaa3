"""One ``Gelu`` node for each erf-GELU that the torch exporter spelled out in five.

Below opset 20, ``torch.onnx.export`` writes ``nn.GELU()`` as
``x * (1 + erf(x / sqrt(2))) * 0.5``: Div, Erf, Add, Mul, Mul. onnxruntime fuses
that chain back into one kernel for float32 models, but not once the
quantiser has put ``QuantizeLinear``/``DequantizeLinear`` pairs between the
five nodes; the int8 encoder then spent about a quarter of its time on them.
Rewritten as the standard ``Gelu`` operator (opset 20), each GELU stays one
float node between one dequantise and one quantise.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["GELU_OPSET", "fuse_erf_gelu"]

GELU_OPSET = 20


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _is_scalar(value: np.ndarray | None, expected: float) -> bool:
    return (
        value is not None
        and value.size == 1
        and math.isclose(float(value.reshape(())), expected, rel_tol=1e-6)
    )


def fuse_erf_gelu(model: onnx.ModelProto) -> int:
    """Replace each erf-GELU chain in ``model`` (opset >= 20) by one ``Gelu``; in place.

    A chain is fused only when its intermediate results feed nothing else.
    Returns how many were fused.
    """
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    if opset < GELU_OPSET:
        raise ValueError(f"Gelu needs opset {GELU_OPSET}; the model is at opset {opset}")
    graph = model.graph
    constants = _constants(graph)
    producer = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {output.name for output in graph.output}

    def only_consumer(name: str, op_type: str) -> onnx.NodeProto | None:
        users = consumers.get(name, [])
        if name in graph_outputs or len(users) != 1 or users[0].op_type != op_type:
            return None
        return users[0]

    def other_input(node: onnx.NodeProto, known: str) -> str | None:
        rest = list(node.input)
        if len(rest) != 2 or known not in rest:
            return None
        rest.remove(known)
        return str(rest[0])

    replaced: dict[int, onnx.NodeProto] = {}
    removed: set[int] = set()
    for erf in graph.node:
        if erf.op_type != "Erf":
            continue
        div = producer.get(erf.input[0])
        if div is None or div.op_type != "Div" or only_consumer(div.output[0], "Erf") is None:
            continue
        source = div.input[0]
        if not _is_scalar(constants.get(div.input[1]), math.sqrt(2.0)):
            continue
        add = only_consumer(erf.output[0], "Add")
        if add is None or not _is_scalar(constants.get(other_input(add, erf.output[0]) or ""), 1):
            continue
        times_x = only_consumer(add.output[0], "Mul")
        if times_x is None or other_input(times_x, add.output[0]) != source:
            continue
        half = only_consumer(times_x.output[0], "Mul")
        if half is None or not _is_scalar(
            constants.get(other_input(half, times_x.output[0]) or ""), 0.5
        ):
            continue
        gelu = helper.make_node("Gelu", [source], [half.output[0]], name=f"{erf.name}_gelu")
        replaced[id(half)] = gelu
        removed.update(id(node) for node in (div, erf, add, times_x))
    if not replaced:
        return 0
    nodes = [replaced.get(id(node), node) for node in graph.node if id(node) not in removed]
    used = {name for node in nodes for name in node.input} | graph_outputs
    used |= {graph_input.name for graph_input in graph.input}
    # The chains' constants (sqrt 2, 1, 0.5), as Constant nodes or initializers, go too.
    nodes = [n for n in nodes if n.op_type != "Constant" or any(o in used for o in n.output)]
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    produced = {name for node in graph.node for name in node.output}
    described = [info for info in graph.value_info if info.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(described)
    return len(replaced)
