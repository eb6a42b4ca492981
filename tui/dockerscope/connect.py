"""The service for the daemon the command line or the environment names, for `dockerscope` and
`dockerscope analyze` alike."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockerscope.service import DockerService, ImageSource


def connect(host: str | None, context: str | None = None) -> DockerService | None:
    """A service for the daemon `host` or `context` names (else the one the environment names, else
    the first engine socket found); None after saying on stderr why there is none."""
    # Imported late so --help and --version answer without loading docker-py.
    from dockerscope.sanitize import sanitize
    from dockerscope.service import DockerService, DockerServiceError, resolve_connection

    try:
        connection = resolve_connection(host, context=context)
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


def add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    """--host and --context, of which one at most may be given (as with the docker CLI)."""
    daemon = parser.add_mutually_exclusive_group()
    daemon.add_argument(
        "--host",
        metavar="URL",
        help="daemon address: unix:///PATH, tcp://HOST:PORT (TLS from DOCKER_TLS_VERIFY and "
        "DOCKER_CERT_PATH) or ssh://[USER@]HOST[:PORT] (through the system ssh client) "
        "(default: DOCKER_HOST, else the docker CLI's context, else the first Docker or Podman socket found)",
    )
    daemon.add_argument(
        "--context",
        metavar="NAME",
        help="a docker CLI context (`docker context ls`), with its address and TLS material (default: "
        "DOCKER_CONTEXT, else the CLI's current context)",
    )
