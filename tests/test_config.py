"""EDGESAM_PROVIDERS: parsed in one place, names returned as written."""

from __future__ import annotations

import pytest

from edgesam._config import ENV_PROVIDERS, providers_from_env
from edgesam.errors import ProviderError


def test_variable_name() -> None:
    assert ENV_PROVIDERS == "EDGESAM_PROVIDERS"


def test_unset_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PROVIDERS, raising=False)
    assert providers_from_env() is None


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_blank_means_unset(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_PROVIDERS, value)
    assert providers_from_env() is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cuda", ["cuda"]),
        ("cuda,cpu", ["cuda", "cpu"]),
        (" cuda , CPUExecutionProvider ", ["cuda", "CPUExecutionProvider"]),
        ("CoreML,DML,cpu", ["CoreML", "DML", "cpu"]),  # as written: aliases resolve later
    ],
)
def test_comma_separated_names_are_trimmed(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv(ENV_PROVIDERS, value)
    assert providers_from_env() == expected


@pytest.mark.parametrize("value", ["cuda,,cpu", "cuda,", ",cpu", "cuda, ,cpu", ","])
def test_empty_entry_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_PROVIDERS, value)
    with pytest.raises(ProviderError, match=r"EDGESAM_PROVIDERS=.*empty entry") as info:
        providers_from_env()
    assert isinstance(info.value, ValueError)
    assert repr(value) in str(info.value)
