"""Device-side pre- and post-processing: the graph sessions, their choice and fallback.

The steps of :mod:`edgesam._transforms` and :mod:`edgesam._postprocess` also
exist as small ONNX graphs shipped in ``edgesam/graphs`` (built by
``tools/build_device_graphs.py``; see :mod:`edgesam._device_pre` and
:mod:`edgesam._device_post`). onnxruntime runs them on the model's own
provider, so on a GPU the uint8 image crosses the bus instead of a
1x3x1024x1024 float32 tensor, the encoder reads the preprocessed image where
the graph left it, and masks come back as booleans.

``device_pipeline="auto"`` uses the graphs where the encoder runs on an
accelerator, ``True`` on any provider (the CPU included: for tests, and to
compare), ``False`` never. A graph that cannot be created on the chosen
provider, or that fails when run, is dropped with a logged warning and the
host path takes over; :attr:`DevicePipeline.providers` says what runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Literal

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from edgesam._device_post import EverythingBatch, everything_feeds, postprocess_feeds
from edgesam._device_pre import peak_bytes, preprocess_feeds
from edgesam._providers import CPU, CUDA, ProviderSpec, provider_name, with_default_options
from edgesam._session import default_session_options
from edgesam._transforms import input_size_for
from edgesam.errors import InvalidInputError

__all__ = ["HOST", "DevicePipeline", "DevicePipelineChoice", "check_device_pipeline"]

logger = logging.getLogger(__name__)

DevicePipelineChoice = Literal["auto"] | bool
HOST = "host"
"""What :attr:`DevicePipeline.providers` reports for a step run by numpy/Pillow in-process."""

# onnxruntime device names for IO binding, by provider: outputs left there.
_DEVICES = {CUDA: "cuda"}
# Provider options for the graphs, on top of edgesam's defaults: TF32 matrix products
# would round the interpolation weights and logits to 10-bit mantissas.
_GRAPH_OPTIONS: Mapping[str, Mapping[str, str]] = {CUDA: {"use_tf32": "0"}}
# Images whose preprocessing graph would need more memory than this at once (the
# gathered taps of a pass; a 3000x4000 photo needs about 0.7 GiB) are resized on the
# host instead, which works in bands; the same for upsampling more masks at once than
# fit in it as float32 logits plus booleans (about 40 masks of 1200x1800).
MAX_GRAPH_BYTES = 1 << 30
# What the everything graph holds per mask and pixel at its peak: float32 logits, the
# three comparisons and two int32 counts' casts (15 bytes), rounded up.
EVERYTHING_BYTES_PER_PIXEL = 16


def check_device_pipeline(value: object) -> DevicePipelineChoice:
    """``value`` if it is a valid ``device_pipeline`` argument.

    Raises
    ------
    InvalidInputError
        ``value`` is not ``"auto"``, True or False.
    """
    if value is True or value is False or value == "auto":
        return value
    raise InvalidInputError(
        'device_pipeline must be "auto" (graphs where the model runs on an accelerator), '
        f"True (always) or False (host pre- and post-processing): got {value!r}"
    )


def _graph_bytes(name: str) -> bytes:
    return resources.files("edgesam").joinpath("graphs").joinpath(name).read_bytes()


def _graph_providers(providers: Sequence[ProviderSpec]) -> list[ProviderSpec]:
    """``providers`` with edgesam's default options plus the graphs' own (TF32 off)."""
    chosen: list[ProviderSpec] = []
    for given in providers:
        spec = with_default_options(given)
        name = provider_name(spec)
        options = dict(spec[1]) if isinstance(spec, tuple) else {}
        options.update(_GRAPH_OPTIONS.get(name, {}))
        chosen.append((name, options) if options else name)
    return chosen


class _Graph:
    """One graph session; ``run`` returns None (and the graph is dropped) once it fails."""

    def __init__(self, role: str, session: ort.InferenceSession) -> None:
        self.role = role
        self._session: ort.InferenceSession | None = session
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        session = self._session
        return list(session.get_providers()) if session is not None else [HOST]

    @property
    def device(self) -> str | None:
        session = self._session
        return _DEVICES.get(session.get_providers()[0]) if session is not None else None

    @property
    def session(self) -> ort.InferenceSession | None:
        return self._session

    def drop(self, err: BaseException) -> None:
        with self._lock:
            if self._session is not None:
                logger.warning(
                    "the %s graph failed on %s (%s: %s); using the host %s from now on",
                    self.role,
                    self._session.get_providers()[0],
                    type(err).__name__,
                    err,
                    self.role,
                )
                self._session = None


def _create(
    role: str, names: Sequence[str], providers: Sequence[ProviderSpec]
) -> list[ort.InferenceSession] | None:
    """Sessions for the graph files ``names`` on ``providers``; None (logged) if one fails."""
    options = default_session_options()
    requested = provider_name(providers[0])
    sessions = []
    for name in names:
        try:
            session = ort.InferenceSession(
                _graph_bytes(name), sess_options=options, providers=_graph_providers(providers)
            )
        except Exception as err:
            logger.warning(
                "could not create the %s graph %s on %s (%s: %s); %s runs on the host",
                role,
                name,
                requested,
                type(err).__name__,
                err,
                role,
            )
            return None
        if session.get_providers()[0] != requested:
            logger.warning(
                "the %s graph asked for %s but onnxruntime gave it %s; %s runs on the host",
                role,
                requested,
                session.get_providers(),
                role,
            )
            return None
        sessions.append(session)
    return sessions


class DevicePipeline:
    """The preprocessing and postprocessing graphs of one model, or the host path.

    Parameters
    ----------
    choice : {"auto", True, False}
        See the module docstring.
    providers : sequence of provider specs
        The model's resolved providers, best first.
    encoder_providers : list of str
        What the encoder session really runs on (decides ``"auto"``).
    """

    def __init__(
        self,
        choice: DevicePipelineChoice,
        providers: Sequence[ProviderSpec],
        encoder_providers: Sequence[str],
    ) -> None:
        self.choice = check_device_pipeline(choice)
        self._pre: dict[bool, _Graph] = {}
        self._post: _Graph | None = None
        self._everything: _Graph | None = None
        wanted = choice is True or (choice == "auto" and encoder_providers[0] != CPU)
        if not wanted:
            return
        # The graphs run where the encoder really runs (after any fallback to CPU).
        graph_providers = [
            spec for spec in providers if provider_name(spec) in encoder_providers
        ] or [CPU]
        pre = _create(
            "preprocessing", ["preprocess_hv.onnx", "preprocess_vh.onnx"], graph_providers
        )
        if pre is not None:
            graph = _Graph("preprocessing", pre[0])
            self._pre = {False: graph, True: _Graph("preprocessing", pre[1])}
        post = _create(
            "postprocessing",
            ["postprocess.onnx", "postprocess_everything.onnx"],
            graph_providers,
        )
        if post is not None:
            self._post = _Graph("postprocessing", post[0])
            self._everything = _Graph("everything postprocessing", post[1])

    @property
    def providers(self) -> dict[str, list[str]]:
        """Where each step runs: the graph session's providers, or ``["host"]``."""
        pre = self._pre.get(False)
        pre_providers = [HOST]
        if pre is not None and self._pre[True].session is not None:
            pre_providers = pre.providers
        post = self._post.providers if self._post is not None else [HOST]
        return {"preprocess": pre_providers, "postprocess": post}

    @property
    def preprocess_on_device(self) -> bool:
        """Whether :meth:`preprocess` will try the graph."""
        return self.providers["preprocess"] != [HOST]

    def preprocess(
        self, rgb: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32] | ort.OrtValue, tuple[int, int]] | None:
        """The encoder input for ``rgb`` and ``input_size``; None: use the host path.

        On CUDA the image is uploaded as uint8 and the result stays on the device
        (an ``OrtValue`` for the encoder); elsewhere it is a host array.
        """
        if not self.preprocess_on_device or min(input_size_for(rgb.shape[:2])) < 1:
            return None  # the host path refuses images too elongated to resize
        feeds, vertical_first, input_size = preprocess_feeds(rgb)
        if peak_bytes(feeds, vertical_first) > MAX_GRAPH_BYTES:
            logger.info(
                "image of %sx%s: preprocessing on the host (the graph would need %.1f GiB)",
                rgb.shape[0],
                rgb.shape[1],
                peak_bytes(feeds, vertical_first) / (1 << 30),
            )
            return None
        graph = self._pre[vertical_first]
        session, device = graph.session, graph.device
        if session is None:
            return None
        try:
            if device is None:
                (image_input,) = session.run(["image_input"], feeds)
                return np.asarray(image_input, dtype=np.float32), input_size
            binding = session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            binding.bind_output("image_input", device)
            session.run_with_iobinding(binding)
            (value,) = binding.get_outputs()
            return value, input_size
        except Exception as err:
            graph.drop(err)
            return None

    def upsample(
        self,
        low_res: NDArray[np.float32],
        original_size: tuple[int, int],
        input_size: tuple[int, int],
        return_logits: bool,
    ) -> NDArray[np.bool_] | NDArray[np.float32] | None:
        """Masks (bool) or logits (float32), shape ``(..., H, W)``; None: use the host path."""
        graph = self._post
        session = graph.session if graph is not None else None
        if graph is None or session is None:
            return None
        masks = int(np.prod(low_res.shape[:-2]))
        if 5 * masks * original_size[0] * original_size[1] > MAX_GRAPH_BYTES:
            # float32 logits and bool masks at full size: the host path works in bands.
            return None
        output = "logits" if return_logits else "masks"
        feeds = postprocess_feeds(low_res, original_size, input_size)
        try:
            if graph.device is None:
                (result,) = session.run([output], feeds)
            else:
                binding = session.io_binding()
                for name, value in feeds.items():
                    binding.bind_cpu_input(name, np.ascontiguousarray(value))
                binding.bind_output(output, "cpu")
                session.run_with_iobinding(binding)
                result = binding.copy_outputs_to_cpu()[0]
        except Exception as err:
            graph.drop(err)
            return None
        array: NDArray[np.bool_] | NDArray[np.float32] = np.asarray(result).reshape(
            *low_res.shape[:-2], *original_size
        )
        return array

    def everything(
        self,
        low_res: NDArray[np.float32],
        candidates: NDArray[np.int64],
        original_size: tuple[int, int],
        input_size: tuple[int, int],
        offset: float,
        stability_thresh: float,
    ) -> EverythingBatch | None:
        """One decoder batch of the automatic mask generator; None: use the host path.

        ``low_res[candidates]`` (N, 256, 256) are the candidates' logits (gathered a
        chunk at a time; ``keep`` indexes ``candidates``). The graph upsamples
        them to ``original_size``, scores their stability at ``0 +- offset``, keeps
        those scoring at least ``stability_thresh`` and returns their boxes and
        boolean masks only. Candidates are sent in chunks that fit
        :data:`MAX_GRAPH_BYTES`.
        """
        graph = self._everything
        session = graph.session if graph is not None else None
        if graph is None or session is None:
            return None
        pixels = original_size[0] * original_size[1]
        chunk = MAX_GRAPH_BYTES // (EVERYTHING_BYTES_PER_PIXEL * max(pixels, 1))
        if chunk < 1:
            return None  # one mask would not fit: the host path works in windows
        parts: list[EverythingBatch] = []
        try:
            for start in range(0, candidates.shape[0], chunk):
                feeds = everything_feeds(
                    low_res[candidates[start : start + chunk]],
                    original_size,
                    input_size,
                    offset,
                    stability_thresh,
                )
                names = ["stability_scores", "keep", "boxes", "masks"]
                if graph.device is None:
                    results = session.run(names, feeds)
                else:
                    binding = session.io_binding()
                    for name, value in feeds.items():
                        binding.bind_cpu_input(name, np.ascontiguousarray(value))
                    for name in names:
                        binding.bind_output(name, "cpu")
                    session.run_with_iobinding(binding)
                    results = binding.copy_outputs_to_cpu()
                scores, keep, boxes, masks = (np.asarray(result) for result in results)
                parts.append(
                    EverythingBatch(
                        stability_scores=scores.astype(np.float32, copy=False),
                        keep=keep.astype(np.int64, copy=False) + start,
                        boxes=boxes.astype(np.int64, copy=False).reshape(-1, 4),
                        masks=masks.astype(np.bool_, copy=False).reshape(-1, *original_size),
                    )
                )
        except Exception as err:
            graph.drop(err)
            return None
        return EverythingBatch.concatenate(parts, original_size)
