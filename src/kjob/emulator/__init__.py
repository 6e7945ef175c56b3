"""A Kaggle-compatible local server, to rehearse Kaggle runs offline and to test kjob's Kaggle
backend, and the official `kaggle` CLI, through real HTTP and the real kagglesdk client.

It stores pushed kernels and their versions, and pushed datasets and theirs (in `--state-dir`,
which a restart reloads), runs each pushed notebook or script in the run sandbox (Kaggle's
input layouts; pushed datasets, and local folders standing for sources that exist on Kaggle,
as its data sources), and answers status, output listings with file URLs, logs (also live),
GetKernel (also of a version), ListKernels, quota, DeleteKernel, IntrospectToken, and the
dataset calls (blob uploads, create, new version, get, status, file listing).
Faults are injected on demand (faults.py). `kjob emulator` serves it from the command line.

    server.py     HTTP routes, fault injection on the wire; `Emulator` (start/stop)
    auth.py       who is calling (Basic or Bearer), IntrospectToken
    store.py      the state in memory, access rules, method dispatch, output file URLs
    model.py      kernels, datasets and versions, and how they are kept in --state-dir
    push.py       SaveKernel and DeleteKernel: what changes the state
    reads.py      the methods that only read kernels
    datasets.py   the datasets API, and which folder serves a dataset source
    blobs.py      StartBlobUpload and the uploads it hands out
    quota.py      the weekly quota, per account, in UTC
    sessions.py   one version's run sandbox, answered in Kaggle's terms
    faults.py     the faults that can be switched on
    kaggle_cli.py the official `kaggle` CLI pointed at an emulator on any port
"""
