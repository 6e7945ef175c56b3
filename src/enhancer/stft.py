"""STFT front end shared by the models: 512-point FFT, hop 128, periodic Hann."""

import torch

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 128
N_BINS = N_FFT // 2 + 1


class STFT(torch.nn.Module):
    """Complex STFT of a (B, N) waveform batch and its exact-length inverse."""

    def __init__(self, n_fft=N_FFT, hop_length=HOP_LENGTH):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        # Not persistent: the window is derived from n_fft, so checkpoints need not carry it.
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, wave):
        """(B, N) float -> (B, n_fft // 2 + 1, frames) complex64."""
        # Reflect padding needs more samples than half a frame; tiny inputs get zeros.
        pad_mode = "reflect" if wave.shape[-1] > self.n_fft // 2 else "constant"
        return torch.stft(wave.float(), self.n_fft, hop_length=self.hop_length,
                          window=self.window, center=True, pad_mode=pad_mode,
                          return_complex=True)

    def inverse(self, spec, length):
        """(B, F, frames) complex -> (B, length) float32, exactly `length` samples."""
        return torch.istft(spec, self.n_fft, hop_length=self.hop_length,
                           window=self.window, center=True, length=length)


def log_power(spec, eps=1e-8):
    """Log power normalised by each utterance's mean power.

    Dividing by the mean makes the features independent of the input level,
    which matters because the SI-SDR loss never constrains the level.
    Returns (B, F, T) float32, roughly in [-8, 3].
    """
    power = spec.real.float() ** 2 + spec.imag.float() ** 2
    ref = power.mean(dim=(1, 2), keepdim=True) + eps
    return torch.log10(power / ref + eps)
