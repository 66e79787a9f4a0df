"""An SBOM's identity: its file name, its serial number, and moving it onto an artifact's signed bytes.

Stdlib only, so ``nox -s sign`` (which installs nothing) can use it.  Signing an RPM adds a header
signature: the payload, and so every component the SBOM lists, is unchanged, but the file's sha256 is
not.  :func:`retarget` makes the package's SBOM describe the signed file: its sha256 in
``metadata.component`` and the serial number derived from it, as the build would have written them.
"""

from __future__ import annotations

import re
import uuid

__all__ = ["RetargetError", "retarget", "sbom_name", "serial_for"]


class RetargetError(ValueError):
    """The SBOM does not describe the artifact it was asked to move; ``str()`` is one line."""


def sbom_name(artifact_filename: str) -> str:
    return f"{artifact_filename}.cdx.json"


def serial_for(sha256: str) -> uuid.UUID:
    """The serial number of an artifact's SBOM: a name-based UUID of its sha256 (same bytes, same serial)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:sha256:{sha256}")


def retarget(text: str, old_sha256: str, new_sha256: str, label: str) -> str:
    """``text`` (an SBOM of the artifact whose sha256 is ``old_sha256``) for the bytes ``new_sha256``.

    Textual on purpose: the rest of the document stays byte for byte what the build wrote and validated.
    """
    old_serial = f"urn:uuid:{serial_for(old_sha256)}"
    if old_serial not in text or not re.search(rf'"content": "{old_sha256}"', text):
        raise RetargetError(
            f"{label}: does not describe the artifact it sits beside (sha256 {old_sha256[:12]})"
        )
    return text.replace(old_serial, f"urn:uuid:{serial_for(new_sha256)}").replace(old_sha256, new_sha256)
