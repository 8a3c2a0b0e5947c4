"""Private, per-database files for what waits while the database is away.

The conversation store (Rasa server) and the records (action server) both keep data on
disk during an outage. That data is personal (names, phone numbers, symptoms), so it is
written only as the service user can read it (folders 0700, files 0600, written whole
then renamed), encrypted when SPOOL_KEY is set, and deleted as soon as it is stored.
Each database gets its own folder (a hash of its URL without password), so what was
kept for PostgreSQL is never replayed into SQLite after a configuration change.
What cannot be stored is moved to a `quarantine` folder beside it, never retried
blindly and never deleted without a person looking at it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Optional

from cryptography.fernet import Fernet, InvalidToken

from bot.settings import Settings, get_settings
from bot.storage.database import redacted_url

QUARANTINE = "quarantine"


class SpoolUnreadable(ValueError):
    """A spool file or line cannot be decrypted or decoded (wrong key, damaged)."""


def database_folder(url: str) -> str:
    """Folder name of one database's spool: a short hash of its password-less URL."""
    return hashlib.sha256(redacted_url(url).encode("utf-8")).hexdigest()[:16]


def spool_dir(kind: str, url: str, settings: Optional[Settings] = None) -> Path:
    """Where `kind` ("trackers", "records") waits for the database at `url`."""
    settings = settings or get_settings()
    return settings.data_dir / "spool" / kind / database_folder(url)


def reference(text: str) -> str:
    """A collision-free, non-identifying name for a conversation (file names, logs)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable only by this user; return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, mode 0600 from the first byte."""
    private_dir(path.parent)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp: 0600
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def append_private(path: Path, data: bytes) -> None:
    """Append `data` to `path`, creating it with mode 0600."""
    private_dir(path.parent)
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(handle, "ab") as out:
        out.write(data)


def _fernet(settings: Optional[Settings]) -> Optional[Fernet]:
    key = (settings or get_settings()).spool_key
    return Fernet(key.encode()) if key else None


def seal(text: str, settings: Optional[Settings] = None) -> bytes:
    """`text` as stored on disk: encrypted with SPOOL_KEY when one is set."""
    raw = text.encode("utf-8")
    fernet = _fernet(settings)
    return fernet.encrypt(raw) if fernet else raw


def unseal(data: bytes, settings: Optional[Settings] = None) -> str:
    """The text `seal` wrote. Raises `SpoolUnreadable` (wrong key, damaged file)."""
    data = data.strip()
    try:
        if data.startswith(b"gAAAA"):  # a Fernet token
            fernet = _fernet(settings)
            if fernet is None:
                raise SpoolUnreadable("encrypted spool but SPOOL_KEY is not set")
            data = fernet.decrypt(data)
        return data.decode("utf-8")
    except (InvalidToken, UnicodeDecodeError) as exc:
        raise SpoolUnreadable(type(exc).__name__) from exc


def quarantine(path: Path) -> Path:
    """Move a spool file that cannot be stored into the quarantine folder beside it."""
    target = private_dir(path.parent / QUARANTINE) / path.name
    os.replace(path, target)
    return target
