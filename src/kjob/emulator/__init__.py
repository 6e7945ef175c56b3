"""A Kaggle-compatible local server, to rehearse Kaggle runs offline and to test kjob's Kaggle
backend, and the official `kaggle` CLI, through real HTTP and the real kagglesdk client.

It stores pushed kernels and their versions (in `--state-dir`, which a restart reloads),
runs each pushed notebook or script in the run sandbox (Kaggle's input layouts, local folders
standing in for data sources), and answers status, output listings with file URLs, logs (also
live), GetKernel (also of a version), ListKernels, quota, DeleteKernel and IntrospectToken.
Faults are injected on demand (faults.py). `kjob emulator` serves it from the command line.

    server.py     HTTP routes, fault injection on the wire; `Emulator` (start/stop)
    auth.py       who is calling (Basic or Bearer), IntrospectToken
    store.py      the state in memory, access rules, method dispatch, output file URLs
    model.py      kernels and versions, and how they are kept in --state-dir
    push.py       SaveKernel and DeleteKernel: what changes the state
    reads.py      the methods that only read
    quota.py      the weekly quota, per account, in UTC
    sessions.py   one version's run sandbox, answered in Kaggle's terms
    faults.py     the faults that can be switched on
    kaggle_cli.py the official `kaggle` CLI pointed at an emulator on any port
"""
