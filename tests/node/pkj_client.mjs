// A real private_key_jwt client against the gateway: openid-client v6's PrivateKeyJwt (an
// assertion per token request, aud = the issuer, as draft-ietf-oauth-rfc7523bis asks). Run by
// tests/private_key_jwt_clients.rs.
//
// Environment:
//   GATEWAY_URL          the gateway's issuer (discovery starts there)
//   CLIENT_ID, SCOPE, KID
//   CLIENT_KEY           PEM file of the client's private key (PKCS#8, P-256)
//   NODE_EXTRA_CA_CERTS  the CA that signed the gateway's certificate
//
// Prints one JSON line: the two access tokens it got (two assertions, two jti).

import { createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as client from 'openid-client'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

const der = createPrivateKey(readFileSync(env('CLIENT_KEY'))).export({ format: 'der', type: 'pkcs8' })
const key = await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])

const config = await client.discovery(
  new URL(env('GATEWAY_URL')),
  env('CLIENT_ID'),
  undefined,
  client.PrivateKeyJwt({ key, kid: env('KID') }),
  { algorithm: 'oauth2' },
)
const first = await client.clientCredentialsGrant(config, { scope: env('SCOPE') })
const second = await client.clientCredentialsGrant(config, { scope: env('SCOPE') })
console.log(JSON.stringify({ first: first.access_token, second: second.access_token }))
