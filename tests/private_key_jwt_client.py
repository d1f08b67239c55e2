"""A real private_key_jwt client against the gateway: authlib's PrivateKeyJWT with requests.

Run by tests/private_key_jwt_clients.rs. Arguments: gateway base URL, gateway CA file, client
id, private key PEM file, and what to expect: "accepted" (two tokens, each from its own
assertion) or "refused" (the gateway's invalid_client, whose description is printed).

authlib signs aud = the token endpoint URL and exp = iat + 3600 (authlib 1.2, Debian 12).
"""

import sys

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

base, ca, client_id, key_file, expect = sys.argv[1:6]
token_endpoint = base + "/connect/token"
with open(key_file) as f:
    key = f.read()

session = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt")
session.register_client_auth_method(PrivateKeyJWT(token_endpoint, alg="ES256"))
if expect == "accepted":
    for _ in range(2):
        token = session.fetch_token(token_endpoint, grant_type="client_credentials", verify=ca)
        assert token["access_token"], token
    print("ok")
else:
    try:
        session.fetch_token(token_endpoint, grant_type="client_credentials", verify=ca)
    except Exception as e:  # authlib raises OAuthError with the server's description
        print(getattr(e, "description", None) or e)
    else:
        raise SystemExit("the assertion was accepted")
