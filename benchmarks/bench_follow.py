"""Following a run: what one watch poll costs as its log grows, and how late a run's end is
seen on Kaggle's schedule (issue 24).

1. Poll cost. A run sandbox's log.jsonl of 1,000, 10,000 and 100,000 lines grows by 10 lines
   between polls. Each poll is timed three ways, in the same run: the whole-read approach
   kjob used before (read the whole log, split it into lines again, keep those past the
   count seen: `whole`), what a watch poll does now (`LocalBackend.log_since` from the last
   byte offset, then `LogTail.take` on the new entries only: `since`), and the anchor, one
   plain `read_bytes()` of the whole file (what any whole read costs on this machine).
   Target: a poll's cost does not grow with the log (`since` flat from 1k to 100k lines).

2. End detection. Kaggle's backoff (5 s, x1.5, capped at 60 s) watching runs whose recipe
   ended after E seconds before: five earlier runs and each watched run drawn around the same
   duration (log-normal, 10 % spread, seeded), the schedule simulated with no clock at all
   (`kjob.polling.seen_after`). For each size: the median and 90th percentile of how late the
   end is seen, and the mean number of status calls, without (`plain`) and with the expected
   end (`expected`). Target: median lateness under 15 s, as many calls as plain (within a few %).

    .venv/bin/python benchmarks/bench_follow.py
"""

import gc
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from kjob.backends.kaggle import KaggleBackend
from kjob.backends.local import sandbox_log, sandbox_log_since
from kjob.lifecycle.watch import LogTail, log_lines
from kjob.polling import seen_after
from kjob.sandbox.folder import Sandbox

SIZES = (1_000, 10_000, 100_000)
GROWTH = 10  # lines written between two polls


def entries(start: int, count: int) -> bytes:
    return b"".join(json.dumps({"stream_name": "stdout", "time": i * 0.01, "data": f"step {i} loss {1 / (i + 1):.6f}\n"}
                               ).encode() + b"\n" for i in range(start, start + count))


def poll_costs(lines: int, polls: int) -> tuple[float, float, float]:
    """Seconds per poll, the median of `polls` polls of a log of `lines` lines: (whole, since, anchor)."""
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(Path(tmp))
        log = sandbox.paths.log
        log.write_bytes(entries(0, lines))
        seen, offset, tail = len(log_lines(sandbox_log(sandbox), False)), 0, LogTail(limit=None)
        offset = sandbox_log_since(sandbox, 0)[1]  # a follower that has read what is there
        whole, since, anchor = [], [], []
        written = lines
        for _ in range(polls):
            gc.collect()  # the whole-read approach's garbage is not collected inside another's timing
            with log.open("ab") as handle:
                handle.write(entries(written, GROWTH))
            written += GROWTH
            began = time.perf_counter()
            got, offset = sandbox_log_since(sandbox, offset)
            fresh = tail.take(got, False)[1]
            since.append(time.perf_counter() - began)
            began = time.perf_counter()
            new = log_lines(sandbox_log(sandbox), False)[seen:]  # the approach before issue 24
            seen += len(new)
            whole.append(time.perf_counter() - began)
            began = time.perf_counter()
            log.read_bytes()
            anchor.append(time.perf_counter() - began)
            assert fresh == new and len(new) == GROWTH, (len(fresh), len(new))
        return statistics.median(whole), statistics.median(since), statistics.median(anchor)


def lateness(schedule, duration: float, runs: int = 2000, seed: int = 1) -> dict:
    """How the backend's schedule sees the end of runs about `duration` seconds long."""
    rng = random.Random(seed)
    late = {"plain": [], "expected": []}
    calls = {"plain": [], "expected": []}
    for _ in range(runs):
        earlier = [duration * math.exp(rng.gauss(0, 0.1)) for _ in range(5)]
        median = statistics.median(earlier)
        spread = 1.4826 * statistics.median(abs(s - median) for s in earlier)
        end = duration * math.exp(rng.gauss(0, 0.1))
        for name, delays in (("plain", schedule.delays(rng)), ("expected", schedule.delays(rng, median, spread))):
            count, behind = seen_after(delays, end)
            calls[name].append(count)
            late[name].append(behind)
    return {name: (statistics.median(late[name]), statistics.quantiles(late[name], n=10)[-1],
                   statistics.mean(calls[name])) for name in late}


def main() -> None:
    print("one watch poll, the log growing by 10 lines between polls (median of the polls):")
    for lines in SIZES:
        whole, since, anchor = poll_costs(lines, polls=5 if lines >= 100_000 else 20)
        print(f"  {lines:>7,} lines: whole read + split {whole * 1000:8.2f} ms | since the last offset "
              f"{since * 1000:6.3f} ms | anchor (read_bytes of the log) {anchor * 1000:6.2f} ms | "
              f"{whole / since:,.0f}x less")
    print("Kaggle's schedule (5 s, x1.5, cap 60 s), runs drawn around the recipe's earlier ones (10 % spread):")
    worst = 0.0
    for minutes in (10, 30, 60, 180):
        got = lateness(KaggleBackend.poll, minutes * 60.0)
        (pm, p90, pc), (em, e90, ec) = got["plain"], got["expected"]
        worst = max(worst, em)
        print(f"  {minutes:>3} min runs: plain: median {pm:4.1f} s late (p90 {p90:4.1f}), {pc:6.1f} calls | "
              f"expected end: median {em:4.1f} s late (p90 {e90:4.1f}), {ec:6.1f} calls ({ec / pc:.2f}x plain's)")
    print(f"median lateness with the expected end: at most {worst:.1f} s (target < 15 s: "
          f"{'ok' if worst < 15 else 'OVER'})")


if __name__ == "__main__":
    main()
