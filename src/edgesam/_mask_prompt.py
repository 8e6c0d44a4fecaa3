"""Mask prompts for the official decoder, which has no mask input, in numpy.

In SAM's (and EdgeSAM's) mask decoder the image embedding enters only as
``image_embeddings + dense_prompt_embeddings``. Without a mask the dense
embedding is the learned ``no_mask_embed`` vector at every position; with one
it is ``mask_downscaling(mask_logits)``, a small conv stack::

    (B, 1, 256, 256) ─ Conv 1→4, k2 s2 ─ LayerNorm2d ─ GELU
                     ─ Conv 4→16, k2 s2 ─ LayerNorm2d ─ GELU
                     ─ Conv 16→256, k1 ─► (B, 256, 64, 64)

The official decoder always adds ``no_mask_embed``, so feeding it
``image_embeddings + mask_downscaling(mask) - no_mask_embed`` is exactly the
mask-conditioned decoder. The weights come from the model's ``.pth``
checkpoint (``prompt_encoder.mask_downscaling.*`` and
``prompt_encoder.no_mask_embed.weight``), read without torch.

Everything is float32. The kernel-2, stride-2 convolutions do not overlap, so
each is a reshape into 2x2 patches and one matrix product; GELU is the exact
(erf) form, with an erf accurate to about one float32 unit near 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from os import PathLike
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgesam._checkpoint import read_state_dict
from edgesam.errors import (
    CheckpointError,
    InvalidInputError,
)

__all__ = [
    "REQUIRED_KEYS",
    "MaskPromptWeights",
    "condition_embedding",
    "downscale_mask",
    "erf",
    "gelu",
]

_PREFIX = "prompt_encoder.mask_downscaling."

# checkpoint key -> MaskPromptWeights field, in the order of the conv stack
_KEY_TO_FIELD: dict[str, str] = {
    f"{_PREFIX}0.weight": "conv1_weight",
    f"{_PREFIX}0.bias": "conv1_bias",
    f"{_PREFIX}1.weight": "norm1_weight",
    f"{_PREFIX}1.bias": "norm1_bias",
    f"{_PREFIX}3.weight": "conv2_weight",
    f"{_PREFIX}3.bias": "conv2_bias",
    f"{_PREFIX}4.weight": "norm2_weight",
    f"{_PREFIX}4.bias": "norm2_bias",
    f"{_PREFIX}6.weight": "conv3_weight",
    f"{_PREFIX}6.bias": "conv3_bias",
    "prompt_encoder.no_mask_embed.weight": "no_mask_embed",
}

REQUIRED_KEYS: tuple[str, ...] = tuple(_KEY_TO_FIELD)
"""The checkpoint tensors that :class:`MaskPromptWeights` needs."""

_LAYER_NORM_EPS = np.float32(1e-6)
_SQRT_HALF = np.float32(np.sqrt(0.5))

# erf(x) = x + x * S(x**2) for |x| < 1: S fitted (weighted least squares on
# Chebyshev nodes, against math.erf) to erf(x) / x - 1.
_ERF_SMALL = tuple(
    np.float32(c)
    for c in (
        0.12837917,
        -0.37612638,
        0.11283773,
        -0.026864976,
        0.00521992,
        -0.0008469554,
        0.00011169283,
        -9.409624e-06,
    )
)
# erf(x) = 1 - exp(-x**2) * R(t) for 1 <= x <= 4, t = (2x - 5) / 3 in [-1, 1]: R fitted
# to the scaled complement erfc(x) * exp(x**2), weighted by exp(-x**2).
# Beyond 4, 1 - erf(x) < 1.6e-8 is below half a float32 unit of 1.
_ERF_LARGE = tuple(
    np.float32(c)
    for c in (
        0.21080637,
        -0.111521006,
        0.056110397,
        -0.027006341,
        0.012487909,
        -0.005562734,
        0.0024290264,
        -0.0010002857,
        0.0003436135,
        -0.00024341706,
        7.297522e-05,
        5.2257044e-05,
        5.1762014e-05,
    )
)
_ERF_SPLIT = np.float32(1.0)
_ERF_CLIP = np.float32(4.0)


def _horner(coefficients: tuple[np.float32, ...], x: NDArray[np.float32]) -> NDArray[np.float32]:
    result = np.full_like(x, coefficients[-1])
    for coefficient in coefficients[-2::-1]:
        result *= x
        result += coefficient
    return result


def erf(x: ArrayLike) -> NDArray[np.float32]:
    """The error function, elementwise, in float32.

    Numpy has no ``erf``, and scipy is not a dependency. Two fitted
    polynomials (``|x| < 1`` and ``1 <= |x| <= 4``) give a maximum absolute
    error of about 7e-8 against ``math.erf`` (one float32 unit near 1 is
    6e-8); ``erf(±inf) = ±1`` and NaN stays NaN.

    Parameters
    ----------
    x : array_like of float
        Any shape; converted to float32.

    Returns
    -------
    ndarray of float32
        Same shape as ``x``.
    """
    values = np.asarray(x, dtype=np.float32)
    clipped = np.clip(values, -_ERF_CLIP, _ERF_CLIP)
    magnitude = np.abs(clipped)
    square = clipped * clipped
    small = clipped + clipped * _horner(_ERF_SMALL, square)
    t = (magnitude - np.float32(2.5)) * np.float32(2.0 / 3.0)
    large = np.float32(1.0) - np.exp(-square) * _horner(_ERF_LARGE, t)
    result: NDArray[np.float32] = np.where(
        magnitude < _ERF_SPLIT, small, np.copysign(large, clipped)
    )
    return result


def gelu(x: ArrayLike) -> NDArray[np.float32]:
    """Exact GELU, ``x * 0.5 * (1 + erf(x / sqrt(2)))``, in float32 (torch's default form).

    Parameters
    ----------
    x : array_like of float
        Any shape; converted to float32.

    Returns
    -------
    ndarray of float32
        Same shape as ``x``.
    """
    values = np.asarray(x, dtype=np.float32)
    result = erf(values * _SQRT_HALF)
    result += np.float32(1.0)
    result *= values
    result *= np.float32(0.5)  # exact: the same value as torch's (x * 0.5) * (1 + erf)
    return result


@dataclass(frozen=True, eq=False)
class MaskPromptWeights:
    """The weights of SAM's ``mask_downscaling`` stack and ``no_mask_embed``.

    Shapes are the checkpoint's, with ``C1 = 4``, ``C2 = 16`` and ``E = 256`` in
    EdgeSAM (and SAM). The arrays are stored as read-only float32 copies.

    Attributes
    ----------
    conv1_weight : ndarray of float32, shape (C1, 1, 2, 2)
    conv1_bias, norm1_weight, norm1_bias : ndarray of float32, shape (C1,)
    conv2_weight : ndarray of float32, shape (C2, C1, 2, 2)
    conv2_bias, norm2_weight, norm2_bias : ndarray of float32, shape (C2,)
    conv3_weight : ndarray of float32, shape (E, C2, 1, 1)
    conv3_bias : ndarray of float32, shape (E,)
    no_mask_embed : ndarray of float32, shape (1, E)
    """

    conv1_weight: NDArray[np.float32]
    conv1_bias: NDArray[np.float32]
    norm1_weight: NDArray[np.float32]
    norm1_bias: NDArray[np.float32]
    conv2_weight: NDArray[np.float32]
    conv2_bias: NDArray[np.float32]
    norm2_weight: NDArray[np.float32]
    norm2_bias: NDArray[np.float32]
    conv3_weight: NDArray[np.float32]
    conv3_bias: NDArray[np.float32]
    no_mask_embed: NDArray[np.float32]

    REQUIRED_KEYS: ClassVar[tuple[str, ...]] = REQUIRED_KEYS

    def __post_init__(self) -> None:
        names = {field.name: field.name for field in fields(self)}
        arrays = {name: getattr(self, name) for name in names}
        for name, array in _validated(arrays, names, InvalidInputError).items():
            object.__setattr__(self, name, array)

    @property
    def embed_dim(self) -> int:
        """``E``, the number of channels of the image embedding (256)."""
        return int(self.conv3_weight.shape[0])

    @classmethod
    def from_state_dict(cls, state: Mapping[str, ArrayLike]) -> MaskPromptWeights:
        """Take the weights from a state dict (name to array), e.g. :func:`read_state_dict`'s.

        Parameters
        ----------
        state : mapping of str to array_like
            Must hold every key of :data:`REQUIRED_KEYS`; other keys are ignored.

        Returns
        -------
        MaskPromptWeights

        Raises
        ------
        CheckpointError
            A key is missing or an array has the wrong shape (both named).
        """
        missing = [key for key in REQUIRED_KEYS if key not in state]
        if missing:
            raise CheckpointError(
                f"the state dict lacks {len(missing)} mask-prompt tensors: {', '.join(missing)}; "
                "pass an EdgeSAM (or SAM) checkpoint's state dict"
            )
        arrays = {field: state[key] for key, field in _KEY_TO_FIELD.items()}
        labels = {field: key for key, field in _KEY_TO_FIELD.items()}
        return cls(**_validated(arrays, labels, CheckpointError))

    @classmethod
    def from_checkpoint(cls, path: str | PathLike[str]) -> MaskPromptWeights:
        """Read the weights from a ``.pth`` checkpoint, without torch.

        Only the eleven tensors in :data:`REQUIRED_KEYS` are read.

        Parameters
        ----------
        path : str or PathLike
            The model's checkpoint, e.g. ``edge_sam.pth``.

        Returns
        -------
        MaskPromptWeights

        Raises
        ------
        CheckpointError
            The file cannot be read or lacks the tensors (see :func:`read_state_dict`).
        UnsafeCheckpointError
            The file's pickle asks for code to run; nothing was run.
        """
        return cls.from_state_dict(read_state_dict(path, keys=REQUIRED_KEYS))


def _validated(
    arrays: Mapping[str, Any], labels: Mapping[str, str], error: type[Exception]
) -> dict[str, NDArray[np.float32]]:
    """Convert to read-only float32 and check the shapes fit one conv stack."""
    converted: dict[str, NDArray[np.float32]] = {}
    for name, value in arrays.items():
        try:
            array = np.array(value, dtype=np.float32, order="C", copy=True)
        except (TypeError, ValueError) as err:
            raise error(f"{labels[name]} is not a float array: {err}") from err
        array.setflags(write=False)
        converted[name] = array

    def shape_of(name: str, ndim: int) -> tuple[int, ...]:
        shape: tuple[int, ...] = converted[name].shape
        if len(shape) != ndim:
            raise error(f"{labels[name]} has shape {shape}; a {ndim}-d array is expected")
        return shape

    c1 = shape_of("conv1_weight", 4)[0]
    c2 = shape_of("conv2_weight", 4)[0]
    e = shape_of("conv3_weight", 4)[0]
    expected = {
        "conv1_weight": (c1, 1, 2, 2),
        "conv1_bias": (c1,),
        "norm1_weight": (c1,),
        "norm1_bias": (c1,),
        "conv2_weight": (c2, c1, 2, 2),
        "conv2_bias": (c2,),
        "norm2_weight": (c2,),
        "norm2_bias": (c2,),
        "conv3_weight": (e, c2, 1, 1),
        "conv3_bias": (e,),
        "no_mask_embed": (1, e),
    }
    for name, shape in expected.items():
        if converted[name].shape != shape:
            raise error(
                f"{labels[name]} has shape {converted[name].shape}, expected {shape} "
                "(Conv 1->C1 k2, LayerNorm2d, Conv C1->C2 k2, LayerNorm2d, Conv C2->E k1); "
                "the weights do not come from one SAM-style mask_downscaling"
            )
    return converted


def _norm_gelu(
    x: NDArray[np.float32], weight: NDArray[np.float32], bias: NDArray[np.float32]
) -> NDArray[np.float32]:
    """LayerNorm2d then GELU on ``(C, N)`` data: normalise each column (biased variance)."""
    centred: NDArray[np.float32] = x - x.mean(axis=0)
    variance = np.mean(centred * centred, axis=0)
    variance += _LAYER_NORM_EPS
    centred /= np.sqrt(variance)
    centred *= weight[:, None]
    centred += bias[:, None]
    return gelu(centred)


def _product(
    left: NDArray[np.float32], right: NDArray[np.float32], out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """``left @ right`` without BLAS (see :func:`_downscale`)."""
    result: NDArray[np.float32] = np.einsum("ck,kn->cn", left, right, out=out, optimize=False)
    return result


def _downscale(
    mask: NDArray[np.float32],
    weights: MaskPromptWeights,
    bias: NDArray[np.float32],
    add: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """The conv stack on validated logits; ``bias`` replaces the last conv's bias.

    Activations are kept as ``(channels, pixels)`` matrices: the kernel-2
    stride-2 convs become 2x2 patch matrices times the reshaped kernels, and
    the norms reduce over the short leading axis. One mask at a time keeps
    the intermediates in cache (faster than all at once).

    The products go through ``einsum`` rather than ``@``: with inner sizes of
    4 to 16 BLAS gains little, and its worker threads keep spinning after it
    returns, which on a small machine starves the onnxruntime run that always
    follows (docs/performance.md, "Design choices").
    ``add``, shape ``(1 or B, E, h, w)``, is added to the result in passing.
    """
    batch, _, height, width = mask.shape
    c1 = weights.conv1_weight.shape[0]
    c2 = weights.conv2_weight.shape[0]
    h1, w1, h2, w2 = height // 2, width // 2, height // 4, width // 4
    kernel1 = weights.conv1_weight.reshape(c1, 4)
    kernel2 = weights.conv2_weight.reshape(c2, 4 * c1)
    kernel3 = weights.conv3_weight.reshape(-1, c2)
    out = np.empty((batch, kernel3.shape[0], h2 * w2), dtype=np.float32)
    for index in range(batch):
        # patches (ky, kx) x (i, j) against the kernel (C1, 1, ky, kx)
        patches = mask[index].reshape(h1, 2, w1, 2).transpose(1, 3, 0, 2).reshape(4, -1)
        x = _product(kernel1, patches)
        x += weights.conv1_bias[:, None]
        x = _norm_gelu(x, weights.norm1_weight, weights.norm1_bias)
        # patches (c, ky, kx) x (i, j) against the kernel (C2, C1, ky, kx)
        patches = x.reshape(c1, h2, 2, w2, 2).transpose(0, 2, 4, 1, 3).reshape(4 * c1, -1)
        x = _product(kernel2, patches)
        x += weights.conv2_bias[:, None]
        x = _norm_gelu(x, weights.norm2_weight, weights.norm2_bias)
        # the 1x1 conv, written straight into channels-first (E, h*w)
        _product(kernel3, x, out=out[index])
        out[index] += bias[:, None]
        if add is not None:
            out[index] += add[index if add.shape[0] > 1 else 0].reshape(-1, h2 * w2)
    return out.reshape(batch, -1, h2, w2)


def downscale_mask(
    mask_logits: NDArray[np.float32], weights: MaskPromptWeights
) -> NDArray[np.float32]:
    """SAM's ``mask_downscaling``: mask logits to a dense prompt embedding.

    Parameters
    ----------
    mask_logits : ndarray of float32, shape (B, 1, 256, 256)
        Low-resolution mask logits, e.g. ``low_res_logits[i:i+1]`` of an earlier
        prediction with a channel axis (any size 4x the embedding works),
        finite; not checked again (the public calls have checked them).
    weights : MaskPromptWeights
        The model's weights, e.g. ``MaskPromptWeights.from_checkpoint("edge_sam.pth")``.

    Returns
    -------
    ndarray of float32, shape (B, 256, 64, 64)
        The dense prompt embedding (``E`` channels, a quarter of the mask's size).
    """
    return _downscale(mask_logits, weights, weights.conv3_bias)


def condition_embedding(
    image_embeddings: NDArray[np.float32],
    mask_logits: NDArray[np.float32],
    weights: MaskPromptWeights,
) -> NDArray[np.float32]:
    """The embedding to feed the official decoder so that it honours a mask prompt.

    Returns ``image_embeddings + downscale_mask(mask_logits) - no_mask_embed``:
    the official decoder adds ``no_mask_embed`` back, which leaves exactly
    what SAM's decoder sees with a mask input.

    Parameters
    ----------
    image_embeddings : ndarray of float32, shape (1, 256, 64, 64)
        The encoder's output for the image (or ``(B, 256, 64, 64)``, one per mask).
    mask_logits : ndarray of float32, shape (B, 1, 256, 256)
        One low-resolution logit mask per prompt, finite. Neither array is
        checked again here: the public calls have checked them.
    weights : MaskPromptWeights
        The same model's mask-prompt weights.

    Returns
    -------
    ndarray of float32, shape (B, 256, 64, 64)
        One conditioned embedding per mask; pass entry ``i`` (kept 4-d,
        ``[i:i+1]``) with prompt ``i``'s points to the decoder.
    """
    # Folding -no_mask_embed into the last conv's bias saves a pass over the result.
    shifted_bias = weights.conv3_bias - weights.no_mask_embed[0]
    return _downscale(mask_logits, weights, shifted_bias, add=image_embeddings)
