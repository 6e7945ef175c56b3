"""The lag between a signal and its reference, from their cross-correlation.

Why it matters: SI-SDR compares sample by sample, so an output that is right but 3
samples late loses about 100 dB of it, while PESQ and STOI (which align or work on
32 ms frames) hardly move. A non-zero lag explains such a row and is warned about.
"""

from dataclasses import dataclass

import numpy as np

from speechscore import SAMPLE_RATE

MAX_LAG_SECONDS = 0.25
# Below this normalised correlation at the best lag the signals are too unlike for a
# lag to mean anything (an output of noise, or a noisy input under -10 dB SNR).
MIN_CORRELATION = 0.3


@dataclass(frozen=True)
class Lag:
    samples: int | None  # > 0: the signal comes later than the reference; None: no clear peak
    correlation: float  # normalised, at that lag (0 when undefined)

    @property
    def milliseconds(self) -> float | None:
        return None if self.samples is None else 1000.0 * self.samples / SAMPLE_RATE


def estimate_lag(reference: np.ndarray, signal: np.ndarray, max_lag: int = int(MAX_LAG_SECONDS * SAMPLE_RATE)) -> Lag:
    """The shift (within +-max_lag samples) at which `signal` best matches `reference`,
    by the largest absolute cross-correlation (a polarity flip is still aligned)."""
    ref = np.nan_to_num(np.asarray(reference, np.float64))
    sig = np.nan_to_num(np.asarray(signal, np.float64))
    norm = float(np.sqrt(np.sum(ref * ref) * np.sum(sig * sig)))
    if ref.size == 0 or sig.size == 0 or norm <= 0.0:
        return Lag(None, 0.0)
    from scipy import fft  # pystoi's dependency; any length, not only powers of two

    reach = min(max_lag, ref.size - 1, sig.size - 1)
    # Lags up to `reach` only: a circular correlation of this length does not wrap them.
    n = fft.next_fast_len(max(ref.size, sig.size) + reach + 1, real=True)
    corr = fft.irfft(fft.rfft(sig, n) * np.conj(fft.rfft(ref, n)), n)  # [k]: signal k samples later
    window = np.concatenate([corr[n - reach:], corr[: reach + 1]]) if reach > 0 else corr[:1]
    best = int(np.argmax(np.abs(window)))
    value = abs(float(window[best])) / norm
    if value < MIN_CORRELATION:
        return Lag(None, round(value, 4))
    return Lag(best - reach, round(value, 4))
