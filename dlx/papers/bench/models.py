"""Small stand-ins for the PyTorch paper's Table 1 models (AlexNet, MobileNet, GNMT, NCF), sized so a
training step takes tens of milliseconds on a 2-core CPU. ResNet comes from dlx's own registry."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class AlexNetSmall(nn.Module):
    """AlexNet's shape at 32x32: five 3x3 convs (3 max-pools), then three fully connected layers."""

    def __init__(self, classes: int = 10, width: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(w, 3 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(3 * w, 6 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(6 * w, 4 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveMaxPool2d(4),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(64 * w, 1024), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(1024, 1024), nn.ReLU(inplace=True), nn.Linear(1024, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class MobileNetSmall(nn.Module):
    """MobileNet v1 at 32x32: a conv stem, then depthwise 3x3 + pointwise 1x1 blocks (width, stride)."""

    BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1))

    def __init__(self, classes: int = 10, stem: int = 32):
        super().__init__()
        layers, c = [_conv_bn(3, stem, 3)], stem
        for width, stride in self.BLOCKS:
            layers += [_conv_bn(c, c, 3, stride, groups=c), _conv_bn(c, width, 1)]
            c = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class Seq2Seq(nn.Module):
    """GNMT's skeleton without attention: an LSTM encoder whose final state starts an LSTM decoder,
    trained with teacher forcing (the decoder reads the target shifted by one)."""

    def __init__(self, vocab: int = 2000, embed: int = 128, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.src_embed = nn.Embedding(vocab, embed)
        self.tgt_embed = nn.Embedding(vocab, embed)
        self.encoder = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.decoder = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        _, state = self.encoder(self.src_embed(src))
        dec, _ = self.decoder(self.tgt_embed(tgt_in), state)
        return self.out(dec)  # (B, T, vocab)


class NCF(nn.Module):
    """Neural collaborative filtering (He et al., 2017): a GMF branch (elementwise product of user and
    item embeddings) and an MLP branch (concatenated embeddings), joined by one logit."""

    def __init__(self, users: int = 20000, items: int = 10000, factors: int = 32, mlp=(128, 64, 32)):
        super().__init__()
        self.gmf_user, self.gmf_item = nn.Embedding(users, factors), nn.Embedding(items, factors)
        self.mlp_user, self.mlp_item = nn.Embedding(users, mlp[0] // 2), nn.Embedding(items, mlp[0] // 2)
        layers = []
        for a, b in zip(mlp[:-1], mlp[1:], strict=False):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(factors + mlp[-1], 1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        gmf = self.gmf_user(users) * self.gmf_item(items)
        mlp = self.mlp(torch.cat([self.mlp_user(users), self.mlp_item(items)], dim=1))
        return self.head(torch.cat([gmf, mlp], dim=1)).squeeze(1)


def image_loss(model, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def seq2seq_loss(model, batch) -> torch.Tensor:
    src, tgt = batch
    logits = model(src, tgt[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt[:, 1:].reshape(-1))


def ncf_loss(model, batch) -> torch.Tensor:
    users, items, clicked = batch
    return F.binary_cross_entropy_with_logits(model(users, items).float(), clicked)
