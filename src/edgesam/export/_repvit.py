"""EdgeSAM's image encoder: a RepViT-M1 CNN with a two-scale fusion and SAM's neck.

Image (1, 3, 1024, 1024) -> stem (stride 4) -> 26 RepViT blocks (stride 32)
-> the stride-16 map of block 23 and the stride-32 map of block 26, each
projected to 256 channels, the coarse one upsampled 2x, summed -> neck ->
embedding (1, 256, 64, 64).

Module names follow the checkpoint (``features.N.token_mixer.0.conv.c`` ...),
so a state dict loads with ``strict=True``.
"""

from __future__ import annotations

import copy
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgesam.export._layers import LayerNorm2d

__all__ = ["BLOCKS", "RepViTEncoder", "UpsampleMode", "inference_form"]

UpsampleMode = Literal["bilinear", "bicubic"]


class BlockSpec(NamedTuple):
    """One RepViT block: output width, stride, squeeze-excite or not."""

    channels: int
    stride: int
    squeeze_excite: bool


def _block_specs() -> tuple[BlockSpec, ...]:
    widths = [48] * 3 + [96] * 4 + [192] * 16 + [384] * 3
    downsampling = {4, 8, 24}
    with_se = {1, 5, 9, 11, 13, 15, 17, 19, 21, 25}
    return tuple(
        BlockSpec(width, 2 if index in downsampling else 1, index in with_se)
        for index, width in enumerate(widths, start=1)
    )


BLOCKS = _block_specs()
"""The 26 blocks ``features.1`` ... ``features.26``."""

STEM_WIDTH = 24
FIRST_WIDTH = 48
FINE_BLOCK = 23  # last block at stride 16 (64 x 64)
EMBED_DIM = 256
_SE_WIDTH = {48: 16, 96: 24, 192: 48, 384: 96}


class ConvBN(nn.Module):
    """Convolution without bias (``c``) followed by BatchNorm (``bn``, eps 1e-5)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.bn(self.c(x))
        return out

    def folded(self) -> tuple[Tensor, Tensor]:
        """Weight and bias of the one convolution equal to this one in eval mode."""
        mean, var = self.bn.running_mean, self.bn.running_var
        if mean is None or var is None:
            raise ValueError("ConvBN.folded needs BatchNorm running statistics")
        scale = self.bn.weight / torch.sqrt(var + self.bn.eps)
        weight = self.c.weight * scale.reshape(-1, 1, 1, 1)
        bias = self.bn.bias - mean * scale
        return weight, bias


class SqueezeExcite(nn.Module):
    """Global mean -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid gate on the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = _SE_WIDTH[channels]
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)
        # The same mean, traced as GlobalAveragePool instead of ReduceMean: int8 kernels
        # exist for the former only (see inference_form).
        self.global_pool = False

    def forward(self, x: Tensor) -> Tensor:
        gate = F.adaptive_avg_pool2d(x, 1) if self.global_pool else x.mean((2, 3), keepdim=True)
        gate = self.fc2(torch.relu(self.fc1(gate)))
        return x * torch.sigmoid(gate)


class RepVGGDepthwise(nn.Module):
    """3x3 depthwise Conv-BN + 1x1 depthwise Conv-BN + identity (training-time form)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = ConvBN(channels, channels, 3, groups=channels)
        self.conv1 = ConvBN(channels, channels, 1, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x) + self.conv1(x) + x
        return out

    @torch.no_grad()
    def reparameterised(self) -> nn.Conv2d:
        """One 3x3 depthwise convolution computing what this block computes in eval mode.

        The 1x1 branch and the identity are linear too: they add to the 3x3
        kernel's centre tap (RepVGG's structural re-parameterisation).
        """
        weight, bias = self.conv.folded()
        weight_1x1, bias_1x1 = self.conv1.folded()
        weight = weight.clone()
        weight[:, :, 1, 1] += weight_1x1[:, :, 0, 0] + 1.0
        channels = weight.shape[0]
        fused = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=True)
        fused.weight.copy_(weight)
        fused.bias = nn.Parameter(bias + bias_1x1)
        return fused


class ChannelMixer(nn.Module):
    """Residual 1x1 expansion: ``x + ConvBN(2C -> C)(GELU(ConvBN(C -> 2C)(x)))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.m = nn.Sequential(
            ConvBN(channels, 2 * channels),
            nn.GELU(),
            ConvBN(2 * channels, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = x + self.m(x)
        return out


class RepViTBlock(nn.Module):
    """``channel_mixer(token_mixer(x))``; the token mixer depends on the stride."""

    def __init__(self, in_channels: int, spec: BlockSpec) -> None:
        super().__init__()
        gate: nn.Module = SqueezeExcite(in_channels) if spec.squeeze_excite else nn.Identity()
        if spec.stride == 1:
            if in_channels != spec.channels:
                raise ValueError("a stride-1 RepViT block keeps its width")
            self.token_mixer = nn.Sequential(RepVGGDepthwise(in_channels), gate)
        else:
            self.token_mixer = nn.Sequential(
                ConvBN(in_channels, in_channels, 3, stride=spec.stride, groups=in_channels),
                gate,
                ConvBN(in_channels, spec.channels),
            )
        self.channel_mixer = ChannelMixer(spec.channels)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.channel_mixer(self.token_mixer(x))
        return out


class CoarseFusion(nn.Module):
    """Project the stride-32 map to 256 channels (``op_list.0``), then upsample 2x."""

    def __init__(self, in_channels: int, upsample_mode: UpsampleMode) -> None:
        super().__init__()
        self.op_list = nn.ModuleList([nn.Conv2d(in_channels, EMBED_DIM, 1, bias=False)])
        self.upsample_mode: UpsampleMode = upsample_mode

    def forward(self, x: Tensor) -> Tensor:
        projected: Tensor = self.op_list[0](x)
        return F.interpolate(
            projected, scale_factor=2.0, mode=self.upsample_mode, align_corners=False
        )


class RepViTEncoder(nn.Module):
    """The image encoder: ``(B, 3, 1024, 1024)`` -> ``(B, 256, 64, 64)``.

    Parameters
    ----------
    upsample_mode : {"bilinear", "bicubic"}
        How the stride-32 features are upsampled before fusion. The official
        ONNX files use ``"bilinear"``; the authors' torch default is bicubic.
    """

    def __init__(self, upsample_mode: UpsampleMode = "bilinear") -> None:
        super().__init__()
        stem = nn.Sequential(
            ConvBN(3, STEM_WIDTH, 3, stride=2),
            nn.GELU(),
            ConvBN(STEM_WIDTH, FIRST_WIDTH, 3, stride=2),
        )
        blocks: list[nn.Module] = [stem]
        width = FIRST_WIDTH
        for spec in BLOCKS:
            blocks.append(RepViTBlock(width, spec))
            width = spec.channels
        self.features = nn.ModuleList(blocks)
        self.fuse_stage2 = nn.Conv2d(BLOCKS[FINE_BLOCK - 1].channels, EMBED_DIM, 1, bias=False)
        self.fuse_stage3 = CoarseFusion(width, upsample_mode)
        self.neck = nn.Sequential(
            nn.Conv2d(EMBED_DIM, EMBED_DIM, 1, bias=False),
            LayerNorm2d(EMBED_DIM),
            nn.Conv2d(EMBED_DIM, EMBED_DIM, 3, padding=1, bias=False),
            LayerNorm2d(EMBED_DIM),
        )

    @property
    def upsample_mode(self) -> UpsampleMode:
        """How the coarse features are upsampled (``"bilinear"`` or ``"bicubic"``)."""
        return self.fuse_stage3.upsample_mode

    def forward(self, image: Tensor) -> Tensor:
        x = image
        fine = image
        for index, block in enumerate(self.features):
            x = block(x)
            if index == FINE_BLOCK:
                fine = x
        fused = self.fuse_stage2(fine) + self.fuse_stage3(x)
        out: Tensor = self.neck(fused)
        return out


def inference_form(encoder: RepViTEncoder) -> RepViTEncoder:
    """A copy of ``encoder`` (eval mode) rewritten for quantisation; same function.

    Every three-branch depthwise block becomes one convolution (one instead of
    two convolutions and two additions per stride-1 block, so the branches'
    sum needs no quantisation of its own), and squeeze-excite pools with
    ``GlobalAveragePool``. Equal up to float32 rounding, which this random-
    weights network amplifies to about 1e-4 in the embedding: the official
    export keeps the authors' form and their exact numbers.
    """
    fused = copy.deepcopy(encoder).eval()
    for module in list(fused.modules()):
        if isinstance(module, SqueezeExcite):
            module.global_pool = True
        for name, child in list(module.named_children()):
            if isinstance(child, RepVGGDepthwise):
                setattr(module, name, child.reparameterised())
    return fused
