"""The CPU count and physical-core count behind edgesam's thread settings."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from edgesam._cpus import avoid_cpu, current_cpu, physical_cores, usable_cpus


def _topology(root: Path, siblings: dict[int, str], name: str = "core_cpus_list") -> Path:
    """A fake /sys/devices/system/cpu: for each CPU, the list of its core's CPUs."""
    for cpu, core in siblings.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / name).write_text(core + "\n")
    return root


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)


@pytest.mark.usefixtures("four_cpus")
def test_hyperthreads_of_one_core_count_once(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert physical_cores(sysfs) == 2


@pytest.mark.usefixtures("four_cpus")
def test_one_cpu_per_core(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0", 1: "1", 2: "2", 3: "3"})
    assert physical_cores(sysfs) == 4


@pytest.mark.usefixtures("four_cpus")
def test_older_kernels_name_the_siblings_file_differently(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0-1", 1: "0-1", 2: "2-3", 3: "2-3"}, "thread_siblings_list")
    assert physical_cores(sysfs) == 2


def test_only_the_cpus_in_the_affinity_mask_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # taskset -c 0,2 on a 2-core, 4-thread machine: both CPUs are one core's threads.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2}, raising=False)
    sysfs = _topology(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert physical_cores(sysfs) == 1
    assert usable_cpus() == 2


@pytest.mark.usefixtures("four_cpus")
def test_unreadable_topology_leaves_the_choice_to_onnxruntime(tmp_path: Path) -> None:
    sysfs = _topology(tmp_path, {0: "0", 1: "1", 2: "2"})  # cpu3 has no topology
    assert physical_cores(sysfs) == 0
    assert physical_cores(tmp_path / "missing") == 0


def test_no_affinity_api_leaves_the_choice_to_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS and Windows have no sched_getaffinity.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert physical_cores() == 0
    assert usable_cpus() == (os.cpu_count() or 1)


@pytest.mark.skipif(not Path("/sys/devices/system/cpu/cpu0/topology").is_dir(), reason="no sysfs")
def test_this_machine_has_at_least_one_core_and_no_more_than_its_cpus() -> None:
    assert 1 <= physical_cores() <= usable_cpus()


def _fake_affinity(monkeypatch: pytest.MonkeyPatch, allowed: set[int]) -> list[set[int]]:
    """sched_getaffinity says ``allowed``; what sched_setaffinity is asked for is recorded."""
    asked: list[set[int]] = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(allowed), raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: asked.append(set(cpus)))
    return asked


def test_avoid_cpu_leaves_every_other_allowed_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_affinity(monkeypatch, {0, 1, 2, 3})
    avoid_cpu(2)
    assert asked == [{0, 1, 3}]


@pytest.mark.parametrize(
    ("allowed", "cpu"),
    [({0}, 0), ({0, 1}, None), ({0, 1}, 5)],
    ids=["the only cpu", "cpu unknown", "cpu not allowed anyway"],
)
def test_avoid_cpu_changes_nothing_when_it_cannot_or_need_not(
    monkeypatch: pytest.MonkeyPatch, allowed: set[int], cpu: int | None
) -> None:
    asked = _fake_affinity(monkeypatch, allowed)
    avoid_cpu(cpu)
    assert asked == []


def test_avoid_cpu_without_an_affinity_api_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    avoid_cpu(0)  # must not raise


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity API on this OS")
def test_current_cpu_is_one_this_thread_may_use() -> None:
    cpu = current_cpu()
    if sys.platform == "linux":
        assert cpu in os.sched_getaffinity(0)
    else:
        assert cpu is None


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs an affinity API and two usable CPUs",
)
def test_avoid_cpu_changes_only_the_calling_threads_affinity() -> None:
    before = os.sched_getaffinity(0)
    seen: list[set[int]] = []

    def worker() -> None:
        avoid_cpu(min(before))
        seen.append(os.sched_getaffinity(0))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before - {min(before)}]
    assert os.sched_getaffinity(0) == before
