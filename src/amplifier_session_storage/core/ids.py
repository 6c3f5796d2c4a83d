"""Object ids and the validation of every name that may touch a path or a key.

An :class:`ObjectId` is the 32-byte BLAKE3 digest of an object's canonical encoding.
It is parsed and validated before it is ever used to build a file name or a blob name.
Session ids, project slugs and ref names are validated here too: a name with ``/``,
``\\``, NUL, control characters, ``.``/``..`` or an absurd length is refused.
"""

from __future__ import annotations

import re

from blake3 import blake3

from ..errors import InvalidInputError

__all__ = [
    "ID_BYTES",
    "ID_HEX_LEN",
    "MAX_NAME_LEN",
    "ObjectId",
    "hash_bytes",
    "validate_name",
    "validate_project_slug",
    "validate_session_id",
]

ID_BYTES = 32
ID_HEX_LEN = 64
MAX_NAME_LEN = 255
_HEX = re.compile(r"[0-9a-f]{64}")
_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")
# Printable, no path separators, no NUL/control characters, no shell-hostile whitespace.
_NAME = re.compile(r"[A-Za-z0-9._@:+=,~\-][A-Za-z0-9._@:+=,~\- ]*")


class ObjectId(bytes):
    """A 32-byte content address. ``str(oid)`` is its 64-character lower-case hex."""

    __slots__ = ()

    def __new__(cls, raw: bytes) -> ObjectId:
        if type(raw) is ObjectId:
            return raw
        if not isinstance(raw, (bytes, bytearray, memoryview)) or len(raw) != ID_BYTES:
            raise InvalidInputError(f"an object id is {ID_BYTES} bytes, got {raw!r:.80}")
        return super().__new__(cls, bytes(raw))

    @classmethod
    def from_hex(cls, text: str) -> ObjectId:
        """Parse a full 64-character hex id; anything else raises InvalidInputError."""
        if not isinstance(text, str) or not _HEX.fullmatch(text):
            raise InvalidInputError(f"not an object id (64 lower-case hex digits): {text!r:.80}")
        return super().__new__(cls, bytes.fromhex(text))

    @classmethod
    def of(cls, canonical: bytes) -> ObjectId:
        """The id of an object whose canonical encoding is ``canonical``."""
        return super().__new__(cls, blake3(canonical).digest())

    @property
    def hex_(self) -> str:
        return self.hex()

    def short(self, n: int = 12) -> str:
        return self.hex()[:n]

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"ObjectId({self.hex()[:16]}…)"


def hash_bytes(data: bytes) -> bytes:
    """BLAKE3-256 of ``data``."""
    return blake3(data).digest()


def is_hex_prefix(text: str) -> bool:
    """True when ``text`` could be a (partial) hex object id."""
    return bool(_HEX_PREFIX.fullmatch(text))


def validate_name(value: object, what: str = "name", max_len: int = MAX_NAME_LEN) -> str:
    """Return ``value`` if it is safe as a path component and a storage key, else raise."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidInputError(f"{what} must not be empty")
    if len(value) > max_len:
        raise InvalidInputError(f"{what} is too long ({len(value)} > {max_len} characters)")
    if value in (".", ".."):
        raise InvalidInputError(f"{what} must not be {value!r}")
    if "/" in value or "\\" in value:
        raise InvalidInputError(f"{what} must not contain a path separator: {value!r:.80}")
    if "\x00" in value:
        raise InvalidInputError(f"{what} must not contain NUL: {value!r:.80}")
    if not _NAME.fullmatch(value) or value.endswith(" "):
        raise InvalidInputError(
            f"{what} may hold only letters, digits and ._@:+=,~- (no control characters): "
            f"{value!r:.80}"
        )
    return value


def validate_session_id(value: object) -> str:
    """A session id is a safe name of at most 255 characters."""
    return validate_name(value, "session id")


def validate_project_slug(value: object) -> str:
    """A project slug (``-home-u-app``) is a safe name of at most 255 characters."""
    return validate_name(value, "project slug")
