"""Finding noisy/clean WAV pairs (extracting archives if needed) and data loaders."""

import multiprocessing
import os
import random
import shutil
import subprocess
import tarfile
import zipfile
import zlib

import numpy as np
import soundfile as sf
import torch

from enhancer.audio import read_audio
from enhancer.stft import SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac")
_DATA_ARCHIVES = (".zip", ".7z", ".tar", ".tar.gz", ".tgz")


def _data_extract_one(archive, target):
    os.makedirs(target, exist_ok=True)
    lower = archive.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
    elif lower.endswith((".tar", ".tar.gz", ".tgz")):
        # The "data" filter refuses absolute paths and links out of the target.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        with tarfile.open(archive) as tf:
            tf.extractall(target, **safe)
    else:
        try:
            import py7zr
            with py7zr.SevenZipFile(archive, mode="r") as zf:
                zf.extractall(path=target)
            return
        except ImportError:
            pass
        exe = shutil.which("7z") or shutil.which("7zz") or shutil.which("7za") or shutil.which("7zr")
        if exe is None:
            raise RuntimeError("cannot extract %s: neither the py7zr package nor a 7z/7za "
                               "binary is available (pip install py7zr, or apt-get install "
                               "p7zip-full)" % archive)
        subprocess.run([exe, "x", "-y", "-o" + target, archive], check=True,
                       stdout=subprocess.DEVNULL)


def extract_archives(root, dest):
    """Extract every archive under `root` into `dest`, mirroring its relative path.

    Kaggle inputs are read-only, hence a separate destination. A marker file
    per archive makes a second call (or a re-run in the same session) free.
    """
    done = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.lower().endswith(_DATA_ARCHIVES):
                continue
            archive = os.path.join(dirpath, name)
            rel = os.path.relpath(archive, root)
            for ext in _DATA_ARCHIVES:
                if rel.lower().endswith(ext):
                    rel = rel[:-len(ext)]
                    break
            target = os.path.join(dest, rel)
            marker = target + ".extracted"
            if not os.path.exists(marker):
                print("extracting %s -> %s" % (archive, target), flush=True)
                _data_extract_one(archive, target)
                open(marker, "w").close()
            done.append(target)
    return done


def folder_role(rel_dir):
    """(split, side) of a folder holding audio, from its last three path parts; None if none
    says. The evaluator (speechscore/discovery.py) finds its pairs with this function too.

    Recognises noisy/clean, train/y_train, test/y_test, x_*/y_*, mix/mixture and names like
    noisy_testset_wav; the nearest recognised part wins, so train/noisy and test/clean work,
    and so does an archive nested as train/train.
    """
    parts = [p.lower() for p in rel_dir.replace("\\", "/").split("/") if p not in ("", ".")][-3:]
    side = None
    for part in reversed(parts):
        if "clean" in part or part == "y" or part.startswith("y_"):
            side = "clean"
        elif "noisy" in part or part in ("x", "train", "test", "mix", "mixture") or part.startswith("x_"):
            side = "noisy"
        if side:
            break
    if side is None:
        return None
    return ("test" if any("test" in p for p in parts) else "train"), side


def _data_scan(root, found):
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        audio = sorted(f for f in filenames if f.lower().endswith(AUDIO_EXTENSIONS))
        if not audio:
            continue
        role = folder_role(os.path.relpath(dirpath, root))
        if role is None:
            found.setdefault(("unknown", dirpath), {})
            continue
        files = found.setdefault(role, {})
        for name in audio:
            # The same file may appear twice (a folder and its extracted archive).
            files.setdefault(os.path.splitext(name)[0], os.path.join(dirpath, name))


def match_key(stem):
    """A file stem without noisy/clean words: noisy_0001 and clean_0001 both give 0001."""
    tokens = [t for t in stem.lower().replace("-", "_").split("_")
              if t not in ("noisy", "clean", "mix", "mixture", "x", "y")]
    return "_".join(tokens)


def match_stems(noisy, clean):
    """Pair file stems: ({noisy stem: clean stem}, noisy stems left, clean stems left).

    By equal stem first, then by stem without noisy/clean words (each clean file once, noisy
    stems in name order). The evaluator pairs its test files with this function too.
    """
    pairs = {s: s for s in noisy if s in clean}
    spare_clean = {match_key(s): s for s in clean if s not in pairs}
    for stem in sorted(noisy):
        key = match_key(stem)
        if stem not in pairs and key in spare_clean:
            pairs[stem] = spare_clean.pop(key)
    used = set(pairs.values())
    return pairs, [s for s in sorted(noisy) if s not in pairs], [s for s in sorted(clean) if s not in used]


def _data_match(noisy, clean, label):
    """Pairs of paths from {stem: path} of each side; the files left over are reported."""
    pairs, lone_n, lone_c = match_stems(noisy, clean)
    for what, lone in (("noisy", lone_n), ("clean", lone_c)):
        if lone:
            print("%s: %d %s files have no partner and are skipped, e.g. %s"
                  % (label, len(lone), what, ", ".join(lone[:5])), flush=True)
    return [(noisy[s], clean[pairs[s]]) for s in sorted(pairs)]


def discover_pairs(root, extract_dir=None):
    """{"train": [(noisy, clean), ...], "test": [...]} found under `root`.

    Archives are extracted into `extract_dir` only when the plain folders do
    not already give training pairs, since extraction can take minutes.
    """
    found = {}
    _data_scan(root, found)
    has_train = ("train", "noisy") in found and ("train", "clean") in found
    if not has_train and extract_dir and extract_archives(root, extract_dir):
        # Scanned from extract_dir so that an archive's own name (train.zip ->
        # train/) still names the folder when its files sit at the archive root.
        _data_scan(extract_dir, found)
    result = {}
    for split in ("train", "test"):
        noisy, clean = found.get((split, "noisy"), {}), found.get((split, "clean"), {})
        result[split] = _data_match(noisy, clean, split) if noisy or clean else []
    if not result["train"]:
        dirs = ["%s %s: %d files" % (k[0], k[1], len(v)) for k, v in found.items()
                if k[0] != "unknown"]
        dirs += ["unrecognised folder %s" % k[1] for k in found if k[0] == "unknown"]
        raise FileNotFoundError(
            "no noisy/clean training pairs under %s (expected folders noisy+clean or "
            "train+y_train); found: %s" % (root, "; ".join(dirs[:20]) or "no audio at all"))
    return result


def split_train_val(pairs, val_fraction):
    """Deterministic split by file name: the same files validate on every run."""
    ordered = sorted(pairs, key=lambda p: (zlib.crc32(os.path.basename(p[0]).encode()), p[0]))
    n_val = 0
    if val_fraction > 0 and len(pairs) >= 2:
        n_val = min(len(pairs) - 1, max(1, round(len(pairs) * val_fraction)))
    val = sorted(ordered[:n_val])
    return sorted(ordered[n_val:]), val


def _data_fit(wave, length):
    if len(wave) >= length:
        return np.ascontiguousarray(wave[:length], dtype=np.float32)
    return np.pad(wave, (0, length - len(wave))).astype(np.float32)


class CropDataset(torch.utils.data.Dataset):
    """Random fixed-length crops of (noisy, clean) pairs; short files are zero-padded."""

    def __init__(self, pairs, crop_samples, sample_rate=SAMPLE_RATE):
        self.pairs = list(pairs)
        self.crop = int(crop_samples)
        self.sample_rate = sample_rate

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, item):
        # (index, seed) from CropSampler: the crop's offset comes from its own seeded generator,
        # so crops are the same whatever the number of workers; a bare index draws from torch's RNG.
        index, seed = item if isinstance(item, (tuple, list)) else (item, None)
        rng = np.random.default_rng(seed) if seed is not None else None
        noisy_path, clean_path = self.pairs[index]
        info_n, info_c = sf.info(noisy_path), sf.info(clean_path)
        # At the target rate only the crop is read, not the whole file.
        direct = info_n.samplerate == info_c.samplerate == self.sample_rate
        if direct:
            length = min(info_n.frames, info_c.frames)
        else:
            full_n = read_audio(noisy_path, self.sample_rate)
            full_c = read_audio(clean_path, self.sample_rate)
            length = min(len(full_n), len(full_c))
        for _ in range(3):
            # torch's RNG, because DataLoader seeds it per worker and numpy's it does not.
            high = max(1, length - self.crop + 1)
            start = int(rng.integers(high)) if rng is not None else int(torch.randint(0, high, ()).item())
            if direct:
                clean = read_audio(clean_path, self.sample_rate, start, self.crop)
            else:
                clean = full_c[start:start + self.crop]
            # A silent target leaves SI-SDR undefined, so try another offset.
            if float(np.mean(clean ** 2)) > 1e-8:
                break
        if direct:
            noisy = read_audio(noisy_path, self.sample_rate, start, len(clean))
        else:
            noisy = full_n[start:start + len(clean)]
        n = min(len(noisy), len(clean))
        return (torch.from_numpy(_data_fit(noisy[:n], self.crop)),
                torch.from_numpy(_data_fit(clean[:n], self.crop)))


class CropSampler(torch.utils.data.Sampler):
    """A seeded shuffle of the training files with one crop seed per draw: (index, seed) items.

    Drawn in the main process from one generator, so the data order and the crops depend on
    the seed only, never on workers, threads or timing."""

    def __init__(self, n, seed=0):
        self.n = int(n)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self):
        return self.n

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator).tolist()
        seeds = torch.randint(0, 2 ** 31 - 1, (self.n,), generator=self.generator).tolist()
        return iter(list(zip(order, seeds)))


class FileDataset(torch.utils.data.Dataset):
    """Whole files for validation: (noisy, clean, name), trimmed to a common length."""

    def __init__(self, pairs, sample_rate=SAMPLE_RATE):
        self.pairs = list(pairs)
        self.sample_rate = sample_rate

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        noisy_path, clean_path = self.pairs[index]
        noisy = read_audio(noisy_path, self.sample_rate)
        clean = read_audio(clean_path, self.sample_rate)
        n = min(len(noisy), len(clean))
        name = os.path.splitext(os.path.basename(noisy_path))[0]
        return torch.from_numpy(_data_fit(noisy, n)), torch.from_numpy(_data_fit(clean, n)), name


def _data_worker_init(worker_id):
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)
    # Workers only read and crop audio; extra threads would fight the main process.
    torch.set_num_threads(1)


def make_loaders(train_pairs, val_pairs, batch_size, crop_samples, num_workers=0,
                 device="cpu", seed=0):
    """(train loader of random crops, validation loader of whole files or None)."""
    common = {"num_workers": int(num_workers),
              "pin_memory": torch.device(device).type == "cuda"}
    if num_workers > 0:
        # Persistent workers are created once and shut down with the loader,
        # instead of being torn down (noisily) at the end of every epoch.
        common.update(persistent_workers=True, worker_init_fn=_data_worker_init)
        # Notebook-defined classes cannot be pickled for spawn/forkserver workers.
        if "fork" in multiprocessing.get_all_start_methods():
            common["multiprocessing_context"] = "fork"
    train_set = CropDataset(train_pairs, crop_samples)
    # Each loader has its own generator: a loader draws its workers' base seed from it at every
    # new pass (a pass without persistent workers), which would otherwise move torch's global
    # RNG, and with it dropout, differently with and without workers.
    train = torch.utils.data.DataLoader(
        train_set, batch_size=batch_size, sampler=CropSampler(len(train_set), seed),
        drop_last=len(train_set) >= batch_size,
        generator=torch.Generator().manual_seed(int(seed)), **common)
    val = None
    if val_pairs:
        val = torch.utils.data.DataLoader(FileDataset(val_pairs), batch_size=1, shuffle=False,
                                          generator=torch.Generator().manual_seed(int(seed)), **common)
    return train, val
