"""Pure functions of the evaluator around the scores: the lag between output and
reference, SI-SDR values at the numerical ceiling (on the demo's own speech), and the
noise type and SNR read from file names."""

from pathlib import Path

import numpy as np
import soundfile as sf

from speechscore.lag import estimate_lag
from speechscore.metrics import score_signal, si_sdr, si_sdr_at_ceiling

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def pair(name: str = "0003.wav"):
    noisy, _ = sf.read(DEMO / "test" / name, dtype="float32")
    clean, _ = sf.read(DEMO / "y_test" / name, dtype="float32")
    return noisy, clean


def late(wave: np.ndarray, samples: int) -> np.ndarray:
    if samples >= 0:
        return np.concatenate([np.zeros(samples, np.float32), wave[: wave.size - samples]])
    return np.concatenate([wave[-samples:], np.zeros(-samples, np.float32)])


def test_a_three_sample_lag_is_found_where_si_sdr_collapses_and_pesq_does_not():
    noisy, clean = pair()
    shifted = late(clean, 3)
    assert estimate_lag(clean, shifted).samples == 3
    assert estimate_lag(clean, late(clean, -40)).samples == -40
    assert estimate_lag(clean, -0.5 * late(clean, 7)).samples == 7  # gain and polarity do not matter
    assert estimate_lag(clean, noisy).samples == 0  # the demo's noisy inputs are aligned
    assert estimate_lag(clean, late(noisy, 3)).samples == 3
    scores = score_signal(clean, shifted)
    assert scores["si_sdr"].value < 5 and scores["pesq_wb"].value > 4.4  # why the lag is worth a warning
    rng = np.random.default_rng(0)
    unrelated = estimate_lag(clean, rng.standard_normal(clean.size).astype(np.float32))
    assert unrelated.samples is None and unrelated.correlation < 0.3  # no lag claimed for noise


def test_si_sdr_at_the_ceiling_is_flagged_and_the_value_itself_unchanged():
    noisy, clean = pair()
    assert si_sdr_at_ceiling(clean, clean) and si_sdr(clean, clean).value > 90
    assert si_sdr_at_ceiling(clean, 2.0 * clean)  # scale invariance: still the reference
    assert not si_sdr_at_ceiling(clean, clean + 1e-3 * noisy)
    assert not si_sdr_at_ceiling(clean, noisy)
    assert not si_sdr_at_ceiling(np.zeros_like(clean), noisy)  # undefined, not at the ceiling


def test_noise_type_and_snr_from_file_names():
    from speechscore.conditions import breakdown, from_names, snr_band

    found = from_names({"a": "noisy/p232_001_babble_5dB.wav", "b": "cafe/p232_002_snr_-2.5.wav",
                        "c": "noisy/p232_003.wav", "d": "white/x_10db.flac"})
    assert found == {"a": {"noise": "babble", "snr_db": 5.0, "voice": "p232"},
                     "b": {"noise": "cafe", "snr_db": -2.5, "voice": "p232"},
                     "c": {"noise": None, "snr_db": None, "voice": "p232"},  # VoiceBank's speaker
                     "d": {"noise": "white", "snr_db": 10.0, "voice": None}}
    assert snr_band(-2.5) == "-5 to 0 dB" and snr_band(5.0) == "5 to 10 dB"
    rows = [{"noise": "babble", "snr_db": 5.0, "pesq_wb_noisy": 1.0, "pesq_wb_enhanced": 2.0, "pesq_wb_delta": 1.0},
            {"noise": "babble", "snr_db": 7.0, "pesq_wb_noisy": 2.0, "pesq_wb_enhanced": 2.0, "pesq_wb_delta": 0.0}]
    table = breakdown(rows, ["pesq_wb"])
    assert table["by_noise"]["babble"]["count"] == 2 and table["by_noise"]["babble"]["pesq_wb_delta"] == 0.5
    assert list(table["by_snr"]) == ["5 to 10 dB"]
