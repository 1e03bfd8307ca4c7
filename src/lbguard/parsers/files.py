"""Read configuration files safely, whatever path a user or an ``include`` gives.

A configuration path can name a fifo or a device that blocks forever (``/dev/stdin``,
``/proc/kmsg``), a pseudo-file whose size is not its content (``/proc``, ``/sys``), a huge
file given by mistake, or a symbolic link loop. `read_config_file` opens the path without
blocking, checks what it opened, and raises `ConfigFileError` with the reason instead.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from lbguard.errors import ConfigError

MAX_CONFIG_BYTES = 64 * 1024 * 1024
"""Largest configuration file read (64 MiB). Real load-balancer configurations, even with
thousands of servers, are a few MiB at most, so a larger file is the wrong path."""

PSEUDO_FILESYSTEMS = ("/proc", "/sys")
"""Mount points of the kernel's pseudo-file systems. Their files claim to be regular, but
their size is not their content and some block on read (``/proc/kmsg``)."""

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class ConfigFileError(ConfigError):
    """A configuration file that cannot be read, with the path and the OS error number."""

    def __init__(self, message: str, path: str, *, errno: int | None = None, hint: str = ""):
        super().__init__(message, hint=hint)
        self.path = path
        self.errno = errno
        """The OS error number (``errno.ENOENT`` and so on), ``errno.EISDIR`` for a
        directory, and None for other files lbguard rejects itself."""


def read_config_file(path: str | os.PathLike[str], *, head: int | None = None) -> bytes:
    """Read a configuration file, whole or its first ``head`` bytes.

    Only regular files of at most `MAX_CONFIG_BYTES` are read; ``head=0`` checks the file
    without reading it. Raise `ConfigFileError` naming the file and the reason otherwise.
    """
    name = os.fspath(path)
    # Even opening some pseudo-files has effects (/proc/kmsg), so check the path first.
    mount = _pseudo_filesystem(name)
    if mount is not None:
        raise _pseudo_file(name, mount)
    try:
        # O_NONBLOCK makes opening a fifo return at once instead of waiting for a writer;
        # a regular file reads the same with or without it.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise _open_error(name, error) from error
    try:
        info = os.fstat(fd)
        _check_regular(name, info)
        if info.st_size > MAX_CONFIG_BYTES:
            raise _too_large(name, info.st_size)
        count = MAX_CONFIG_BYTES + 1 if head is None else min(head, MAX_CONFIG_BYTES + 1)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(count)
    except OSError as error:
        raise ConfigFileError(
            f"cannot read configuration file {name}: {error.strerror}",
            name,
            errno=error.errno,
            hint="check the file and the disk it is on",
        ) from error
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        # The file grew after fstat, or its size was not reported.
        raise _too_large(name, len(data))
    return data


def _open_error(name: str, error: OSError) -> ConfigFileError:
    number = error.errno
    if number == errno.ENOENT:
        message, hint = f"configuration file not found: {name}", "check the path"
    elif number == errno.ELOOP:
        message = f"{name} is a symbolic link loop (too many levels of symbolic links)"
        hint = "point the link at the configuration file itself"
    elif number == errno.EACCES:
        message = f"permission denied reading configuration file {name}"
        hint = "run lbguard as a user who can read the file, or check a copy of it"
    else:
        message = f"cannot open configuration file {name}: {error.strerror}"
        hint = "check the path"
    return ConfigFileError(message, name, errno=number, hint=hint)


def _check_regular(name: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = next((label for test, label in _FILE_KINDS if test(info.st_mode)), "special")
        is_directory = stat.S_ISDIR(info.st_mode)
        raise ConfigFileError(
            f"{name} is not a regular file but {kind}",
            name,
            errno=errno.EISDIR if is_directory else None,
            hint="give the path of a configuration file; lbguard reads regular files only",
        )
    mount = _pseudo_filesystem(name, info)
    if mount is not None:
        raise _pseudo_file(name, mount)


def _pseudo_filesystem(name: str, info: os.stat_result | None = None) -> str | None:
    """Return the mount point of the pseudo-file system that contains the file, or None.

    Without ``info`` only the resolved path is compared; with it, also the device number,
    which a bind mount elsewhere shares with the original.
    """
    real = Path(os.path.realpath(name))
    for mount in PSEUDO_FILESYSTEMS:
        # /dev/stdin on a pipe resolves to a /proc name that does not exist ("pipe:[N]");
        # fstat then names the fifo.
        if real.is_relative_to(mount) and real.exists():
            return mount
        if info is None:
            continue
        try:
            if os.stat(mount).st_dev == info.st_dev:
                return mount
        except OSError:
            continue
    return None


def _pseudo_file(name: str, mount: str) -> ConfigFileError:
    return ConfigFileError(
        f"{name} is not a regular file but a pseudo-file of {mount}",
        name,
        hint="give the path of a configuration file; lbguard reads regular files only",
    )


def _too_large(name: str, size: int) -> ConfigFileError:
    limit = MAX_CONFIG_BYTES // (1024 * 1024)
    return ConfigFileError(
        f"{name} is larger than the {limit} MiB limit for a configuration file ({size:,} bytes)",
        name,
        hint="check the path; a load-balancer configuration is far smaller",
    )
