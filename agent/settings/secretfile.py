"""Secret files (MQTT password, pricing API token): one line, printable, never echoed.

Every error text describes the file (path, what is wrong with it), never its content: these
texts reach the terminal, the journal and the status file.
"""

from __future__ import annotations

MAX_BYTES = 4096  # a password or token; anything larger is not one


class SecretFileError(ValueError):
    """The secret file is missing, unreadable or malformed; str() never holds the secret."""


def read(path: str, *, header_safe: bool = False) -> str:
    """The secret in `path` without its line ending; `header_safe`: printable ASCII only."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(f"cannot read {path}: {exc.strerror or type(exc).__name__}"
                              ) from None
    if len(data) > MAX_BYTES:
        raise SecretFileError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{path}: not UTF-8 text") from None
    # One trailing line ending is what editors and `echo` add; anything more is a second line.
    secret = text.removesuffix("\n").removesuffix("\r").strip(" \t")
    if not secret:
        raise SecretFileError(f"{path}: empty")
    if "\n" in secret or "\r" in secret:
        raise SecretFileError(f"{path}: more than one line")
    if not secret.isprintable():
        raise SecretFileError(f"{path}: contains control or non-printable characters")
    if header_safe and not secret.isascii():
        # http.client sends header values as latin-1 and rejects others with their text.
        raise SecretFileError(f"{path}: must be printable ASCII (it is sent in an HTTP header)")
    return secret
