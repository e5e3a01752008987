// The reference OpenID provider of integration/federation_test.go: node
// oidc-provider (an OpenID Certified implementation, version pinned in
// package.json, exact tree in package-lock.json) on loopback. It stands in for
// an external identity provider (Google, a corporate IdP) that tests cannot
// reach. Sign-in and consent complete by themselves, as user "alice".
//
//   PORT=3000 [REDIRECT_URIS=http://127.0.0.1:8080/.gatehouse/callback,...] node op.mjs
//
// Issuer: http://127.0.0.1:$PORT. One client, "rp" with secret "rp-secret":
//   - authorization code with PKCE (S256, required), redirect URIs from
//     REDIRECT_URIS (comma-separated); scopes openid email profile
//     offline_access; its access tokens are opaque, for userinfo; refresh
//     tokens are issued;
//   - client credentials: JWT access tokens (typ at+jwt) for the API
//     https://api.example.test with the scopes api:read and api:write.
// Users: any account id signs in as itself; the interaction always picks
// "alice" (email alice@example.test, verified; name alice).
// Revocation, introspection and RP-initiated logout are on. Keys and cookie
// secrets are made at start-up and live only in this process.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const port = Number.parseInt(process.env.PORT ?? '', 10);
if (!(port > 0 && port < 65536)) {
  console.error('op.mjs: set PORT to the loopback port to listen on');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const redirectURIs = (process.env.REDIRECT_URIS ?? '').split(',').map((u) => u.trim()).filter((u) => u !== '');
const api = 'https://api.example.test';
const apiScopes = 'api:read api:write';
const user = 'alice';
const interactionPrefix = '/interaction/';

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'rp',
    client_secret: 'rp-secret',
    redirect_uris: redirectURIs,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    scope: `openid email profile offline_access ${apiScopes}`,
  }],
  jwks: { keys: [{ ...signingKey, use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  // Every scope a client may ask for, the API's included (client metadata
  // may name only these).
  scopes: ['openid', 'email', 'profile', 'offline_access', ...apiScopes.split(' ')],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, name: id, email: `${id}@example.test`, email_verified: true }),
  }),
  // Every client allowed the refresh_token grant gets a refresh token, with
  // or without offline_access (which this provider would otherwise honour
  // only with prompt=consent).
  issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  interactions: { url: (_ctx, interaction) => `${interactionPrefix}${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Client credentials without resource= are for the API; an
      // authorization code without one gets an opaque token for userinfo.
      defaultResource: (ctx, _client, oneOf) => oneOf ?? (ctx.oidc.params?.grant_type === 'client_credentials' ? api : undefined),
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== api) throw new errors.InvalidTarget(`unknown resource ${resource}`);
        return { scope: apiScopes, audience: api, accessTokenFormat: 'jwt', accessTokenTTL: 300 };
      },
    },
  },
  ttl: { AuthorizationCode: 60, AccessToken: 300, ClientCredentials: 300, IdToken: 300, RefreshToken: 3600 },
});

// finishInteraction answers the provider's sign-in or consent prompt the way
// a user who accepts everything would.
async function finishInteraction(req, res) {
  const { prompt, params, session, grantId } = await provider.interactionDetails(req, res);
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: user } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name !== 'consent') throw new Error(`unexpected prompt ${prompt.name}`);
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
}

const serve = provider.callback();
http.createServer((req, res) => {
  if (!req.url.startsWith(interactionPrefix)) return serve(req, res);
  finishInteraction(req, res).catch((err) => {
    console.error('op.mjs: interaction:', err);
    res.statusCode = 500;
    res.end(String(err));
  });
}).listen(port, '127.0.0.1', () => {
  console.log(`op.mjs: ${issuer}/.well-known/openid-configuration (client rp: ${redirectURIs.length} redirect URIs)`);
});
