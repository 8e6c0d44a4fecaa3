"""Trace the graph modules with torch's TorchScript-based ONNX exporter.

The authors exported with ``torch.onnx.export`` at opset 11; torch >= 2.9
keeps that exporter behind ``dynamo=False`` (and warns that it is legacy).
It folds BatchNorm into the convolutions and constant-folds the rest, which
is what makes the official encoder small and fast. Each graph is written
atomically and checked with ``onnx.checker`` before it replaces anything.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import onnx
import torch
from torch import Tensor, nn

from edgesam.errors import ExportError
from edgesam.export._graphs import DecoderGraph, EncoderGraph, FullDecoderGraph
from edgesam.export._network import EdgeSamNetwork

__all__ = [
    "DEFAULT_OPSET",
    "MAX_OPSET",
    "MIN_OPSET",
    "GraphSpec",
    "decoder_spec",
    "encoder_spec",
    "export_graph",
    "full_decoder_spec",
]

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 11
MIN_OPSET = 11
MAX_OPSET = 20
EMBEDDING_SHAPE = (1, 256, 64, 64)


class GraphSpec(NamedTuple):
    """A module to trace, example inputs, and the names of its ONNX inputs/outputs."""

    module: nn.Module
    example_inputs: tuple[Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def encoder_spec(network: EdgeSamNetwork, *, for_quantisation: bool = False) -> GraphSpec:
    """``image`` (1, 3, 1024, 1024) -> ``image_embeddings`` (1, 256, 64, 64).

    ``for_quantisation`` traces the encoder's inference form (fused depthwise
    blocks, global pooling; :func:`edgesam.export._repvit.inference_form`).
    """
    return GraphSpec(
        EncoderGraph(network, for_quantisation=for_quantisation),
        (torch.zeros(1, 3, 1024, 1024),),
        ["image"],
        ["image_embeddings"],
        {},
    )


def _example_points(batch: int, count: int) -> tuple[Tensor, Tensor]:
    coords = torch.linspace(0.0, 1000.0, batch * count * 2).reshape(batch, count, 2)
    labels = torch.ones(batch, count)
    labels[:, -1] = -1.0
    return coords, labels


def decoder_spec(network: EdgeSamNetwork, *, stability_score: bool) -> GraphSpec:
    """The official decoder contract (see ``_graphs.DecoderGraph``)."""
    coords, labels = _example_points(1, 2)
    return GraphSpec(
        DecoderGraph(network, stability_score),
        (torch.zeros(EMBEDDING_SHAPE), coords, labels),
        ["image_embeddings", "point_coords", "point_labels"],
        ["scores", "masks"],
        {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
    )


def full_decoder_spec(network: EdgeSamNetwork, *, stability_score: bool) -> GraphSpec:
    """The batched decoder with mask input (see ``_graphs.FullDecoderGraph``)."""
    batch, count = 2, 3
    coords, labels = _example_points(batch, count)
    prompts = {0: "num_prompts"}
    return GraphSpec(
        FullDecoderGraph(network, stability_score),
        (
            torch.zeros(EMBEDDING_SHAPE),
            coords,
            labels,
            torch.zeros(batch, 1, 256, 256),
            torch.tensor([1.0, 0.0]),
        ),
        ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"],
        ["scores", "masks"],
        {
            "point_coords": {0: "num_prompts", 1: "num_points"},
            "point_labels": {0: "num_prompts", 1: "num_points"},
            "mask_input": prompts,
            "has_mask_input": prompts,
            "scores": prompts,
            "masks": prompts,
        },
    )


@contextlib.contextmanager
def _quiet_legacy_exporter() -> Iterator[None]:
    """Silence the two deprecation notices of the TorchScript exporter, nothing else.

    Using it is deliberate (it is what reproduces the official graphs); a
    tracer warning, by contrast, would mean a wrong graph and stays visible.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore",
            message=r"The feature will be removed",
            category=DeprecationWarning,
            module=r"torch\.onnx\.",
        )
        yield


def export_graph(spec: GraphSpec, destination: Path, *, opset: int) -> None:
    """Trace ``spec.module`` to an ONNX file at ``destination`` and check it.

    ``destination`` is a path in the export's staging folder: a failure may
    leave a partial file there, which the staging folder's cleanup removes.

    Raises
    ------
    ExportError
        Tracing, checking or writing failed.
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset must be between {MIN_OPSET} and {MAX_OPSET}: got {opset}")
    spec.module.eval()
    try:
        with torch.no_grad(), _quiet_legacy_exporter():
            torch.onnx.export(
                spec.module,
                spec.example_inputs,
                str(destination),
                input_names=spec.input_names,
                output_names=spec.output_names,
                dynamic_axes=spec.dynamic_axes or None,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        onnx.checker.check_model(str(destination))
    except Exception as err:  # torch raises many types while tracing
        raise ExportError(f"exporting {destination.name} failed: {err}") from err
