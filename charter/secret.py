"""The server secret that signs the ledger head. It never enters the database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from charter.errors import ConfigurationError
from charter.settings import Settings


class ServerSecret:
    """The secret from the `secret` setting, or from a file created on first use."""

    def __init__(self, value: bytes | None = None, file: Path | None = None) -> None:
        if value is None and file is None:
            raise ConfigurationError(
                "no server secret: set CHARTER_SECRET (shared by every node) or "
                "CHARTER_SECRET_FILE")
        self._value = value
        self.file = file

    @classmethod
    def from_settings(cls, settings: Settings, database_file: Path | None) -> ServerSecret:
        if settings.secret:
            return cls(settings.secret.encode("utf-8"))
        if settings.secret_file is not None:
            return cls(file=settings.secret_file)
        if database_file is not None:
            return cls(file=database_file.with_name(database_file.name + ".secret"))
        raise ConfigurationError(
            "this database needs a server secret to sign the ledger head: set "
            "CHARTER_SECRET (the same on every node) or CHARTER_SECRET_FILE")

    def get(self, *, create: bool) -> bytes:
        """The secret; with `create`, make the file if it does not exist yet."""
        if self._value is not None:
            return self._value
        assert self.file is not None
        try:
            self._value = self.file.read_bytes().strip()
        except FileNotFoundError:
            if not create:
                raise ConfigurationError(
                    f"the server secret file {self.file} is missing, but the ledger was "
                    "signed with it: restore the file, or point CHARTER_SECRET_FILE at it"
                ) from None
            self._value = self._create_file(self.file)
        if not self._value:
            raise ConfigurationError(f"the server secret file {self.file} is empty")
        return self._value

    @staticmethod
    def _create_file(path: Path) -> bytes:
        value = secrets.token_hex(32).encode("ascii")
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_bytes().strip()
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(value + b"\n")
        return value
