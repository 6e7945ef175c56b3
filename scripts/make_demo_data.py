"""Generate the small speech-enhancement demo set in data/demo/, deterministically from a seed.

Clean speech is synthesised by espeak-ng (many voices: accents x variants, including its Klatt
synthesiser, at varied speed and pitch); noisy = clean + noise at -5..15 dB SNR. Noise kinds: babble
of 3-6 overlapping talkers, white, pink and brown noise, mains hum (50/60 Hz and harmonics) and tones.
Layout follows the Kaggle "libri-speech-noise-dataset": train/ (noisy) + y_train/ (clean), test/ +
y_test/, same file names. The output is committed, so only this script needs espeak-ng.

--heldback writes another set instead (test/ + y_test/ only): sentences and voices that neither
split of the demo uses, for measuring how far the demo's gains carry (benchmarks/bench_demo.py);
--real-noise adds a recorded noise (a mono 16 kHz WAV) as one more noise kind, "real_babble".
Usage: python scripts/make_demo_data.py [--out DIR] [--seed N] [--train N] [--test N]
       python scripts/make_demo_data.py --heldback --out DIR [--test N] [--real-noise WAV]
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

VERSION = "2.0"
SR = 16000
PEAK = 10 ** (-6 / 20)     # clean speech is peak-normalised to -6 dBFS, leaving headroom for noise
CEILING = 0.98             # if clean + noise peaks above this, both are scaled by the same factor
MIN_S, MAX_S = 1.5, 2.6    # length of every pair, seconds
MAX_SPEECH_S = 2.1         # longer renders are redone faster: keeps pairs <= 2.6 s and data/demo < 13 MB
SNR_RANGE = (-5.0, 15.0)
NOISES = ("babble", "white", "pink", "brown", "hum", "tone")
SNR_DEFINITION = ("10*log10(P_clean/P_noise), both powers taken over the 'active' 20 ms frames of the "
                  "clean signal: frames whose energy is within 40 dB of its loudest frame")

# A voice is accent+variant. Train, test and the held-back set get disjoint accents AND disjoint
# variants, so no test voice (nor either half of one) is ever heard in training. Babble talkers
# come from the same side. Variants that do not sound like a person (robots, whispers) are left out.
ACCENTS = {"train": ["en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-gbcwmd"],
           "test": ["en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan"],
           "heldback": ["en-gb-x-rp", "en-us-nyc", "de", "nl"]}  # no training accent either
VARIANTS = {"train": ["m1", "m3", "m5", "m7", "f1", "f3", "f5", "klatt", "klatt3", "klatt5", "Alex", "Andy",
                      "Annie", "adam", "Gene", "Jacky", "john", "max", "Michael", "paul", "quincy", "rob",
                      "steph", "travis", "zac", "Lee", "norbert", "belinda", "linda", "Andrea"],
            "test": ["m2", "m4", "m6", "f2", "f4", "klatt2", "klatt4", "benjamin", "caleb", "david", "edward",
                     "Mario", "shelby", "Alicia", "steph2"],
            "heldback": ["m8", "klatt6", "grandma", "grandpa", "iven", "victor", "sandro", "aunty", "Hugo",
                         "Denis", "steph3", "michel", "pablo"]}
SPEED = {"train": (130, 226), "test": (140, 216), "heldback": (130, 226)}   # words per minute
PITCH = (20, 81)
N_TEST_SENTENCES = 32      # of the 80 below, chosen by the seed; the other 48 are training material

SENTENCES = [
    "The kettle boiled while we read the paper.", "Please shut the gate behind you.",
    "A cold wind blew across the empty field.", "She found her keys under the sofa.",
    "The bus was late again this morning.", "Bring a coat in case it rains.",
    "The children laughed at the clumsy puppy.", "He painted the fence a pale green.",
    "Fresh bread smells best in the morning.", "The river rose after three days of rain.",
    "We ate soup and crackers for lunch.", "The old clock stopped at noon.",
    "Turn left at the second traffic light.", "My sister plays the violin very well.",
    "The shop closes early on Sundays.", "A small boat drifted toward the shore.",
    "He forgot to water the tomato plants.", "The library is quiet in the evening.",
    "Put the milk back in the fridge.", "The train pulled slowly into the station.",
    "Our neighbour keeps bees in the garden.", "The letter arrived a week too late.",
    "She wrapped the gift in brown paper.", "The lamp flickered and then went out.",
    "A heavy box blocked the narrow hallway.", "They walked along the beach at sunset.",
    "The cat slept on the warm windowsill.", "He whistled a tune while he worked.",
    "The soup needs a pinch more salt.", "We planted two apple trees last spring.",
    "The baby finally fell asleep.", "Rain tapped softly on the tin roof.",
    "The map was folded the wrong way.", "Leave your muddy boots by the door.",
    "The farmer sold eggs at the market.", "A bright moon lit the quiet lane.",
    "The glass cracked when it hit the floor.", "She knitted a scarf for her brother.",
    "The meeting ran long past five.", "Tea is best served in a thin cup.",
    "The dog chased a ball across the lawn.", "He fixed the bicycle chain himself.",
    "The hills turned gold in the autumn.", "Wash the grapes before you eat them.",
    "The pilot spoke calmly to the passengers.", "A thin layer of frost covered the car.",
    "The bakery sells rolls by the dozen.", "My uncle tells the same joke every year.",
    "The paint dried faster than we expected.", "Keep the receipt in a safe place.",
    "The baker lifted the tray from the oven.", "A loud knock woke the whole house.",
    "The pencils are in the top drawer.", "She rode her horse through the woods.",
    "The cinema was almost empty tonight.", "Stack the plates next to the sink.",
    "The wind carried the smell of the sea.", "He counted the coins on the table.",
    "The roof leaks when the storm is strong.", "Our teacher read us a short poem.",
    "The candle burned down to a stub.", "A flock of geese flew over the lake.",
    "The tailor shortened both of my sleeves.", "Dinner will be ready in ten minutes.",
    "The bridge was closed for repairs.", "She poured honey over the warm toast.",
    "The phone rang twice and then stopped.", "A red kite hung above the meadow.",
    "The carpet needs a good cleaning.", "He carried the ladder to the barn.",
    "The path winds up the steep hill.", "Salt and pepper sat on the shelf.",
    "The nurse checked the patient at dawn.", "We watched the fireworks from the roof.",
    "The orange peel went in the compost.", "A gentle breeze moved the curtains.",
    "The chess game lasted nearly an hour.", "Her garden is full of tall sunflowers.",
    "The fisherman mended his torn net.", "Please speak a little more slowly.",
]

# Only in the held-back set (--heldback): never in data/demo, in neither split.
HELD_SENTENCES = [
    "The painter cleaned his brushes in warm water.", "Our train leaves from platform nine.",
    "A gull stole a chip from my hand.", "The printer ran out of ink again.",
    "Grandfather tells stories about the war.", "The pond froze solid last winter.",
    "Lock the shed before you go to bed.", "The waiter brought us the wrong soup.",
    "A parcel is waiting at the post office.", "The kids built a fort out of blankets.",
    "She sharpened every pencil in the box.", "The storm knocked down two old oaks.",
    "We drove north until the road ended.", "The doctor asked me to breathe slowly.",
    "A mouse ran behind the kitchen cupboard.", "The band played until after midnight.",
    "He spilled coffee over the new report.", "Autumn leaves filled the gutter.",
    "The museum opens at ten on weekdays.", "Her bicycle has a basket on the front.",
    "The sailor tied a knot in the rope.", "Snow fell quietly through the night.",
    "The butcher wrapped the meat in paper.", "Write your name at the top of the page.",
]


def frame_energy(x, frame):
    n = len(x) // frame * frame
    return (x[:n].reshape(-1, frame) ** 2).mean(axis=1)


def active_mask(clean, frame=320, floor_db=40.0):
    """Samples of the 20 ms frames within floor_db of the loudest one (a simple speech-activity rule)."""
    e = frame_energy(clean, frame)
    return np.repeat(e > e.max() * 10 ** (-floor_db / 10), frame)


def active_power(x, mask):
    return float(np.mean(x[: len(mask)][mask] ** 2))


def snr_db(clean, noise):
    """SNR as recorded in the manifest (see SNR_DEFINITION); tests/test_demo_data.py recomputes it."""
    mask = active_mask(clean)
    return 10 * np.log10(active_power(clean, mask) / active_power(noise, mask))


def trim(x, frame=160, floor_db=45.0):
    """Drop leading/trailing 10 ms frames more than floor_db below the loudest; keep 30 ms margins."""
    e = frame_energy(x, frame)
    keep = np.flatnonzero(e > e.max() * 10 ** (-floor_db / 10))
    return x[max(keep[0] - 3, 0) * frame: min((keep[-1] + 4) * frame, len(x))]


class Speaker:
    """Runs espeak-ng, resamples its 22050 Hz output to 16 kHz mono, trims and peak-normalises."""

    def __init__(self, workdir):
        self.wav, self.cache = Path(workdir) / "u.wav", {}

    def __call__(self, text, voice, speed, pitch):
        key = (text, voice, speed, pitch)
        if key not in self.cache:
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(self.wav), text]
            subprocess.run(cmd, check=True, capture_output=True)
            x, sr = sf.read(self.wav, dtype="float64")
            x = trim(soxr.resample(x, sr, SR, quality="HQ"))
            self.cache[key] = x * (PEAK / np.abs(x).max())
        return self.cache[key]


def coloured(n, rng, exponent, floor_hz=20.0):
    """Noise whose power falls as 1/f**exponent (1: pink, 2: brown) above floor_hz, flat below it
    (so that a brown noise's power is not all below hearing), DC removed."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[0], spec[1:] = 0, spec[1:] / np.maximum(f[1:], floor_hz) ** (exponent / 2)
    return np.fft.irfft(spec, n)


def make_noise(kind, n, rng, spk, rec, pools):
    """Unit-scale noise of the given kind; its level is set later from the SNR. Details go into rec."""
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":  # 1/f power: divide a white spectrum by sqrt(f), drop DC (as in version 1)
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / SR)
        spec[0], spec[1:] = 0, spec[1:] / np.sqrt(f[1:])
        return np.fft.irfft(spec, n)
    if kind == "brown":
        return coloured(n, rng, 2.0)
    t = np.arange(n) / SR
    if kind == "hum":  # mains hum: fundamental + 1/k harmonics with random phases, plus faint hiss
        f0, top = int(rng.choice([50, 60])), int(rng.integers(5, 16))
        h = sum(rng.uniform(0.5, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
                for k in range(1, top))
        rec["hum_hz"], rec["hum_harmonics"] = f0, top - 1
        return h / np.sqrt(np.mean(h ** 2)) + 0.05 * rng.standard_normal(n)  # hiss 26 dB below the hum
    if kind == "tone":  # 1-3 steady or gliding tones (whistles, beeps, feedback), some switched on and off
        total, rec["tones"] = np.zeros(n), []
        for _ in range(int(rng.integers(1, 4))):
            f_start, glide = float(rng.uniform(200, 4000)), float(rng.choice([0.0, rng.uniform(-0.3, 0.3)]))
            freq = f_start * (1 + glide * t / t[-1])
            x = np.sin(2 * np.pi * np.cumsum(freq) / SR + rng.uniform(0, 2 * np.pi))
            beep = float(rng.choice([0.0, rng.uniform(2, 6)]))        # on/off rate in Hz, 0 = steady
            if beep:
                gate = (np.sin(2 * np.pi * beep * t + rng.uniform(0, 2 * np.pi)) > 0).astype(float)
                x *= np.convolve(gate, np.hanning(161) / np.hanning(161).sum(), "same")  # 10 ms ramps
            total += rng.uniform(0.5, 1.0) * x
            rec["tones"].append({"hz": round(f_start, 1), "glide": round(glide, 3), "beep_hz": round(beep, 2)})
        return total / np.sqrt(np.mean(total ** 2)) + 0.03 * rng.standard_normal(n)
    if kind == "real_babble":  # a recording (--real-noise), looped, from a random offset
        rec_noise = pools["recording"]
        start = int(rng.integers(len(rec_noise)))
        rec["noise_offset_s"] = round(start / SR, 4)
        return np.resize(np.roll(rec_noise, -start), n)
    # babble: 3-6 other talkers from the same split, never the target's sentence or voice
    k = int(rng.integers(3, 7))
    texts = rng.choice([s for s in pools["sentences"] if s != rec["text"]], k, replace=False)
    voices = rng.choice([v for v in pools["voices"] if v != rec["voice"]], k, replace=False)
    total, rec["babble"] = np.zeros(n), []
    for text, voice in zip(map(str, texts), map(str, voices)):
        speed, pitch = int(rng.integers(*pools["speed"])), int(rng.integers(*PITCH))
        x = spk(text, voice, speed, pitch)
        x = np.resize(np.concatenate([x, np.zeros(SR // 5)]), n)   # loop with a 0.2 s gap to fill n
        x = np.roll(x, int(rng.integers(n)))                       # each talker starts somewhere else
        total += x / np.sqrt(active_power(x, active_mask(x)))     # every talker at the same level
        rec["babble"].append({"text": text, "voice": voice, "speed": speed, "pitch": pitch})
    return total


def make_pair(rec, spk, pools):
    """Returns int16 (clean, noisy) with noisy - clean == noise exactly, at rec['snr_db']."""
    rng = np.random.default_rng(rec["mix_seed"])
    speech = spk(rec["text"], rec["voice"], rec["speed"], rec["pitch"])
    while len(speech) > MAX_SPEECH_S * SR:              # too long for the size budget: speak faster
        rec["speed"] += 20
        speech = spk(rec["text"], rec["voice"], rec["speed"], rec["pitch"])
    lead, tail = (int(rng.uniform(0.05, 0.2) * SR) for _ in range(2))
    n = min(max(len(speech) + lead + tail, int(MIN_S * SR)), int(MAX_S * SR))
    clean = np.zeros(n)
    clean[lead: lead + len(speech)] = speech[: n - lead]
    noise = make_noise(rec["noise"], n, rng, spk, rec, pools)
    mask = active_mask(clean)
    noise *= np.sqrt(active_power(clean, mask) / active_power(noise, mask) / 10 ** (rec["snr_db"] / 10))
    peak = max(np.abs(clean + noise).max(), np.abs(clean).max())
    scale = min(1.0, CEILING / peak)                    # same factor for both keeps the SNR and the pair
    rec["scale"] = round(scale, 4)
    # Quantise clean and noise separately, then add in integers: the files satisfy noisy = clean + noise.
    c16 = np.round(clean * scale * 32767).astype(np.int32)
    n16 = np.round(noise * scale * 32767).astype(np.int32)
    assert np.abs(c16 + n16).max() <= 32767
    rec["duration_s"] = round(n / SR, 4)
    return c16.astype(np.int16), (c16 + n16).astype(np.int16)


def write_wav(path, x):
    with wave.open(str(path), "wb") as w:   # stdlib writer: a fixed 44-byte header, byte-reproducible
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SR)
        w.writeframes(x.astype("<i2").tobytes())


def plan(split, count, seed, pools, noises):
    """Per-pair recipe. Each split has its own RNG, so changing --train leaves the test set alone."""
    rng = np.random.default_rng([seed, ("train", "test", "heldback").index(split)])
    sents, voices = rng.permutation(pools["sentences"]), rng.permutation(pools["voices"])
    kinds = rng.permutation(np.resize(noises, count))   # balanced noise kinds within the split
    # Stratified SNRs: one draw per equal slice of the range, so every 5 dB band is as full as the next.
    low, high = SNR_RANGE
    slices = rng.permutation(count)
    snrs = low + (high - low) * (slices + rng.uniform(0, 1, count)) / count
    return [{"split": split, "file": f"{i + 1:04d}.wav", "text": str(sents[i % len(sents)]),
             "voice": str(voices[i % len(voices)]), "speed": int(rng.integers(*pools["speed"])),
             "pitch": int(rng.integers(*PITCH)), "noise": str(kinds[i]),
             "snr_db": round(float(snrs[i]), 1), "mix_seed": int(rng.integers(2 ** 31))}
            for i in range(count)]


def voice_pool(side):
    return [f"{a}+{v}" for a in ACCENTS[side] for v in VARIANTS[side]]


def build(out, seed, counts, version, heldback=False, recording=None):
    order = np.random.default_rng(seed).permutation(len(SENTENCES))
    split_sents = {"test": [SENTENCES[i] for i in sorted(order[:N_TEST_SENTENCES])],
                   "train": [SENTENCES[i] for i in sorted(order[N_TEST_SENTENCES:])]}
    if heldback:  # written as a test split, so that evaluators find it where they look
        pools = {"test": {"sentences": HELD_SENTENCES, "voices": voice_pool("heldback"),
                          "speed": SPEED["heldback"], "recording": recording}}
        counts = {"test": counts["test"]}
    else:
        pools = {s: {"sentences": split_sents[s], "voices": voice_pool(s), "speed": SPEED[s]} for s in counts}
    noises = NOISES + (("real_babble",) if recording is not None else ())
    files = []
    with tempfile.TemporaryDirectory() as work:
        spk = Speaker(work)
        for split in counts:
            (out / split).mkdir(parents=True), (out / f"y_{split}").mkdir()
            for rec in plan("heldback" if heldback else split, counts[split], seed, pools[split], noises):
                rec["split"] = split
                rec["voice_accent"], rec["voice_variant"] = rec["voice"].split("+")
                clean, noisy = make_pair(rec, spk, pools[split])
                write_wav(out / split / rec["file"], noisy)
                write_wav(out / f"y_{split}" / rec["file"], clean)
                files.append(rec)
    snrs = [r["snr_db"] for r in files]
    summary = {"counts": counts,
               "noise_types": {s: {k: sum(r["split"] == s and r["noise"] == k for r in files) for k in noises}
                               for s in counts},
               "snr_db_range": [min(snrs), max(snrs)],
               "total_seconds": round(sum(r["duration_s"] for r in files), 2),
               "voices": {s: pools[s]["voices"] for s in counts},
               "sentences": {s: pools[s]["sentences"] for s in counts}}
    manifest = {"generator": "scripts/make_demo_data.py", "generator_version": VERSION, "seed": seed,
                "set": "heldback" if heldback else "demo",
                "espeak_ng_version": version, "sample_rate": SR, "format": "WAV, mono, PCM 16-bit",
                "snr_definition": SNR_DEFINITION, "summary": summary, "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    if not heldback:
        (out / "README.md").write_text(README.format(seed=seed, version=version, **counts), encoding="utf-8")


README = """# Demo speech-enhancement data

{train} training pairs (`train/` noisy, `y_train/` clean) and {test} test pairs (`test/`, `y_test/`),
16 kHz mono 16-bit WAV, 1.5-2.6 s each, laid out like the Kaggle "libri-speech-noise-dataset".
Clean speech was synthesised by espeak-ng ({version}) from sentences written for this project, in
many voices (accent x variant, at varied speed and pitch), then mixed at -5 to 15 dB SNR with one of:
babble of 3-6 overlapping talkers, white, pink or brown noise, mains hum (50/60 Hz and harmonics) or
tones; noisy = clean + noise exactly. Test sentences and voices (both the accent and the variant) are
disjoint from training ones; `manifest.json` records how every file was made (voice, speed, pitch,
noise kind and its details, SNR).

Regenerate (needs espeak-ng; byte-identical for the same seed and espeak-ng version):
`python scripts/make_demo_data.py --seed {seed}`

Licence: generated here by kjob's own script from its own sentences; no third-party recordings.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "demo"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--train", type=int, default=64)
    ap.add_argument("--test", type=int, default=32)
    ap.add_argument("--heldback", action="store_true",
                    help="write the held-back set (test/ + y_test/ only) instead of the demo's splits")
    ap.add_argument("--real-noise", metavar="WAV", help="with --heldback: a recorded noise, one more kind")
    args = ap.parse_args()
    if args.real_noise and not args.heldback:
        sys.exit("make_demo_data: --real-noise goes with --heldback (the demo ships no recordings)")
    recording = None
    if args.real_noise:
        recording, rate = sf.read(args.real_noise, dtype="float64", always_2d=True)
        if rate != SR:
            sys.exit(f"make_demo_data: {args.real_noise} is at {rate} Hz, not {SR}")
        recording = recording.mean(axis=1)
    if shutil.which("espeak-ng") is None:
        sys.exit("make_demo_data: espeak-ng not found on PATH (apt-get install espeak-ng); nothing written")
    # Keep only "eSpeak NG text-to-speech: 1.51", not the machine-specific data path after it.
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                             check=True).stdout.split("Data at")[0].strip()
    # espeak-ng silently falls back to the plain voice for an unknown +variant: refuse instead.
    known = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True).stdout
    missing = [v for vs in VARIANTS.values() for v in vs if v not in re.findall(r"!v/(\S+)", known)]
    if missing:
        sys.exit(f"make_demo_data: espeak-ng lacks voice variants {missing}; nothing written")
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and swap it in at the end, so a failure never leaves half a dataset.
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-new-", dir=out.parent))
    try:
        build(stage, args.seed, {"train": args.train, "test": args.test}, version, args.heldback, recording)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
            out.rename(old / out.name)
            stage.rename(out)
            shutil.rmtree(old)
        else:
            stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    what = f"{args.test} held-back pairs" if args.heldback else f"{args.train} train + {args.test} test pairs"
    print(f"wrote {what} to {out}")


if __name__ == "__main__":
    main()
