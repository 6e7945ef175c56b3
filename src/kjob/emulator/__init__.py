"""A Kaggle-compatible local server, to rehearse Kaggle runs offline and to test kjob's Kaggle
backend through real HTTP and the real kagglesdk client.

It stores pushed kernels and their versions, runs each pushed notebook with kjob's local
runner (Kaggle's input layouts, local folders standing in for data sources), and answers
status, output listings with file URLs, logs (also live), GetKernel, quota and DeleteKernel.
Faults are injected on demand (faults.py). `kjob emulator` serves it from the command line.

    server.py    HTTP routes, credentials, fault injection; `Emulator` (start/stop)
    store.py     kernels, versions and the API methods' behaviour
    sessions.py  one version's run folder and its runner process
    faults.py    the faults that can be switched on
"""
