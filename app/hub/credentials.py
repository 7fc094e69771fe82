"""The Hugging Face token, kept in the operating system's credential store (through ``keyring``).

Never in the database, the settings file or the logs: the token opens the person's Hub account. Where no
credential store exists (a bare Linux session), saving says so plainly instead of falling back to a file.
"""

from __future__ import annotations

import logging

from app.errors import HearthError

log = logging.getLogger(__name__)

SERVICE = "Hearth"
ACCOUNT = "huggingface-token"


class CredentialsError(HearthError):
    """The credential store cannot be used."""


def get_token() -> str | None:
    return read_secret(ACCOUNT)


def read_secret(account: str) -> str | None:
    """One of Hearth's secrets in the password store (``account`` names it); None where there is none, or no store."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(SERVICE, account)
    except KeyringError:
        log.info("no credential store is available; no %s", account)
        return None


def save_secret(account: str, value: str, what: str, no_store: str) -> None:
    """Keeps ``value`` under ``account``; ``what`` names it in the error ("the token"), ``no_store`` is the sentence
    for a computer without a password store."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        keyring.set_password(SERVICE, account, value)
    except NoKeyringError as error:
        raise CredentialsError(no_store) from error
    except KeyringError as error:
        raise CredentialsError(f"The password store refused to save {what} ({error}).") from error


def set_token(token: str) -> None:
    token = token.strip()
    if not token.startswith("hf_") or len(token) < 10:
        raise CredentialsError("That does not look like a Hugging Face token (they start with “hf_”). Copy it "
                               "from huggingface.co/settings/tokens.")
    save_secret(ACCOUNT, token, "the token", "This computer has no password store Hearth can use, so the token "
                                             "cannot be saved safely.")


def clear_token() -> None:
    delete_secret(ACCOUNT, "the token")


def delete_secret(account: str, what: str) -> None:
    """Removes the secret under ``account`` (nothing to do where there is none, or no store to keep one)."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, account)
    except (PasswordDeleteError, NoKeyringError):
        return
    except KeyringError as error:
        raise CredentialsError(f"The password store refused to remove {what} ({error}).") from error
