"""Spectrogram images as PNG bytes, with numpy and zlib only (no plotting library)."""

import struct
import zlib

import numpy as np

# A perceptually ordered dark-blue -> green -> yellow map (anchors from viridis).
_ANCHORS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)
_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c])
                 for c in range(3)], axis=1).astype(np.uint8)

N_FFT = 512
HOP = 128
DYNAMIC_RANGE_DB = 80.0


def power_db(wave: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """(frequency bins, frames) power in dB of a Hann-windowed STFT."""
    wave = np.nan_to_num(np.asarray(wave, np.float64))
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    frames = 1 + (wave.size - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(wave[index] * np.hanning(n_fft)[None, :], axis=1)
    return 10.0 * np.log10(np.abs(spectrum.T) ** 2 + 1e-12)


def _pool(image: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Average neighbouring rows or columns down to at most `size`."""
    factor = int(np.ceil(image.shape[axis] / size))
    if factor <= 1:
        return image
    keep = (image.shape[axis] // factor) * factor
    image = np.take(image, np.arange(keep), axis=axis)
    shape = list(image.shape)
    shape[axis:axis + 1] = [keep // factor, factor]
    return image.reshape(shape).mean(axis=axis + 1)


def image(db: np.ndarray, top_db: float, height: int = 128, max_width: int = 480) -> np.ndarray:
    """(height, width, 3) uint8: low frequencies at the bottom, top_db as full scale."""
    scaled = np.clip((db - (top_db - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0.0, 1.0)
    scaled = _pool(_pool(scaled[: scaled.shape[0] - scaled.shape[0] % 2], 0, height), 1, max_width)
    return _LUT[(scaled[::-1] * 255).astype(np.uint8)]


def png_bytes(rgb: np.ndarray) -> bytes:
    """A minimal 8-bit RGB PNG (one IDAT chunk, filter 0 on every row)."""
    height, width, _ = rgb.shape
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, -1)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def spectrograms(waves: dict[str, np.ndarray], rate: int = 16000,
                 max_width: int = 480) -> tuple[dict[str, bytes], dict]:
    """One PNG per named wave, all on the same dB scale (the loudest of them as full scale),
    so that noisy, enhanced and clean can be compared by eye; and that scale, for axes and
    a colour bar beside them: {"top_db", "bottom_db", "seconds" (time the image's width
    spans), "max_hz"}."""
    dbs = {name: power_db(w) for name, w in waves.items()}
    top = max(float(d.max()) for d in dbs.values())
    frames = max(d.shape[1] for d in dbs.values())
    factor = max(1, int(np.ceil(frames / max_width)))
    kept = (frames // factor) * factor if factor > 1 else frames
    scale = {"top_db": round(top, 1), "bottom_db": round(top - DYNAMIC_RANGE_DB, 1),
             "seconds": round(((kept - 1) * HOP + N_FFT) / rate, 4), "max_hz": rate // 2}
    return {name: png_bytes(image(d, top, max_width=max_width)) for name, d in dbs.items()}, scale


def colour_bar_png(height: int = 128, width: int = 12) -> bytes:
    """The colour map as a vertical bar, full scale at the top."""
    column = _LUT[np.linspace(255, 0, height).astype(np.uint8)]
    return png_bytes(np.repeat(column[:, None, :], width, axis=1))
