"""Build the device-side pre- and post-processing graphs shipped in ``src/edgesam/graphs``.

Run ``python tools/build_device_graphs.py`` after changing this file; the test
``tests/test_device_pipeline.py`` rebuilds the graphs in memory and fails if the
shipped files differ. The script needs the ``onnx`` package, which the runtime
does not: it lives outside the package so that nothing installed imports it.

Graphs (opset 17, all sizes dynamic):

``preprocess_hv.onnx`` / ``preprocess_vh.onnx``
    uint8 image (H, W, 3) and Pillow's integer tap indices and weights per
    axis (computed by ``edgesam._device_pre``) -> the encoder input
    (1, 3, 1024, 1024) float32. ``hv`` runs the horizontal pass first, ``vh``
    the vertical pass first, as Pillow chooses.
``postprocess.onnx``
    low-res logits (N, 256, 256) and the interpolation matrices rows (H, 256)
    and cols (W, 256) of ``edgesam._postprocess`` -> logits (N, H, W) float32,
    masks (N, H, W) bool, stability scores (N,) float32.
``postprocess_everything.onnx``
    the automatic mask generator's step for one decoder batch: low-res logits
    (N, 256, 256), rows, cols, and the float32 thresholds ``threshold``,
    ``upper``, ``lower`` (stability score at ``threshold +- offset``) and
    ``stability_thresh`` -> stability scores (N,) float32, ``keep`` (K,) int64
    (the masks whose score is at least ``stability_thresh``, in order), their
    XYXY boxes (K, 4) int64 and their masks (K, H, W) bool.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
PRECISION_BITS = 22
IMAGE_SIZE = 1024
LOW_RES_SIZE = 256
# The same float32 constants as edgesam._transforms.PIXEL_MEAN / PIXEL_STD.
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
GRAPHS_DIR = Path(__file__).resolve().parents[1] / "src" / "edgesam" / "graphs"


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], name=name, value=numpy_helper.from_array(value, name)
    )


def _resample_pass(prefix: str, source: str, axis: int) -> list[onnx.NodeProto]:
    """Nodes for one Pillow pass along ``axis`` (0 rows, 1 columns) of an (H, W, 3) tensor.

    ``source`` is uint8 or int32; the result ``{prefix}_out`` is int32 in [0, 255]:
    ``clip((sum_k in[index[o, k]] * weight[o, k] + 2**21) // 2**22, 0, 255)``. The
    products and sums are int32 (at most 255 * (2**22 + taps) + 2**21 < 2**31).
    """
    index, weight = f"{prefix}_index", f"{prefix}_weight"
    # weight (O, K) broadcast against the gathered taps: (O, K, 1, 1) for rows, and for
    # columns (O, K, 3), repeated over the channels: broadcasting a trailing 1 against
    # 3 channels is onnxruntime's slow element-wise path (a third of the CPU time).
    unsqueeze_axes = [2, 3] if axis == 0 else [2]
    nodes = [
        helper.make_node("Gather", [source, index], [f"{prefix}_taps8"], axis=axis),
        helper.make_node("Cast", [f"{prefix}_taps8"], [f"{prefix}_taps"], to=TensorProto.INT32),
        _const(f"{prefix}_wax", np.array(unsqueeze_axes, dtype=np.int64)),
        helper.make_node("Unsqueeze", [weight, f"{prefix}_wax"], [f"{prefix}_w1"]),
    ]
    if axis == 0:
        nodes.append(helper.make_node("Identity", [f"{prefix}_w1"], [f"{prefix}_w"]))
    else:
        nodes += [
            _const(f"{prefix}_reps", np.array([1, 1, 3], dtype=np.int64)),
            helper.make_node("Tile", [f"{prefix}_w1", f"{prefix}_reps"], [f"{prefix}_w"]),
        ]
    return [
        *nodes,
        helper.make_node("Mul", [f"{prefix}_taps", f"{prefix}_w"], [f"{prefix}_products"]),
        _const(f"{prefix}_sax", np.array([axis + 1], dtype=np.int64)),
        helper.make_node(
            "ReduceSum", [f"{prefix}_products", f"{prefix}_sax"], [f"{prefix}_sum"], keepdims=0
        ),
        _const(f"{prefix}_half", np.array(1 << (PRECISION_BITS - 1), dtype=np.int32)),
        helper.make_node("Add", [f"{prefix}_sum", f"{prefix}_half"], [f"{prefix}_rounded"]),
        _const(f"{prefix}_unit", np.array(1 << PRECISION_BITS, dtype=np.int32)),
        # Sums are never negative (bilinear weights are not), so division truncates = floors.
        helper.make_node("Div", [f"{prefix}_rounded", f"{prefix}_unit"], [f"{prefix}_shifted"]),
        # Clipped with Min and Max, whose int32 kernels every provider has (Clip's may not).
        _const(f"{prefix}_lo", np.array(0, dtype=np.int32)),
        _const(f"{prefix}_hi", np.array(255, dtype=np.int32)),
        helper.make_node("Min", [f"{prefix}_shifted", f"{prefix}_hi"], [f"{prefix}_capped"]),
        helper.make_node("Max", [f"{prefix}_capped", f"{prefix}_lo"], [f"{prefix}_out"]),
    ]


def build_preprocess(vertical_first: bool) -> onnx.ModelProto:
    """The preprocessing graph, with Pillow's pass order for ``vertical_first``."""
    first, second = (("row", 0), ("col", 1)) if vertical_first else (("col", 1), ("row", 0))
    nodes = _resample_pass(first[0], "image", first[1])
    # The second pass gathers 8-bit values again (a quarter of the bytes of int32).
    nodes.append(helper.make_node("Cast", [f"{first[0]}_out"], ["middle"], to=TensorProto.UINT8))
    nodes += _resample_pass(second[0], "middle", second[1])
    nodes += [
        helper.make_node("Cast", [f"{second[0]}_out"], ["pixels"], to=TensorProto.FLOAT),
        _const("mean", PIXEL_MEAN),
        _const("std", PIXEL_STD),
        helper.make_node("Sub", ["pixels", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["normalised"]),
        helper.make_node("Transpose", ["normalised"], ["planes"], perm=[2, 0, 1]),
        helper.make_node("Shape", ["planes"], ["planes_shape"]),
        _const("frame", np.array([3, IMAGE_SIZE, IMAGE_SIZE], dtype=np.int64)),
        helper.make_node("Sub", ["frame", "planes_shape"], ["pad_end"]),
        _const("pad_start", np.zeros(3, dtype=np.int64)),
        helper.make_node("Concat", ["pad_start", "pad_end"], ["pads"], axis=0),
        helper.make_node("Pad", ["planes", "pads"], ["padded"], mode="constant"),
        _const("batch_axis", np.array([0], dtype=np.int64)),
        helper.make_node("Unsqueeze", ["padded", "batch_axis"], ["image_input"]),
    ]
    inputs = [
        helper.make_tensor_value_info("image", TensorProto.UINT8, ["height", "width", 3]),
        helper.make_tensor_value_info("row_index", TensorProto.INT64, ["new_height", "row_taps"]),
        helper.make_tensor_value_info("row_weight", TensorProto.INT32, ["new_height", "row_taps"]),
        helper.make_tensor_value_info("col_index", TensorProto.INT64, ["new_width", "col_taps"]),
        helper.make_tensor_value_info("col_weight", TensorProto.INT32, ["new_width", "col_taps"]),
    ]
    outputs = [
        helper.make_tensor_value_info(
            "image_input", TensorProto.FLOAT, [1, 3, IMAGE_SIZE, IMAGE_SIZE]
        )
    ]
    order = "vertical pass first" if vertical_first else "horizontal pass first"
    graph = helper.make_graph(nodes, f"edgesam_preprocess_{order.split()[0]}", inputs, outputs)
    graph.doc_string = (
        "edgesam preprocessing: Pillow 8-bit bilinear resize (" + order + ", Pillow's own "
        "integer coefficients as inputs), (x - mean) / std, CHW, zero pad to 1024x1024"
    )
    return _model(graph)


def build_postprocess() -> onnx.ModelProto:
    """Low-res logits -> logits, masks and stability scores at the original size."""
    nodes = [
        # (N, 256, 256) @ (256, W) -> (N, 256, W); (H, 256) @ (N, 256, W) -> (N, H, W)
        helper.make_node("Transpose", ["cols"], ["cols_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["low_res_logits", "cols_t"], ["narrow"]),
        helper.make_node("MatMul", ["rows", "narrow"], ["logits"]),
        helper.make_node("Greater", ["logits", "threshold"], ["masks"]),
        helper.make_node("Add", ["threshold", "offset"], ["upper"]),
        helper.make_node("Sub", ["threshold", "offset"], ["lower"]),
        helper.make_node("Greater", ["logits", "upper"], ["inner"]),
        helper.make_node("Greater", ["logits", "lower"], ["outer"]),
        helper.make_node("Cast", ["inner"], ["inner_i"], to=TensorProto.INT64),
        helper.make_node("Cast", ["outer"], ["outer_i"], to=TensorProto.INT64),
        _const("pixel_axes", np.array([1, 2], dtype=np.int64)),
        helper.make_node("ReduceSum", ["inner_i", "pixel_axes"], ["intersections"], keepdims=0),
        helper.make_node("ReduceSum", ["outer_i", "pixel_axes"], ["unions"], keepdims=0),
        # count / count in float64, 0 where the union is empty, then float32 (as the host).
        helper.make_node("Cast", ["intersections"], ["inter_f"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["unions"], ["union_f"], to=TensorProto.DOUBLE),
        _const("one", np.array(1.0, dtype=np.float64)),
        helper.make_node("Max", ["union_f", "one"], ["divisor"]),
        helper.make_node("Div", ["inter_f", "divisor"], ["ratio"]),
        helper.make_node("Cast", ["ratio"], ["stability_scores"], to=TensorProto.FLOAT),
    ]
    inputs = [
        helper.make_tensor_value_info(
            "low_res_logits", TensorProto.FLOAT, ["masks", LOW_RES_SIZE, LOW_RES_SIZE]
        ),
        helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["height", LOW_RES_SIZE]),
        helper.make_tensor_value_info("cols", TensorProto.FLOAT, ["width", LOW_RES_SIZE]),
        helper.make_tensor_value_info("threshold", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("offset", TensorProto.FLOAT, []),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["masks", "height", "width"]),
        helper.make_tensor_value_info("masks", TensorProto.BOOL, ["masks", "height", "width"]),
        helper.make_tensor_value_info("stability_scores", TensorProto.FLOAT, ["masks"]),
    ]
    graph = helper.make_graph(nodes, "edgesam_postprocess", inputs, outputs)
    graph.doc_string = (
        "edgesam postprocessing: rows @ logits @ cols.T (bilinear 256 -> 1024, crop, -> HxW), "
        "masks = logits > threshold, stability = IoU at threshold +- offset"
    )
    return _model(graph)


def _box_edges(prefix: str, present: str, axis_name: str) -> list[onnx.NodeProto]:
    """First and last index (int64, shape (K,)) where ``present`` (K, L) bool is set.

    Positions are weighted in float (exact below 2**24) and reduced with ReduceMax,
    whose float kernels every provider has (ArgMax's ``select_last_index`` and
    integer reductions are not everywhere). Empty rows give ``first = L``,
    ``last = -1``; the caller zeroes those boxes.
    """
    p = prefix
    return [
        helper.make_node("Shape", [present], [f"{p}_shape"]),
        _const(f"{p}_at", np.array(1, dtype=np.int64)),
        helper.make_node("Gather", [f"{p}_shape", f"{p}_at"], [f"{p}_length"], axis=0),
        helper.make_node("Cast", [f"{p}_length"], [f"{p}_length_f"], to=TensorProto.FLOAT),
        _const(f"{p}_one", np.array(1.0, dtype=np.float32)),
        helper.make_node("Add", [f"{p}_length_f", f"{p}_one"], [f"{p}_limit"]),
        # 1..L ascending (marks the last set index), L..1 descending (the first).
        helper.make_node("Range", [f"{p}_one", f"{p}_limit", f"{p}_one"], [f"{p}_ascending"]),
        helper.make_node("Sub", [f"{p}_limit", f"{p}_ascending"], [f"{p}_descending"]),
        helper.make_node("Cast", [present], [f"{p}_set"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{p}_set", f"{p}_ascending"], [f"{p}_up"]),
        helper.make_node("Mul", [f"{p}_set", f"{p}_descending"], [f"{p}_down"]),
        helper.make_node("ReduceMax", [f"{p}_up"], [f"{p}_last1"], axes=[1], keepdims=0),
        helper.make_node("ReduceMax", [f"{p}_down"], [f"{p}_from_end"], axes=[1], keepdims=0),
        helper.make_node("Sub", [f"{p}_last1", f"{p}_one"], [f"{p}_last_f"]),
        helper.make_node("Sub", [f"{p}_length_f", f"{p}_from_end"], [f"{p}_first_f"]),
        helper.make_node("Cast", [f"{p}_first_f"], [f"{axis_name}0"], to=TensorProto.INT64),
        helper.make_node("Cast", [f"{p}_last_f"], [f"{axis_name}1"], to=TensorProto.INT64),
    ]


def build_postprocess_everything() -> onnx.ModelProto:
    """One decoder batch of the automatic mask generator: filter, score, box, mask."""
    pixel_axes = "pixel_axes"
    nodes = [
        # The same products as postprocess.onnx.
        helper.make_node("Transpose", ["cols"], ["cols_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["low_res_logits", "cols_t"], ["narrow"]),
        helper.make_node("MatMul", ["rows", "narrow"], ["logits"]),
        # Stability: count(> upper) / count(> lower) in float32 as the host divides,
        # 0 where the union is empty.
        helper.make_node("Greater", ["logits", "upper"], ["inner"]),
        helper.make_node("Greater", ["logits", "lower"], ["outer"]),
        helper.make_node("Cast", ["inner"], ["inner_i"], to=TensorProto.INT32),
        helper.make_node("Cast", ["outer"], ["outer_i"], to=TensorProto.INT32),
        _const(pixel_axes, np.array([1, 2], dtype=np.int64)),
        helper.make_node("ReduceSum", ["inner_i", pixel_axes], ["intersections"], keepdims=0),
        helper.make_node("ReduceSum", ["outer_i", pixel_axes], ["unions"], keepdims=0),
        helper.make_node("Cast", ["intersections"], ["inter_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["unions"], ["union_f"], to=TensorProto.FLOAT),
        _const("one", np.array(1.0, dtype=np.float32)),
        _const("zero", np.array(0.0, dtype=np.float32)),
        helper.make_node("Max", ["union_f", "one"], ["divisor"]),
        helper.make_node("Div", ["inter_f", "divisor"], ["ratio"]),
        helper.make_node("Greater", ["union_f", "zero"], ["has_union"]),
        helper.make_node("Where", ["has_union", "ratio", "zero"], ["stability_scores"]),
        # The survivors, in order.
        helper.make_node("GreaterOrEqual", ["stability_scores", "stability_thresh"], ["passes"]),
        helper.make_node("NonZero", ["passes"], ["passing"]),
        _const("flat", np.array([-1], dtype=np.int64)),
        helper.make_node("Reshape", ["passing", "flat"], ["keep"]),
        # Boxes from each row's and column's maximum: any pixel > threshold.
        helper.make_node("ReduceMax", ["logits"], ["row_max_all"], axes=[2], keepdims=0),
        helper.make_node("ReduceMax", ["logits"], ["col_max_all"], axes=[1], keepdims=0),
        helper.make_node("Gather", ["row_max_all", "keep"], ["row_max"], axis=0),
        helper.make_node("Gather", ["col_max_all", "keep"], ["col_max"], axis=0),
        helper.make_node("Greater", ["row_max", "threshold"], ["rows_set"]),
        helper.make_node("Greater", ["col_max", "threshold"], ["cols_set"]),
        *_box_edges("ys", "rows_set", "y"),
        *_box_edges("xs", "cols_set", "x"),
        helper.make_node("Unsqueeze", ["x0", "box_axis"], ["x0c"]),
        helper.make_node("Unsqueeze", ["y0", "box_axis"], ["y0c"]),
        helper.make_node("Unsqueeze", ["x1", "box_axis"], ["x1c"]),
        helper.make_node("Unsqueeze", ["y1", "box_axis"], ["y1c"]),
        helper.make_node("Concat", ["x0c", "y0c", "x1c", "y1c"], ["corners"], axis=1),
        # An empty mask's box is [0, 0, 0, 0].
        helper.make_node("Cast", ["rows_set"], ["rows_set_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["rows_set_f"], ["present_f"], axes=[1], keepdims=1),
        helper.make_node("Greater", ["present_f", "zero"], ["present"]),
        _const("no_box", np.array(0, dtype=np.int64)),
        helper.make_node("Where", ["present", "corners", "no_box"], ["boxes"]),
        # Only the survivors' masks leave the graph, as booleans.
        helper.make_node("Gather", ["logits", "keep"], ["kept_logits"], axis=0),
        helper.make_node("Greater", ["kept_logits", "threshold"], ["masks"]),
    ]
    nodes.insert(0, _const("box_axis", np.array([1], dtype=np.int64)))
    scalar = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [])
        for name in ("threshold", "upper", "lower", "stability_thresh")
    ]
    inputs = [
        helper.make_tensor_value_info(
            "low_res_logits", TensorProto.FLOAT, ["masks", LOW_RES_SIZE, LOW_RES_SIZE]
        ),
        helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["height", LOW_RES_SIZE]),
        helper.make_tensor_value_info("cols", TensorProto.FLOAT, ["width", LOW_RES_SIZE]),
        *scalar,
    ]
    outputs = [
        helper.make_tensor_value_info("stability_scores", TensorProto.FLOAT, ["masks"]),
        helper.make_tensor_value_info("keep", TensorProto.INT64, ["kept"]),
        helper.make_tensor_value_info("boxes", TensorProto.INT64, ["kept", 4]),
        helper.make_tensor_value_info("masks", TensorProto.BOOL, ["kept", "height", "width"]),
    ]
    graph = helper.make_graph(nodes, "edgesam_postprocess_everything", inputs, outputs)
    graph.doc_string = (
        "edgesam automatic mask generator, one decoder batch: rows @ logits @ cols.T, "
        "stability = count(> upper) / count(> lower), keep = stability >= stability_thresh, "
        "XYXY boxes and masks (> threshold) of the kept masks"
    )
    return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edgesam tools/build_device_graphs.py",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def build_all() -> dict[str, bytes]:
    """File name -> serialised graph, for every shipped graph."""
    return {
        "preprocess_hv.onnx": build_preprocess(vertical_first=False).SerializeToString(),
        "preprocess_vh.onnx": build_preprocess(vertical_first=True).SerializeToString(),
        "postprocess.onnx": build_postprocess().SerializeToString(),
        "postprocess_everything.onnx": build_postprocess_everything().SerializeToString(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GRAPHS_DIR, help="target folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in build_all().items():
        target = args.out / name
        partial = target.with_suffix(".onnx.partial")
        partial.write_bytes(data)
        partial.replace(target)
        print(f"wrote {target} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
