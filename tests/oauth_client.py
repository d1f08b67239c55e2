"""Drives a running storegate with a real OAuth client library (Python authlib), starting
from discovery: metadata, a client_credentials token, a guarded call, introspection,
revocation. Called by tests/oauth_client.rs; exits non-zero with a message on any failure.

argv: base URL (https://127.0.0.1:PORT), CA file, client id, client secret, introspecting
client id, its secret, a guarded path.
"""

import sys
from urllib.parse import urlsplit, urlunsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

base, ca, client_id, secret, inspector, inspector_secret, guarded = sys.argv[1:8]


def here(url):
    """The issuer names the gateway as clients reach it (https://gateway.test); in this test
    it listens on 127.0.0.1:PORT, so each discovered URL is taken onto the real base."""
    b, u = urlsplit(base), urlsplit(url)
    return urlunsplit((b.scheme, b.netloc, u.path, u.query, u.fragment))


def check(cond, what):
    if not cond:
        sys.exit(f"oauth_client.py: {what}")


resp = requests.get(f"{base}/.well-known/oauth-authorization-server", verify=ca, timeout=10)
check(resp.status_code == 200, f"metadata answered {resp.status_code}")
metadata = AuthorizationServerMetadata(resp.json())
# authlib 1.2 reads an empty response_types_supported as a missing one; RFC 8414 §2 only
# requires a JSON array, and a client_credentials-only server has no response type to list.
check(metadata.get("response_types_supported") == [], "response_types_supported is []")
for name in dir(metadata):
    if name.startswith("validate_") and name != "validate_response_types_supported":
        getattr(metadata, name)()

session = OAuth2Session(
    client_id,
    secret,
    token_endpoint_auth_method="client_secret_basic",
    revocation_endpoint_auth_method="client_secret_basic",
)
# Every call passes verify=ca: requests prefers REQUESTS_CA_BUNDLE from the environment to a
# session's own setting.
token = session.fetch_token(
    here(metadata["token_endpoint"]), grant_type="client_credentials", verify=ca
)
check(token["token_type"] == "Bearer", "a Bearer token")
access = token["access_token"]

call = session.get(f"{base}{guarded}", timeout=10, verify=ca)
check(call.status_code == 200, f"the guarded call answered {call.status_code}")

inspector_session = OAuth2Session(
    inspector, inspector_secret, token_endpoint_auth_method="client_secret_basic"
)
introspection = here(metadata["introspection_endpoint"])
answer = inspector_session.introspect_token(introspection, token=access, verify=ca).json()
check(answer.get("active") is True, f"active before revocation: {answer.get('active')}")
check(answer.get("client_id") == client_id, "introspection names the client")

revoked = session.revoke_token(here(metadata["revocation_endpoint"]), token=access, verify=ca)
check(revoked.status_code == 200, f"revocation answered {revoked.status_code}")

answer = inspector_session.introspect_token(introspection, token=access, verify=ca).json()
check(answer == {"active": False}, f"inactive after revocation: {answer}")
after = session.get(f"{base}{guarded}", timeout=10, verify=ca)
check(after.status_code == 401, f"the guarded call after revocation answered {after.status_code}")
print("ok")
