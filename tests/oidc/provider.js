// A real OpenID provider for Varta's single sign-on tests (tests/test_oidc_e2e.py): panva's
// oidc-provider, OpenID Certified, unchanged; only its configuration is here. One
// confidential client (PKCE required), the people the test lists (password, name, groups,
// and the authentication methods, amr, the provider asserts for them), a login page of its
// own at /interaction/UID (the provider's, not Varta's) and a fresh RSA signing key per run.
//
//   OIDC_TEST_CONFIG='{"port": 9400, "client_id": "varta", "client_secret": "…",
//     "redirect_uris": ["http://127.0.0.1:8080/api/auth/oidc/callback"],
//     "people": {"olena": {"password": "…", "name": "…", "groups": ["…"], "amr": ["pwd"]}}}' node provider.js
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_TEST_CONFIG || '{}');
const issuer = `http://127.0.0.1:${config.port}`;
const people = config.people || {};

const key = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: config.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [{ ...key, kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    // How the person was authenticated (the interaction's amr and acr) goes with openid,
    // so the ID token carries it; names and groups come from the UserInfo endpoint.
    openid: ['sub', 'acr', 'amr'],
    profile: ['name', 'family_name', 'given_name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  pkce: { methods: ['S256'], required: () => true },
  features: { devInteractions: { enabled: false } },
  async findAccount(ctx, id) {
    const p = people[id];
    if (!p) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: p.name, preferred_username: id, email: `${id}@city.example`, groups: p.groups || [] };
      },
    };
  },
  // The client is the city's own: nothing to consent to (the provider's documented way).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
});

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(uid, message = '') {
  return `<!doctype html><html><head><meta charset="utf-8"><title>City identity provider</title></head><body>
<h1>City identity provider</h1><p class="error">${esc(message)}</p>
<form method="post" action="/interaction/${esc(uid)}/login" id="idp-login">
<label>User <input name="login" id="idp-user" autocomplete="username"></label>
<label>Password <input name="password" id="idp-password" type="password"></label>
<button type="submit" id="idp-submit">Sign in</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit" id="idp-cancel">Cancel</button></form>
</body></html>`;
}

async function body(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return new URLSearchParams(data);
}

const handle = provider.callback();
http.createServer(async (req, res) => {
  const m = /^\/interaction\/([^/?]+)(\/login|\/abort)?/.exec(req.url);
  if (!m) return handle(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      return res.end(page(details.uid));
    }
    if (m[2] === '/abort') {
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled' },
        { mergeWithLastSubmission: false });
    }
    const form = await body(req);
    const who = people[form.get('login')];
    if (!who || who.password !== form.get('password')) {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      return res.end(page(details.uid, 'Wrong user or password'));
    }
    const login = { accountId: form.get('login'), amr: who.amr || ['pwd'] };
    if (who.acr) login.acr = who.acr;
    return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.statusCode = 400;
    res.end(`interaction failed: ${err.message}`);
  }
}).listen(config.port, '127.0.0.1', () => console.log(`oidc-provider ready at ${issuer}`));
