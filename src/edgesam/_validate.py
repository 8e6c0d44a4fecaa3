"""Coerce and check the arguments of public calls, once, at the public boundary.

Each helper takes the argument's Python name, puts it in its message (what was
expected, what was received) and in the error's ``argument`` attribute, so that
the CLI can name its own option instead. Private code below the boundary
trusts what these helpers returned and checks nothing again.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edgesam._files import short_repr
from edgesam.errors import InvalidInputError, InvalidPromptError

__all__ = [
    "binary_mask",
    "finite_float32",
    "finite_float64",
    "fixed_shape_float32",
    "flag",
    "integer",
    "number",
    "numeric_array",
    "size_pair",
]


def binary_mask(value: object, name: str, ndim: int = 2, hint: str = "") -> NDArray[np.bool_]:
    """``value`` as a bool array with ``ndim`` axes, (H, W) or (B, H, W); numbers mean ``!= 0``."""
    layout = "(H, W)" if ndim == 2 else "(B, H, W)"
    expected = f"{name} must be a {ndim}-D boolean (or 0/1) array of shape {layout}"
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:  # e.g. a ragged list
        raise InvalidInputError(f"{expected} ({err}){hint}", argument=name) from err
    if array.ndim != ndim or array.dtype.kind not in "biuf":
        raise InvalidInputError(f"{expected}: got {array.dtype} {array.shape}{hint}", argument=name)
    return array if array.dtype == np.bool_ else array != 0


def flag(value: object, name: str) -> bool:
    """``value`` as a bool, refusing look-alikes such as the string ``"False"`` (truthy)."""
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, (int, np.integer)) and value in (0, 1)
    ):
        return bool(value)
    raise InvalidInputError(f"{name} must be True or False: got {value!r}", argument=name)


def integer(
    value: object, name: str, minimum: int = 1, maximum: int | None = None, hint: str = ""
) -> int:
    """``value`` as an int in ``[minimum, maximum]``; bools and non-integral numbers are refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or int(value) < minimum
        or (maximum is not None and int(value) > maximum)
    ):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InvalidInputError(
            f"{name} must be an integer {allowed}: got {short_repr(value)}{hint}", argument=name
        )
    return int(value)


def size_pair(
    value: object, name: str, error: type[InvalidInputError] = InvalidInputError, hint: str = ""
) -> tuple[int, int]:
    """``value`` as ``(height, width)``: two numbers ``int()`` takes, both >= 1."""
    try:
        height, width = (int(side) for side in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError, OverflowError) as err:
        raise error(
            f"{name} must be (height, width){hint}: got {short_repr(value)}", argument=name
        ) from err
    if height < 1 or width < 1:
        raise error(
            f"{name} must be positive (height, width): got {(height, width)}", argument=name
        )
    return height, width


def number(
    value: object, name: str, bounds: tuple[float, float] | None = None, hint: str = ""
) -> float:
    """``value`` as a finite float, within the closed ``bounds`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidInputError(
            f"{name} must be a finite number: got {short_repr(value)}", argument=name
        )
    result = float(value)
    if bounds is not None and not bounds[0] <= result <= bounds[1]:
        low, high = bounds
        allowed = f"a number >= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise InvalidInputError(f"{name} must be {allowed}: got {value!r}{hint}", argument=name)
    return result


def numeric_array(
    value: object, name: str, error: type[InvalidInputError] = InvalidPromptError
) -> NDArray[Any]:
    """``value`` as an array of integers or floats (not bools, strings or ragged lists)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:  # e.g. a ragged list
        raise error(f"{name} must be a numeric array: {err}", argument=name) from err
    if array.dtype.kind not in "fiu":
        raise error(
            f"{name} must hold integers or floats: got dtype {array.dtype}"
            + (" (ragged nested lists?)" if array.dtype == object else ""),
            argument=name,
        )
    return array


def _require_finite(as_float32: NDArray[np.float32], name: str) -> None:
    if not np.all(np.isfinite(as_float32)):
        raise InvalidPromptError(
            f"{name} must be finite float32 values: it contains NaN, infinity or a value "
            "beyond float32's range",
            argument=name,
        )


def finite_float32(value: object, name: str) -> NDArray[np.float32]:
    """``value`` as a float32 array of finite values (also after the cast)."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = numeric_array(value, name).astype(np.float32)
    _require_finite(result, name)
    return result


def finite_float64(value: object, name: str) -> NDArray[np.float64]:
    """``value`` in float64, exactly as given, checked to fit float32 (where it ends up)."""
    result = numeric_array(value, name).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        _require_finite(result.astype(np.float32), name)
    return result


def fixed_shape_float32(
    value: object,
    name: str,
    layout: str,
    shape: tuple[int, ...],
    error: type[InvalidInputError],
    hint: str = "",
) -> NDArray[np.float32]:
    """``value`` as a float32 array of exactly ``shape`` (integers are cast).

    Not scanned for NaN: the arrays this serves are image-sized.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:  # e.g. a ragged list
        raise error(
            f"{name} must be {layout}: got {type(value).__name__} ({err})", argument=name
        ) from err
    if array.dtype.kind not in "fiu":
        raise error(f"{name} must be {layout}: got an array of {array.dtype}", argument=name)
    if array.shape != shape:
        raise error(f"{name} must be {layout}: got shape {array.shape}. {hint}", argument=name)
    return np.asarray(array, dtype=np.float32)
