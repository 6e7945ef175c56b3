"""The errors kjob raises, as one small tree.

    KjobError                 base; carries the CLI exit code
    ├── UsageError            bad arguments or parameters (exit 2)
    ├── ConfigError           workspace or recipe configuration is wrong (exit 2); also the run
    │                         ledger damaged, or written by a newer kjob (kjob.runs.db)
    ├── ValidationError       a built kernel failed its static checks (exit 3)
    ├── NotFoundError         no such recipe, kernel, run or file (exit 4)
    │   └── RunGone           the run's remote kernel was deleted or re-created
    ├── RunFailed             a notebook run ended in error or timed out (exit 1)
    ├── LocalFileError        a local file cannot be written or would be replaced (exit 8):
    │                         disk full, no permission, a downloaded file edited locally,
    │                         the run ledger locked by another process past KJOB_LEDGER_TIMEOUT
    └── BackendError          a backend or its service failed (exit 7)
        ├── NotServed         the backend no longer serves this of the run (Kaggle: an older version's log)
        ├── PushedWithProblem the backend made a version but something is wrong with it
        ├── NoRoom            the backend runs as many sessions as it allows: later, it may take it
        └── QuotaLow          the account's accelerator quota is too low for another run

The CLI prints `error: <message>` (one line per problem) and exits with the code;
it never shows a traceback for these. Each error also keeps the facts its message was made
from, as httpx's errors keep their request and response: `http_status` and `method` when an
HTTP answer made it (a BackendError, or a NotFoundError for a 404), and a failed smoke run's
`failure` (RunFailed).
"""


class KjobError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, details: list[str] | None = None,
                 http_status: int | None = None, method: str | None = None):
        super().__init__(message)
        self.message = message
        # Extra one-line messages printed before the main one (e.g. each failed check).
        self.details = list(details or [])
        # The HTTP answer that made this error, if one did: its status, and the request that
        # got it (Kaggle's API method, "GetKernel"; a Ray Jobs API request, "GET /api/jobs/ID").
        self.http_status = http_status
        self.method = method


class UsageError(KjobError):
    exit_code = 2


class ConfigError(KjobError):
    exit_code = 2


class ValidationError(KjobError):
    exit_code = 3


class NotFoundError(KjobError):
    exit_code = 4


class RunGone(NotFoundError):
    """The remote kernel of a run no longer exists (deleted, or re-created under its name)."""


class RunFailed(KjobError):
    exit_code = 1

    def __init__(self, message: str, *, failure=None, **kwargs):
        super().__init__(message, **kwargs)
        self.failure = failure  # kjob.sandbox.execute_notebook.Failure: cell, location, kind (a smoke run)


class LocalFileError(KjobError):
    exit_code = 8


class BackendError(KjobError):
    exit_code = 7


class NotServed(BackendError):
    """The backend no longer serves this part of the run (Kaggle serves the log of a kernel's
    latest version only): what kjob fetched of it before stays as it is."""


class PushedWithProblem(BackendError):
    """The push failed a check after the backend had already made a version (Kaggle still
    runs it): the caller records that version before reporting the problem."""

    def __init__(self, message: str, submitted, **kwargs):
        super().__init__(message, **kwargs)
        self.submitted = submitted  # kjob.backends.base.Submitted


class NoRoom(BackendError):
    """Refused, nothing made, because the account already runs as many sessions as the backend
    allows (Kaggle's two GPU sessions): the same push may succeed once one ends."""


class QuotaLow(BackendError):
    """Refused, nothing made: the quota left is less than the run's session timeout."""
