"""The AASIST head against an independent transcription of the published AASIST back-end (Jung et al. 2022), in the
structure and parameter names of clovaai/aasist as Tak et al. 2022 (SSL_Anti-spoofing) and the SONAR release put it on
top of XLS-R: weights copied into that structure must give the same logits."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modeling_sonar import SonarConfig
from modeling_sonar.aasist import SonarAasistHead


def _bn_nodes(norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    return norm(x.view(-1, x.shape[-1])).view(x.shape)


class ReferenceResidualBlock(nn.Module):
    """As published: `bn1` + SELU of the input are computed and then not used; `conv1` reads the block's input."""

    def __init__(self, nb_filts, first=False):
        super().__init__()
        self.first = first
        if not first:
            self.bn1 = nn.BatchNorm2d(nb_filts[0])
        self.conv1 = nn.Conv2d(nb_filts[0], nb_filts[1], kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(nb_filts[1])
        self.conv2 = nn.Conv2d(nb_filts[1], nb_filts[1], kernel_size=(2, 3), padding=(0, 1))
        self.downsample = nb_filts[0] != nb_filts[1]
        if self.downsample:
            self.conv_downsample = nn.Conv2d(nb_filts[0], nb_filts[1], kernel_size=(1, 3), padding=(0, 1))

    def forward(self, x):
        identity = x
        if not self.first:
            discarded = F.selu(self.bn1(x))  # noqa: F841  (the published block's dead step)
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        if self.downsample:
            identity = self.conv_downsample(identity)
        return out + identity


class ReferenceGraphAttentionLayer(nn.Module):
    def __init__(self, in_dim, out_dim, temperature):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.randn(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def forward(self, x):
        x = self.input_drop(x)
        n = x.size(1)
        pairs = x.unsqueeze(2).expand(-1, -1, n, -1) * x.unsqueeze(2).expand(-1, -1, n, -1).transpose(1, 2)
        att = torch.matmul(torch.tanh(self.att_proj(pairs)), self.att_weight) / self.temp
        att = F.softmax(att, dim=-2).squeeze(-1)
        x = self.proj_with_att(torch.matmul(att, x)) + self.proj_without_att(x)
        return F.selu(_bn_nodes(self.bn, x))


class ReferenceHtrgGraphAttentionLayer(nn.Module):
    def __init__(self, in_dim, out_dim, temperature):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = nn.Parameter(torch.randn(out_dim, 1))
        self.att_weight22 = nn.Parameter(torch.randn(out_dim, 1))
        self.att_weight12 = nn.Parameter(torch.randn(out_dim, 1))
        self.att_weightM = nn.Parameter(torch.randn(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def forward(self, x1, x2, master):
        n1, n2 = x1.size(1), x2.size(1)
        x = self.input_drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))
        n = n1 + n2
        pairs = torch.tanh(self.att_proj(x.unsqueeze(2).expand(-1, -1, n, -1) * x.unsqueeze(1).expand(-1, n, -1, -1)))
        board = torch.zeros_like(pairs[..., :1])
        board[:, :n1, :n1] = pairs[:, :n1, :n1] @ self.att_weight11
        board[:, n1:, n1:] = pairs[:, n1:, n1:] @ self.att_weight22
        board[:, :n1, n1:] = pairs[:, :n1, n1:] @ self.att_weight12
        board[:, n1:, :n1] = pairs[:, n1:, :n1] @ self.att_weight12
        att = F.softmax(board / self.temp, dim=-2).squeeze(-1)

        master_att = torch.tanh(self.att_projM(x * master)) @ self.att_weightM
        master_att = F.softmax(master_att / self.temp, dim=-2).squeeze(-1).unsqueeze(1)
        master = self.proj_with_attM(master_att @ x) + self.proj_without_attM(master)

        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        x = F.selu(_bn_nodes(self.bn, x))
        return x.narrow(1, 0, n1), x.narrow(1, n1, n2), master


class ReferenceGraphPool(nn.Module):
    def __init__(self, k, in_dim, p):
        super().__init__()
        self.k = k
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(p)

    def forward(self, h):
        scores = torch.sigmoid(self.proj(self.drop(h)))
        keep = max(int(h.size(1) * self.k), 1)
        idx = torch.topk(scores, keep, dim=1)[1].expand(-1, -1, h.size(-1))
        return torch.gather(h * scores, 1, idx)


class ReferenceAasistBackEnd(nn.Module):
    """The back-end of Tak et al.'s `Model` from `self.LL` on (the SSL front-end left out: it takes the features)."""

    def __init__(self, in_dim, filts, gat_dims, pool_ratios, temperatures):
        super().__init__()
        self.LL = nn.Linear(in_dim, filts[0])
        self.first_bn = nn.BatchNorm2d(1)
        self.first_bn1 = nn.BatchNorm2d(filts[-1][-1])
        self.drop = nn.Dropout(0.5)
        self.drop_way = nn.Dropout(0.2)
        self.encoder = nn.Sequential(
            nn.Sequential(ReferenceResidualBlock(filts[1], first=True)),
            nn.Sequential(ReferenceResidualBlock(filts[2])),
            nn.Sequential(ReferenceResidualBlock(filts[3])),
            nn.Sequential(ReferenceResidualBlock(filts[4])),
            nn.Sequential(ReferenceResidualBlock(filts[4])),
            nn.Sequential(ReferenceResidualBlock(filts[4])),
        )
        channels = filts[-1][-1]
        self.attention = nn.Sequential(
            nn.Conv2d(channels, 128, kernel_size=(1, 1)),
            nn.SELU(),
            nn.BatchNorm2d(128),
            nn.Conv2d(128, channels, kernel_size=(1, 1)),
        )
        self.pos_S = nn.Parameter(torch.randn(1, filts[0] // 3, channels))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.GAT_layer_S = ReferenceGraphAttentionLayer(channels, gat_dims[0], temperatures[0])
        self.GAT_layer_T = ReferenceGraphAttentionLayer(channels, gat_dims[0], temperatures[1])
        self.HtrgGAT_layer_ST11 = ReferenceHtrgGraphAttentionLayer(gat_dims[0], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST12 = ReferenceHtrgGraphAttentionLayer(gat_dims[1], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST21 = ReferenceHtrgGraphAttentionLayer(gat_dims[0], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST22 = ReferenceHtrgGraphAttentionLayer(gat_dims[1], gat_dims[1], temperatures[2])
        self.pool_S = ReferenceGraphPool(pool_ratios[0], gat_dims[0], 0.3)
        self.pool_T = ReferenceGraphPool(pool_ratios[1], gat_dims[0], 0.3)
        self.pool_hS1 = ReferenceGraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hT1 = ReferenceGraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hS2 = ReferenceGraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hT2 = ReferenceGraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.out_layer = nn.Linear(5 * gat_dims[1], 2)

    def _inference(self, out_T, out_S, master, first, second, pool_S, pool_T):
        out_T1, out_S1, master1 = first(out_T, out_S, master=master)
        out_S1, out_T1 = pool_S(out_S1), pool_T(out_T1)
        out_T_aug, out_S_aug, master_aug = second(out_T1, out_S1, master=master1)
        return out_T1 + out_T_aug, out_S1 + out_S_aug, master1 + master_aug

    def forward(self, features):
        x = self.LL(features).transpose(1, 2).unsqueeze(1)
        x = F.selu(self.first_bn(F.max_pool2d(x, (3, 3))))
        x = F.selu(self.first_bn1(self.encoder(x)))
        w = self.attention(x)
        out_S = self.pool_S(self.GAT_layer_S(torch.sum(x * F.softmax(w, dim=-1), dim=-1).transpose(1, 2) + self.pos_S))
        out_T = self.pool_T(self.GAT_layer_T(torch.sum(x * F.softmax(w, dim=-2), dim=-2).transpose(1, 2)))
        T1, S1, M1 = self._inference(
            out_T, out_S, self.master1, self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.pool_hS1, self.pool_hT1
        )
        T2, S2, M2 = self._inference(
            out_T, out_S, self.master2, self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.pool_hS2, self.pool_hT2
        )
        out_T = torch.max(self.drop_way(T1), self.drop_way(T2))
        out_S = torch.max(self.drop_way(S1), self.drop_way(S2))
        master = torch.max(self.drop_way(M1), self.drop_way(M2))
        hidden = torch.cat(
            [
                out_T.abs().max(dim=1)[0],
                out_T.mean(dim=1),
                out_S.abs().max(dim=1)[0],
                out_S.mean(dim=1),
                master.squeeze(1),
            ],
            dim=1,
        )
        return self.out_layer(self.drop(hidden))


# Our parameter names -> the published ones.
RENAMES = [
    ("linear.", "LL."),
    ("first_norm.", "first_bn."),
    ("encoder_norm.", "first_bn1."),
    ("spectral_position", "pos_S"),
    ("gat_spectral.", "GAT_layer_S."),
    ("gat_temporal.", "GAT_layer_T."),
    ("hetero11.", "HtrgGAT_layer_ST11."),
    ("hetero12.", "HtrgGAT_layer_ST12."),
    ("hetero21.", "HtrgGAT_layer_ST21."),
    ("hetero22.", "HtrgGAT_layer_ST22."),
    ("pool_spectral.", "pool_S."),
    ("pool_temporal.", "pool_T."),
    ("pool_hetero_spectral1.", "pool_hS1."),
    ("pool_hetero_temporal1.", "pool_hT1."),
    ("pool_hetero_spectral2.", "pool_hS2."),
    ("pool_hetero_temporal2.", "pool_hT2."),
    (".att_proj_master.", ".att_projM."),
    (".att_weight_master", ".att_weightM"),
    (".proj_with_att_master.", ".proj_with_attM."),
    (".proj_without_att_master.", ".proj_without_attM."),
    (".norm.", ".bn."),
    (".downsample.", ".conv_downsample."),
]


def reference_name(name: str) -> str:
    for ours, theirs in RENAMES:
        name = name.replace(ours, theirs)
    if name.startswith("encoder."):  # encoder.{i}.x -> encoder.{i}.0.x (each block wrapped in a Sequential)
        _, index, rest = name.split(".", 2)
        name = f"encoder.{index}.0.{rest}"
    return name


def build_pair(config: SonarConfig, hidden_size: int) -> tuple[SonarAasistHead, ReferenceAasistBackEnd]:
    """Our head with random weights and BatchNorm statistics, and the reference back-end holding the same weights."""
    torch.manual_seed(0)
    head = SonarAasistHead(
        hidden_size=hidden_size,
        linear_size=config.aasist_linear_size,
        filters=config.aasist_filters,
        gat_dims=config.aasist_gat_dims,
        temperatures=config.aasist_temperatures,
        pool_ratios=config.aasist_pool_ratios,
        dropout=config.aasist_dropout,
        num_labels=2,
        preactivation=config.aasist_preactivation,
    )
    with torch.no_grad():
        for name, param in head.named_parameters():
            if "att_weight" in name or name in ("spectral_position", "master1", "master2"):
                param.normal_()  # created empty; the model's `_init_weights` fills them
        for module in head.modules():  # eval-mode BatchNorm that is not the identity
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.3)
                module.running_mean.normal_(0.0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
    filts = [config.aasist_linear_size, *config.aasist_filters[:4]]
    reference = ReferenceAasistBackEnd(
        hidden_size, filts, config.aasist_gat_dims, config.aasist_pool_ratios, config.aasist_temperatures
    )
    state = {reference_name(name): tensor for name, tensor in head.state_dict().items()}
    missing, unexpected = reference.load_state_dict(state, strict=False)
    # Only the published blocks' discarded `bn1` has no counterpart (it never touches the output).
    assert all(".bn1." in name for name in missing), missing
    assert not unexpected, unexpected
    return head.eval(), reference.eval()


def max_difference(config: SonarConfig, frames: int = 201, hidden_size: int = 48) -> float:
    head, reference = build_pair(config, hidden_size)
    features = torch.randn(3, frames, hidden_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = head(features), reference(features)
    # the logits must depend on the input well beyond the tolerance, or agreement would be vacuous
    assert (theirs - theirs.mean(0)).abs().max() > 1e-3
    return (ours - theirs).abs().max().item()


def test_head_matches_the_published_structure_with_the_same_weights():
    assert max_difference(SonarConfig()) < 1e-6


def test_preactivation_switch_departs_from_the_published_block():
    assert max_difference(SonarConfig(aasist_preactivation=True)) > 1e-3


@pytest.mark.parametrize("preactivation", [False, True])
def test_blocks_hold_a_first_norm_only_when_it_is_used(preactivation):
    config = SonarConfig(aasist_preactivation=preactivation)
    head, _ = build_pair(config, 48)
    with_norm = [i for i, block in enumerate(head.encoder) if block.bn1 is not None]
    assert with_norm == ([1, 2, 3, 4, 5] if preactivation else [])
