"""The CPUs this process may use: how many, and how many physical cores they span.

onnxruntime, left to choose (``intra_op_num_threads = 0``), starts one thread
per physical core and pins each worker thread to its core, leaving the
caller's thread free. Pinned workers collide with the caller whenever the
kernel has the caller on a worker's core when a run starts: both share that
core until the scheduler moves the caller. After ``set_image``'s own
preprocessing threads this happened often enough on a 2-core machine to make
``set_image`` 1.13x the bare encoder run instead of 1.09x. edgesam
therefore asks for the same number of threads explicitly, which onnxruntime
leaves unpinned; the count comes from here. Counting only the CPUs in the
process's affinity mask also keeps ``taskset`` and container cpusets
respected, which onnxruntime's own default does not do.

The same collision slows ``set_image``'s preprocessing threads: a new thread
often starts on its creator's core, and on a virtual machine whose other core
has been idle the scheduler can leave both there for over 10 ms. A worker
therefore keeps off the core its caller is on (:func:`avoid_cpu`); only the
worker's own affinity changes, never the caller's.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from pathlib import Path

from edgesam._libc import libc_function

__all__ = ["avoid_cpu", "current_cpu", "physical_cores", "usable_cpus"]

_SYSFS_CPUS = Path("/sys/devices/system/cpu")


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def physical_cores(sysfs: Path = _SYSFS_CPUS) -> int:
    """Physical cores among the CPUs this process may run on; 0 when unknown.

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


@functools.cache
def _sched_getcpu() -> Callable[[], int] | None:
    getcpu: Callable[[], int] | None = libc_function("sched_getcpu", ctypes.c_int)
    return getcpu


def current_cpu() -> int | None:
    """The CPU the calling thread is running on now; None where the OS does not say."""
    getcpu = _sched_getcpu()
    if getcpu is None:
        return None
    cpu = getcpu()
    return cpu if cpu >= 0 else None


def avoid_cpu(cpu: int | None) -> None:
    """Let the calling thread run on any CPU it may use now except ``cpu``.

    Changes the calling thread's affinity only. Nothing happens when ``cpu`` is
    None or the only CPU left, or where the OS has no affinity API.
    """
    if cpu is None:
        return
    try:
        allowed = os.sched_getaffinity(0)
        others = allowed - {cpu}
        if others and others != allowed:
            os.sched_setaffinity(0, others)
    except (AttributeError, OSError):
        return
