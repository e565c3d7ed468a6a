"""Uploaded archives (.zip, .tar, .tar.gz) unpacked safely: measured while they are read.

Nothing past the limit reaches the disk: a zip's declared sizes are summed before anything is
written (``zipfile`` never reads past a member's declared size, and a member whose data does not
match fails its CRC check), a tar member's header is checked before the member is extracted,
and every member is copied through a counter. The limit is ``MAX_ARCHIVE_BYTES``, or
``MAX_EXPANSION`` times the archive's own size when that is smaller (with a floor for small
archives): a 0.9 MB zip bomb is refused before it writes 90 MB, instead of after 900 MB.
"""

from __future__ import annotations

import logging
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from loader.sources import EXPANSION_FLOOR, MAX_EXPANSION
from queries.errors import InvalidInput

MAX_ARCHIVE_FILES = 100_000
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024
log = logging.getLogger("ttpgraph.api")


def is_archive(name: str) -> bool:
    return name.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz"))


def unpacked_limit(archive_size: int) -> int:
    """Bytes an archive of that size may unpack to."""
    return min(MAX_ARCHIVE_BYTES, max(EXPANSION_FLOOR, MAX_EXPANSION * archive_size))


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise InvalidInput(
                f"archive: unpacks to more than {_mb(self.limit)} (at most {MAX_EXPANSION} times "
                f"its own size, and {_mb(MAX_ARCHIVE_BYTES)} in all)"
            )

    def copy(self, src: IO[bytes], dst: IO[bytes]) -> None:
        while chunk := src.read(1 << 20):
            self.take(len(chunk))
            dst.write(chunk)


def extract_archive(archive: Path, into: Path) -> None:
    """Unpack a .zip or .tar(.gz): no absolute paths, no '..', no links or devices, at most
    ``MAX_ARCHIVE_FILES`` files and ``unpacked_limit`` bytes."""
    root = into.resolve()
    declared = _Budget(unpacked_limit(archive.stat().st_size))
    written = _Budget(declared.limit)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                if len(members) > MAX_ARCHIVE_FILES:
                    raise InvalidInput(f"archive: more than {MAX_ARCHIVE_FILES} files")
                for m in members:  # every check before the first byte is written
                    target = (into / m.filename).resolve()
                    if not target.is_relative_to(root) or m.filename.startswith("/"):
                        raise InvalidInput(f"archive: unsafe path {m.filename!r}")
                    declared.take(m.file_size)
                for m in members:
                    if (m.external_attr >> 16) & 0o170000 == 0o120000:
                        continue  # a symlink: not extracted
                    target = (into / m.filename).resolve()
                    if m.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(m) as src, target.open("wb") as dst:
                        written.copy(src, dst)
            return
        with tarfile.open(archive) as tf:
            count = 0
            for member in tf:
                count += 1
                if count > MAX_ARCHIVE_FILES:
                    raise InvalidInput(f"archive: more than {MAX_ARCHIVE_FILES} files")
                if member.isdir():
                    continue
                if not member.isfile():
                    continue  # links, devices, fifos: not extracted
                declared.take(member.size)
                safe = tarfile.data_filter(member, str(root))
                target = (into / safe.name).resolve()
                if not target.is_relative_to(root):
                    raise InvalidInput(f"archive: unsafe path {member.name!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                member_file = tf.extractfile(member)
                if member_file is None:
                    continue
                with member_file, target.open("wb") as dst:
                    written.copy(member_file, dst)
    except tarfile.FilterError:
        raise InvalidInput("archive: a member's path or kind is unsafe") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise InvalidInput(f"archive: cannot unpack it ({exc})") from None
    except OSError as exc:
        log.warning("unpacking an uploaded archive failed: %s", exc)
        raise InvalidInput("archive: cannot unpack it (broken or unreadable data)") from None
