"""The administrator account a VM is provisioned with (``osProfile`` of the create
request), as its guest keeps it: the user name, a salted hash of the password
(never the password: the emulator's state is written to the demo estate file)
and the SSH public keys Azure's Linux agent installs.

ARM never returns ``adminPassword``; the guest is the only place it lives, and
the serial console's login checks it there (backend/emulator/serialconsole.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

ITERATIONS = 20_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2-sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def password_matches(stored: str, password: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2-sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def provisioned_account(os_profile: Any) -> dict[str, Any] | None:
    """What the guest keeps of a create request's osProfile, or None when it names no administrator."""
    if not isinstance(os_profile, dict) or not os_profile.get("adminUsername"):
        return None
    linux = os_profile.get("linuxConfiguration") or {}
    keys = [str(k.get("keyData") or "").strip() for k in ((linux.get("ssh") or {}).get("publicKeys") or ()) if isinstance(k, dict)]
    password = os_profile.get("adminPassword")
    return {
        "user": str(os_profile["adminUsername"]).lower(),
        "password": hash_password(str(password)) if password else None,
        "password_login": not bool(linux.get("disablePasswordAuthentication")),
        "ssh_keys": [k for k in keys if k],
    }


def may_sign_in(facts: dict[str, Any], user: str, password: str) -> bool:
    """A console login: the provisioned administrator needs its password; other users
    (the estate's own guests, which were not created here) sign in with any password."""
    account = facts.get("account")
    if not isinstance(account, dict) or account.get("user") != user.lower():
        return bool(password)
    stored = account.get("password")
    return bool(stored) and password_matches(str(stored), password)
