"""One onnxruntime session: create it, check its I/O contract, run it with fallback.

On CUDA the session runs through IO binding, so that an output can stay in
device memory (:meth:`ModelSession.run_resident`) and be fed to the next model
without a round trip through the host: the image embedding goes from the
encoder to every decoder call this way.

Accelerator providers fail in two ways: at creation (a missing CUDA library)
and at run time (CoreML on a shape it does not support, a cuDNN mismatch). In
both cases the session is rebuilt on CPU once, with a logged warning, and
:attr:`ModelSession.providers` reports what really runs afterwards. Inputs that
onnxruntime refuses (a wrong dtype, rank or shape) are not an accelerator
failure: CPU would refuse them too, so they are raised without a rebuild.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from edgesam._cpus import physical_cores
from edgesam._errors import (
    CorruptModelError,
    EdgeSamError,
    InferenceError,
    InvalidInputError,
    ModelContractError,
)
from edgesam._providers import CPU, CUDA, ProviderSpec, provider_name, with_default_options

__all__ = [
    "DECODER_CONTRACT",
    "ENCODER_CONTRACT",
    "Contract",
    "ModelSession",
    "check_session_options",
    "default_session_options",
]

logger = logging.getLogger(__name__)

Role = Literal["encoder", "decoder"]


@dataclass(frozen=True)
class Contract:
    """What a model file must accept and return: ``name -> rank`` for each tensor.

    All tensors are float32. ``optional_inputs`` may be present together (all
    or none); when present, the model supports that feature natively.
    ``dims`` gives, for some tensors, the size each axis must have (None: any
    size, e.g. a batch or point axis); a model that declares a fixed size for
    such an axis must declare exactly this one, so that a decoder with, say,
    two mask outputs or 128x128 masks is refused when it is loaded rather than
    failing at ``predict``. Symbolic (named) axes are not checked.
    """

    role: Role
    inputs: Mapping[str, int]
    outputs: Mapping[str, int]
    optional_inputs: Mapping[str, int]
    dims: Mapping[str, tuple[int | None, ...]] = field(default_factory=dict)


ENCODER_CONTRACT = Contract(
    role="encoder",
    inputs={"image": 4},
    outputs={"image_embeddings": 4},
    optional_inputs={},
    dims={"image": (None, 3, 1024, 1024), "image_embeddings": (None, 256, 64, 64)},
)
DECODER_CONTRACT = Contract(
    role="decoder",
    inputs={"image_embeddings": 4, "point_coords": 3, "point_labels": 2},
    outputs={"scores": 2, "masks": 4},
    optional_inputs={"mask_input": 4, "has_mask_input": 1},
    dims={
        "image_embeddings": (None, 256, 64, 64),
        "point_coords": (None, None, 2),
        "point_labels": (None, None),
        "mask_input": (None, 1, 256, 256),
        "has_mask_input": (None,),
        "scores": (None, 4),
        "masks": (None, 4, 256, 256),
    },
)

_FLOAT = "tensor(float)"

Feed: TypeAlias = "NDArray[np.float32] | ort.OrtValue"
"""A model input: a host array, or an ``OrtValue`` already on the session's device."""

# onnxruntime's device names for IO binding, by provider.
_RESIDENT_DEVICES = {CUDA: "cuda"}


def _static_dims_fit(declared: Sequence[object], expected: tuple[int | None, ...]) -> bool:
    """Whether every fixed (integer) size in ``declared`` is the one ``expected`` asks for."""
    return all(
        want is None or not isinstance(size, int) or size == want
        for size, want in zip(declared, expected, strict=True)
    )


def default_session_options() -> ort.SessionOptions:
    """The ``onnxruntime.SessionOptions`` edgesam uses unless you pass your own.

    Start from these when you want to change one setting: options you pass
    are used as they are.

    Returns
    -------
    onnxruntime.SessionOptions
        Full graph optimisation. One intra-op thread per physical core this
        process may use: onnxruntime's own count, but asked for explicitly so
        that its worker threads are not pinned to cores (see ``_cpus``; where
        the count is unknown onnxruntime chooses). Worker threads that stop
        spinning when a run returns (``session.force_spinning_stop``):
        otherwise each pool spins for about 50 ms after its run and takes the
        cores from what follows (on 2 cores the first ``predict`` after
        ``set_image`` took 130 ms instead of 80). Memory arena and memory
        pattern on, as in onnxruntime: the pattern off holds about 80 MiB
        less over a long session but made the encoder about 5 % slower on 2
        cores (docs/performance.md, "Memory over a long session").

    Examples
    --------
    >>> options = default_session_options()
    >>> options.enable_mem_pattern = False
    >>> predictor = SamPredictor.from_pretrained(session_options=options)  # doctest: +SKIP
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = physical_cores()
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return options


def check_session_options(value: object) -> ort.SessionOptions | None:
    """``value`` if it can be a ``session_options`` argument, checked before any file is read.

    Raises
    ------
    InvalidInputError
        If ``value`` is neither None nor an ``onnxruntime.SessionOptions``, or
        its ``optimized_model_filepath`` lies in a folder that does not exist.
    """
    if value is None:
        return None
    if not isinstance(value, ort.SessionOptions):
        raise InvalidInputError(
            "session_options must be an onnxruntime.SessionOptions, e.g. from "
            "edgesam.default_session_options(), or None for those defaults: got "
            f"{type(value).__name__}"
        )
    target = value.optimized_model_filepath
    if target and not Path(target).parent.is_dir():
        raise InvalidInputError(
            f"session_options.optimized_model_filepath={target!r} is in a folder that does not "
            f"exist ({Path(target).parent}); create the folder first, or leave it unset"
        )
    return value


def _refused_inputs(err: Exception) -> bool:
    """Whether onnxruntime refused the feeds themselves, as every provider would.

    onnxruntime checks each feed's dtype, rank and shape against the model before
    any provider runs, and reports a mismatch as INVALID_ARGUMENT; missing or
    unknown feed names are a ``ValueError`` from its Python layer. Failures inside
    a provider's kernels are FAIL, EP_FAIL or RUNTIME_EXCEPTION instead.
    """
    return isinstance(err, (InvalidArgument, ValueError, TypeError))


class ModelSession:
    """An ``InferenceSession`` with contract checks and CPU fallback.

    Parameters
    ----------
    path : Path
        The ``.onnx`` file.
    contract : Contract
        The inputs and outputs the file must have.
    providers : sequence of provider specs
        Resolved providers, best first (see ``_providers.resolve_providers``).
    session_options : onnxruntime.SessionOptions, optional
        Passed to onnxruntime as is (after :func:`check_session_options`);
        default :func:`default_session_options`.
    resident_device : str, optional
        onnxruntime device name (``"cuda"``, ``"cpu"``) for outputs kept by
        :meth:`run_resident`; default: ``"cuda"`` when CUDA runs the session,
        else none (outputs are plain arrays). Tests pass ``"cpu"`` to exercise
        the IO-binding path without a GPU.
    """

    def __init__(
        self,
        path: Path,
        contract: Contract,
        providers: Sequence[ProviderSpec],
        session_options: ort.SessionOptions | None = None,
        resident_device: str | None = None,
    ) -> None:
        self.path = Path(path)
        self._resident_override = resident_device
        self.contract = contract
        given = check_session_options(session_options)
        self._custom_options = given is not None
        self._options = given if given is not None else default_session_options()
        self._lock = threading.Lock()
        self._session = self._create(list(providers))
        self.input_names = self._check_contract()
        self.output_names = [output.name for output in self._session.get_outputs()]
        self._input_shapes = {node.name: list(node.shape) for node in self._session.get_inputs()}

    @property
    def providers(self) -> list[str]:
        """The providers the session really runs on, best first."""
        return list(self._session.get_providers())

    @property
    def resident_device(self) -> str | None:
        """Where :meth:`run_resident` leaves outputs (``"cuda"``), or None: host arrays only."""
        return self._device_of(self._session)

    def _device_of(self, session: ort.InferenceSession) -> str | None:
        if self._resident_override is not None:
            return self._resident_override
        return _RESIDENT_DEVICES.get(session.get_providers()[0])

    def to_device(self, array: NDArray[np.float32]) -> ort.OrtValue | None:
        """Copy ``array`` to :attr:`resident_device` once, for repeated runs; None if no device."""
        device = self.resident_device
        if device is None:
            return None
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), device, 0)

    @property
    def has_optional_inputs(self) -> bool:
        """Whether the file has the contract's optional inputs (e.g. ``mask_input``)."""
        return bool(self.contract.optional_inputs) and all(
            name in self.input_names for name in self.contract.optional_inputs
        )

    def input_shape(self, name: str) -> list[int | str | None]:
        """The declared shape of input ``name`` (symbolic dimensions as strings)."""
        for node in self._session.get_inputs():
            if node.name == name:
                return list(node.shape)
        raise KeyError(name)

    def _create(self, providers: list[ProviderSpec]) -> ort.InferenceSession:
        role = self.contract.role
        try:
            session = ort.InferenceSession(
                str(self.path),
                sess_options=self._options,
                providers=[with_default_options(spec) for spec in providers],
            )
        except Exception as err:
            if [provider_name(spec) for spec in providers] == [CPU]:
                raise self._creation_error(err) from err
            logger.warning(
                "could not create the %s session with %s (%s: %s); falling back to CPU",
                role,
                [provider_name(spec) for spec in providers],
                type(err).__name__,
                err,
            )
            return self._create([CPU])
        requested = [provider_name(spec) for spec in providers]
        actual = session.get_providers()
        if requested[0] not in actual:
            logger.warning(
                "the %s session asked for %s but onnxruntime gave it %s", role, requested[0], actual
            )
        logger.info("%s session %s runs on %s", role, self.path.name, actual)
        return session

    def _creation_error(self, err: Exception) -> EdgeSamError:
        """Blame the file only if it does not load with edgesam's own options either."""
        role = self.contract.role
        detail = f"{type(err).__name__}: {err}"
        if self._custom_options and self._loads_with_default_options():
            return InvalidInputError(
                f"onnxruntime could not create the {role} session with the session_options "
                f"given ({detail}), although {str(self.path)!r} loads with edgesam's own: "
                "check session_options (e.g. optimized_model_filepath), or start from "
                "edgesam.default_session_options()"
            )
        return CorruptModelError(
            f"the {role} file {str(self.path)!r} could not be loaded as an ONNX model "
            f"({detail}). It may be truncated or not an ONNX file: "
            "download it again (force_download=True) or check the path"
        )

    def _loads_with_default_options(self) -> bool:
        try:
            ort.InferenceSession(
                str(self.path), sess_options=default_session_options(), providers=[CPU]
            )
        except Exception:
            return False
        return True

    def _check_contract(self) -> list[str]:
        contract = self.contract
        inputs = {node.name: node for node in self._session.get_inputs()}
        outputs = {node.name: node for node in self._session.get_outputs()}
        problems: list[str] = []
        expected_inputs = dict(contract.inputs)
        if any(name in inputs for name in contract.optional_inputs):
            expected_inputs.update(contract.optional_inputs)
        for group, expected, found in (
            ("input", expected_inputs, inputs),
            ("output", contract.outputs, outputs),
        ):
            for name, rank in expected.items():
                node = found.get(name)
                if node is None:
                    problems.append(f"missing {group} {name!r}")
                elif node.type != _FLOAT or len(node.shape) != rank:
                    problems.append(
                        f"{group} {name!r} is {node.type} of rank {len(node.shape)}, "
                        f"expected tensor(float) of rank {rank}"
                    )
                elif name in contract.dims and not _static_dims_fit(
                    node.shape, contract.dims[name]
                ):
                    wanted = tuple("N" if size is None else size for size in contract.dims[name])
                    problems.append(
                        f"{group} {name!r} is declared with shape {tuple(node.shape)}, expected "
                        f"{wanted} (N: any size)"
                    )
        extra = sorted(set(inputs) - set(expected_inputs))
        if extra:
            problems.append(f"unexpected inputs {extra}")
        if problems:
            hint = (
                " (this looks like an encoder file: swap encoder= and decoder=)"
                if contract.role == "decoder" and "image" in inputs
                else " (this looks like a decoder file: swap encoder= and decoder=)"
                if contract.role == "encoder" and "point_coords" in inputs
                else ""
            )
            found_text = ", ".join(
                f"{node.name}: {node.type} {node.shape}" for node in self._session.get_inputs()
            )
            raise ModelContractError(
                f"{str(self.path)!r} is not an EdgeSAM {contract.role}: "
                + "; ".join(problems)
                + f". Its inputs are [{found_text}]{hint}"
            )
        return list(inputs)

    def run(self, feeds: Mapping[str, Feed]) -> list[NDArray[np.float32]]:
        """Run the model; on an accelerator failure, rebuild on CPU once and retry.

        Raises
        ------
        InferenceError
            If the model fails on CPU too.
        """
        outputs = self._run_with_fallback(feeds, resident=False)
        return [np.asarray(output, dtype=np.float32) for output in outputs]

    def run_resident(self, feeds: Mapping[str, Feed]) -> list[NDArray[np.float32] | ort.OrtValue]:
        """Like :meth:`run`, but outputs stay on :attr:`resident_device` as ``OrtValue``.

        Without a resident device (CPU, or after a fallback to CPU) the outputs
        are host arrays, as from :meth:`run`.
        """
        return self._run_with_fallback(feeds, resident=True)

    def _run_with_fallback(
        self, feeds: Mapping[str, Feed], resident: bool
    ) -> list[NDArray[np.float32] | ort.OrtValue]:
        session = self._session
        try:
            return self._run(session, feeds, resident)
        except Exception as err:
            if session.get_providers() == [CPU]:
                raise InferenceError(
                    f"the {self.contract.role} failed on CPU ({type(err).__name__}: {err})"
                ) from err
            if _refused_inputs(err):
                raise InferenceError(
                    f"the {self.contract.role} refused its inputs on "
                    f"{session.get_providers()[0]} ({type(err).__name__}: {err}); not retried "
                    "on CPU, which would refuse them too"
                ) from err
            with self._lock:
                if self._session is session:
                    logger.warning(
                        "the %s failed on %s (%s: %s); rebuilding it on CPU and retrying",
                        self.contract.role,
                        session.get_providers()[0],
                        type(err).__name__,
                        err,
                    )
                    self._resident_override = None
                    self._session = self._create([CPU])
        try:
            return self._run(self._session, feeds, resident)
        except Exception as err:
            raise InferenceError(
                f"the {self.contract.role} failed on CPU too ({type(err).__name__}: {err})"
            ) from err

    def _feed_problem(self, feeds: Mapping[str, Feed]) -> str | None:
        """What onnxruntime would refuse in ``feeds`` (names, dtypes, ranks, fixed sizes)."""
        missing = sorted(set(self._input_shapes) - set(feeds))
        if missing:
            return f"missing inputs {missing}"
        for name, value in feeds.items():
            declared = self._input_shapes.get(name)
            if declared is None:
                return f"unknown input {name!r}; the model takes {sorted(self._input_shapes)}"
            if isinstance(value, ort.OrtValue):
                dtype, shape = value.data_type(), tuple(value.shape())
                is_float = dtype == _FLOAT
            else:
                array = np.asarray(value)
                dtype, shape, is_float = array.dtype, array.shape, array.dtype == np.float32
            fits = len(shape) == len(declared) and all(
                not isinstance(size, int) or size == given
                for size, given in zip(declared, shape, strict=True)
            )
            if not (is_float and fits):
                return f"input {name!r} is {dtype} {shape}; the model takes float32 {declared}"
        return None

    def _run(
        self, session: ort.InferenceSession, feeds: Mapping[str, Feed], resident: bool
    ) -> list[NDArray[np.float32] | ort.OrtValue]:
        device = self._device_of(session)
        if device is None:
            host = {
                name: value.numpy() if isinstance(value, ort.OrtValue) else value
                for name, value in feeds.items()
            }
            outputs: list[NDArray[np.float32]] = session.run(self.output_names, host)
            return list(outputs)
        # run_with_iobinding reports every failure as a RuntimeError, INVALID_ARGUMENT
        # included, so feeds that any provider would refuse are caught here instead.
        problem = self._feed_problem(feeds)
        if problem is not None:
            raise ValueError(problem)
        binding = session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in self.output_names:
            binding.bind_output(name, device if resident else "cpu")
        session.run_with_iobinding(binding)
        values: list[ort.OrtValue] = binding.get_outputs()
        if resident:
            return list(values)
        return [value.numpy() for value in values]
