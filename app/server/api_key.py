"""The server's API key, for when other computers may use it: made once (``secrets``), kept in the operating
system's credential store beside the Hugging Face token, never in a file."""

from __future__ import annotations

import secrets

from app.hub.credentials import read_secret, save_secret

ACCOUNT = "api-server-key"
PREFIX = "hearth-"


def stored_key() -> str | None:
    return read_secret(ACCOUNT)


def new_key() -> str:
    """A fresh key, stored in place of the old one (which stops working)."""
    key = PREFIX + secrets.token_urlsafe(32)
    save_secret(ACCOUNT, key, "the API key", "This computer has no password store Hearth can use, so no API key "
                                             "can be kept safely; the server can still listen on this computer alone.")
    return key
