// A real OpenID Connect provider on loopback for the browser tests: the certified `oidc-provider` package with
// its development sign-in form (any login and password are accepted; the login names the account).
//
// node provider.mjs CLIENT_ID CLIENT_SECRET
// Listens on 127.0.0.1 on a port the system picks (the test reads it from the process), issuer
// http://127.0.0.1:PORT. One confidential client whose redirect URI is a loopback /oauth2callback on any port
// (RFC 8252 7.3, a "native" client): the studio's port is only known once it listens.
import http from 'node:http';

import Provider from 'oidc-provider';

const [clientId, clientSecret] = process.argv.slice(2);
if (!clientId || !clientSecret) {
  console.error('usage: node provider.mjs CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}

// Each login is its own account: sub = the login, with an email and a name made from it.
function account(login) {
  const name = login.charAt(0).toUpperCase() + login.slice(1);
  return {
    accountId: login,
    claims: () => ({ sub: login, email: `${login}@example.test`, email_verified: true, name }),
  };
}

let handler;
const ready = new Promise((resolve) => { handler = resolve; });
const server = http.createServer(async (req, res) => (await ready)(req, res));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/oauth2callback'],
      post_logout_redirect_uris: ['http://127.0.0.1/oauth2callback'],
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false, // the claims in the ID token itself: Streamlit reads only the ID token
    findAccount: (ctx, id) => account(id),
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['test-only-cookie-key'] },
  });
  // After sign-out, back to the studio's loopback /oauth2callback on whatever port it has (as for sign-in).
  provider.Client.prototype.postLogoutRedirectUriAllowed = (uri) => {
    try {
      const url = new URL(uri);
      return url.protocol === 'http:' && url.hostname === '127.0.0.1' && url.pathname === '/oauth2callback';
    } catch {
      return false;
    }
  };
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  handler(provider.callback());
  console.log(`oidc provider listening at http://127.0.0.1:${port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
