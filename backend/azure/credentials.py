"""Credentials for each ``--auth`` mode, all async."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

from backend.settings import ConnectionSettings


class StaticTokenCredential:
    """``--auth none``: a fixed dummy token, for loopback endpoints only (checked in settings)."""

    def __init__(self, token: str = "aztriage-dummy-token"):
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None


class ThreadedCredential:
    """An async face on a sync credential: azure.identity.aio has no DeviceCodeCredential."""

    def __init__(self, sync_credential: Any):
        self._sync = sync_credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return await asyncio.to_thread(self._sync.get_token, *scopes, **kwargs)

    async def close(self) -> None:
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> ThreadedCredential:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _device_code_prompt(verification_uri: str, user_code: str, expires_on: Any) -> None:
    # stderr, so `--format json` output on stdout stays clean.
    print(f"To sign in, open {verification_uri} and enter the code {user_code}", file=sys.stderr, flush=True)


def make_credential(settings: ConnectionSettings) -> Any:
    if settings.auth == "none":
        return StaticTokenCredential()
    from azure.identity import AzureAuthorityHosts

    authority = {
        "AzureCloud": AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        "AzureUSGovernment": AzureAuthorityHosts.AZURE_GOVERNMENT,
        "AzureChinaCloud": AzureAuthorityHosts.AZURE_CHINA,
    }[settings.cloud]
    if settings.auth == "device-code":
        from azure.identity import DeviceCodeCredential

        return ThreadedCredential(DeviceCodeCredential(authority=authority, prompt_callback=_device_code_prompt))
    from azure.identity import aio as identity

    if settings.auth == "cli":
        return identity.AzureCliCredential()
    if settings.auth == "env":
        return identity.EnvironmentCredential(authority=authority)
    if settings.auth == "managed-identity":
        return identity.ManagedIdentityCredential()
    return identity.DefaultAzureCredential(authority=authority)
