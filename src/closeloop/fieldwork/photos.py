"""Visit photos on disk: the type is read from the first bytes (JPEG, PNG, WebP), the size is
capped, and each file lives under its organization's own directory of the storage path."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

from closeloop.config import settings
from closeloop.core.errors import ValidationFailed

#: content type → file extension, for the formats a phone camera gives
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


@dataclass(frozen=True)
class StoredPhoto:
    content_type: str
    size_bytes: int
    sha256: str
    stored_name: str


def sniff(data: bytes) -> str | None:
    """The image type the bytes themselves announce (magic numbers), or ``None``."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check(data: bytes, *, field_name: str = "photos") -> str:
    """The photo's content type, or a 422 naming ``field_name`` (empty, too large, not an image)."""
    if not data:
        raise ValidationFailed.one(field_name, "is empty", "empty_file")
    limit = settings.photo_max_bytes
    if len(data) > limit:
        raise ValidationFailed.one(field_name, f"is larger than {limit // 1_048_576} MB", "file_too_large")
    content_type = sniff(data)
    if content_type is None:
        raise ValidationFailed.one(field_name, "is not a JPEG, PNG or WebP image", "unsupported_type")
    return content_type


def directory(organization_id: int) -> Path:
    return settings.effective_storage_dir / "fieldwork" / str(int(organization_id))


def store(organization_id: int, data: bytes, content_type: str) -> StoredPhoto:
    """Write the photo under the organization's directory with a random name."""
    name = f"{uuid.uuid4().hex}.{EXTENSIONS[content_type]}"
    folder = directory(organization_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return StoredPhoto(content_type, len(data), hashlib.sha256(data).hexdigest(), name)


def path_of(organization_id: int, stored_name: str) -> Path:
    """Where a stored photo is; the name is ours (hex and an extension), never the uploader's."""
    if "/" in stored_name or "\\" in stored_name or stored_name.startswith("."):
        raise ValueError("not a stored photo name")
    return directory(organization_id) / stored_name


def discard(organization_id: int, stored_names: list[str]) -> None:
    """Remove files written for a transaction that did not commit."""
    for name in stored_names:
        path_of(organization_id, name).unlink(missing_ok=True)
