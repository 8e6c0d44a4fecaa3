"""EdgeSam: the encoder and decoder sessions of one model, shared by predictors.

An ``EdgeSam`` is immutable after construction apart from lazily loaded,
lock-guarded caches, so one instance serves any number of ``SamPredictor``
objects in any number of threads (onnxruntime's ``run`` is thread-safe).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import onnxruntime as ort
from numpy.typing import ArrayLike, NDArray

from edgesam._atomic import sha256_file
from edgesam._device_pipeline import DevicePipeline, DevicePipelineChoice, check_device_pipeline
from edgesam._device_post import EverythingBatch
from edgesam._embedding import EMBEDDING_SHAPE
from edgesam._files import path_argument, readable_file
from edgesam._providers import ProviderSpec, resolve_providers
from edgesam._session import (
    DECODER_CONTRACT,
    ENCODER_CONTRACT,
    ModelSession,
    check_session_options,
)
from edgesam._validate import fixed_shape_float32, numeric_array
from edgesam.errors import (
    InvalidEmbeddingError,
    InvalidImageError,
    InvalidInputError,
    InvalidPromptError,
    MaskInputUnavailableError,
    WeightsError,
)

if TYPE_CHECKING:
    from edgesam._mask_prompt import MaskPromptWeights

__all__ = ["EdgeSam"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
IMAGE_INPUT_SHAPE = (1, 3, 1024, 1024)
MASK_INPUT_SHAPE = (1, 256, 256)
# 1/0 foreground/background, 2/3 box corners, -1 padding, -2 a zero embedding.
DECODER_LABELS = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)




def _image_input(value: object) -> NDArray[np.float32]:
    return fixed_shape_float32(
        value,
        "image_input",
        f"a preprocessed image, a float32 array of shape {IMAGE_INPUT_SHAPE}",
        IMAGE_INPUT_SHAPE,
        InvalidImageError,
        "Pass images to SamPredictor.set_image, which resizes, normalises and pads them",
    )


def _embedding(value: object) -> NDArray[np.float32]:
    return fixed_shape_float32(
        value,
        "embedding",
        f"an image embedding, a float32 array of shape {EMBEDDING_SHAPE}",
        EMBEDDING_SHAPE,
        InvalidEmbeddingError,
        "Use what encode() or get_image_embedding() returns",
    )


def _decoder_prompts(
    point_coords: object, point_labels: object, mask_input: object
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32] | None]:
    """The public :meth:`EdgeSam.decode`'s check of its prompts, in the 1024 frame."""
    layout = "a numeric array of shape (B, N, 2)"
    coords = np.asarray(numeric_array(point_coords, "point_coords"), dtype=np.float32)
    if coords.ndim != 3 or coords.shape[2] != 2 or 0 in coords.shape:
        raise InvalidPromptError(
            f"point_coords must be {layout} with B, N >= 1: (x, y) in the 1024 frame, box "
            f"corners and padding point included: got shape {coords.shape}",
            argument="point_coords",
        )
    if not np.isfinite(coords).all():
        raise InvalidPromptError(
            "point_coords must be finite: it contains NaN or infinity", argument="point_coords"
        )
    batch, points = coords.shape[:2]
    labels = np.asarray(numeric_array(point_labels, "point_labels"), dtype=np.float32)
    if labels.shape != (batch, points):
        raise InvalidPromptError(
            f"point_labels must have one entry per point, shape (B, N) = {(batch, points)}: "
            f"got shape {labels.shape}",
            argument="point_labels",
        )
    if not np.isin(labels, DECODER_LABELS).all():
        unknown = sorted(set(labels[~np.isin(labels, DECODER_LABELS)].tolist()))
        raise InvalidPromptError(
            "point_labels must be 1 (foreground), 0 (background), 2 and 3 (box corners), -1 "
            f"(padding point) or -2 (no embedding): got {unknown}",
            argument="point_labels",
        )
    if mask_input is None:
        return coords, labels, None
    expected = (batch, *MASK_INPUT_SHAPE)
    mask = np.asarray(numeric_array(mask_input, "mask_input"), dtype=np.float32)
    if mask.shape != expected:
        raise InvalidPromptError(
            f"mask_input must be low-res logits of shape (B, 1, 256, 256) = {expected}, one per "
            f"prompt set: got shape {mask.shape}",
            argument="mask_input",
        )
    if not (np.isfinite(mask.max()) and np.isfinite(mask.min())):
        raise InvalidPromptError(
            "mask_input must be finite: it contains NaN or infinity", argument="mask_input"
        )
    return coords, labels, mask


_STACK_SHAPE = (3, 1024, 1024)


def _accepts_batches(session: ModelSession) -> bool:
    """Whether the encoder's ``image`` input takes any number of images."""
    first = session.input_shape("image")[0]
    return not isinstance(first, int)


def _encode_stack(session: ModelSession, image_inputs: ArrayLike) -> NDArray[np.float32]:
    """Embeddings ``(B, 256, 64, 64)`` of preprocessed images ``(B, 3, 1024, 1024)``."""
    images = np.asarray(image_inputs)
    if images.ndim != 4 or images.shape[1:] != _STACK_SHAPE or images.dtype.kind not in "fiu":
        raise InvalidImageError(
            "image_inputs must be a numeric array of shape (B, 3, 1024, 1024), preprocessed "
            f"images stacked: got {images.dtype} {images.shape}"
        )
    if len(images) == 0:
        raise InvalidImageError("image_inputs is empty: give at least one image (B >= 1)")
    images = np.ascontiguousarray(images, dtype=np.float32)
    if _accepts_batches(session):
        (embeddings,) = session.run({"image": images})
        return np.asarray(embeddings, dtype=np.float32)
    return np.concatenate(
        [session.run({"image": images[i : i + 1]})[0] for i in range(len(images))]
    )


class EdgeSam:
    """The EdgeSAM encoder and decoder, loaded into onnxruntime sessions.

    Build it with :meth:`from_pretrained` (downloads the official files once)
    or :meth:`from_files` (local ``.onnx`` files), then hand it to
    :class:`~edgesam.SamPredictor`. One instance can be shared by many
    predictors and threads.

    Attributes
    ----------
    mask_threshold : float
        0.0: masks are the logits above it (segment_anything's ``Sam`` attribute).
    image_format : str
        ``"RGB"``: the channel order the encoder expects (segment_anything's too).
    """

    mask_threshold: ClassVar[float] = 0.0
    image_format: ClassVar[str] = "RGB"

    def __init__(
        self,
        encoder: ModelSession,
        decoder: ModelSession,
        *,
        name: str,
        encoder_sha256: str | None = None,
        checkpoint: PathLike | Callable[[], Path] | None = None,
        device_pipeline: DevicePipeline | None = None,
    ) -> None:
        self._encoder = encoder
        self._pipeline = device_pipeline
        self._decoder = decoder
        self._name = name
        self._fingerprint = encoder_sha256
        self._checkpoint = checkpoint
        self._mask_weights: MaskPromptWeights | None = None
        self._lock = threading.Lock()
        batch_dim = decoder.input_shape("point_coords")[0]
        self._batched_decoder = not (isinstance(batch_dim, int) and batch_dim == 1)

    # -- construction -------------------------------------------------------------------

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
    ) -> EdgeSam:
        """Load local encoder and decoder ``.onnx`` files; no network is used.

        Parameters
        ----------
        encoder, decoder : str or os.PathLike
            EdgeSAM ONNX files (the official ones, or ``edgesam export`` output).
        checkpoint : str or os.PathLike, optional
            The matching ``.pth`` checkpoint; needed only for ``mask_input`` with a
            decoder that has no native mask input.
        name : str, optional
            A name for ``repr`` and embeddings; default: the encoder file's stem.
        providers : sequence of str or (str, dict), optional
            Execution providers, best first (``"cuda"``, ``"coreml"``, ``"cpu"``, ...).
            Default: ``EDGESAM_PROVIDERS`` or automatic selection.
        session_options : onnxruntime.SessionOptions, optional
            Passed to onnxruntime as is.
        device_pipeline : {"auto", True, False}
            Where to resize, normalise and pad images and upsample masks:
            ``"auto"`` (default) in small ONNX graphs on the model's provider
            when that is an accelerator (the uint8 image crosses the bus, the
            encoder reads the result in place, masks return as booleans),
            else on the host with numpy and Pillow; ``True`` in the graphs on
            any provider, CPU included; ``False`` always on the host. Results
            are the same (see docs/providers.md); :attr:`pipeline_providers`
            says where each step runs.

        Raises
        ------
        InvalidInputError
            A path is not a str or os.PathLike, ``name`` is not a str, or
            ``session_options`` is not an ``onnxruntime.SessionOptions``.
        ProviderError
            ``providers`` is malformed, or names nothing this onnxruntime offers.
        WeightsNotFoundError
            A path does not exist.
        CorruptModelError, ModelContractError
            A file is not an ONNX model, or not an EdgeSAM encoder/decoder.
        """
        path_argument(encoder, "encoder")
        path_argument(decoder, "decoder")
        if checkpoint is not None:
            path_argument(checkpoint, "checkpoint")
        if name is not None and not isinstance(name, str):
            raise InvalidInputError(
                f"name must be a str, or None for the encoder file's stem: got "
                f"{type(name).__name__} {name!r}"
            )
        check_session_options(session_options)
        check_device_pipeline(device_pipeline)
        encoder_path = readable_file(encoder, argument="encoder")
        decoder_path = readable_file(decoder, argument="decoder")
        checkpoint_path = (
            readable_file(checkpoint, argument="checkpoint") if checkpoint is not None else None
        )
        return cls._load(
            encoder_path,
            decoder_path,
            resolve_providers(providers),
            session_options,
            device_pipeline,
            name=name if name is not None else encoder_path.stem.removesuffix("_encoder"),
            checkpoint=checkpoint_path,
        )

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
    ) -> EdgeSam:
        """Download (once), verify and load an official EdgeSAM model.

        Parameters
        ----------
        model : {"edge_sam_3x", "edge_sam"}
            Which checkpoint. ``edge_sam_3x`` was trained 3x longer and is better.
        revision, cache_dir, token, local_files_only, force_download, endpoint
            Passed to ``huggingface_hub.hf_hub_download`` under the same names;
            its environment variables (``HF_HOME``, ``HF_HUB_OFFLINE``,
            ``HF_ENDPOINT``, ``HF_TOKEN``) apply as usual.
        providers, session_options, device_pipeline
            As in :meth:`from_files`.

        Raises
        ------
        UnknownModelError
            ``model`` is not a known name.
        InvalidInputError, ProviderError
            ``session_options`` or ``providers`` is malformed (checked before
            anything is downloaded).
        WeightsError
            Download failed, the file is not cached in offline mode, or its
            sha256 differs from the pinned value.
        """
        from edgesam._hub import HubOptions, fetch_file
        from edgesam._registry import get_model_spec

        spec = get_model_spec(model)
        check_session_options(session_options)
        check_device_pipeline(device_pipeline)
        resolved = resolve_providers(providers)
        hub_options: HubOptions = {
            "revision": revision,
            "cache_dir": cache_dir,
            "token": token,
            "local_files_only": local_files_only,
            "endpoint": endpoint,
        }
        first_load: HubOptions = {**hub_options, "force_download": force_download}
        encoder_path = fetch_file(spec, spec.encoder, **first_load)
        decoder_path = fetch_file(spec, spec.decoder, **first_load)

        def fetch_checkpoint() -> Path:
            return fetch_file(spec, spec.checkpoint, **hub_options)

        return cls._load(
            encoder_path,
            decoder_path,
            resolved,
            session_options,
            device_pipeline,
            name=spec.name,
            encoder_sha256=spec.encoder.sha256,
            checkpoint=fetch_checkpoint,
        )

    @classmethod
    def _load(
        cls,
        encoder_path: Path,
        decoder_path: Path,
        providers: list[ProviderSpec],
        session_options: ort.SessionOptions | None,
        device_pipeline: DevicePipelineChoice,
        *,
        name: str,
        checkpoint: Path | Callable[[], Path] | None,
        encoder_sha256: str | None = None,
    ) -> EdgeSam:
        """The sessions of checked files, on ``providers`` (already resolved)."""
        encoder = ModelSession(encoder_path, ENCODER_CONTRACT, providers, session_options)
        return cls(
            encoder,
            ModelSession(decoder_path, DECODER_CONTRACT, providers, session_options),
            name=name,
            encoder_sha256=encoder_sha256,
            checkpoint=checkpoint,
            device_pipeline=DevicePipeline(device_pipeline, providers, encoder.providers),
        )

    # -- what it is ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The model's name (registry name, or the encoder file's stem)."""
        return self._name

    @property
    def providers(self) -> dict[str, list[str]]:
        """The execution providers each session really runs on, best first."""
        return {"encoder": self._encoder.providers, "decoder": self._decoder.providers}

    @property
    def pipeline_providers(self) -> dict[str, list[str]]:
        """Where pre- and post-processing run: ``{"preprocess": [...], "postprocess": [...]}``.

        Each entry is the providers of that step's graph session (see
        ``device_pipeline``), or ``["host"]`` for numpy and Pillow in this process.
        """
        if self._pipeline is None:
            return {"preprocess": ["host"], "postprocess": ["host"]}
        return self._pipeline.providers

    @property
    def decoder_path(self) -> Path:
        """The decoder ``.onnx`` file this model runs (e.g. to serve it to a browser)."""
        return self._decoder.path

    @property
    def native_mask_input(self) -> bool:
        """Whether the decoder file takes ``mask_input`` / ``has_mask_input`` itself."""
        return self._decoder.has_optional_inputs

    @property
    def batched_decoder(self) -> bool:
        """Whether the decoder file decodes B prompt sets in one run."""
        return self._batched_decoder

    @property
    def fingerprint(self) -> str:
        """sha256 of the encoder file (pinned for official models, hashed once otherwise)."""
        if self._fingerprint is None:
            with self._lock:
                if self._fingerprint is None:
                    self._fingerprint = sha256_file(self._encoder.path)
        return self._fingerprint

    def __repr__(self) -> str:
        mask = (
            "native"
            if self.native_mask_input
            else "via checkpoint"
            if self._checkpoint is not None
            else "unavailable"
        )
        batch = "batched" if self.batched_decoder else "one prompt set per run"
        return (
            f"EdgeSam(name={self.name!r}, providers={self._encoder.providers[0]!r}, "
            f"mask_input={mask}, decoder={batch})"
        )

    # -- running ------------------------------------------------------------------------

    def encode(self, image_input: ArrayLike) -> NDArray[np.float32]:
        """Run the encoder on a preprocessed image.

        Parameters
        ----------
        image_input : ndarray of float32, shape (1, 3, 1024, 1024)
            The resized, normalised and padded image, as ``SamPredictor.set_image``
            makes it; other real dtypes are cast to float32. Not scanned for NaN
            (12 MiB on every call): NaN in gives NaN out.

        Returns
        -------
        ndarray of float32, shape (1, 256, 64, 64)
            The image embedding.

        Raises
        ------
        InvalidImageError
            ``image_input`` is not numeric or not of shape (1, 3, 1024, 1024).
        """
        return self._encode(_image_input(image_input))

    def _encode(self, image_input: NDArray[np.float32]) -> NDArray[np.float32]:
        """:meth:`encode` without the check, for callers that made ``image_input`` themselves."""
        (embedding,) = self._encoder.run({"image": image_input})
        return embedding

    def encode_batch(self, image_inputs: ArrayLike) -> NDArray[np.float32]:
        """Run the encoder on several preprocessed images.

        An encoder with a dynamic batch dimension (``edgesam.export.batch_encoder``)
        encodes the whole stack in one run, which pays off on GPUs; the
        official encoder runs once per image. On CPU one run per image is as
        fast (docs/batch.md).

        Parameters
        ----------
        image_inputs : ndarray of float32, shape (B, 3, 1024, 1024)
            Preprocessed images, as :meth:`encode` takes them, stacked.

        Returns
        -------
        ndarray of float32, shape (B, 256, 64, 64)
            The embeddings, in order.
        """
        return _encode_stack(self._encoder, image_inputs)

    def _encode_rgb(
        self, rgb: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32], tuple[int, int]] | None:
        """Preprocess ``rgb`` in the device graph and encode it; None: preprocess on the host.

        Returns ``(embedding, input_size)``. On CUDA the preprocessed image stays on
        the device and the encoder reads it there.
        """
        if self._pipeline is None:
            return None
        prepared = self._pipeline.preprocess(rgb)
        if prepared is None:
            return None
        image_input, input_size = prepared
        (embedding,) = self._encoder.run({"image": image_input})
        return embedding, input_size

    def _upsample_on_device(
        self,
        low_res: NDArray[np.float32],
        original_size: tuple[int, int],
        input_size: tuple[int, int],
        return_logits: bool,
    ) -> NDArray[np.bool_] | NDArray[np.float32] | None:
        """Masks or logits at the original size from the device graph; None: use the host."""
        if self._pipeline is None:
            return None
        return self._pipeline.upsample(low_res, original_size, input_size, return_logits)

    def _everything_on_device(
        self,
        low_res: NDArray[np.float32],
        candidates: NDArray[np.int64],
        original_size: tuple[int, int],
        input_size: tuple[int, int],
        offset: float,
        stability_thresh: float,
    ) -> EverythingBatch | None:
        """The automatic mask generator's step for one batch in the device graph; None: host."""
        if self._pipeline is None:
            return None
        return self._pipeline.everything(
            low_res, candidates, original_size, input_size, offset, stability_thresh
        )

    def decode(
        self,
        embedding: ArrayLike,
        point_coords: ArrayLike,
        point_labels: ArrayLike,
        mask_input: ArrayLike | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Decode B prompt sets against one image embedding.

        Arrays of other real dtypes (e.g. int64 points and labels) are cast to
        float32.

        Parameters
        ----------
        embedding : ndarray of float32, shape (1, 256, 64, 64)
            From :meth:`encode`. Not scanned for NaN (``ImageEmbedding`` is).
        point_coords : ndarray of float32, shape (B, N, 2)
            (x, y) in the 1024 frame, box corners and padding point included.
        point_labels : ndarray of float32, shape (B, N)
            1 foreground, 0 background, 2 and 3 a box's top-left and
            bottom-right corners, -1 a padding point, -2 a zero embedding.
        mask_input : ndarray of float32, shape (B, 1, 256, 256), optional
            Low-res mask logits from a previous prediction.

        Returns
        -------
        scores : ndarray of float32, shape (B, 4)
        low_res_logits : ndarray of float32, shape (B, 4, 256, 256)

        Raises
        ------
        InvalidEmbeddingError
            ``embedding`` is not numeric or not of shape (1, 256, 64, 64).
        InvalidPromptError
            Points, labels or ``mask_input`` are not numeric, have the wrong
            shape, disagree on B or N, are not finite, or a label is unknown.
        """
        array = _embedding(embedding)
        coords, labels, mask = _decoder_prompts(point_coords, point_labels, mask_input)
        return self._decode(array, coords, labels, mask)

    def _decode(
        self,
        embedding: NDArray[np.float32],
        point_coords: NDArray[np.float32],
        point_labels: NDArray[np.float32],
        mask_input: NDArray[np.float32] | None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """:meth:`decode` on arrays already checked (float32, shapes as documented)."""
        if self.native_mask_input:
            return self._decode_native(embedding, point_coords, point_labels, mask_input)
        embeddings = self._condition(embedding, mask_input) if mask_input is not None else None
        return self._run_decoder(
            {
                "image_embeddings": embedding if embeddings is None else embeddings[at : at + 1],
                "point_coords": point_coords[at : at + 1],
                "point_labels": point_labels[at : at + 1],
            }
            for at in range(point_coords.shape[0])
        )

    def _decode_native(
        self,
        embedding: NDArray[np.float32],
        point_coords: NDArray[np.float32],
        point_labels: NDArray[np.float32],
        mask_input: NDArray[np.float32] | None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        batch = point_coords.shape[0]
        if mask_input is None:
            masks = np.zeros((batch, 1, 256, 256), dtype=np.float32)
            has_mask = np.zeros((batch,), dtype=np.float32)
        else:
            masks = np.ascontiguousarray(mask_input, dtype=np.float32)
            has_mask = np.ones((batch,), dtype=np.float32)
        ranges = [(start, start + 1) for start in range(batch)]
        if self.batched_decoder:
            ranges = [(0, batch)]
        return self._run_decoder(
            {
                "image_embeddings": embedding,
                "point_coords": point_coords[start:stop],
                "point_labels": point_labels[start:stop],
                "mask_input": masks[start:stop],
                "has_mask_input": has_mask[start:stop],
            }
            for start, stop in ranges
        )

    def _run_decoder(
        self, feeds: Iterable[dict[str, NDArray[np.float32]]]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Run the decoder once per feed; scores and logits concatenated along B."""
        scores, logits = [], []
        for feed in feeds:
            batch_scores, batch_logits = self._decoder.run(feed)
            scores.append(batch_scores)
            logits.append(batch_logits)
        return np.concatenate(scores), np.concatenate(logits)

    def _condition(
        self, embedding: NDArray[np.float32], mask_input: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        weights = self._mask_prompt_weights()
        from edgesam._mask_prompt import condition_embedding

        conditioned: NDArray[np.float32] = condition_embedding(embedding, mask_input, weights)
        return conditioned

    def _mask_prompt_weights(self) -> MaskPromptWeights:
        if self._mask_weights is not None:
            return self._mask_weights
        with self._lock:
            if self._mask_weights is None:
                if self._checkpoint is None:
                    raise MaskInputUnavailableError(
                        "mask_input needs either a decoder with a native mask input "
                        "(edgesam export --variants full) or the model's .pth checkpoint: "
                        "pass checkpoint= to from_files, or use from_pretrained"
                    )
                from edgesam._mask_prompt import MaskPromptWeights

                source = self._checkpoint
                try:
                    path = source() if callable(source) else Path(source)
                except WeightsError as err:
                    raise MaskInputUnavailableError(
                        "mask_input needs the model's .pth checkpoint (the official decoder has "
                        f"no mask input), and it could not be obtained: {err}"
                    ) from err
                logger.info("loading the mask-prompt weights from %s", path)
                self._mask_weights = MaskPromptWeights.from_checkpoint(path)
            return self._mask_weights
