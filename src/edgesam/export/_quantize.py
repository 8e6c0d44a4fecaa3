"""Int8 encoder: static QDQ quantisation with onnxruntime, calibrated on images.

Weights are int8 per output channel, activations uint8 per tensor with
ranges (min/max) observed while running the float32 encoder on calibration
images. The QDQ format keeps the graph readable by any runtime: those with
int8 kernels fuse ``DequantizeLinear -> Conv -> QuantizeLinear`` into
integer convolutions; others still run it in float.

Why static and not dynamic: dynamic quantisation turns every convolution into
``ConvInteger`` with activation ranges found at run time, which on CPU is
several times slower than the float32 encoder (see docs/export.md for the
measurements); static QDQ is the one that is faster.

Before quantising, the float graph is converted to opset 20 and each GELU,
which the torch exporter writes as five nodes, becomes one ``Gelu`` node
(:mod:`edgesam.export._gelu`): quantised as five, it cost the int8 encoder
about a quarter of its time. (Per-channel QDQ itself needs opset >= 13.)

The LayerNorms and the convolution that reads the image stay in float32
(:mod:`edgesam.export._float_nodes` says why).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgesam.errors import ExportError, InvalidInputError
from edgesam.export._calibration import CalibrationImages, CalibrationSource
from edgesam.export._float_nodes import float_node_names
from edgesam.export._gelu import GELU_OPSET, fuse_erf_gelu

__all__ = ["quantize_encoder"]

logger = logging.getLogger(__name__)


def _default_opset(model: onnx.ModelProto) -> int:
    return int(
        next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    )


def quantize_encoder(
    float_encoder: Path,
    destination: Path,
    calibration_images: Sequence[CalibrationSource],
) -> None:
    """Write the static-QDQ int8 version of a float32 encoder file.

    Parameters
    ----------
    float_encoder : Path
        The float32 encoder (any opset from 11).
    destination : Path
        Where the int8 encoder goes (a path in the export's staging folder).
    calibration_images : sequence of path or ndarray
        Typical images; their activation ranges set the quantisation. They
        are read lazily, one at a time, during calibration.

    Raises
    ------
    InvalidInputError
        No calibration images, or one cannot be read.
    ExportError
        Quantisation or writing failed.
    """
    if len(calibration_images) == 0:
        raise InvalidInputError(
            "the int8 encoder needs calibration images: pass a few typical photos "
            "(calibration_images=[...] / --calibration-images), 8-32 is plenty"
        )
    reader = CalibrationImages(calibration_images)
    with tempfile.TemporaryDirectory(prefix="edgesam-int8-") as scratch:
        upgraded = Path(scratch) / "encoder_float.onnx"
        prepared = Path(scratch) / "encoder_prepared.onnx"
        try:
            model = onnx.load(str(float_encoder))
            if _default_opset(model) < GELU_OPSET:
                model = version_converter.convert_version(model, GELU_OPSET)
            # onnxruntime's own graph optimiser (in quant_pre_process) makes the same
            # fusion at opset 20 in current releases; done here, it does not depend on it.
            logger.info("fused %d GELU(s) into Gelu nodes", fuse_erf_gelu(model))
            onnx.save(model, str(upgraded))
            quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
            kept_float = float_node_names(onnx.load(str(prepared)))
            logger.info("keeping %d node(s) in float32", len(kept_float))
            logger.info("calibrating the int8 encoder on %d image(s)", len(reader))
            quantize_static(
                str(prepared),
                str(destination),
                reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=kept_float,
            )
            onnx.checker.check_model(str(destination))
        except (ExportError, InvalidInputError):
            raise
        except Exception as err:  # onnxruntime's quantiser raises many types
            raise ExportError(f"quantising the encoder to int8 failed: {err}") from err
