"""``edgesam serve`` on the command line: the parser, option checks, the extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from edgesam.cli import build_parser, main
from edgesam.errors import MissingExtraError
from edgesam.serve._cli import _is_public

SRC = Path(__file__).resolve().parents[2] / "src"


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.cache_mb, args.workers) == ("127.0.0.1", 8000, 512, 2)
    assert args.api_key is None
    assert args.cors_origin == []
    assert args.web_runtime is None


def test_building_the_parser_imports_no_server_packages() -> None:
    code = (
        "import sys, edgesam, edgesam.cli; edgesam.cli.build_parser(); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'multipart') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC)},
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["serve", "--encoder", "e.onnx"], "--encoder and --decoder go together"),
        (["serve", "--checkpoint", "c.pth"], "--checkpoint goes with"),
    ],
)
def test_option_mistakes_are_usage_errors(
    argv: list[str], word: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert word in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.5", True),
        ("example.org", True),
    ],
)
def test_hosts_that_get_the_warning(host: str, public: bool) -> None:
    assert _is_public(host) is public


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgesam.serve

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "uvicorn" else real(name, *args),
    )
    with pytest.raises(MissingExtraError, match=r'pip install "edgesam\[serve\]"'):
        edgesam.serve.require_extra()


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgesam._config import api_key_from_env

    monkeypatch.delenv("EDGESAM_API_KEY", raising=False)
    assert api_key_from_env() is None
    monkeypatch.setenv("EDGESAM_API_KEY", "")
    assert api_key_from_env() is None
    monkeypatch.setenv("EDGESAM_API_KEY", "s3cret")
    assert api_key_from_env() == "s3cret"
