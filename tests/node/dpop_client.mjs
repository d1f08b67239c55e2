// A real DPoP client against the gateway: openid-client v6, as an application would use it.
// Run by tests/node_client.rs (installed by scripts/test: `npm ci --prefix tests/node`).
//
// Environment:
//   GATEWAY_URL          the gateway's issuer, e.g. https://127.0.0.1:8443 (discovery starts there)
//   CLIENT_ID, CLIENT_SECRET, SCOPE
//   PROTECTED_PATH       a guarded path, e.g. /admin/echo
//   NODE_EXTRA_CA_CERTS  the CA that signed the gateway's certificate (read by Node itself)
//
// Prints one JSON line: what the token endpoint and the guarded route answered.

import * as client from 'openid-client'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

const server = new URL(env('GATEWAY_URL'))
const protectedUrl = new URL(env('PROTECTED_PATH'), server)

// RFC 8414 discovery: /.well-known/oauth-authorization-server; the issuer must match.
const config = await client.discovery(
  server,
  env('CLIENT_ID'),
  undefined,
  client.ClientSecretPost(env('CLIENT_SECRET')),
  { algorithm: 'oauth2' },
)

// One key for the token's lifetime; every request gets a fresh proof signed by it.
const keyPair = await client.randomDPoPKeyPair()
const DPoP = client.getDPoPHandle(config, keyPair)

const token = await client.clientCredentialsGrant(config, { scope: env('SCOPE') }, { DPoP })

// A guarded request: its status and body (and, for a 401, its challenges).
const answer = async (f) => {
  try {
    const r = await f()
    return { status: r.status, body: await r.text() }
  } catch (e) {
    // A 401 with a challenge comes back as a WWWAuthenticateChallengeError.
    if (e instanceof client.WWWAuthenticateChallengeError) {
      return {
        status: e.response.status,
        challenge: e.response.headers.get('www-authenticate'),
        challenges: e.cause,
        body: await e.response.text(),
      }
    }
    throw e
  }
}

const protectedGet = (options) =>
  answer(() =>
    client.fetchProtectedResource(config, token.access_token, protectedUrl, 'GET', null, new Headers(), options),
  )

const first = await protectedGet({ DPoP })
const second = await protectedGet({ DPoP })
// The same bound token presented as a plain Bearer token (no DPoP option): a downgrade.
const bearer = await protectedGet(undefined)

const publicJwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey)

console.log(
  JSON.stringify({
    metadata: config.serverMetadata(),
    token_type: token.token_type,
    access_token: token.access_token,
    // RFC 7638 thumbprint input of the P-256 key: the token's cnf.jkt must be its SHA-256.
    jwk: { crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x, y: publicJwk.y },
    first,
    second,
    bearer,
  }),
)
