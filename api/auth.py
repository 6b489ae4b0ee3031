"""Bearer-key protection for the write endpoints (constant-time comparison)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False, description="CUBESTAC_API_KEY, for write endpoints")


def require_api_key(key: str) -> params.Depends:
    """A dependency that accepts only `Authorization: Bearer <key>`."""
    expected = key.encode()

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                status_code=401,
                detail="this endpoint requires Authorization: Bearer <CUBESTAC_API_KEY>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return Depends(check)
