"""The floor: what one token costs on the bare stack, with no OAuth in it.

A bench-only app, not a route of the product: FastAPI on uvicorn, like `idp serve`, whose one
endpoint `POST /token` signs an ES256 JWT with joserfc (the library the IdP signs with) and
returns it as `{"access_token": ...}`. It reads no request body, checks no client and touches no
database, so its requests/s and CPU ms per request are the price of the HTTP server, the
framework, one JSON response and one ES256 signature. bench/oidc_load.py runs it next to the IdP
with the same number of workers and reports the IdP's figures against it.

    .venv/bin/python bench/floor_app.py [--port 8100] [--workers 2]

Each worker generates its own P-256 key once, at import.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from joserfc import jwt
from joserfc.jwk import ECKey

ISSUER = "http://floor.invalid"
KEY = ECKey.generate_key("P-256", parameters={"kid": "floor", "use": "sig"}, private=True)
HEADER = {"alg": "ES256", "typ": "at+jwt", "kid": "floor"}
TTL = 600

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/token")
async def token() -> JSONResponse:
    now = int(time.time())
    # The shape of an RFC 9068 access token, like the IdP's.
    claims = {"iss": ISSUER, "sub": "floor", "aud": ISSUER, "client_id": "floor",
              "scope": "orders:read", "jti": secrets.token_urlsafe(16), "iat": now,
              "exp": now + TTL}
    return JSONResponse({"access_token": jwt.encode(HEADER, claims, KEY),
                         "token_type": "Bearer", "expires_in": TTL},
                        headers={"Cache-Control": "no-store"})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # The options `idp serve` passes to uvicorn, so the stack under both is the same.
    options = {"host": args.host, "port": args.port, "access_log": False,
               "proxy_headers": False, "timeout_graceful_shutdown": 10,
               "log_level": args.log_level.lower()}
    if args.workers > 1:
        # Workers import the app by name; spawned processes inherit this sys.path.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        uvicorn.run("floor_app:app", workers=args.workers, **options)  # type: ignore[arg-type]
    else:
        uvicorn.run(app, **options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
