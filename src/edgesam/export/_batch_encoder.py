"""An encoder that takes a batch of images: the same graph with a dynamic first dimension.

EdgeSAM's encoder graph (convolutions, per-pixel LayerNorm, resize) has no
operation that depends on the batch size, so declaring the first dimension of
``image`` and ``image_embeddings`` symbolic is all it takes; the weights and
nodes are untouched. Works on the official files and on ``edgesam export``'s.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgesam._atomic import atomic_writer
from edgesam.errors import InvalidInputError

__all__ = ["batch_encoder"]


def batch_encoder(encoder: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Write a copy of ``encoder`` whose batch dimension is dynamic (``"batch"``).

    Parameters
    ----------
    encoder : str or os.PathLike
        An EdgeSAM encoder ``.onnx`` (input ``image`` (1, 3, 1024, 1024)).
    output : str or os.PathLike
        The file to write (atomically); then use it with
        ``EdgeSam.from_files(output, decoder)`` and :meth:`EdgeSam.encode_batch`.

    Returns
    -------
    Path
        ``output``.
    """
    import onnx

    model = onnx.load(os.fspath(encoder))
    tensors = {value.name: value for value in [*model.graph.input, *model.graph.output]}
    for name in ("image", "image_embeddings"):
        if name not in tensors or len(tensors[name].type.tensor_type.shape.dim) != 4:
            raise InvalidInputError(
                f"encoder={os.fspath(encoder)!r} is not an EdgeSAM encoder: it lacks the "
                f"4-D {name!r} tensor"
            )
        tensors[name].type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(model)
    with atomic_writer(output, "output") as stream:
        stream.write(model.SerializeToString())
    return Path(output)
