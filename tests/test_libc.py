"""Looking up C library functions that Python does not wrap."""

from __future__ import annotations

import ctypes
import os
import sys

import pytest

from edgesam import _libc
from edgesam._libc import libc_function


@pytest.mark.skipif(sys.platform != "linux", reason="the C library is looked up on Linux only")
def test_a_libc_function_is_found_and_callable() -> None:
    getpid = libc_function("getpid", ctypes.c_int)
    assert getpid is not None
    assert getpid() == os.getpid()


def test_a_missing_function_is_none() -> None:
    assert libc_function("edgesam_no_such_function", ctypes.c_int) is None


def test_elsewhere_than_linux_nothing_is_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_libc.platform, "system", lambda: "Windows")
    assert libc_function("getpid", ctypes.c_int) is None
