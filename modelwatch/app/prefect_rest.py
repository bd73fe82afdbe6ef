"""Prefect's REST API without Prefect's client (which costs seconds to import): what a request
to the servers modelwatch starts needs, the auth string as a Basic Authorization header and, for
a POST, a CSRF token of the server (CSRF protection is on).

Used by `modelwatch status` for its one read, and by the tests and the UI check."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
import uuid
from typing import Any


def auth_headers(auth_string: str | None) -> dict[str, str]:
    """The Authorization header Prefect's server checks (PREFECT_SERVER_API_AUTH_STRING)."""
    if not auth_string:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}


def csrf_headers(api: str, auth_string: str | None, timeout: float = 30) -> dict[str, str]:
    """A fresh CSRF token for a new client id, as the headers a POST needs; {} when the server
    has CSRF protection off (it answers 422)."""
    client = str(uuid.uuid4())
    request = urllib.request.Request(
        f"{api}/csrf-token?client={client}", headers=auth_headers(auth_string)
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            token = json.loads(resp.read())["token"]
    except urllib.error.HTTPError as exc:
        if exc.code == 422:
            return {}
        raise
    return {"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client}


def call(
    api: str,
    path: str,
    body: dict | None = None,
    auth_string: str | None = None,
    timeout: float = 30,
) -> Any:
    """GET api+path (body None) or POST body as JSON; returns the decoded JSON answer. The auth
    string defaults to PREFECT_API_AUTH_STRING, what Prefect's own client sends.

    Raises:
        OSError: no server there, or it answered with an HTTP error (urllib.error.HTTPError).
    """
    api = api.rstrip("/")
    if auth_string is None:
        auth_string = os.environ.get("PREFECT_API_AUTH_STRING")
    headers = auth_headers(auth_string)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers |= {"Content-Type": "application/json"} | csrf_headers(api, auth_string, timeout)
    request = urllib.request.Request(f"{api}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())
