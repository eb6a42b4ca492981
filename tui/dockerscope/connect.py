"""The service for the daemon the command line or the environment names, for `dockerscope` and
`dockerscope analyze` alike."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockerscope.service import DockerService, ImageSource


def connect(host: str | None) -> DockerService | None:
    """A service for the daemon `host` names (else the one the environment names); None after
    saying on stderr why there is none."""
    # Imported late so --help and --version answer without loading docker-py.
    from dockerscope.sanitize import sanitize
    from dockerscope.service import DockerService, DockerServiceError, resolve_connection

    try:
        connection = resolve_connection(host)
    except DockerServiceError as error:
        # The host and reason can hold text from the environment or the CLI's config files.
        print(sanitize(f"dockerscope: {error.host}: {error.reason}", max_chars=1000), file=sys.stderr)
        return None
    return DockerService(connection)


def open_path(path: str) -> ImageSource | None:
    """A source for the image archive or OCI layout at `path`; None after saying on stderr why it
    cannot be opened."""
    from dockerscope.sanitize import sanitize
    from dockerscope.service import ArchiveUnreadable, open_archive

    try:
        return open_archive(path)
    except ArchiveUnreadable as error:
        print(sanitize(f"dockerscope: {error.host}: {error.reason}", max_chars=1000), file=sys.stderr)
        return None
