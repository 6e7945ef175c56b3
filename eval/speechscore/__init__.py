"""speechscore: the local evaluator behind `kjob eval-local` and `kjob leakage`.

Pure functions over audio arrays (metrics, lag, fingerprints, leakage findings, spectrograms,
summaries, the report's markup) and a runner that feeds them: discover pairs, load and
resample, enhance on the CPU, score in a process pool behind a cache, write
per_utterance.csv, summary.json and an offline HTML report under a name that never
replaces another evaluation's.

  pure
    metrics      PESQ, STOI, ESTOI, SI-SDR: a value or None with a reason, never raising;
                 the SI-SDR ceiling flag
    lag          the lag of a signal behind its reference (cross-correlation)
    fingerprint  a noise- and gain-robust picture of an utterance, and how two correlate
    leakage      exact, near-duplicate and shared-id findings between two sides
    summary      per-utterance rows, summary.json's statistics, the CSV
    confidence   seeded bootstrap intervals of the mean improvements
    regressions  where the model hurts: negative means, more than a tenth worse, by
                 condition; the note on a checkpoint from very few epochs
    conditions   noise type, SNR and voice per pair (manifest or file names), the input
                 SNR estimated from the signals, the breakdown
    naming       default report names, identities, the never-replace rule
    compare      the table across evaluated runs
    spectrogram  PNG images without matplotlib; report_charts: SVG charts with nice ticks;
    report_parts the report's markup; report_assets: its CSS and two short scripts
  runner
    runner       evaluate(EvalRequest) -> summary dict
    discovery    noisy/clean pairs from folders, archives or a CSV manifest
    audio        reading, resampling to 16 kHz (soxr), writing
    loading      the test set in memory; unreadable or unequal pairs stop it, named
    model        checkpoint loading and chunked CPU inference; fastpath: oneDNN linear layers
    sides        both sides scored with the cache in front; cache: scores by content
    scoring      the process pool (thread limits set before numpy loads in workers);
                 worker: what each scoring process runs
    report       the HTML page and its media; writing: the folder, renamed into place
    leakage_files  the files side of the leakage audit (listing, decoding, caching)
    recorded_run evaluate_run(ws, run, data): a recorded run's fetched best.pt, its report's name
"""

SAMPLE_RATE = 16000

# The files of one evaluation's folder (eval/reports/<name>/).
SUMMARY_FILE = "summary.json"
SUMMARY_FORMAT = 1
CSV_FILE = "per_utterance.csv"
REPORT_FILE = "report.html"
