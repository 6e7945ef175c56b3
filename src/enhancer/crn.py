"""Convolutional recurrent network (CRN): the small, fast baseline model."""

import torch

from enhancer.stft import HOP_LENGTH, N_FFT, STFT, log_power


def _crn_sizes(n_bins, n_layers):
    """Frequency sizes after each stride-2 convolution: 257 -> 129 -> 65 -> ..."""
    sizes = [n_bins]
    for _ in range(n_layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


class CRN(torch.nn.Module):
    """Conv encoder over (freq, time) of the log power, a bidirectional LSTM over
    time, a transposed-conv decoder with concatenated skips, and a sigmoid mask
    on the complex STFT. About 0.45 M parameters with the defaults."""

    def __init__(self, channels=(16, 32, 32, 32, 32), lstm_hidden=96,
                 n_fft=N_FFT, hop_length=HOP_LENGTH):
        super().__init__()
        channels = [int(c) for c in channels]
        self.config = {"channels": channels, "lstm_hidden": int(lstm_hidden),
                       "n_fft": int(n_fft), "hop_length": int(hop_length)}
        self.stft = STFT(n_fft, hop_length)
        sizes = _crn_sizes(n_fft // 2 + 1, len(channels))
        self.encoder = torch.nn.ModuleList()
        c_in = 1
        for c_out in channels:
            self.encoder.append(torch.nn.Sequential(
                torch.nn.Conv2d(c_in, c_out, (3, 3), stride=(2, 1), padding=(1, 1)),
                torch.nn.BatchNorm2d(c_out), torch.nn.ELU()))
            c_in = c_out
        flat = channels[-1] * sizes[-1]
        self.lstm = torch.nn.LSTM(flat, lstm_hidden, batch_first=True, bidirectional=True)
        self.proj = torch.nn.Linear(2 * lstm_hidden, flat)
        self.decoder = torch.nn.ModuleList()
        for i in reversed(range(len(channels))):
            c_out = channels[i - 1] if i > 0 else 1
            # output_padding makes each layer land exactly on the encoder's size.
            extra = sizes[i] - (2 * sizes[i + 1] - 1)
            layers = [torch.nn.ConvTranspose2d(2 * channels[i], c_out, (3, 3), stride=(2, 1),
                                         padding=(1, 1), output_padding=(extra, 0))]
            if i > 0:
                layers += [torch.nn.BatchNorm2d(c_out), torch.nn.ELU()]
            self.decoder.append(torch.nn.Sequential(*layers))

    def forward(self, wave):
        squeeze = wave.dim() == 1
        if squeeze:
            wave = wave.unsqueeze(0)
        spec = self.stft(wave)
        x = log_power(spec).unsqueeze(1)
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        b, c, f, t = x.shape
        seq = x.permute(0, 3, 1, 2).reshape(b, t, c * f)
        seq, _ = self.lstm(seq)
        x = self.proj(seq).reshape(b, t, c, f).permute(0, 2, 3, 1)
        for layer, skip in zip(self.decoder, reversed(skips)):
            x = layer(torch.cat([x, skip], dim=1))
        mask = torch.sigmoid(x[:, 0])
        out = self.stft.inverse(spec * mask.float(), wave.shape[-1])
        return out[0] if squeeze else out
