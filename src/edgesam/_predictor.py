"""SamPredictor: segment_anything's predictor API over an EdgeSam model.

``set_image`` runs the encoder once; ``predict`` decodes prompts against the
stored embedding as often as you like. The predictor holds per-image state
only, so it is cheap: make one per image or per thread, all sharing one
:class:`~edgesam.EdgeSam`. A predictor shared by threads anyway is safe but
serial: each public call holds the predictor's lock, so a second thread waits
for the first call to finish instead of seeing half-written state.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from typing import Concatenate, Literal, ParamSpec, TypeVar

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edgesam._embedding import ImageEmbedding
from edgesam._errors import (
    ImageNotSetError,
    InferenceError,
    InvalidEmbeddingError,
    InvalidInputError,
)
from edgesam._heap import release_free_heap
from edgesam._image import load_rgb
from edgesam._model import EdgeSam
from edgesam._postprocess import stability_scores, upsample_logits, upsample_masks
from edgesam._prompts import PromptBatch, encode_prompts, validate_prompts
from edgesam._providers import ProviderSpec
from edgesam._transforms import Scratch, preprocess_image

__all__ = ["LowResPrediction", "Prediction", "SamPredictor"]

PathLike = str | os.PathLike[str]
Prediction = tuple[
    NDArray[np.bool_] | NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]
]
LowResPrediction = tuple[NDArray[np.float32], NDArray[np.float32]]

_OUTPUTS = {1: (0,), 3: (1, 2, 3), 4: (0, 1, 2, 3)}

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_call_at_a_time(
    method: Callable[Concatenate[SamPredictor, _P], _R],
) -> Callable[Concatenate[SamPredictor, _P], _R]:
    """Run ``method`` holding the predictor's lock: calls from other threads wait."""

    @functools.wraps(method)
    def locked(self: SamPredictor, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


def _flag(value: object, name: str) -> bool:
    """``value`` as a bool, refusing look-alikes such as the string ``"False"`` (truthy)."""
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, (int, np.integer)) and value in (0, 1)
    ):
        return bool(value)
    raise InvalidInputError(f"{name} must be True or False: got {value!r}")


def _output_indices(multimask_output: bool, num_multimask_outputs: int | None) -> tuple[int, ...]:
    if num_multimask_outputs is None:
        return _OUTPUTS[3] if multimask_output else _OUTPUTS[1]
    if (
        isinstance(num_multimask_outputs, bool)
        or not isinstance(num_multimask_outputs, int | np.integer)
        or int(num_multimask_outputs) not in _OUTPUTS
    ):
        raise InvalidInputError(
            f"num_multimask_outputs must be 1, 3 or 4: got {num_multimask_outputs!r}. "
            "1 = the single-mask output, 3 = the three multimask outputs, 4 = all of them"
        )
    return _OUTPUTS[int(num_multimask_outputs)]


def _check_finite(scores: NDArray[np.float32], low_res: NDArray[np.float32], model: str) -> None:
    """Refuse decoder outputs with NaN or infinity: a damaged or foreign model, not masks."""
    for name, array in (("scores", scores), ("mask logits", low_res)):
        if array.size and not (np.isfinite(array.max()) and np.isfinite(array.min())):
            raise InferenceError(
                f"the decoder of model {model!r} returned NaN or infinite {name}, so its "
                "masks would be meaningless; the model file is damaged or not an EdgeSAM "
                "decoder: download it again or re-export it"
            )


class SamPredictor:
    """Predict masks for one image from points, boxes and previous masks.

    Mirrors ``segment_anything.SamPredictor``: call :meth:`set_image` once,
    then :meth:`predict` for each prompt.

    Parameters
    ----------
    model : EdgeSam
        The loaded model; one model can serve many predictors and threads.

    Attributes
    ----------
    trim_memory : bool
        After a :meth:`set_image` whose image differs in size from the
        previous one's, hand the heap memory its temporaries left free back to
        the OS (glibc's ``malloc_trim``; a no-op elsewhere), so that a long
        session over images of many sizes stays flat. Images of the previous
        one's size reuse what its call freed, so nothing is trimmed for them.
        Costs about 2 ms per trimmed image (the trim, and the next call paging
        its temporaries in again); set to ``False`` when memory does not
        matter. Default ``True``.

    Examples
    --------
    >>> predictor = SamPredictor.from_pretrained("edge_sam_3x")  # doctest: +SKIP
    >>> predictor.set_image(image)  # doctest: +SKIP
    >>> masks, scores, logits = predictor.predict(
    ...     point_coords=[[500, 375]], point_labels=[1])  # doctest: +SKIP
    """

    def __init__(self, model: EdgeSam) -> None:
        if not isinstance(model, EdgeSam):
            raise InvalidInputError(
                f"model must be an edgesam.EdgeSam: got {type(model).__name__}. Use "
                "SamPredictor.from_pretrained(...) or SamPredictor.from_files(...)"
            )
        self.model = model
        self.trim_memory = True
        # Held by every public call; reentrant because set_image calls reset_image.
        self._lock = threading.RLock()
        self._buffer: NDArray[np.float32] | None = None
        self._scratch = Scratch()
        # The input_size last written into _buffer (zeros elsewhere); None: unknown.
        self._written: tuple[int, int] | None = None
        self._embedding: ImageEmbedding | None = None
        # (H, W) of the last image set_image finished: a same-sized one reuses its blocks.
        self._last_size: tuple[int, int] | None = None
        # The current embedding in device memory (CUDA), for the decoder; None on CPU.
        self._resident: ort.OrtValue | None = None

    @classmethod
    def from_pretrained(
        cls,
        model: str = "edge_sam_3x",
        *,
        revision: str | None = None,
        cache_dir: PathLike | None = None,
        token: bool | str | None = None,
        local_files_only: bool = False,
        force_download: bool = False,
        endpoint: str | None = None,
        providers: Sequence[ProviderSpec] | None = None,
        session_options: ort.SessionOptions | None = None,
    ) -> SamPredictor:
        """A predictor over an official model, downloaded once and verified.

        See :meth:`EdgeSam.from_pretrained` for the parameters.
        """
        return cls(
            EdgeSam.from_pretrained(
                model,
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                local_files_only=local_files_only,
                force_download=force_download,
                endpoint=endpoint,
                providers=providers,
                session_options=session_options,
            )
        )

    @classmethod
    def from_files(
        cls,
        encoder: PathLike,
        decoder: PathLike,
        *,
        checkpoint: PathLike | None = None,
        name: str | None = None,
        providers: Sequence[ProviderSpec] | None = None,
        session_options: ort.SessionOptions | None = None,
    ) -> SamPredictor:
        """A predictor over local ``.onnx`` files; see :meth:`EdgeSam.from_files`."""
        return cls(
            EdgeSam.from_files(
                encoder,
                decoder,
                checkpoint=checkpoint,
                name=name,
                providers=providers,
                session_options=session_options,
            )
        )

    # -- image state --------------------------------------------------------------------

    @property
    def is_image_set(self) -> bool:
        """Whether an image (or embedding) is set and :meth:`predict` can run."""
        return self._embedding is not None

    @property
    def original_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of the current image, or None."""
        return None if self._embedding is None else self._embedding.original_size

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(new_h, new_w)``: the current image's size inside the 1024 frame, or None."""
        return None if self._embedding is None else self._embedding.input_size

    @property
    def providers(self) -> dict[str, list[str]]:
        """Execution providers that really run, per session (``encoder``, ``decoder``)."""
        return self.model.providers

    @_one_call_at_a_time
    def set_image(self, image: object, image_format: Literal["RGB", "BGR"] = "RGB") -> None:
        """Compute the embedding of ``image`` for the following :meth:`predict` calls.

        Parameters
        ----------
        image : ndarray of uint8, shape (H, W, 3); PIL.Image.Image; str or os.PathLike
            The image. Grayscale (HxW, HxWx1) is expanded to RGB and an alpha
            channel (HxWx4) is dropped; PIL images of any mode are converted.
        image_format : {"RGB", "BGR"}
            Channel order of an array ``image`` (OpenCV users: ``"BGR"``).
        """
        rgb = load_rgb(image, image_format)
        self.reset_image()
        if self._buffer is None:
            self._buffer = np.zeros((1, 3, 1024, 1024), dtype=np.float32)
            self._written = (0, 0)
        written, self._written = self._written, None  # unknown if preprocessing fails
        image_input, input_size = preprocess_image(
            rgb, out=self._buffer, scratch=self._scratch, written=written
        )
        self._written = input_size
        original_size = (int(rgb.shape[0]), int(rgb.shape[1]))
        embedding, resident = self.model.encode_resident(image_input)
        self._embedding = ImageEmbedding(
            array=embedding,
            original_size=original_size,
            input_size=input_size,
            model_name=self.model.name,
            fingerprint=self.model.fingerprint,
        )
        self._resident = resident
        # After a same-sized image the heap holds free blocks of exactly the sizes
        # this call needed, and reuses them; handing them back would only make the
        # next call page them in again.
        if self.trim_memory and original_size != self._last_size:
            release_free_heap()
        self._last_size = original_size

    @_one_call_at_a_time
    def get_image_embedding(self) -> ImageEmbedding:
        """The current image's embedding, with its sizes and model fingerprint.

        ``np.asarray(...)`` of the result is the ``(1, 256, 64, 64)`` array;
        ``.save(path)`` writes it to ``.npz`` for :meth:`set_image_embedding`.

        Raises
        ------
        ImageNotSetError
            If no image is set.
        """
        return self._require_embedding("get_image_embedding")

    @_one_call_at_a_time
    def set_image_embedding(self, embedding: ImageEmbedding) -> None:
        """Restore an embedding made earlier (possibly elsewhere) without the encoder.

        Raises
        ------
        InvalidEmbeddingError
            If the embedding was made by a different model.
        """
        if not isinstance(embedding, ImageEmbedding):
            raise InvalidEmbeddingError(
                "embedding must be an edgesam.ImageEmbedding (from get_image_embedding() or "
                f"ImageEmbedding.load(path)): got {type(embedding).__name__}"
            )
        if embedding.fingerprint != self.model.fingerprint:
            raise InvalidEmbeddingError(
                f"this embedding was made by model {embedding.model_name!r} (encoder sha256 "
                f"{embedding.fingerprint[:12]}…), not by this predictor's {self.model.name!r} "
                f"({self.model.fingerprint[:12]}…); compute it again with set_image"
            )
        self._embedding = embedding
        self._resident = self.model.to_device(embedding.array)

    @_one_call_at_a_time
    def reset_image(self) -> None:
        """Forget the current image, its embedding and its sizes."""
        self._embedding = None
        self._resident = None

    def _require_embedding(self, caller: str) -> ImageEmbedding:
        if self._embedding is None:
            raise ImageNotSetError(
                f"{caller} needs an image: call set_image(image) (or set_image_embedding) first"
            )
        return self._embedding

    # -- prediction ---------------------------------------------------------------------

    @_one_call_at_a_time
    def predict(
        self,
        point_coords: object = None,
        point_labels: object = None,
        box: object = None,
        mask_input: object = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        *,
        num_multimask_outputs: int | None = None,
        use_stability_score: bool = False,
    ) -> Prediction:
        """Predict masks for the current image from the given prompts.

        Parameters
        ----------
        point_coords : array-like of float, shape (N, 2), optional
            Points as (x, y) in original-image pixels. Lists and tuples work
            (``[x, y]`` or ``[[x, y], ...]``). Batched: shape (B, N, 2).
        point_labels : array-like of int, shape (N,), optional
            One label per point: 1 foreground, 0 background. Required with
            ``point_coords``. Batched: shape (B, N).
        box : array-like of float, shape (4,), optional
            A box as XYXY pixels (``(1, 4)`` is accepted as one box, as in
            segment_anything). Batched: shape (B, 4) with B > 1.
        mask_input : ndarray of float, shape (1, 256, 256), optional
            Low-res logits from a previous call, typically
            ``low_res_logits[best][None]``, to refine that mask. Batched:
            shape (B, 1, 256, 256).
        multimask_output : bool
            True returns the decoder's three multimask outputs, which resolve
            an ambiguous prompt (a single click) into whole/part/subpart
            candidates; False returns the single-mask output, usually better
            for unambiguous prompts (a box, several clicks).
        return_logits : bool
            Return the upsampled logits (float32) instead of boolean masks.
        num_multimask_outputs : {1, 3, 4}, optional
            EdgeSAM's form of the choice, overriding ``multimask_output``: 1 is
            the single-mask output, 3 the multimask outputs, 4 all of them
            (single first), as the authors' predictor and demo use.
        use_stability_score : bool
            Score masks by stability (the IoU of the mask thresholded at +1 and
            -1 logit) instead of the decoder's IoU prediction. EdgeSAM's IoU head
            was not distilled, so stability ranks its masks better; the default
            False keeps segment_anything's (and the authors' ``predict``) scores.

        Returns
        -------
        masks : ndarray of bool, shape (C, H, W)
            C masks at the original image size (float32 logits if ``return_logits``).
            In decoder order, not sorted: pick with ``scores.argmax()``.
        scores : ndarray of float32, shape (C,)
            Predicted IoU (or stability score) of each mask.
        low_res_logits : ndarray of float32, shape (C, 256, 256)
            Low-resolution logits, for ``mask_input`` of a following call.

        With batched prompts every output gains a leading axis B: masks
        (B, C, H, W), scores (B, C), low_res_logits (B, C, 256, 256).

        Raises
        ------
        ImageNotSetError
            If no image is set.
        InvalidPromptError
            For malformed prompts, with a message naming the argument.
        MaskInputUnavailableError
            If ``mask_input`` is given but the model cannot use it.
        """
        prompts = validate_prompts(point_coords, point_labels, box, mask_input)
        return self._predict(
            prompts, multimask_output, return_logits, num_multimask_outputs, use_stability_score
        )

    @_one_call_at_a_time
    def predict_batch(
        self,
        point_coords: object = None,
        point_labels: object = None,
        boxes: object = None,
        mask_input: object = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        *,
        num_multimask_outputs: int | None = None,
        use_stability_score: bool = False,
    ) -> Prediction:
        """Like :meth:`predict`, but outputs always keep the batch axis B.

        Parameters
        ----------
        point_coords : array-like of float, shape (B, N, 2), optional
        point_labels : array-like of int, shape (B, N), optional
        boxes : array-like of float, shape (B, 4), optional
            XYXY pixels, e.g. a detector's boxes.
        mask_input : ndarray of float, shape (B, 1, 256, 256), optional

        Returns
        -------
        masks : ndarray of bool, shape (B, C, H, W)
        scores : ndarray of float32, shape (B, C)
        low_res_logits : ndarray of float32, shape (B, C, 256, 256)

        A decoder exported with a batch axis (``edgesam export --variants full``)
        decodes all B prompt sets in one run; the official decoder runs once per set.
        """
        prompts = validate_prompts(point_coords, point_labels, boxes, mask_input, force_batch=True)
        return self._predict(
            prompts, multimask_output, return_logits, num_multimask_outputs, use_stability_score
        )

    @_one_call_at_a_time
    def predict_low_res(
        self,
        point_coords: object = None,
        point_labels: object = None,
        box: object = None,
        mask_input: object = None,
        multimask_output: bool = True,
        *,
        num_multimask_outputs: int | None = None,
        use_stability_score: bool = False,
    ) -> LowResPrediction:
        """Like :meth:`predict`, but only the scores and the 256x256 logits: no upsampling.

        For callers that draw or post-process masks themselves (a UI that shows
        the low-res mask while the user clicks, a ``mask_input`` loop), this
        skips the cost of making full-size masks. Arguments are as in
        :meth:`predict`; batched prompts (leading axis B) are accepted too.

        Returns
        -------
        scores : ndarray of float32, shape (C,)
            Predicted IoU (or stability score) of each mask.
        low_res_logits : ndarray of float32, shape (C, 256, 256)
            The masks as logits over the padded 1024x1024 frame, at a quarter
            of its resolution; ``> 0`` is the mask. Upsample with
            :meth:`upsample` to get what :meth:`predict` returns.

        With batched prompts both outputs gain a leading axis B.
        """
        prompts = validate_prompts(point_coords, point_labels, box, mask_input)
        scores, low_res = self._decode(
            self._require_embedding("predict_low_res"),
            prompts,
            multimask_output,
            num_multimask_outputs,
            use_stability_score,
        )
        if prompts.batched:
            return scores, low_res
        return scores[0], low_res[0]

    @_one_call_at_a_time
    def upsample(
        self, low_res_logits: object, return_logits: bool = False
    ) -> NDArray[np.bool_] | NDArray[np.float32]:
        """Upsample low-res logits to masks at the current image's original size.

        Parameters
        ----------
        low_res_logits : ndarray of float32, shape (..., 256, 256)
            Logits from :meth:`predict_low_res` or :meth:`predict` for this image.
        return_logits : bool
            Return float32 logits instead of boolean masks.

        Returns
        -------
        ndarray of bool (or float32), shape (..., H, W)
            Identical to the masks :meth:`predict` returns for the same logits.
        """
        embedding = self._require_embedding("upsample")
        try:
            array = np.asarray(low_res_logits)
        except (ValueError, TypeError) as err:  # ragged nested lists, odd objects
            raise InvalidInputError(
                "low_res_logits must be a numeric array of shape (..., 256, 256), as returned by "
                f"predict_low_res: got a {type(low_res_logits).__name__} numpy cannot read "
                f"as one ({err})"
            ) from err
        if array.ndim < 2 or array.shape[-2:] != (256, 256) or array.dtype.kind not in "fiu":
            raise InvalidInputError(
                "low_res_logits must be a numeric array of shape (..., 256, 256), as returned by "
                f"predict_low_res: got {array.dtype} {array.shape}"
            )
        if array.size and not (np.isfinite(array.max()) and np.isfinite(array.min())):
            raise InvalidInputError(
                "low_res_logits contains NaN or infinity; pass the logits predict_low_res "
                "returned, unchanged"
            )
        return self._upsample(
            np.asarray(array, dtype=np.float32), embedding, _flag(return_logits, "return_logits")
        )

    def _decode(
        self,
        embedding: ImageEmbedding,
        prompts: PromptBatch,
        multimask_output: bool,
        num_multimask_outputs: int | None,
        use_stability_score: bool,
    ) -> LowResPrediction:
        multimask_output = _flag(multimask_output, "multimask_output")
        use_stability_score = _flag(use_stability_score, "use_stability_score")
        outputs = list(_output_indices(multimask_output, num_multimask_outputs))
        decoder_prompts = encode_prompts(prompts, embedding.original_size, embedding.input_size)
        scores, low_res = self.model.decode(
            embedding.array,
            decoder_prompts.point_coords,
            decoder_prompts.point_labels,
            prompts.mask_input,
            resident=self._resident,
        )
        low_res = np.ascontiguousarray(low_res[:, outputs])
        scores = stability_scores(low_res) if use_stability_score else scores[:, outputs]
        _check_finite(scores, low_res, self.model.name)
        return scores, low_res

    @staticmethod
    def _upsample(
        low_res: NDArray[np.float32], embedding: ImageEmbedding, return_logits: bool
    ) -> NDArray[np.bool_] | NDArray[np.float32]:
        if return_logits:
            return upsample_logits(low_res, embedding.original_size, embedding.input_size)
        return upsample_masks(low_res, embedding.original_size, embedding.input_size)

    def _predict(
        self,
        prompts: PromptBatch,
        multimask_output: bool,
        return_logits: bool,
        num_multimask_outputs: int | None,
        use_stability_score: bool,
    ) -> Prediction:
        embedding = self._require_embedding("predict")
        return_logits = _flag(return_logits, "return_logits")
        scores, low_res = self._decode(
            embedding, prompts, multimask_output, num_multimask_outputs, use_stability_score
        )
        masks = self._upsample(low_res, embedding, return_logits)
        if prompts.batched:
            return masks, scores, low_res
        return masks[0], scores[0], low_res[0]

    def __repr__(self) -> str:
        image = f"image={self.original_size}" if self.is_image_set else "no image"
        return f"SamPredictor({self.model!r}, {image})"
