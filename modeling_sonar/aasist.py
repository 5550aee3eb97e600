"""AASIST graph-attention back-end (Jung et al. 2022) as Tak et al. 2022 put it on top of XLS-R; SONAR-Full's head."""

import torch
import torch.nn.functional as F
from torch import nn


class SonarAasistResidualBlock(nn.Module):
    """
    AASIST's 2-D residual block: conv (2, 3) -> BatchNorm -> SELU -> conv (2, 3), plus the input (through a 1x3 conv
    where the channel count changes); the (1, 1) then (0, 1) paddings keep the map's size. As published, the first
    conv reads the block's input (the published code's BatchNorm + SELU of the input is discarded, so it is not built
    here); `preactivation=True` inserts that BatchNorm + SELU before the first conv instead.
    """

    def __init__(self, in_channels: int, out_channels: int, preactivation: bool = False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels) if preactivation else None
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        self.downsample = (
            nn.Conv2d(in_channels, out_channels, kernel_size=(1, 3), padding=(0, 1))
            if in_channels != out_channels
            else None
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = hidden_states if self.downsample is None else self.downsample(hidden_states)
        if self.bn1 is not None:
            hidden_states = F.selu(self.bn1(hidden_states))
        hidden_states = F.selu(self.bn2(self.conv1(hidden_states)))
        return self.conv2(hidden_states) + residual


def _batch_norm_nodes(norm: nn.BatchNorm1d, nodes: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d over the feature axis of a (batch, nodes, features) graph."""
    return norm(nodes.reshape(-1, nodes.shape[-1])).reshape(nodes.shape)


class SonarAasistGraphAttention(nn.Module):
    """Graph attention over one node type (spectral or temporal), attention from pairwise node products."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.input_dropout = nn.Dropout(0.2)
        self.temperature = temperature

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        nodes = self.input_dropout(nodes)
        pairs = nodes.unsqueeze(2) * nodes.unsqueeze(1)
        att = (torch.tanh(self.att_proj(pairs)) @ self.att_weight).squeeze(-1)
        att = F.softmax(att / self.temperature, dim=-1)  # over neighbours j of node i
        nodes = self.proj_with_att(att @ nodes) + self.proj_without_att(nodes)
        return F.selu(_batch_norm_nodes(self.norm, nodes))


class SonarAasistHeteroGraphAttention(nn.Module):
    """Heterogeneous graph attention across temporal and spectral nodes, with a master node that reads both."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_proj_master = nn.Linear(in_dim, out_dim)
        self.att_weight11 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weight22 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weight12 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weight_master = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_att_master = nn.Linear(in_dim, out_dim)
        self.proj_without_att_master = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.input_dropout = nn.Dropout(0.2)
        self.temperature = temperature

    def forward(
        self, nodes1: torch.Tensor, nodes2: torch.Tensor, master: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        num1 = nodes1.shape[1]
        nodes = torch.cat([self.proj_type1(nodes1), self.proj_type2(nodes2)], dim=1)
        nodes = self.input_dropout(nodes)

        pairs = torch.tanh(self.att_proj(nodes.unsqueeze(2) * nodes.unsqueeze(1)))
        is_type1 = torch.arange(nodes.shape[1], device=nodes.device) < num1
        same11 = (is_type1[:, None] & is_type1[None, :]).unsqueeze(-1)
        same22 = (~is_type1[:, None] & ~is_type1[None, :]).unsqueeze(-1)
        att_weight = torch.where(
            same11,
            self.att_weight11.view(-1),
            torch.where(same22, self.att_weight22.view(-1), self.att_weight12.view(-1)),
        )  # (nodes, nodes, out_dim): one attention vector per pair of node types
        att = F.softmax((pairs * att_weight).sum(-1) / self.temperature, dim=-1)

        master_att = torch.tanh(self.att_proj_master(nodes * master)) @ self.att_weight_master
        master_att = F.softmax(master_att / self.temperature, dim=-2)
        master = self.proj_with_att_master(master_att.transpose(1, 2) @ nodes) + self.proj_without_att_master(master)

        nodes = self.proj_with_att(att @ nodes) + self.proj_without_att(nodes)
        nodes = F.selu(_batch_norm_nodes(self.norm, nodes))
        return nodes[:, :num1], nodes[:, num1:], master


class SonarAasistGraphPool(nn.Module):
    """Keeps the top `ratio` of nodes by a learned sigmoid score, scaling each kept node by its score."""

    def __init__(self, ratio: float, dim: int, dropout: float = 0.3):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(self.dropout(nodes)))
        keep = max(int(nodes.shape[1] * self.ratio), 1)
        index = scores.topk(keep, dim=1).indices.expand(-1, -1, nodes.shape[-1])
        return torch.gather(nodes * scores, 1, index)


class SonarAasistHead(nn.Module):
    """
    AASIST on fused frames (batch, frames, hidden): a 2-D residual encoder over (linear_size x frames), spectral and
    temporal graphs, two heterogeneous-graph branches each with a master node merged by element-wise max, and a
    readout [max|T|, mean T, max|S|, mean S, master] -> 2 logits.
    """

    def __init__(
        self,
        hidden_size: int,
        linear_size: int,
        filters: list[list[int]],
        gat_dims: list[int],
        temperatures: list[float],
        pool_ratios: list[float],
        dropout: float,
        num_labels: int,
        preactivation: bool = False,
    ):
        super().__init__()
        channels = filters[-1][-1]
        self.linear = nn.Linear(hidden_size, linear_size)
        self.first_norm = nn.BatchNorm2d(1)
        # With pre-activation, every block but the first (which follows `first_norm` and SELU) normalises its input.
        self.encoder = nn.Sequential(
            *[
                SonarAasistResidualBlock(c_in, c_out, preactivation=preactivation and i > 0)
                for i, (c_in, c_out) in enumerate(filters)
            ]
        )
        self.encoder_norm = nn.BatchNorm2d(channels)
        self.attention = nn.Sequential(
            nn.Conv2d(channels, 128, kernel_size=1),
            nn.SELU(),
            nn.BatchNorm2d(128),
            nn.Conv2d(128, channels, kernel_size=1),
        )
        self.spectral_position = nn.Parameter(torch.empty(1, linear_size // 3, channels))
        self.master1 = nn.Parameter(torch.empty(1, 1, gat_dims[0]))
        self.master2 = nn.Parameter(torch.empty(1, 1, gat_dims[0]))

        self.gat_spectral = SonarAasistGraphAttention(channels, gat_dims[0], temperatures[0])
        self.gat_temporal = SonarAasistGraphAttention(channels, gat_dims[0], temperatures[1])
        self.pool_spectral = SonarAasistGraphPool(pool_ratios[0], gat_dims[0])
        self.pool_temporal = SonarAasistGraphPool(pool_ratios[1], gat_dims[0])

        self.hetero11 = SonarAasistHeteroGraphAttention(gat_dims[0], gat_dims[1], temperatures[2])
        self.hetero12 = SonarAasistHeteroGraphAttention(gat_dims[1], gat_dims[1], temperatures[2])
        self.hetero21 = SonarAasistHeteroGraphAttention(gat_dims[0], gat_dims[1], temperatures[2])
        self.hetero22 = SonarAasistHeteroGraphAttention(gat_dims[1], gat_dims[1], temperatures[2])
        self.pool_hetero_spectral1 = SonarAasistGraphPool(pool_ratios[2], gat_dims[1])
        self.pool_hetero_temporal1 = SonarAasistGraphPool(pool_ratios[2], gat_dims[1])
        self.pool_hetero_spectral2 = SonarAasistGraphPool(pool_ratios[2], gat_dims[1])
        self.pool_hetero_temporal2 = SonarAasistGraphPool(pool_ratios[2], gat_dims[1])

        self.branch_dropout = nn.Dropout(0.2)
        self.readout_dropout = nn.Dropout(dropout)
        self.out_layer = nn.Linear(5 * gat_dims[1], num_labels)

    def _branch(self, temporal, spectral, master, first, second, pool_spectral, pool_temporal):
        temporal, spectral, master = first(temporal, spectral, master)
        spectral, temporal = pool_spectral(spectral), pool_temporal(temporal)
        temporal_aug, spectral_aug, master_aug = second(temporal, spectral, master)
        return temporal + temporal_aug, spectral + spectral_aug, master + master_aug

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        feature_map = self.linear(hidden_states).transpose(1, 2).unsqueeze(1)  # (batch, 1, linear_size, frames)
        feature_map = F.selu(self.first_norm(F.max_pool2d(feature_map, (3, 3))))
        feature_map = F.selu(self.encoder_norm(self.encoder(feature_map)))
        weights = self.attention(feature_map)

        spectral = (feature_map * F.softmax(weights, dim=-1)).sum(-1).transpose(1, 2) + self.spectral_position
        spectral = self.pool_spectral(self.gat_spectral(spectral))
        temporal = (feature_map * F.softmax(weights, dim=-2)).sum(-2).transpose(1, 2)
        temporal = self.pool_temporal(self.gat_temporal(temporal))

        batch = hidden_states.shape[0]
        branch1 = self._branch(
            temporal, spectral, self.master1.expand(batch, -1, -1), self.hetero11, self.hetero12,
            self.pool_hetero_spectral1, self.pool_hetero_temporal1,
        )  # fmt: skip
        branch2 = self._branch(
            temporal, spectral, self.master2.expand(batch, -1, -1), self.hetero21, self.hetero22,
            self.pool_hetero_spectral2, self.pool_hetero_temporal2,
        )  # fmt: skip
        temporal, spectral, master = (
            torch.maximum(self.branch_dropout(a), self.branch_dropout(b)) for a, b in zip(branch1, branch2)
        )

        readout = torch.cat(
            [
                temporal.abs().amax(1),
                temporal.mean(1),
                spectral.abs().amax(1),
                spectral.mean(1),
                master.squeeze(1),
            ],
            dim=-1,
        )
        return self.out_layer(self.readout_dropout(readout))


__all__ = ["SonarAasistHead"]
