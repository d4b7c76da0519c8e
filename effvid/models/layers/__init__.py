"""Small building blocks shared by the model families."""

from effvid.models.layers.attention import (
    channel_split_attention,
    channel_split_attention_weights,
)
from effvid.models.layers.channel_shuffle import ChannelShuffle
from effvid.models.layers.convolution import temporal_depthwise_conv
from effvid.models.layers.drop_path import DropPath
from effvid.models.layers.dynamic_relu import DynamicReLU, StaticReLU
from effvid.models.layers.memory_format import is_exporting, use_channels_last
from effvid.models.layers.pooling import GlobalAvgPool

__all__ = [
    "ChannelShuffle",
    "DropPath",
    "DynamicReLU",
    "GlobalAvgPool",
    "StaticReLU",
    "channel_split_attention",
    "channel_split_attention_weights",
    "is_exporting",
    "temporal_depthwise_conv",
    "use_channels_last",
]
