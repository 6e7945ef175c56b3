"""The Kaggle datasets and blobs API calls kjob makes, typed with kagglesdk's own classes.

    GetDataset                 does it exist, can this account read it, its current version
    GetDatasetStatus           is its latest version processed (READY) yet
    StartBlobUpload            where one file's bytes go (a signed URL) and the token naming them
    CreateDataset              a new dataset from uploaded tokens
    CreateDatasetVersion       the next version of an existing one

A dataset is named by owner and slug, as kernels are (`KaggleRef`); a source may add "/N" for a version.
"""

from kagglesdk.blobs.services.blob_api_service import BlobApiClient
from kagglesdk.blobs.types import blob_api_service as blob_api
from kagglesdk.datasets.services.dataset_api_service import DatasetApiClient
from kagglesdk.datasets.types import dataset_api_service as api
from kagglesdk.datasets.types.dataset_enums import DatabundleVersionStatus

from kjob.backends.kaggle_transport import Transport
from kjob.kaggle_platform import KaggleRef


class DatasetsApi:
    def __init__(self, transport: Transport):
        self.transport = transport
        self.client = DatasetApiClient(transport.sdk)
        self.blobs = BlobApiClient(transport.sdk)

    def get(self, ref: KaggleRef) -> "api.ApiDataset":
        """The dataset's metadata; NotFoundError (404) when Kaggle has none, BackendError with
        `http_status` 403 when this account may not read it."""
        request = api.ApiGetDatasetRequest()
        request.owner_slug, request.dataset_slug = ref.owner, ref.slug
        return self.transport.call(lambda: self.client.get_dataset(request), f"dataset {ref.owner}/{ref.slug}")

    def status(self, ref: KaggleRef) -> DatabundleVersionStatus:
        request = api.ApiGetDatasetStatusRequest()
        request.owner_slug, request.dataset_slug = ref.owner, ref.slug
        answer = self.transport.call(lambda: self.client.get_dataset_status(request),
                                     f"the status of dataset {ref.owner}/{ref.slug}")
        return answer.status

    def start_upload(self, name: str, size: int, modified: int) -> "blob_api.ApiStartBlobUploadResponse":
        request = blob_api.ApiStartBlobUploadRequest()
        request.type, request.name = blob_api.ApiBlobType.DATASET, name
        request.content_length, request.last_modified_epoch_seconds = size, modified
        # Idempotent enough to resend: an unused reservation costs nothing and expires.
        return self.transport.call(lambda: self.blobs.start_blob_upload(request), f"the upload of {name}")

    def create(self, request: "api.ApiCreateDatasetRequest") -> "api.ApiCreateDatasetResponse":
        return self.transport.call(lambda: self.client.create_dataset(request),
                                   f"the creation of dataset {request.owner_slug}/{request.slug}", idempotent=False)

    def create_version(self, request: "api.ApiCreateDatasetVersionRequest") -> "api.ApiCreateDatasetResponse":
        return self.transport.call(lambda: self.client.create_dataset_version(request),
                                   f"a new version of dataset {request.owner_slug}/{request.dataset_slug}",
                                   idempotent=False)
