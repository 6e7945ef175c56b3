"""A Kaggle-compatible local server, to rehearse Kaggle runs offline and to test kjob's Kaggle
backend, and the official `kaggle` CLI, through real HTTP and the real kagglesdk client.

It stores pushed kernels and their versions, pushed datasets and models and theirs (in `--state-dir`,
which a restart reloads), runs each pushed notebook or script in the run sandbox (Kaggle's
input layouts; pushed datasets, and local folders standing for sources that exist on Kaggle,
as its data sources), and answers status, output listings with file URLs, logs (also live),
GetKernel (also of a version), ListKernels, quota, DeleteKernel, the downloads of a version's
output, IntrospectToken, the dataset calls (blob uploads, create, new version, get, status,
file listing, list, metadata, download, delete) and the model calls (create, get, list,
instances, their versions, download). It answers as strictly as Kaggle: 403 for a kernel that
does not exist, versions only as "v<N>", machine shapes from Kaggle's list.
Faults are injected on demand (faults.py). `kjob emulator` serves it from the command line.

    server.py     HTTP routes, fault injection on the wire; `Emulator` (start/stop)
    wire.py       request bodies read in pieces, files sent with Range/ETag (the handler's mixin)
    auth.py       who is calling (Basic or Bearer), IntrospectToken
    store.py      the state in memory, access rules, method dispatch, output file URLs
    model.py      kernels, datasets, models and versions, and how they are kept in --state-dir
    push.py       SaveKernel and DeleteKernel: what changes the state
    reads.py      the methods that only read kernels, and the downloads of their output
    answers.py    answers that are not JSON (redirects, files, live logs), and archives
    datasets.py   the datasets API, and which folder serves a dataset source
    models_api.py the models API, and which folder serves a model source
    blobs.py      StartBlobUpload and the uploads it hands out
    quota.py      the weekly quota, per account, in UTC
    sessions.py   one version's run sandbox, answered in Kaggle's terms
    faults.py     the faults that can be switched on
    kaggle_cli.py the official `kaggle` CLI pointed at an emulator on any port
"""
