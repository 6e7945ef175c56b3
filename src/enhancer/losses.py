"""Training losses and the SI-SDR metric, all on waveforms in float32."""

import torch


def si_sdr(estimate, target, eps=1e-8):
    """Scale-invariant SDR in dB per batch row, in float32."""
    estimate = estimate.float() - estimate.float().mean(dim=-1, keepdim=True)
    target = target.float() - target.float().mean(dim=-1, keepdim=True)
    alpha = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps)
    projection = alpha * target
    noise = estimate - projection
    return 10 * torch.log10((projection.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def enhancement_loss(name, estimate, target, stft):
    """Loss to minimise: name "sisdr" is the negative SI-SDR in dB, "l1" a spectral L1."""
    if name == "sisdr":
        return -si_sdr(estimate, target).mean()
    # Compressed-magnitude L1 plus a waveform L1 that keeps the level anchored.
    mag_e = stft(estimate).abs().clamp_min(1e-8) ** 0.3
    mag_t = stft(target).abs().clamp_min(1e-8) ** 0.3
    return (mag_e - mag_t).abs().mean() + (estimate.float() - target.float()).abs().mean()
