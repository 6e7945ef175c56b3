"""Dual-path transformer (DPT) mask estimator.

The frequency axis is only strided (257 -> 129 -> 65 bins), never pooled away:
an earlier design that collapsed it before attention learned a near-identity
mask, because the decoder then had nothing frequency-specific to work from.
"""

import torch

from enhancer.stft import HOP_LENGTH, N_FFT, STFT, log_power


def _dpt_compressed(spec, eps=1e-8):
    """Real and imaginary parts with magnitude compressed to the power 0.3.

    Phase carries the harmonic structure that tells speech from noise; the
    compression keeps the values in a range the convolutions handle well.
    """
    ref = (spec.real.float() ** 2 + spec.imag.float() ** 2).mean(dim=(1, 2), keepdim=True)
    spec = spec / torch.sqrt(ref + eps)
    mag = spec.abs()
    spec = spec * (mag + eps) ** -0.7
    return spec.real, spec.imag


class _DptLayer(torch.nn.Module):
    """Pre-norm transformer layer over sequences shaped (S, L, d_model).

    A depthwise convolution along the sequence gives the attention relative
    position, so one layer serves any number of frames.
    """

    def __init__(self, d_model, n_heads, d_ff, dropout):
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.pos = torch.nn.Conv1d(d_model, d_model, 3, padding=1, groups=d_model)
        self.norm1 = torch.nn.LayerNorm(d_model)
        self.qkv = torch.nn.Linear(d_model, 3 * d_model)
        self.out = torch.nn.Linear(d_model, d_model)
        self.norm2 = torch.nn.LayerNorm(d_model)
        self.ff = torch.nn.Sequential(
            torch.nn.Linear(d_model, d_ff), torch.nn.GELU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(d_ff, d_model))
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x):
        s, n, d = x.shape
        x = x + self.pos(x.transpose(1, 2)).transpose(1, 2)
        qkv = self.qkv(self.norm1(x)).reshape(s, n, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        att = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.out(att.transpose(1, 2).reshape(s, n, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class _DptBlock(torch.nn.Module):
    """Attention along frequency within each frame, then along time per bin."""

    def __init__(self, d_model, n_heads, d_ff, dropout):
        super().__init__()
        self.freq = _DptLayer(d_model, n_heads, d_ff, dropout)
        self.time = _DptLayer(d_model, n_heads, d_ff, dropout)

    def forward(self, x):
        b, t, f, c = x.shape
        x = self.freq(x.reshape(b * t, f, c)).reshape(b, t, f, c)
        x = x.transpose(1, 2).reshape(b * f, t, c)
        x = self.time(x).reshape(b, f, t, c).transpose(1, 2)
        return x


def _dpt_conv(c_in, c_out, stride):
    return torch.nn.Sequential(
        torch.nn.Conv2d(c_in, c_out, (3, 3), stride=(stride, 1), padding=(1, 1)),
        torch.nn.BatchNorm2d(c_out), torch.nn.PReLU(c_out))


def _dpt_deconv(c_in, c_out, size_in, size_out):
    extra = size_out - (2 * size_in - 1)
    return torch.nn.Sequential(
        torch.nn.ConvTranspose2d(c_in, c_out, (3, 3), stride=(2, 1), padding=(1, 1),
                                 output_padding=(extra, 0)),
        torch.nn.BatchNorm2d(c_out), torch.nn.PReLU(c_out))


class DPT(torch.nn.Module):
    """Dual-path transformer: CNN encoder (2 frequency strides), dual-path
    blocks with an additive skip around them, transposed-conv decoder back to
    257 bins and a sigmoid mask on the complex STFT. About 0.94 M parameters."""

    def __init__(self, d_model=128, n_heads=4, d_ff=512, n_blocks=2, channels=(24, 48),
                 dropout=0.1, n_fft=N_FFT, hop_length=HOP_LENGTH):
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) != 2:
            raise ValueError("DPT channels must list 2 encoder widths, got %r" % (channels,))
        self.config = {"d_model": int(d_model), "n_heads": int(n_heads), "d_ff": int(d_ff),
                       "n_blocks": int(n_blocks), "channels": channels,
                       "dropout": float(dropout), "n_fft": int(n_fft),
                       "hop_length": int(hop_length)}
        self.stft = STFT(n_fft, hop_length)
        f0 = n_fft // 2 + 1
        f1 = (f0 - 1) // 2 + 1
        f2 = (f1 - 1) // 2 + 1
        self.sizes = (f0, f1, f2)
        self.enc0 = _dpt_conv(3, channels[0], 1)
        self.enc1 = _dpt_conv(channels[0], channels[1], 2)
        self.enc2 = _dpt_conv(channels[1], d_model, 2)
        # Attention along frequency needs to know which band it is in.
        self.freq_embed = torch.nn.Parameter(torch.zeros(1, 1, f2, d_model))
        torch.nn.init.normal_(self.freq_embed, std=0.02)
        self.blocks = torch.nn.ModuleList(
            _DptBlock(d_model, n_heads, d_ff, dropout) for _ in range(n_blocks))
        self.norm = torch.nn.LayerNorm(d_model)
        self.dec2 = _dpt_deconv(d_model, channels[1], f2, f1)
        self.dec1 = _dpt_deconv(channels[1], channels[0], f1, f0)
        self.mask = torch.nn.Conv2d(channels[0], 1, 1)

    def forward(self, wave):
        squeeze = wave.dim() == 1
        if squeeze:
            wave = wave.unsqueeze(0)
        spec = self.stft(wave)
        real, imag = _dpt_compressed(spec)
        x = torch.stack([log_power(spec), real, imag], dim=1)
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        h = e2.permute(0, 3, 2, 1) + self.freq_embed
        for block in self.blocks:
            h = block(h)
        h = self.norm(h).permute(0, 3, 2, 1) + e2
        x = self.dec2(h) + e1
        x = self.dec1(x) + e0
        mask = torch.sigmoid(self.mask(x)[:, 0])
        out = self.stft.inverse(spec * mask.float(), wave.shape[-1])
        return out[0] if squeeze else out
