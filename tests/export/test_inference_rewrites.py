"""The exporter's speed rewrites compute what they replace.

* ``inference_form``: each three-branch depthwise block (3x3 + 1x1 + identity,
  each conv with BatchNorm) becomes one 3x3 depthwise convolution.
* ``fuse_erf_gelu``: the five nodes torch writes for ``nn.GELU()`` below opset
  20 become one ``Gelu`` node, and only where nothing else reads the chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper, version_converter  # noqa: E402

from edgesam.export._gelu import GELU_OPSET, fuse_erf_gelu  # noqa: E402
from edgesam.export._onnx_export import GraphSpec, export_graph  # noqa: E402
from edgesam.export._repvit import (  # noqa: E402
    RepVGGDepthwise,
    RepViTEncoder,
    SqueezeExcite,
    inference_form,
)

pytestmark = pytest.mark.torch


def _randomise_batch_norms(module: Any, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                size = layer.num_features
                layer.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(size, generator=generator))
                layer.running_mean.copy_(torch.randn(size, generator=generator))
                layer.running_var.copy_(torch.rand(size, generator=generator) + 0.5)


def test_depthwise_block_folds_into_one_convolution() -> None:
    block = RepVGGDepthwise(8)
    _randomise_batch_norms(block, seed=0)
    block.eval()
    fused = block.reparameterised()
    assert isinstance(fused, torch.nn.Conv2d)
    assert (fused.kernel_size, fused.groups, fused.padding) == ((3, 3), 8, (1, 1))
    x = torch.randn(2, 8, 13, 17, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(fused(x), block(x), rtol=1e-5, atol=1e-5)


def test_encoder_inference_form_matches_and_leaves_the_original() -> None:
    encoder = RepViTEncoder()
    _randomise_batch_norms(encoder, seed=2)
    encoder.eval()
    fused = inference_form(encoder)
    blocks = [m for m in encoder.modules() if isinstance(m, RepVGGDepthwise)]
    assert len(blocks) == 23  # the stride-1 blocks
    assert not any(isinstance(m, RepVGGDepthwise) for m in fused.modules())
    image = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, have = encoder(image), fused(image)
    scale = float(want.abs().max())
    assert float((have - want).abs().max()) <= 1e-4 * scale
    # The original keeps its three-branch form (and its checkpoint keys) and its pooling.
    assert sum(isinstance(m, RepVGGDepthwise) for m in encoder.modules()) == 23
    pooling = [(m.global_pool, f.global_pool) for m, f in _squeeze_excites(encoder, fused)]
    assert pooling == [(False, True)] * 10


def _squeeze_excites(*encoders: Any) -> Any:
    found = [[m for m in e.modules() if isinstance(m, SqueezeExcite)] for e in encoders]
    return zip(*found, strict=True)


class _Gelus(torch.nn.Module):
    """Two GELUs; the second one's input is also returned, so the chains stay apart."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.gelu = torch.nn.GELU()

    def forward(self, x: Any) -> Any:
        first = self.gelu(self.conv(x))
        return self.gelu(first * 2.0), first


def _exported(module: Any, folder: Path) -> Any:
    """``module`` through the exporter's own path (legacy exporter, opset 11)."""
    path = folder / "gelus.onnx"
    spec = GraphSpec(module, (torch.randn(1, 3, 5, 5),), ["x"], ["y", "first"], {})
    export_graph(spec, path, opset=11)
    return onnx.load(str(path))


def _run(model: Any, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(out) for out in session.run(None, {"x": x})]


def test_torch_gelu_chains_become_gelu_nodes(tmp_path: Path) -> None:
    model = version_converter.convert_version(_exported(_Gelus(), tmp_path), GELU_OPSET)
    x = np.random.default_rng(0).normal(size=(1, 3, 5, 5)).astype(np.float32) * 3
    want = _run(model, x)
    assert [n.op_type for n in model.graph.node].count("Erf") == 2
    assert fuse_erf_gelu(model) == 2
    onnx.checker.check_model(model, full_check=True)
    kinds = [n.op_type for n in model.graph.node]
    assert kinds.count("Gelu") == 2
    assert not {"Erf", "Div"} & set(kinds)
    # The chains' constants are gone too; the 2.0 of `first * 2.0` stays.
    used = {name for node in model.graph.node for name in node.input}
    assert all(tensor.name in used for tensor in model.graph.initializer)
    constants = [n for n in model.graph.node if n.op_type == "Constant"]
    assert all(n.output[0] in used for n in constants)
    assert len(constants) + len(model.graph.initializer) == 3  # conv weight, bias, 2.0
    for have, expected in zip(_run(model, x), want, strict=True):
        np.testing.assert_allclose(have, expected, rtol=1e-6, atol=1e-6)


def _chain(shared: str | None) -> Any:
    """x -> Div(sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5) -> y; ``shared`` is also output."""
    nodes = [
        helper.make_node("Div", ["x", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["x", "a"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    scalar = onnx.TensorProto.FLOAT
    constants = [
        helper.make_tensor("sqrt2", scalar, [], [float(np.sqrt(2.0))]),
        helper.make_tensor("one", scalar, [], [1.0]),
        helper.make_tensor("half", scalar, [], [0.5]),
    ]
    outputs = [helper.make_tensor_value_info("y", scalar, [4])]
    if shared is not None:
        outputs.append(helper.make_tensor_value_info(shared, scalar, [4]))
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", scalar, [4])], outputs, constants
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", GELU_OPSET)])


def test_a_chain_whose_middle_is_read_elsewhere_is_left_alone() -> None:
    assert fuse_erf_gelu(_chain(shared="e")) == 0
    assert fuse_erf_gelu(_chain(shared="m")) == 0
    assert fuse_erf_gelu(_chain(shared=None)) == 1


def test_a_chain_with_other_constants_is_left_alone() -> None:
    model = _chain(shared=None)
    model.graph.initializer[1].CopyFrom(
        helper.make_tensor("one", onnx.TensorProto.FLOAT, [], [2.0])
    )
    assert fuse_erf_gelu(model) == 0


def test_gelu_fusion_needs_opset_20() -> None:
    model = _chain(shared=None)
    model.opset_import[0].version = 13
    with pytest.raises(ValueError, match="opset 20"):
        fuse_erf_gelu(model)
