"""An older Kaggle version's outputs, as one archive: what DownloadKernelOutput serves.

Kaggle lists (ListKernelSessionOutput, ListKernelFiles) the outputs of a kernel's latest
version only, but DownloadKernelOutput, the call kagglehub's `notebook_output_download` makes,
takes a `versionNumber` and serves that version's whole output as one archive (kagglehub's
integration tests fetch `alexisbcook/titanic-tutorial/versions/1` and get other files than the
latest version's; its client reads the archive as a tar or a zip). The archive is downloaded
once per fetch to a temporary file beside the download folders, unlinked as soon as it is open
(removed at exit where a system keeps open files), and each wanted file is read out of it.
"""

import atexit
import shutil
import tarfile
import zipfile
from pathlib import Path

from kjob.backends.base import RemoteFile
from kjob.errors import BackendError
from kjob.fsutil import temporary_path

_COPY = 1 << 20


class OutputArchive:
    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, object] = {}

    @classmethod
    def temporary(cls, folder: Path) -> "OutputArchive":
        folder.mkdir(parents=True, exist_ok=True)
        archive = cls(temporary_path(folder))
        atexit.register(archive.close)
        return archive

    def opened(self, what: str) -> "OutputArchive":
        try:
            if zipfile.is_zipfile(self.path):
                self._zip = zipfile.ZipFile(self.path)
                self._members = {info.filename: info for info in self._zip.infolist() if not info.is_dir()}
            elif tarfile.is_tarfile(self.path):
                self._tar = tarfile.open(self.path)
                self._members = {info.name: info for info in self._tar.getmembers() if info.isfile()}
            else:
                raise BackendError(f"{what} is neither a zip nor a tar archive")
        except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
            self.close()
            raise BackendError(f"{what} could not be read: {type(exc).__name__}") from exc
        try:
            self.path.unlink()  # read through the open handle: nothing is left behind, however kjob ends
        except OSError:  # Windows keeps an open file: removed at exit instead
            pass
        return self

    def listing(self) -> list[RemoteFile]:
        files = []
        for name, info in self._members.items():
            if isinstance(info, zipfile.ZipInfo):
                files.append(RemoteFile(name, info.file_size, f"crc {info.CRC:08x}"))
            else:
                files.append(RemoteFile(name, info.size, f"mtime {info.mtime}"))
        return files

    def extract(self, name: str, destination: Path) -> None:
        """Write member `name` to `destination` (a file name the caller chose; member names are
        never joined to a folder here)."""
        info = self._members.get(name)
        if info is None:
            raise BackendError(f"{name} is not in the output archive")
        source = self._zip.open(info) if self._zip is not None else self._tar.extractfile(info)
        with source, destination.open("wb") as out:
            shutil.copyfileobj(source, out, _COPY)

    def close(self) -> None:
        for handle in (self._zip, self._tar):
            if handle is not None:
                handle.close()
        self.path.unlink(missing_ok=True)
