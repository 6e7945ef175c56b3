"""Speech enhancement training code, written to be inlined module by module into a notebook.

Each module becomes one notebook cell, in this order: runtime, stft, crn, dpt,
models, losses, audio, data, train. The cells share one namespace, so each
module may only use names defined by the modules before it.

The evaluation notebook (builders/r3-dpt-eval.toml) inlines runtime, stft, crn, dpt, models,
audio, data, metrics (a link to the evaluator's eval/speechscore/metrics.py) and evaluate.
"""
