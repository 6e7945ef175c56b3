"""speechscore: the local evaluator behind `kjob eval-local`.

Pure functions over audio arrays (metrics, spectrograms, summaries) and one runner that
feeds them: discover pairs, load and resample, enhance on the CPU, score in a process
pool, write per_utterance.csv, summary.json and an offline HTML report.

    metrics      PESQ, STOI, ESTOI, SI-SDR: a value or None with a reason, never raising
    discovery    noisy/clean pairs from folders, archives or a CSV manifest
    audio        reading, resampling to 16 kHz (soxr), writing
    loading      the test set in memory; unreadable or unequal pairs stop it, named
    model        checkpoint loading and chunked CPU inference
    scoring      the process pool (thread limits set before numpy loads in workers);
                 worker: what each scoring process runs
    cache        noisy-side scores keyed by file content
    summary      per-utterance rows, summary.json, the CSV
    report       the HTML page; spectrogram: PNG images without matplotlib
    compare      the table across evaluated runs
    runner       evaluate(EvalRequest) -> summary dict
    runs         evaluate_run(ws, run, data): a fetched run's best.pt
"""

SAMPLE_RATE = 16000

# The files of one evaluation's folder (eval/reports/<name>/).
SUMMARY_FILE = "summary.json"
SUMMARY_FORMAT = 1
CSV_FILE = "per_utterance.csv"
REPORT_FILE = "report.html"
