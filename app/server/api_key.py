"""The server's API key, for when other computers may use it: made once (``secrets``), kept in the operating
system's credential store beside the Hugging Face token, never in a file."""

from __future__ import annotations

import secrets

from app.hub.credentials import SERVICE, CredentialsError

ACCOUNT = "api-server-key"
PREFIX = "hearth-"


def stored_key() -> str | None:
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(SERVICE, ACCOUNT)
    except KeyringError:
        return None


def new_key() -> str:
    """A fresh key, stored in place of the old one (which stops working)."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    key = PREFIX + secrets.token_urlsafe(32)
    try:
        keyring.set_password(SERVICE, ACCOUNT, key)
    except NoKeyringError as error:
        raise CredentialsError("This computer has no password store Hearth can use, so no API key can be kept "
                               "safely; the server can still listen on this computer alone.") from error
    except KeyringError as error:
        raise CredentialsError(f"The password store refused to save the API key ({error}).") from error
    return key
