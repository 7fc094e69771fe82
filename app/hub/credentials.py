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
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(SERVICE, ACCOUNT)
    except KeyringError:
        log.info("no credential store is available; no Hugging Face token")
        return None


def set_token(token: str) -> None:
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    token = token.strip()
    if not token.startswith("hf_") or len(token) < 10:
        raise CredentialsError("That does not look like a Hugging Face token (they start with “hf_”). Copy it "
                               "from huggingface.co/settings/tokens.")
    try:
        keyring.set_password(SERVICE, ACCOUNT, token)
    except NoKeyringError as error:
        raise CredentialsError("This computer has no password store Hearth can use, so the token cannot be "
                               "saved safely.") from error
    except KeyringError as error:
        raise CredentialsError(f"The password store refused to save the token ({error}).") from error


def clear_token() -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, ACCOUNT)
    except PasswordDeleteError:
        return
    except KeyringError as error:
        raise CredentialsError(f"The password store refused to remove the token ({error}).") from error
