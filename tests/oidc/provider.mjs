// A real OpenID Connect provider for the tests: the npm package oidc-provider (OpenID
// Certified), on 127.0.0.1, with one confidential client and the accounts in ACCOUNTS_JSON.
// Sign-in uses the package's development interactions (any password); the claims come from
// findAccount below. GitHub-shaped endpoints are added for the GitHub preset's test.
//
// Environment: OIDC_PROVIDER_MODULE (path of oidc-provider's lib/index.js), PORT,
// CLIENT_ID, CLIENT_SECRET (at least 32 characters: HS256 needs 256 bits), ACCOUNTS_JSON ({login: {claims..., orgs: [...], teams: {...}}}).
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS_JSON);

const client = {
  client_id: process.env.CLIENT_ID,
  client_secret: process.env.CLIENT_SECRET,
  // "native" lets a loopback redirect URI match on any port (RFC 8252 7.3): each test hub
  // listens on a port chosen at random.
  application_type: 'native',
  redirect_uris: ['http://127.0.0.1/hub/oauth_callback'],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

const configuration = {
  clients: [client, {
    // The same client whose ID tokens are signed with its secret (HS256, OpenID Connect Core
    // 10.1), as django-oauth-toolkit offers: <CLIENT_ID>-hs256, secret <CLIENT_SECRET>-hs256.
    ...client,
    client_id: `${process.env.CLIENT_ID}-hs256`,
    client_secret: `${process.env.CLIENT_SECRET}-hs256`,
    id_token_signed_response_alg: 'HS256',
  }],
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'HS256'] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified', 'hd'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['tljh-test-cookie-key'] },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...account.claims };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);

// GitHub's documented API shapes, answered for access tokens this provider issued.
async function tokenUser(ctx) {
  const value = (ctx.get('authorization') || '').replace(/^(bearer|token) /i, '');
  const token = value && await provider.AccessToken.find(value);
  return token ? token.accountId : undefined;
}

provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/api\/v3\/(user|orgs\/([^/]+)\/members\/([^/]+)|orgs\/([^/]+)\/teams\/([^/]+)\/memberships\/([^/]+))$/);
  if (!m || ctx.method !== 'GET') return next();
  const login = await tokenUser(ctx);
  ctx.type = 'application/json';
  if (!login) { ctx.status = 401; ctx.body = { message: 'Bad credentials' }; return; }
  if (m[1] === 'user') {
    ctx.body = { login, id: 4242, type: 'User', email: accounts[login].claims.email || null };
  } else if (m[2]) {
    const member = (accounts[m[3]]?.orgs || []).includes(m[2]);
    ctx.status = member ? 204 : 404;
    ctx.body = member ? '' : { message: 'Not Found' };
  } else {
    const state = (accounts[m[6]]?.teams || {})[`${m[4]}:${m[5]}`];
    ctx.status = state ? 200 : 404;
    ctx.body = state ? { role: 'member', state } : { message: 'Not Found' };
  }
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
