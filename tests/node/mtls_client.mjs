// A real mutual-TLS client against the gateway: openid-client v6's TlsClientAuth, its TLS
// client certificate given through undici (openid-client's documented way: a customFetch
// whose dispatcher presents the certificate). Run by tests/node_client.rs.
//
// Environment:
//   GATEWAY_URL          the gateway's issuer (discovery starts there)
//   CLIENT_ID, SCOPE
//   CLIENT_CERT, CLIENT_KEY  PEM files of the client's certificate and key
//   PROTECTED_PATH       a guarded path, e.g. /admin/echo
//   NODE_EXTRA_CA_CERTS  the CA that signed the gateway's certificate
//
// Prints one JSON line: the token answer, the guarded route's status with the certificate and
// without it.

import { readFileSync } from 'node:fs'
import * as client from 'openid-client'
import * as undici from 'undici'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

const server = new URL(env('GATEWAY_URL'))
const ca = readFileSync(env('NODE_EXTRA_CA_CERTS'))
const withCert = new undici.Agent({
  connect: { ca, cert: readFileSync(env('CLIENT_CERT')), key: readFileSync(env('CLIENT_KEY')) },
})
const mtlsFetch = (url, options) => undici.fetch(url, { ...options, dispatcher: withCert })

const config = await client.discovery(server, env('CLIENT_ID'), undefined, client.TlsClientAuth(), {
  algorithm: 'oauth2',
  [client.customFetch]: mtlsFetch,
})
config[client.customFetch] = mtlsFetch

const token = await client.clientCredentialsGrant(config, { scope: env('SCOPE') })
const url = new URL(env('PROTECTED_PATH'), server)
const withIt = await client.fetchProtectedResource(config, token.access_token, url, 'GET')

// The same token from a connection without the certificate.
const plain = new undici.Agent({ connect: { ca } })
const without = await undici.fetch(url, {
  headers: { authorization: `Bearer ${token.access_token}` },
  dispatcher: plain,
})

console.log(JSON.stringify({
  access_token: token.access_token,
  token_type: token.token_type,
  with_certificate: withIt.status,
  without_certificate: without.status,
  challenge: without.headers.get('www-authenticate'),
}))
