"""A real mutual-TLS client against the gateway: Python requests with cert=(cert, key).

Run by tests/mtls_clients.rs. Arguments: gateway base URL, gateway CA file, client id,
client certificate file, client key file, guarded path. Prints "ok" when a certificate-bound
token is issued to the certificate and accepted only with it.
"""

import sys

import requests

base, ca, client_id, cert, key, path = sys.argv[1:7]
# verify= on each request: a Session's verify loses to REQUESTS_CA_BUNDLE (requests#3829).
with requests.Session() as mtls:
    mtls.cert = (cert, key)
    r = mtls.post(
        base + "/connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id},
        verify=ca,
    )
    assert r.status_code == 200, (r.status_code, r.text)
    token = r.json()["access_token"]
    r = mtls.get(base + path, headers={"Authorization": "Bearer " + token}, verify=ca)
    assert r.status_code == 200, (r.status_code, r.text)

# Without the certificate, the bound token is refused (RFC 8705 §3).
r = requests.get(base + path, headers={"Authorization": "Bearer " + token}, verify=ca)
assert r.status_code == 401, (r.status_code, r.text)
assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], r.headers
print("ok")
