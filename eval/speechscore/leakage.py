"""Leakage between a training and a test side, as pure functions over described files.

Three kinds of finding, each a row naming a test file and the training file(s) it shares
something with:
- exact: the same decoded samples (a copy, or the same audio in another container);
- near-duplicate: the same utterance under other noise, gain, a small shift or a
  resampling, found by fingerprint correlation (speechscore.fingerprint);
- shared id: a clip id (the group of --group-by REGEX) present on both sides, as when
  augmented copies of one clip went to train and validation.

Reading the files is leakage_files' job; nothing here touches the disk.
"""

import re
from dataclasses import dataclass, field

import numpy as np

from speechscore import fingerprint as fp

BLOCK = 256  # references correlated at once: bounds the memory of one FFT stack
# Query x reference fingerprint pairs an audit compares at most: about 75 s on 2
# cores for 3 s files (2,000 test files against 1,000 training ones).
EXHAUSTIVE_LIMIT = 2_000_000


@dataclass(frozen=True)
class AudioItem:
    path: str  # as shown in the table: relative to the folder it was found in
    digest: str  # sha256 of the decoded samples (with rate and channels)
    fingerprint: np.ndarray | None  # None: not used for near-duplicates (e.g. a noisy file beside clean ones)
    seconds: float
    inner: str = ""  # the path inside the folder given, where --group-by looks (default: path)


@dataclass(frozen=True)
class Finding:
    kind: str  # exact, near-duplicate, shared id
    test: str
    train: str
    evidence: str
    correlation: float | None = None
    shift_seconds: float | None = None
    others: int = 0  # further training files behind the same finding

    def as_dict(self) -> dict:
        return {"kind": self.kind, "test": self.test, "train": self.train, "evidence": self.evidence,
                "correlation": self.correlation, "shift_seconds": self.shift_seconds, "others": self.others}


@dataclass
class LeakageResult:
    train_files: int
    test_files: int
    findings: list[Finding] = field(default_factory=list)
    compared_fingerprints: int = 0
    skipped: str | None = None  # why near-duplicates were not searched, if they were not
    threshold: float = fp.NEAR_DUPLICATE

    @property
    def clean(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        return counts

    def as_dict(self) -> dict:
        return {"clean": self.clean, "train_files": self.train_files, "test_files": self.test_files,
                "counts": self.counts(), "near_duplicate_threshold": self.threshold,
                "compared_fingerprints": self.compared_fingerprints, "skipped": self.skipped,
                "findings": [f.as_dict() for f in self.findings]}


def exact_duplicates(train: list[AudioItem], test: list[AudioItem]) -> list[Finding]:
    by_digest: dict[str, list[str]] = {}
    for item in train:
        by_digest.setdefault(item.digest, []).append(item.path)
    found = []
    for item in test:
        same = by_digest.get(item.digest)
        if same:
            found.append(Finding("exact", item.path, same[0], "same decoded samples", 1.0, 0.0, len(same) - 1))
    return found


def near_duplicates(train: list[AudioItem], test: list[AudioItem], threshold: float = fp.NEAR_DUPLICATE,
                    skip: set[str] = frozenset()) -> tuple[list[Finding], int]:
    """Each test file (not in `skip`) whose fingerprint correlates at least `threshold`
    with a training file's: its best match, and how many others pass. Also the number of
    comparisons made. References go in blocks (their spectra computed once per block)."""
    references = [t for t in train if t.fingerprint is not None]
    queries = [t for t in test if t.fingerprint is not None and t.path not in skip]
    if not references or not queries:
        return [], 0
    longest_query = max(q.fingerprint.shape[0] for q in queries)
    passing: dict[str, list[tuple[float, int, str]]] = {q.path: [] for q in queries}
    for start in range(0, len(references), BLOCK):
        refs = references[start:start + BLOCK]
        block = fp.reference_block([r.fingerprint for r in refs],
                                   fp.fft_size(longest_query + max(r.fingerprint.shape[0] for r in refs)))
        for query in queries:
            for ref, match in zip(refs, fp.best_matches(query.fingerprint, block)):
                if match.correlation >= threshold:
                    passing[query.path].append((match.correlation, match.shift_frames, ref.path))
    found = []
    for query in queries:
        matches = sorted(passing[query.path], key=lambda p: (-p[0], p[2]))
        if matches:
            corr, shift, ref = matches[0]
            seconds = shift * fp.FRAME_SECONDS
            found.append(Finding("near-duplicate", query.path, ref, _evidence(corr, seconds),
                                 round(corr, 4), round(seconds, 3), len(matches) - 1))
    return found, len(references) * len(queries)


def _evidence(correlation: float, seconds: float) -> str:
    where = "aligned" if seconds == 0 else f"test {abs(seconds) * 1000:.0f} ms {'later' if seconds > 0 else 'earlier'}"
    return f"fingerprint correlation {correlation:.2f}, {where}"


def group_id(pattern: re.Pattern, path: str) -> str | None:
    """The id --group-by finds in a relative path: its first group, else the whole match."""
    found = pattern.search(path)
    if not found:
        return None
    return found.group(1) if pattern.groups else found.group(0)


def shared_ids(train_items: list[AudioItem], test_items: list[AudioItem], pattern: re.Pattern) -> list[Finding]:
    def groups(items):
        found: dict[str, list[str]] = {}
        for item in items:
            key = group_id(pattern, item.inner or item.path)
            if key:
                found.setdefault(key, []).append(item.path)
        return found

    train, test = groups(train_items), groups(test_items)
    findings = []
    for key in sorted(set(train) & set(test)):
        findings.append(Finding("shared id", test[key][0], train[key][0],
                                f"id {key!r}: {len(train[key])} training file(s), {len(test[key])} test file(s)",
                                others=len(train[key]) - 1))
    return findings


def too_many(pairs: int, limit: int = EXHAUSTIVE_LIMIT) -> str:
    return f"{pairs:,} fingerprint comparisons exceed the limit of {limit:,}; near-duplicates were not searched"


def audit(train: list[AudioItem], test: list[AudioItem], group_by: re.Pattern | None = None,
          limit: int = EXHAUSTIVE_LIMIT) -> LeakageResult:
    """Every finding between the two sides: exact copies first (a file found there is not
    searched again for near-duplicates), then near-duplicates, then shared ids."""
    result = LeakageResult(len(train), len(test))
    result.findings = exact_duplicates(train, test)
    pairs = sum(t.fingerprint is not None for t in train) * sum(t.fingerprint is not None for t in test)
    if pairs > limit:
        result.skipped = too_many(pairs, limit)
    else:
        near, result.compared_fingerprints = near_duplicates(train, test, skip={f.test for f in result.findings})
        result.findings += near
    if group_by is not None:
        result.findings += shared_ids(train, test, group_by)
    return result
