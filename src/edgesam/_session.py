"""One onnxruntime session: create it, check its I/O contract, run it with fallback.

Accelerator providers fail in two ways: at creation (a missing CUDA library)
and at run time (CoreML on a shape it does not support, a cuDNN mismatch). In
both cases the session is rebuilt on CPU once, with a logged warning, and
:attr:`ModelSession.providers` reports what really runs afterwards. Inputs that
onnxruntime refuses (a wrong dtype, rank or shape) are not an accelerator
failure: CPU would refuse them too, so they are raised without a rebuild.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from edgesam._providers import CPU, ProviderSpec, provider_name, with_default_options
from edgesam.errors import (
    CorruptModelError,
    EdgeSamError,
    InferenceError,
    InvalidInputError,
    ModelContractError,
)

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


_SYSFS_CPUS = Path("/sys/devices/system/cpu")


def physical_cores(sysfs: Path = _SYSFS_CPUS) -> int:
    """Physical cores among the CPUs this process may run on; 0 when unknown.

    onnxruntime, left to choose (``intra_op_num_threads = 0``), starts one
    thread per physical core and pins each to its core, where it collides with
    the caller's thread whenever the kernel has put the caller there. Asked
    for the same count explicitly, it leaves its threads unpinned. Counting
    only the CPUs in the process's affinity mask also respects ``taskset`` and
    container cpusets.

    Read from Linux's CPU topology (each CPU's ``core_cpus_list``, or
    ``thread_siblings_list`` on kernels before 5.7): hyperthreads of one core
    count once. Elsewhere, or when the topology cannot be read, 0, which
    onnxruntime takes as "choose yourself".
    """
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return 0
    cores = {_core_of(sysfs / f"cpu{cpu}" / "topology") for cpu in cpus}
    return 0 if None in cores else len(cores)


def _core_of(topology: Path) -> str | None:
    """The list of CPUs that share this CPU's core (its identity), or None if unreadable."""
    for name in ("core_cpus_list", "thread_siblings_list"):
        try:
            return (topology / name).read_text().strip()
        except OSError:
            continue
    return None


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
        that its worker threads are not pinned to cores (see :func:`physical_cores`; where
        the count is unknown onnxruntime chooses). Worker threads that stop
        spinning when a run returns (``session.force_spinning_stop``):
        otherwise each pool keeps spinning after its run and takes the cores
        from what follows, such as the first ``predict`` after ``set_image``.
        Memory arena and memory pattern on, as in onnxruntime: the pattern off
        holds less memory over a long session but makes the encoder slower
        (docs/performance.md, "Design choices").

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
    """

    def __init__(
        self,
        path: Path,
        contract: Contract,
        providers: Sequence[ProviderSpec],
        session_options: ort.SessionOptions | None = None,
    ) -> None:
        self.path = Path(path)
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

    def run(self, feeds: Mapping[str, NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        """Run the model; on an accelerator failure, rebuild on CPU once and retry.

        Raises
        ------
        InferenceError
            If the model fails on CPU too.
        """
        session = self._session
        try:
            return self._run(session, feeds)
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
                    self._session = self._create([CPU])
        try:
            return self._run(self._session, feeds)
        except Exception as err:
            raise InferenceError(
                f"the {self.contract.role} failed on CPU too ({type(err).__name__}: {err})"
            ) from err

    def _run(
        self, session: ort.InferenceSession, feeds: Mapping[str, NDArray[np.float32]]
    ) -> list[NDArray[np.float32]]:
        outputs = session.run(self.output_names, dict(feeds))
        return [np.asarray(output, dtype=np.float32) for output in outputs]
