"""Convert a float32 ONNX graph to float16 inside, float32 at its inputs and outputs.

Half precision halves the file and, on GPUs and Apple's Neural Engine, the
memory traffic; callers keep feeding and reading float32, because the graph
casts at its edges. Nodes that ``keep_float32`` selects (by default the
LayerNorm2d of the neck, whose squared deviations can exceed float16's range)
stay in float32, with casts wherever the precision changes. Inputs that ONNX
requires to be float32 whatever the data type (``Resize``'s ``roi`` and
``scales``) stay float32 too.

Written against the ONNX helpers only (no onnxconverter-common dependency).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgesam._errors import ExportError

__all__ = ["convert_to_float16", "keep_neck_norms", "write_float16_encoder"]

_FLOAT = TensorProto.FLOAT
_HALF = TensorProto.FLOAT16
_FLOAT32_SLOTS: dict[str, frozenset[int]] = {
    "Resize": frozenset({1, 2}),
    "Upsample": frozenset({1}),
}
_FP16_MAX = float(np.finfo(np.float16).max)


def keep_neck_norms(node: onnx.NodeProto) -> bool:
    """Select the nodes of the encoder neck's LayerNorm2d (``/neck/neck.1/``, ``/neck.3/``)."""
    return "/neck/neck.1/" in node.name or "/neck/neck.3/" in node.name


def _to_half(tensor: onnx.TensorProto, name: str) -> onnx.TensorProto:
    array = numpy_helper.to_array(tensor)
    clipped = np.clip(array, -_FP16_MAX, _FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(clipped, name=name)


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = inferred.graph
    names = {
        value.name
        for value in [*graph.value_info, *graph.input, *graph.output]
        if value.type.tensor_type.elem_type == _FLOAT
    }
    names.update(init.name for init in graph.initializer if init.data_type == _FLOAT)
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and value.data_type == _FLOAT:
                names.add(node.output[0])
    return names


def convert_to_float16(
    model: onnx.ModelProto,
    keep_float32: Callable[[onnx.NodeProto], bool] = keep_neck_norms,
) -> onnx.ModelProto:
    """Return a float16 copy of ``model`` with float32 inputs and outputs.

    Parameters
    ----------
    model : onnx.ModelProto
        A float32 model (not modified).
    keep_float32 : callable, optional
        Nodes for which it returns True are computed in float32.

    Returns
    -------
    onnx.ModelProto
        Weights stored as float16 (clipped to its range), casts inserted at the
        graph's edges and around the float32 nodes.
    """
    floats = _float_tensors(model)
    source = model.graph
    initializers = {init.name: init for init in source.initializer}
    constants = {
        node.output[0]: node
        for node in source.node
        if node.op_type == "Constant" and node.output[0] in floats
    }

    # Precision of every float tensor produced by a computing node: float16
    # unless its producer is kept in float32; graph inputs arrive as float32.
    produced_half: dict[str, bool] = {value.name: False for value in source.input}
    half_nodes = [node.op_type != "Constant" and not keep_float32(node) for node in source.node]
    for node, half in zip(source.node, half_nodes, strict=True):
        if node.op_type == "Constant":
            continue
        for output in node.output:
            if output in floats:
                produced_half[output] = half

    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = [
        init for init in source.initializer if init.name not in floats
    ]
    casts: dict[tuple[str, bool], str] = {}
    made_consts: dict[tuple[str, bool], str] = {}

    def constant_as(name: str, half: bool) -> str:
        key = (name, half)
        if key in made_consts:
            return made_consts[key]
        new_name = f"{name}_fp16" if half else name
        if name in initializers:
            tensor = initializers[name]
            new_inits.append(_to_half(tensor, new_name) if half else tensor)
        else:
            value = next(a.t for a in constants[name].attribute if a.name == "value")
            converted = _to_half(value, "") if half else value
            new_nodes.append(helper.make_node("Constant", [], [new_name], value=converted))
        made_consts[key] = new_name
        return new_name

    def cast_to(name: str, half: bool) -> str:
        key = (name, half)
        if key not in casts:
            target = f"{name}_as_fp16" if half else f"{name}_as_fp32"
            new_nodes.append(
                helper.make_node("Cast", [name], [target], to=_HALF if half else _FLOAT)
            )
            casts[key] = target
        return casts[key]

    def source_as(name: str, half: bool) -> str:
        if name not in floats or not name:
            return name
        if name in initializers or name in constants:
            return constant_as(name, half)
        if produced_half[name] == half:
            return name
        return cast_to(name, half)

    for node, half in zip(source.node, half_nodes, strict=True):
        if node.op_type == "Constant":
            continue
        fixed = _FLOAT32_SLOTS.get(node.op_type, frozenset())
        inputs = [
            source_as(name, half and index not in fixed) for index, name in enumerate(node.input)
        ]
        converted = helper.make_node(
            node.op_type, inputs, list(node.output), name=node.name, domain=node.domain
        )
        for attribute in node.attribute:
            if half and node.op_type == "Cast" and attribute.name == "to" and attribute.i == _FLOAT:
                converted.attribute.append(helper.make_attribute("to", _HALF))
            else:
                converted.attribute.append(attribute)
        new_nodes.append(converted)

    outputs = []
    for value in source.output:
        if value.name in floats and produced_half.get(value.name, False):
            half_name = f"{value.name}_fp16"
            for node in new_nodes:
                node.output[:] = [half_name if o == value.name else o for o in node.output]
                node.input[:] = [half_name if i == value.name else i for i in node.input]
            new_nodes.append(helper.make_node("Cast", [half_name], [value.name], to=_FLOAT))
        outputs.append(value)

    graph = helper.make_graph(
        _topological(new_nodes, [v.name for v in source.input] + [i.name for i in new_inits]),
        source.name,
        list(source.input),
        outputs,
        initializer=new_inits,
    )
    converted_model = helper.make_model(graph, opset_imports=list(model.opset_import))
    converted_model.ir_version = model.ir_version
    converted_model.producer_name = model.producer_name
    converted_model.producer_version = model.producer_version
    converted_model = onnx.shape_inference.infer_shapes(converted_model, strict_mode=True)
    onnx.checker.check_model(converted_model, full_check=True)
    return converted_model


def _topological(nodes: list[onnx.NodeProto], available: list[str]) -> list[onnx.NodeProto]:
    ready = set(available) | {""}
    ordered: list[onnx.NodeProto] = []
    pending = nodes
    while pending:
        waiting = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ValueError("the converted graph has a cycle or a missing input")
        pending = waiting
    return ordered


def write_float16_encoder(float_encoder: Path, destination: Path) -> None:
    """Convert the float32 encoder file to float16 (float32 I/O) at ``destination``.

    Raises
    ------
    ExportError
        The conversion or its validation failed.
    """
    try:
        onnx.save(convert_to_float16(onnx.load(str(float_encoder))), str(destination))
    except OSError:
        raise
    except Exception as err:  # onnx raises several types on invalid graphs
        raise ExportError(f"converting the encoder to float16 failed: {err}") from err
