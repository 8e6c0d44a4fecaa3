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

from edgesam._compat import ResizeLongestSide, to_numpy
from edgesam._device_pipeline import DevicePipelineChoice
from edgesam._embedding import EMBEDDING_SHAPE, ImageEmbedding
from edgesam._image import load_rgb
from edgesam._memory import release_free_heap
from edgesam._model import EdgeSam
from edgesam._postprocess import stability_scores, upsample_logits, upsample_masks
from edgesam._prompts import PromptBatch, encode_prompts, validate_prompts
from edgesam._providers import ProviderSpec
from edgesam._transforms import (
    IMAGE_SIZE,
    PIXEL_MEAN,
    PIXEL_STD,
    input_size_for,
    preprocess_image,
)
from edgesam._validate import flag, size_pair
from edgesam.errors import (
    ImageNotSetError,
    InferenceError,
    InvalidEmbeddingError,
    InvalidImageError,
    InvalidInputError,
)

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
        ``sam_model=`` is accepted as a keyword alias, as segment_anything
        and the EdgeSAM authors name it.

    Attributes
    ----------
    model : EdgeSam
        The model; ``model.mask_threshold`` (0.0) and ``model.image_format``
        (``"RGB"``) are there for code written for segment_anything.
    transform : ResizeLongestSide
        segment_anything's coordinate transform into the 1024 frame, on numpy:
        ``apply_coords``, ``apply_boxes``, ``apply_image`` and the
        ``apply_coords_torch`` / ``apply_boxes_torch`` names (which accept
        numpy arrays, or torch tensors if torch is installed, and return numpy).
    trim_memory : bool
        After a :meth:`set_image` whose image differs in size from the
        previous one's, hand the heap memory its temporaries left free back to
        the OS (glibc's ``malloc_trim``; a no-op elsewhere), so that a long
        session over images of many sizes stays flat. Images of the previous
        one's size reuse what its call freed, so nothing is trimmed for them.
        Costs a little time per trimmed image (the trim, and the next call
        paging its temporaries in again); set to ``False`` when memory does
        not matter. Default ``True``.

    Examples
    --------
    >>> predictor = SamPredictor.from_pretrained("edge_sam_3x")  # doctest: +SKIP
    >>> predictor.set_image(image)  # doctest: +SKIP
    >>> masks, scores, logits = predictor.predict(
    ...     point_coords=[[500, 375]], point_labels=[1])  # doctest: +SKIP
    """

    def __init__(self, model: EdgeSam | None = None, *, sam_model: EdgeSam | None = None) -> None:
        if sam_model is not None:
            if model is not None:
                raise InvalidInputError(
                    "got both model and sam_model (its alias): pass the EdgeSam once"
                )
            model = sam_model
        if not isinstance(model, EdgeSam):
            raise InvalidInputError(
                f"model must be an edgesam.EdgeSam: got {type(model).__name__}. Use "
                "SamPredictor.from_pretrained(...) or SamPredictor.from_files(...)"
            )
        self.model = model
        self.transform = ResizeLongestSide(IMAGE_SIZE)
        self.trim_memory = True
        # Held by every public call; reentrant because set_image calls reset_image.
        self._lock = threading.RLock()
        # The encoder's input, reused from image to image.
        self._buffer: NDArray[np.float32] | None = None
        self._embedding: ImageEmbedding | None = None
        # (H, W) of the last image set_image finished: a same-sized one reuses its blocks.
        self._last_size: tuple[int, int] | None = None

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
        device_pipeline: DevicePipelineChoice = "auto",
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
                device_pipeline=device_pipeline,
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
        device_pipeline: DevicePipelineChoice = "auto",
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
                device_pipeline=device_pipeline,
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
    def features(self) -> NDArray[np.float32] | None:
        """The current image's embedding array, shape (1, 256, 64, 64) (read-only), or None."""
        return None if self._embedding is None else self._embedding.array

    @property
    def device(self) -> str:
        """``"cpu"``: where inputs and outputs live (numpy), whichever provider runs the model.

        segment_anything code that creates tensors with ``device=predictor.device``
        keeps working; :attr:`providers` says what runs the model.
        """
        return "cpu"

    @property
    def providers(self) -> dict[str, list[str]]:
        """Execution providers that really run, per session (``encoder``, ``decoder``)."""
        return self.model.providers

    @property
    def pipeline_providers(self) -> dict[str, list[str]]:
        """Where pre- and post-processing run (``preprocess``, ``postprocess``); see EdgeSam."""
        return self.model.pipeline_providers

    @_one_call_at_a_time
    def set_image(
        self, image: object, image_format: Literal["RGB", "BGR"] = "RGB"
    ) -> ImageEmbedding:
        """Compute the embedding of ``image`` for the following :meth:`predict` calls.

        Parameters
        ----------
        image : ndarray of uint8, shape (H, W, 3); PIL.Image.Image; str or os.PathLike
            The image. Grayscale (HxW, HxWx1) is expanded to RGB and an alpha
            channel (HxWx4) is dropped; PIL images of any mode are converted.
        image_format : {"RGB", "BGR"}
            Channel order of an array ``image`` (OpenCV users: ``"BGR"``).

        Returns
        -------
        ImageEmbedding
            The new embedding, as :meth:`get_image_embedding` returns it (the
            EdgeSAM authors' ``set_image`` returns the features too, for their
            ``predict(features=...)``; segment_anything's returns None).
        """
        rgb = load_rgb(image, image_format)
        self.reset_image()
        original_size = (int(rgb.shape[0]), int(rgb.shape[1]))
        # The device pipeline (see EdgeSam's device_pipeline) preprocesses in a graph.
        on_device = self.model._encode_rgb(rgb)
        if on_device is not None:
            embedding, input_size = on_device
        else:
            image_input, input_size = preprocess_image(rgb, out=self._buffer)
            self._buffer = image_input
            embedding = self.model._encode(image_input)
        result = self._set_embedding(embedding, original_size, input_size)
        # After a same-sized image the heap holds free blocks of exactly the sizes
        # this call needed, and reuses them; handing them back would only make the
        # next call page them in again.
        if self.trim_memory and original_size != self._last_size:
            release_free_heap()
        self._last_size = original_size
        return result

    def _set_embedding(
        self,
        embedding: NDArray[np.float32],
        original_size: tuple[int, int],
        input_size: tuple[int, int],
    ) -> ImageEmbedding:
        self._embedding = ImageEmbedding(
            array=embedding,
            original_size=original_size,
            input_size=input_size,
            model_name=self.model.name,
            fingerprint=self.model.fingerprint,
        )
        return self._embedding

    @_one_call_at_a_time
    def set_torch_image(
        self, transformed_image: object, original_image_size: object
    ) -> ImageEmbedding:
        """segment_anything's ``set_torch_image``: an image already resized, not yet normalised.

        Parameters
        ----------
        transformed_image : ndarray or torch.Tensor, shape (1, 3, new_h, new_w)
            RGB pixel values (0-255, any real dtype), resized so that the long
            side is 1024, e.g. ``predictor.transform.apply_image(image)``
            transposed to CHW with a batch axis. Tensors are copied to numpy.
        original_image_size : tuple of int
            ``(H, W)`` of the image before resizing.

        Returns
        -------
        ImageEmbedding
            As :meth:`set_image`. For a uint8 image made by ``transform.apply_image``
            the embedding is the one :meth:`set_image` computes for the original.

        Raises
        ------
        InvalidImageError
            If the shape does not match ``original_image_size`` resized, or a
            value is not finite.
        """
        height, width = size_pair(
            original_image_size, "original_image_size", InvalidImageError, ", e.g. image.shape[:2]"
        )
        array = np.asarray(to_numpy(transformed_image))
        input_size = input_size_for((height, width))
        if array.dtype == np.bool_ or array.dtype.kind not in "fiu":
            raise InvalidImageError(
                f"transformed_image must hold pixel values 0-255: got dtype {array.dtype}"
            )
        if array.shape != (1, 3, *input_size):
            raise InvalidImageError(
                f"transformed_image must have shape (1, 3, {input_size[0]}, {input_size[1]}) "
                f"for an original image of size {(height, width)} (its long side resized to "
                f"{IMAGE_SIZE}, e.g. predictor.transform.apply_image(image) as CHW with a batch "
                f"axis): got shape {array.shape}"
            )
        if array.dtype.kind == "f" and not (np.isfinite(array.max()) and np.isfinite(array.min())):
            raise InvalidImageError("transformed_image contains NaN or infinity")
        self.reset_image()
        image_input = np.zeros((1, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        planes = image_input[0, :, : input_size[0], : input_size[1]]
        np.subtract(
            array[0], PIXEL_MEAN[:, None, None], out=planes, dtype=np.float32, casting="unsafe"
        )
        np.divide(planes, PIXEL_STD[:, None, None], out=planes)
        return self._set_embedding(self.model._encode(image_input), (height, width), input_size)

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

    @_one_call_at_a_time
    def reset_image(self) -> None:
        """Forget the current image, its embedding and its sizes."""
        self._embedding = None

    def _require_embedding(self, caller: str) -> ImageEmbedding:
        if self._embedding is None:
            raise ImageNotSetError(
                f"{caller} needs an image: call set_image(image) (or set_image_embedding) first"
            )
        return self._embedding

    def _embedding_for(self, features: object, caller: str) -> ImageEmbedding:
        """The embedding to decode: the current one, or the authors' ``features=``."""
        if features is None or features is self._embedding:
            return self._require_embedding(caller)
        if isinstance(features, ImageEmbedding):
            if features.fingerprint != self.model.fingerprint:
                raise InvalidEmbeddingError(
                    f"features were made by model {features.model_name!r}, not by this "
                    f"predictor's {self.model.name!r}; compute them again with set_image"
                )
            return features
        current = self._embedding
        if current is None:
            raise ImageNotSetError(
                f"{caller}(features=<array>) needs the image's sizes: pass the ImageEmbedding "
                "that set_image returned (or get_image_embedding()), or call set_image first"
            )
        array = np.asarray(to_numpy(features))
        if array.shape != EMBEDDING_SHAPE or array.dtype.kind != "f":
            raise InvalidEmbeddingError(
                f"features must be the ImageEmbedding set_image returned, or a float array of "
                f"shape {EMBEDDING_SHAPE}: got {array.dtype} {array.shape}"
            )
        return ImageEmbedding(
            array=np.asarray(array, dtype=np.float32),
            original_size=current.original_size,
            input_size=current.input_size,
            model_name=current.model_name,
            fingerprint=current.fingerprint,
        )

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
        features: object = None,
    ) -> Prediction:
        """Predict masks for the current image from the given prompts.

        Parameters
        ----------
        point_coords : array-like of float, shape (N, 2), optional
            Points as (x, y) in original-image pixels. Lists and tuples work
            (``[x, y]`` or ``[[x, y], ...]``). Batched: shape (B, N, 2).
        point_labels : array-like of int, shape (N,), optional
            One label per point: 1 foreground, 0 background. Required with
            ``point_coords``. Batched: shape (B, N). Two points labelled 2 and
            3 are a box's top-left and bottom-right corners (the ONNX
            convention), the same as passing them as ``box``.
        box : array-like of float, shape (4,), optional
            A box as XYXY pixels (``(1, 4)`` is accepted as one box, as in
            segment_anything, and so are its corners ``[[x0, y0], [x1, y1]]``).
            Batched: shape (B, 4) with B > 1.
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
        features : ImageEmbedding or ndarray of float32, shape (1, 256, 64, 64), optional
            Decode against this embedding instead of the current one (the
            EdgeSAM authors' keyword): what :meth:`set_image` returned, or an
            embedding array of the current image.

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
            prompts,
            multimask_output,
            return_logits,
            num_multimask_outputs,
            use_stability_score,
            embedding=self._embedding_for(features, "predict"),
        )

    @_one_call_at_a_time
    def predict_torch(
        self,
        point_coords: object,
        point_labels: object,
        boxes: object = None,
        mask_input: object = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        *,
        num_multimask_outputs: int | None = None,
        use_stability_score: bool = False,
        features: object = None,
    ) -> Prediction:
        """segment_anything's ``predict_torch``: batched prompts already in the 1024 frame.

        Prompts are transformed by the caller, typically with
        ``predictor.transform.apply_coords_torch`` / ``apply_boxes_torch``.
        Inputs may be numpy arrays or torch tensors; outputs are numpy arrays
        shaped as segment_anything's tensors (drop its ``.cpu().numpy()``).

        Parameters
        ----------
        point_coords : array-like of float, shape (B, N, 2), or None
            (x, y) in the 1024 frame.
        point_labels : array-like of int, shape (B, N), or None
        boxes : array-like of float, shape (B, 4), optional
            XYXY in the 1024 frame.
        mask_input : array-like of float, shape (B, 1, 256, 256), optional
        multimask_output, return_logits, num_multimask_outputs, use_stability_score, features
            As in :meth:`predict`.

        Returns
        -------
        masks : ndarray of bool, shape (B, C, H, W)
            At the original image size (float32 logits if ``return_logits``).
        iou_predictions : ndarray of float32, shape (B, C)
        low_res_masks : ndarray of float32, shape (B, C, 256, 256)
        """
        prompts = validate_prompts(point_coords, point_labels, boxes, mask_input, force_batch=True)
        return self._predict(
            prompts,
            multimask_output,
            return_logits,
            num_multimask_outputs,
            use_stability_score,
            embedding=self._embedding_for(features, "predict_torch"),
            in_frame=True,
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
        prompts = validate_prompts(
            point_coords, point_labels, boxes, mask_input, force_batch=True, box_name="boxes"
        )
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
            np.asarray(array, dtype=np.float32), embedding, flag(return_logits, "return_logits")
        )

    def _decode(
        self,
        embedding: ImageEmbedding,
        prompts: PromptBatch,
        multimask_output: bool,
        num_multimask_outputs: int | None,
        use_stability_score: bool,
        in_frame: bool = False,
    ) -> LowResPrediction:
        multimask_output = flag(multimask_output, "multimask_output")
        use_stability_score = flag(use_stability_score, "use_stability_score")
        outputs = list(_output_indices(multimask_output, num_multimask_outputs))
        # Prompts already in the 1024 frame are scaled by exactly 1.
        source_size = embedding.input_size if in_frame else embedding.original_size
        decoder_prompts = encode_prompts(prompts, source_size, embedding.input_size)
        scores, low_res = self.model._decode(
            embedding.array,
            decoder_prompts.point_coords,
            decoder_prompts.point_labels,
            prompts.mask_input,
        )
        low_res = np.ascontiguousarray(low_res[:, outputs])
        scores = stability_scores(low_res) if use_stability_score else scores[:, outputs]
        _check_finite(scores, low_res, self.model.name)
        return scores, low_res

    def _upsample(
        self, low_res: NDArray[np.float32], embedding: ImageEmbedding, return_logits: bool
    ) -> NDArray[np.bool_] | NDArray[np.float32]:
        on_device = self.model._upsample_on_device(
            low_res, embedding.original_size, embedding.input_size, return_logits
        )
        if on_device is not None:
            return on_device
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
        *,
        embedding: ImageEmbedding | None = None,
        in_frame: bool = False,
    ) -> Prediction:
        if embedding is None:
            embedding = self._require_embedding("predict")
        return_logits = flag(return_logits, "return_logits")
        scores, low_res = self._decode(
            embedding,
            prompts,
            multimask_output,
            num_multimask_outputs,
            use_stability_score,
            in_frame,
        )
        masks = self._upsample(low_res, embedding, return_logits)
        if prompts.batched:
            return masks, scores, low_res
        return masks[0], scores[0], low_res[0]

    def __repr__(self) -> str:
        image = f"image={self.original_size}" if self.is_image_set else "no image"
        return f"SamPredictor({self.model!r}, {image})"
