"""The Kaggle kernels API calls kjob makes, typed with kagglesdk's own request/response classes.

Every call names the kernel by owner and slug (never a numeric id) and, where the API takes
one, the version (`versionLabel: "v3"`), so no answer silently concerns another version.
Listings are read page by page to the end.
"""

from dataclasses import dataclass

from kagglesdk.kernels.services.kernels_api_service import KernelsApiClient
from kagglesdk.kernels.types import kernels_api_service as api

from kjob.backends.kaggle_transport import Transport
from kjob.kaggle_platform import KaggleRef

PAGE_SIZE = 100
MAX_PAGES = 10_000  # a server that never stops paging is a broken one


@dataclass(frozen=True)
class OutputFile:
    name: str
    url: str


class KernelsApi:
    def __init__(self, transport: Transport):
        self.transport = transport
        self.client = KernelsApiClient(transport.sdk)
        self._user: str | None = None

    def user(self) -> str | None:
        """Who the credentials sign in as: a key's username, or whom Kaggle says a token belongs
        to (IntrospectToken, as the official client asks); None when Kaggle does not say."""
        credentials = self.transport.credentials
        if not credentials.is_token:
            return credentials.username
        if self._user is None:
            from kagglesdk.security.services.oauth_service import OAuthClient
            from kagglesdk.security.types.oauth_service import IntrospectTokenRequest

            request = IntrospectTokenRequest()
            request.token = credentials.secret
            answer = self.transport.call(lambda: OAuthClient(self.transport.sdk).introspect_token(request),
                                         "who the token signs in as")
            self._user = answer.username if answer.active and answer.username else ""
        return self._user or None

    def save(self, request: "api.ApiSaveKernelRequest", what: str) -> "api.ApiSaveKernelResponse":
        return self.transport.call(lambda: self.client.save_kernel(request), what, idempotent=False)

    def kernel(self, ref: KaggleRef, version: int | None = None) -> "api.ApiGetKernelResponse":
        """The kernel's metadata (its id, current version) and the source of `version` (default: the latest)."""
        request = api.ApiGetKernelRequest()
        request.user_name, request.kernel_slug = ref.owner, ref.slug
        if version is not None:
            request.version_label = f"v{version}"
        return self.transport.call(lambda: self.client.get_kernel(request), f"kernel {ref}")

    def session_status(self, ref: KaggleRef, version: int) -> "api.ApiGetKernelSessionStatusResponse":
        request = api.ApiGetKernelSessionStatusRequest()
        request.user_name, request.kernel_slug, request.version_label = ref.owner, ref.slug, f"v{version}"
        return self.transport.call(lambda: self.client.get_kernel_session_status(request), f"kernel {ref} v{version}")

    def session_output(self, ref: KaggleRef, version: int,
                       first_page_only: bool = False) -> tuple[list[OutputFile], str | None]:
        """The output files (url, name) and the log of the session of `version`."""
        files, log = [], None
        for page in self._pages(lambda: api.ApiListKernelSessionOutputRequest(), self.client.list_kernel_session_output,
                                ref, version, f"the output of {ref} v{version}"):
            if log is None:
                log = page.log
            files.extend(OutputFile(f.file_name or "", f.url or "") for f in page.files)
            if first_page_only:
                break
        return files, log

    def kernel_files(self, ref: KaggleRef, version: int) -> dict[str, tuple[int, str]]:
        """Output file name -> (size, creation date), as ListKernelFiles reports them."""
        found = {}
        for page in self._pages(lambda: api.ApiListKernelFilesRequest(), self.client.list_kernel_files,
                                ref, version, f"the files of {ref} v{version}"):
            for item in page.files:
                found[item.name] = (item.size, item.creation_date)
        return found

    def _pages(self, new_request, method, ref: KaggleRef, version: int, what: str):
        token = None
        for _ in range(MAX_PAGES):
            request = new_request()
            request.user_name, request.kernel_slug = ref.owner, ref.slug
            request.version_label, request.page_size = f"v{version}", PAGE_SIZE
            if token:
                request.page_token = token
            page = self.transport.call(lambda: method(request), what)
            yield page
            token = page.next_page_token
            if not token:
                return

    def output_location(self, ref: KaggleRef, version: int) -> str:
        """Where DownloadKernelOutput sends for the whole output of `version` (an archive):
        the call kagglehub's notebook_output_download makes, by `versionNumber`, which serves
        an older version's output too (kagglehub's integration tests)."""
        request = api.ApiDownloadKernelOutputRequest()
        request.owner_slug, request.kernel_slug, request.version_number = ref.owner, ref.slug, version
        return self.transport.call(
            lambda: self.transport.sdk.redirect_of("kernels.KernelsApiService", "DownloadKernelOutput", request),
            f"the output of {ref} v{version}")

    def gpu_quota(self) -> "api.ApiAcceleratorQuota | None":
        response = self.transport.call(lambda: self.client.get_accelerator_quota_statistics(
            api.ApiGetAcceleratorQuotaStatisticsRequest()), "the account's accelerator quota")
        return response.gpu_quota

    def delete(self, ref: KaggleRef) -> str | None:
        request = api.ApiDeleteKernelRequest()
        request.user_name, request.kernel_slug = ref.owner, ref.slug
        response = self.transport.call(lambda: self.client.delete_kernel(request), f"kernel {ref}", idempotent=False)
        return response.error_message

    def log_stream_url(self, ref: KaggleRef) -> str:
        return f"{self.transport.endpoints.api}/kernels/logs/stream/{ref.owner}/{ref.slug}"
