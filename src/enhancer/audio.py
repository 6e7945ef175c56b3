"""Reading audio as float32 mono at 16 kHz, and writing a synthetic data set."""

import math
import os

import numpy as np
import soundfile as sf
import torch

from enhancer.stft import SAMPLE_RATE


def resample(wave, orig_sr, new_sr, zero_crossings=6, rolloff=0.99):
    """Polyphase windowed-sinc resampling of a 1-D float array.

    Hann-windowed sinc low-pass at rolloff * the lower Nyquist frequency, the
    same construction as torchaudio's default, which this module may not
    import; the output has ceil(len * new_sr / orig_sr) samples.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if orig_sr == new_sr:
        return wave
    g = math.gcd(int(orig_sr), int(new_sr))
    up, down = int(new_sr) // g, int(orig_sr) // g
    base = min(up, down) * rolloff
    width = math.ceil(zero_crossings * down / base)
    idx = torch.arange(-width, width + down, dtype=torch.float64)[None, None] / down
    t = torch.arange(0, -up, -1, dtype=torch.float64)[:, None, None] / up + idx
    t = (t * base).clamp(-zero_crossings, zero_crossings)
    window = torch.cos(t * math.pi / zero_crossings / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    kernel = (sinc * window * (base / down)).float()
    x = torch.nn.functional.pad(torch.from_numpy(wave)[None, None], (width, width + down))
    y = torch.nn.functional.conv1d(x, kernel, stride=down)
    n_out = math.ceil(up * wave.shape[0] / down)
    return y[0].transpose(0, 1).reshape(-1)[:n_out].numpy()


def read_audio(path, sample_rate=SAMPLE_RATE, start=0, frames=-1):
    """float32 mono at `sample_rate`; start/frames count samples of the file itself."""
    wave, sr = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    return resample(wave, sr, sample_rate)


def make_synthetic_dataset(root, n_train=12, n_test=4, seconds=1.0, seed=0,
                           sample_rate=SAMPLE_RATE, layout="kaggle"):
    """Write tiny noisy/clean WAV pairs for smoke runs and return `root`.

    "Clean" is a harmonic tone with vibrato, gated on and off like syllables;
    "noisy" adds white noise at 0-10 dB SNR. layout "kaggle" writes
    train/y_train/test/y_test, layout "pairs" writes noisy/clean and
    test/noisy, test/clean.
    """
    if layout == "kaggle":
        dirs = {"train": ("train", "y_train"), "test": ("test", "y_test")}
    elif layout == "pairs":
        dirs = {"train": ("noisy", "clean"), "test": ("test/noisy", "test/clean")}
    else:
        raise ValueError("layout must be 'kaggle' or 'pairs', not %r" % (layout,))
    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * sample_rate)))
    t = np.arange(n) / sample_rate
    for split, count in (("train", n_train), ("test", n_test)):
        for sub in dirs[split]:
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        for i in range(count):
            f0 = rng.uniform(110.0, 260.0)
            vibrato = 1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(4.0, 7.0) * t)
            phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sample_rate
            clean = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
                        for k in range(1, 9) if k * f0 < 0.45 * sample_rate)
            gate = np.sin(2 * np.pi * rng.uniform(2.0, 4.0) * t + rng.uniform(0, 2 * np.pi))
            clean = clean * np.sqrt(np.clip(gate, 0.0, None))
            clean = 0.1 * clean / (np.sqrt(np.mean(clean ** 2)) + 1e-9)
            noise = rng.standard_normal(n)
            snr_db = rng.uniform(0.0, 10.0)
            noise *= np.sqrt(np.mean(clean ** 2)) / np.sqrt(np.mean(noise ** 2)) / 10 ** (snr_db / 20)
            noisy = clean + noise
            peak = max(np.abs(noisy).max(), np.abs(clean).max())
            gain = 0.9 / peak if peak > 0.9 else 1.0
            name = "%s_%04d.wav" % (split, i)
            sf.write(os.path.join(root, dirs[split][0], name), (noisy * gain).astype(np.float32),
                     sample_rate, subtype="PCM_16")
            sf.write(os.path.join(root, dirs[split][1], name), (clean * gain).astype(np.float32),
                     sample_rate, subtype="PCM_16")
    return root
