"""Tiny ONNX models that honour EdgeSAM's contract and compute checkable things.

Encoder: ``image_embeddings[0, c, i, j]`` is the mean of input channel ``c % 3``
over the 16x16 block ``(i, j)``, times ``(c + 1) / 256``, so tests can predict
the embedding from the preprocessed image.

Decoder: mask ``k`` is the disc of radius ``RADII[k]`` (in the 1024 frame)
around the *first* point: ``logit = RADII[k] - distance`` at each low-res
pixel's centre in the 1024 frame. Scores are
``[number of points, sum of labels, sum of x, mean of image_embeddings]``, so
tests see exactly which points, labels and embedding reached the decoder.

The "full" decoder has the same maths plus ``mask_input`` (B, 1, 256, 256)
and ``has_mask_input`` (B,), with a batch axis B on the prompts: its masks
add ``has_mask_input * mask_input`` to every output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RADII = np.array([60.0, 30.0, 90.0, 120.0], dtype=np.float32)
OPSET = 13


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name=name)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_encoder(path: Path, *, input_name: str = "image") -> Path:
    """The block-mean encoder (``input_name`` lets tests break the contract)."""
    scale = ((np.arange(256, dtype=np.float32) + 1) / 256).reshape(1, 256, 1, 1)
    channel_of = np.arange(256) % 3
    nodes = [
        helper.make_node(
            "AveragePool", [input_name], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]
        ),
        helper.make_node("Gather", ["pooled", "channel_of"], ["gathered"], axis=1),
        helper.make_node("Mul", ["gathered", "scale"], ["image_embeddings"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_encoder",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, 1024, 1024])],
        [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64])],
        initializer=[_const("scale", scale), _const("channel_of", channel_of.astype(np.int64))],
    )
    return _save(graph, path)


def _decoder_nodes(batch_axis_mask: bool) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    centres = (np.arange(256, dtype=np.float32) + 0.5) * 4.0
    grid_x = np.broadcast_to(centres[None, :], (256, 256)).reshape(1, 1, 256, 256)
    grid_y = np.broadcast_to(centres[:, None], (256, 256)).reshape(1, 1, 256, 256)
    initializers = [
        _const("grid_x", grid_x.copy()),
        _const("grid_y", grid_y.copy()),
        _const("radii", RADII.reshape(1, 4, 1, 1)),
        _const("zero", np.array([0], dtype=np.int64)),
        _const("one", np.array([1], dtype=np.int64)),
        _const("two", np.array([2], dtype=np.int64)),
        _const("axis1", np.array([1], dtype=np.int64)),
        _const("axis2", np.array([2], dtype=np.int64)),
        _const("shape_b111", np.array([-1, 1, 1, 1], dtype=np.int64)),
    ]
    nodes = [
        # first point's x and y, shaped (B, 1, 1, 1)
        helper.make_node("Slice", ["point_coords", "zero", "one", "axis1"], ["first"]),
        helper.make_node("Slice", ["first", "zero", "one", "axis2"], ["first_x"]),
        helper.make_node("Slice", ["first", "one", "two", "axis2"], ["first_y"]),
        helper.make_node("Reshape", ["first_x", "shape_b111"], ["x"]),
        helper.make_node("Reshape", ["first_y", "shape_b111"], ["y"]),
        helper.make_node("Sub", ["grid_x", "x"], ["dx"]),
        helper.make_node("Sub", ["grid_y", "y"], ["dy"]),
        helper.make_node("Mul", ["dx", "dx"], ["dx2"]),
        helper.make_node("Mul", ["dy", "dy"], ["dy2"]),
        helper.make_node("Add", ["dx2", "dy2"], ["d2"]),
        helper.make_node("Sqrt", ["d2"], ["distance"]),
        helper.make_node("Sub", ["radii", "distance"], ["discs"]),
        # scores: [count, sum(labels), sum(x), mean(embedding)], each (B, 1)
        helper.make_node("Mul", ["point_labels", "zero_f"], ["zeros_like_labels"]),
        helper.make_node("Add", ["zeros_like_labels", "one_f"], ["ones_like_labels"]),
        helper.make_node("ReduceSum", ["ones_like_labels", "axis1"], ["count"], keepdims=1),
        helper.make_node("ReduceSum", ["point_labels", "axis1"], ["label_sum"], keepdims=1),
        helper.make_node("Slice", ["point_coords", "zero", "one", "axis2"], ["all_x"]),
        helper.make_node("ReduceSum", ["all_x", "axis1"], ["x_sum3"], keepdims=0),
        helper.make_node("ReduceMean", ["image_embeddings"], ["emb_mean4"], keepdims=1),
        helper.make_node("Reshape", ["emb_mean4", "shape_11"], ["emb_mean"]),
        helper.make_node("Add", ["zeros_like_count", "emb_mean"], ["emb_mean_b"]),
        helper.make_node("Mul", ["count", "zero_f"], ["zeros_like_count"]),
        helper.make_node(
            "Concat", ["count", "label_sum", "x_sum3", "emb_mean_b"], ["scores"], axis=1
        ),
    ]
    initializers += [
        _const("zero_f", np.array(0.0, dtype=np.float32)),
        _const("one_f", np.array(1.0, dtype=np.float32)),
        _const("shape_11", np.array([1, 1], dtype=np.int64)),
    ]
    if batch_axis_mask:
        nodes += [
            helper.make_node("Reshape", ["has_mask_input", "shape_b111"], ["has_mask"]),
            helper.make_node("Mul", ["mask_input", "has_mask"], ["mask_term"]),
            helper.make_node("Add", ["discs", "mask_term"], ["masks"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["discs"], ["masks"]))
    return nodes, initializers


def build_decoder(path: Path, *, full: bool = False) -> Path:
    """The disc decoder; ``full=True`` adds mask input and a batch axis."""
    batch: int | str = "num_prompts" if full else 1
    inputs = [
        helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64]),
        helper.make_tensor_value_info("point_coords", TensorProto.FLOAT, [batch, "num_points", 2]),
        helper.make_tensor_value_info("point_labels", TensorProto.FLOAT, [batch, "num_points"]),
    ]
    if full:
        inputs += [
            helper.make_tensor_value_info("mask_input", TensorProto.FLOAT, [batch, 1, 256, 256]),
            helper.make_tensor_value_info("has_mask_input", TensorProto.FLOAT, [batch]),
        ]
    nodes, initializers = _decoder_nodes(full)
    # Nodes must be topologically sorted for the checker.
    graph = helper.make_graph(
        _toposort(nodes, [i.name for i in inputs] + [i.name for i in initializers]),
        "tiny_decoder_full" if full else "tiny_decoder",
        inputs,
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 4]),
            helper.make_tensor_value_info("masks", TensorProto.FLOAT, [batch, 4, 256, 256]),
        ],
        initializer=initializers,
    )
    return _save(graph, path)


def _toposort(nodes: list[onnx.NodeProto], available: list[str]) -> list[onnx.NodeProto]:
    ready = set(available)
    ordered: list[onnx.NodeProto] = []
    pending = list(nodes)
    while pending:
        progress = [node for node in pending if all(name in ready for name in node.input)]
        if not progress:
            raise ValueError("cycle or missing input in the tiny decoder graph")
        for node in progress:
            ordered.append(node)
            ready.update(node.output)
            pending.remove(node)
    return ordered


def expected_embedding(image_input: np.ndarray) -> np.ndarray:
    """What the tiny encoder computes from a (1, 3, 1024, 1024) input."""
    pooled = image_input.reshape(1, 3, 64, 16, 64, 16).mean(axis=(3, 5))
    scale = ((np.arange(256) + 1) / 256).reshape(1, 256, 1, 1)
    return (pooled[:, np.arange(256) % 3] * scale).astype(np.float32)
