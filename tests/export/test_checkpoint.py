"""Loading checkpoints: strict, safe, and clear about what is wrong."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from edgesam import InvalidInputError
from edgesam.errors import CheckpointError, UnsafeCheckpointError

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """A state dict with the network's exact keys and shapes (fresh random weights)."""
    from edgesam.export import EdgeSamNetwork

    torch.manual_seed(0)
    return dict(EdgeSamNetwork().state_dict())


def save(state: Any, path: Path) -> Path:
    torch.save(state, path)
    return path


def test_loads_strictly_in_eval_mode(state: dict[str, Any], tmp_path: Path) -> None:
    from edgesam.export import EdgeSamNetwork, load_checkpoint

    network = load_checkpoint(save(state, tmp_path / "ok.pth"))
    assert isinstance(network, EdgeSamNetwork)
    assert not network.training
    loaded = network.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[key], state[key]) for key in state)


@pytest.mark.reference
def test_reference_checkpoint_has_the_official_layout(checkpoint: Path) -> None:
    from edgesam.export import load_checkpoint

    network = load_checkpoint(checkpoint)
    assert len(network.state_dict()) == 821
    parameters = sum(p.numel() for p in network.parameters())
    assert 9.5e6 < parameters < 9.7e6  # "9.58 M parameters" (reference README)


def test_accepts_a_wrapped_state_dict(state: dict[str, Any], tmp_path: Path) -> None:
    from edgesam.export import load_checkpoint

    load_checkpoint(save({"model": state}, tmp_path / "wrapped.pth"))


def test_missing_keys(state: dict[str, Any], tmp_path: Path) -> None:
    from edgesam.export import load_checkpoint

    broken = {k: v for k, v in state.items() if not k.startswith("mask_decoder.iou_prediction")}
    with pytest.raises(CheckpointError, match=r"6 missing: mask_decoder\.iou_prediction_head"):
        load_checkpoint(save(broken, tmp_path / "missing.pth"))


def test_unexpected_keys(state: dict[str, Any], tmp_path: Path) -> None:
    from edgesam.export import load_checkpoint

    broken = {**state, "extra.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"1 unexpected: extra\.weight"):
        load_checkpoint(save(broken, tmp_path / "unexpected.pth"))


def test_wrong_shapes(state: dict[str, Any], tmp_path: Path) -> None:
    from edgesam.export import load_checkpoint

    broken = {**state, "image_encoder.neck.0.weight": torch.zeros(128, 256, 1, 1)}
    with pytest.raises(
        CheckpointError,
        match=r"image_encoder\.neck\.0\.weight is \(128, 256, 1, 1\), expected \(256, 256, 1, 1\)",
    ):
        load_checkpoint(save(broken, tmp_path / "shapes.pth"))


def test_a_state_dict_of_another_model(tmp_path: Path) -> None:
    from edgesam.export import load_checkpoint

    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict()
    with pytest.raises(CheckpointError, match="is not an EdgeSAM checkpoint"):
        load_checkpoint(save(other, tmp_path / "resnet.pth"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint at all\n", "is not a PyTorch zip checkpoint"),
        (b"PK\x03\x04 truncated zip", "is not a PyTorch zip checkpoint"),
        (b"", "is not a PyTorch zip checkpoint"),
        (pickle.dumps({"w": 1}, protocol=4), "bare pickle"),
    ],
)
def test_not_a_torch_file(tmp_path: Path, content: bytes, message: str) -> None:
    from edgesam.export import load_checkpoint

    path = tmp_path / "bogus.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_not_a_state_dict(tmp_path: Path) -> None:
    from edgesam.export import load_checkpoint

    with pytest.raises(CheckpointError, match=r"holds a list, not a state dict"):
        load_checkpoint(save([torch.zeros(2)], tmp_path / "list.pth"))
    with pytest.raises(CheckpointError, match=r"keys 'epoch', 'w', not a state dict"):
        load_checkpoint(save({"epoch": 3, "w": torch.zeros(1)}, tmp_path / "mixed.pth"))


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("this must never run",))


def test_refuses_pickles_that_run_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgesam.export import load_checkpoint

    path = tmp_path / "evil.pth"
    torch.save({"w": _Payload()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"asks for __builtin__\.print"):
        load_checkpoint(path)
    # Bare pickles (torch's legacy format, pickle.dump) are not read at all.
    torch.save({"w": _Payload()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="bare pickle"):
        load_checkpoint(path)
    with path.open("wb") as stream:
        pickle.dump({"w": _Payload()}, stream, protocol=2)
    with pytest.raises(CheckpointError, match="bare pickle"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_missing_file(tmp_path: Path) -> None:
    from edgesam.export import load_checkpoint

    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path)


def test_errors_are_value_errors() -> None:
    assert issubclass(CheckpointError, ValueError)
    assert issubclass(InvalidInputError, ValueError)
