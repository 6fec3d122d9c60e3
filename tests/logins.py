"""Signing in to the API as one of the demo site's users (runtime/seed.py)."""

from __future__ import annotations

import httpx

from runtime.seed import demo_user


async def bearer(http: httpx.AsyncClient, role: str) -> dict[str, str]:
    """The Authorization header of a fresh API session of the demo user with `role`."""
    user = demo_user(role)
    r = await http.post("/api/v1/auth/login",
                        json={"username": user.username, "password": user.password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
