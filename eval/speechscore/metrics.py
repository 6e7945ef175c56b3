"""Speech metrics over 1-D float arrays at 16 kHz.

Each function returns a Score: a float, or None with a short reason when the metric is
undefined for this input (silent reference, too short, NaN or all-zero output, unequal
lengths). Reasons carry no numbers so that a summary can count them.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np

try:
    from speechscore import SAMPLE_RATE
except ImportError:  # inlined into the evaluation notebook (builders/r3-dpt-eval.toml)
    SAMPLE_RATE = 16000

PESQ_MIN_SECONDS = 0.25
SI_SDR_EPS = 1e-8
# Below this peak a reference is treated as silent (16-bit PCM's smallest step is 3e-5).
SILENCE_PEAK = 1e-5

METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")
# How people write them, and their units, for messages and the report.
LABELS = {"pesq_wb": "PESQ-WB", "pesq_nb": "PESQ-NB", "stoi": "STOI", "estoi": "ESTOI", "si_sdr": "SI-SDR"}
UNITS = {"si_sdr": " (dB)"}

CONVENTIONS = {
    "sample_rate": SAMPLE_RATE,
    "pesq_wb": "ITU-T P.862.2 wide-band MOS-LQO from the pesq package at 16 kHz (not the corrected pesqc2 variant)",
    "pesq_nb": "ITU-T P.862 narrow-band MOS-LQO from the pesq package ('nb' mode) on the 16 kHz signals",
    "stoi": "pystoi.stoi(extended=False); the reference is the clean signal",
    "estoi": "pystoi.stoi(extended=True) (Jensen and Taal 2016)",
    "si_sdr": ("scale-invariant SDR in dB with the mean of reference and estimate removed first "
               "(Le Roux et al. 2019, as asteroid's loss and the MATLAB code); eps 1e-8 in the "
               "projection and the ratio"),
    "signals": "scored as float32 at 16 kHz, never clipped to 16-bit; other rates resampled with soxr (HQ)",
    "improvement": "enhanced minus noisy, per utterance; summary improvements average the utterances where both are defined",
    "means": "means and medians cover the utterances where the metric is defined; the others are counted under failures",
    "si_sdr_ceiling": ("an SI-SDR whose residual energy is at most eps (1e-8) sits at the numerical ceiling "
                       "(about 10*log10(energy/eps)) and is flagged; si_sdr_ceiling gives the means without them"),
    "lag": ("samples by which a signal trails its clean reference, from the peak of their cross-correlation "
            "within 0.25 s (empty when the peak's normalised correlation is under 0.3)"),
    "changes": ("an utterance counts as improved or worse when its improvement is beyond the tolerance "
                "(PESQ 0.005, STOI and ESTOI 0.0005, SI-SDR 0.05 dB), else unchanged"),
}


@dataclass(frozen=True)
class Score:
    value: float | None
    reason: str | None = None


def active_metrics(pesq_nb: bool = False) -> tuple[str, ...]:
    return tuple(m for m in METRICS if pesq_nb or m != "pesq_nb")


def input_problem(reference: np.ndarray, estimate: np.ndarray) -> str | None:
    """Why no metric can be computed for this pair, or None."""
    if reference.shape != estimate.shape:
        return "unequal lengths"
    if reference.size == 0:
        return "empty signal"
    if not np.isfinite(reference).all():
        return "reference has NaN or infinite samples"
    if float(np.max(np.abs(reference))) < SILENCE_PEAK:
        return "silent reference"
    if not np.isfinite(estimate).all():
        return "output has NaN or infinite samples"
    if not np.any(estimate):
        return "output is all zeros"
    return None


def pesq_score(reference, estimate, mode: str = "wb", rate: int = SAMPLE_RATE) -> Score:
    problem = input_problem(reference, estimate)
    if problem:
        return Score(None, problem)
    if reference.size < PESQ_MIN_SECONDS * rate:
        return Score(None, "too short for PESQ (under 0.25 s)")
    from pesq import BufferTooShortError, NoUtterancesError, PesqError, pesq

    try:
        value = pesq(rate, reference, estimate, mode)
    except NoUtterancesError:
        return Score(None, "PESQ found no speech")
    except BufferTooShortError:
        return Score(None, "too short for PESQ (under 0.25 s)")
    except (PesqError, ValueError) as exc:
        return Score(None, f"PESQ failed: {type(exc).__name__}")
    return _finite(value, "PESQ")


def stoi_score(reference, estimate, extended: bool = False, rate: int = SAMPLE_RATE) -> Score:
    problem = input_problem(reference, estimate)
    if problem:
        return Score(None, problem)
    from pystoi import stoi

    # Extended STOI adds eps-sized noise from numpy's global generator: seed it (and give
    # the caller's state back) so that a value never depends on what ran before.
    saved = np.random.get_state()
    np.random.seed(0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = stoi(np.asarray(reference, np.float64), np.asarray(estimate, np.float64),
                         rate, extended=extended)
    finally:
        np.random.set_state(saved)
    # pystoi answers 1e-5 (with a warning) when fewer than 30 frames of speech remain.
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return Score(None, "too little speech for STOI (under 30 frames)")
    return _finite(value, "STOI")


def si_sdr(reference, estimate) -> Score:
    """SI-SDR in dB, mean removed (Le Roux et al. 2019).

    Sums use np.sum rather than BLAS dot so that the value does not depend on how many
    threads the process has (serial and parallel runs must agree to the last bit)."""
    problem = input_problem(reference, estimate)
    if problem:
        return Score(None, problem)
    energies = _si_sdr_energies(reference, estimate)
    if energies is None:
        return Score(None, "silent reference")
    target, noise = energies
    ratio = target / (noise + SI_SDR_EPS)
    return _finite(10.0 * math.log10(ratio + SI_SDR_EPS), "SI-SDR")


def _si_sdr_energies(reference, estimate):
    """(target energy, residual energy) of SI-SDR's projection, or None for a silent reference."""
    ref = np.asarray(reference, np.float64)
    est = np.asarray(estimate, np.float64)
    ref = ref - ref.mean()
    est = est - est.mean()
    energy = np.sum(ref * ref)
    if energy < SILENCE_PEAK ** 2:
        return None
    target = (np.sum(est * ref) / (energy + SI_SDR_EPS)) * ref
    noise = est - target
    return np.sum(target * target), np.sum(noise * noise)


def si_sdr_at_ceiling(reference, estimate) -> bool:
    """Whether SI-SDR is at its numerical ceiling: the residual energy is no larger than
    eps, so the value (about 10*log10(energy / eps), some 100 dB for speech) measures eps,
    not the output. Such values dominate a mean; summaries show the mean without them too."""
    if input_problem(reference, estimate):
        return False
    energies = _si_sdr_energies(reference, estimate)
    return energies is not None and bool(energies[1] <= SI_SDR_EPS)


def score_signal(reference, estimate, metrics=active_metrics()) -> dict[str, Score]:
    """Every metric in `metrics` for one signal against its clean reference."""
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    estimate = np.ascontiguousarray(estimate, dtype=np.float32)
    problem = input_problem(reference, estimate)
    if problem:
        return {m: Score(None, problem) for m in metrics}
    functions = {
        "pesq_wb": lambda: pesq_score(reference, estimate, "wb"),
        "pesq_nb": lambda: pesq_score(reference, estimate, "nb"),
        "stoi": lambda: stoi_score(reference, estimate, extended=False),
        "estoi": lambda: stoi_score(reference, estimate, extended=True),
        "si_sdr": lambda: si_sdr(reference, estimate),
    }
    return {m: functions[m]() for m in metrics}


def _finite(value, what: str) -> Score:
    value = float(value)
    if not math.isfinite(value):
        return Score(None, f"{what} is not finite")
    return Score(value)
