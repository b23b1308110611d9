#!/usr/bin/env node
// fake_aws.mjs: one process that stands in for everything AWS the sidecar talks to in the IAM
// integration tests, all sharing one in-memory table of valid credentials:
//   - STS AssumeRoleWithWebIdentity (Query API, XML), on HTTPS (sts_https) and plain HTTP (http);
//   - the EKS Pod Identity agent's GET /v1/credentials (plain HTTP, http);
//   - an ElastiCache-style IAM check in front of a real redis-server (TLS, redis): AUTH / HELLO AUTH
//     tokens (SigV4 presigned "connect" URLs) are verified and rewritten to the backend's ACL user;
//   - GET /_stats and POST /_control (plain HTTP, http) for the tests.
//
// Usage: node fake_aws.mjs --config <file.json>
// Prints one JSON line {"sts_https":P1,"http":P2,"redis":P3} on stdout once everything listens on
// 127.0.0.1, then runs until SIGTERM/SIGINT (exit 0). Config errors: message on stderr, exit 2.
// Logs one line per request / auth decision on stderr (never secret keys or whole tokens).
//
// Config (JSON): tls_cert, tls_key (PEM paths: the HTTPS STS and Redis TLS server certificate),
// backend_port (number), backend_user, backend_password (the real redis-server's ACL user),
// region, cache_name (lower-case), serverless (bool), iam_user; optional: role_arn,
// web_identity_token_file, pod_identity_token_file (read per request, trimmed; absent: every
// request of that kind is refused), credential_lifetime_seconds (3600; STS issues
// min(DurationSeconds, this)), static_credentials {access_key_id, secret_access_key,
// session_token?}, max_auth_age_seconds (43200), clock_skew_seconds (300). Unknown fields: exit 2.
//
// http port: POST|GET / (STS), GET /v1/credentials (Pod Identity), GET /_stats,
// POST /_control {"refuse": "none"|"all"|"not_authorized", "sts_fail": n, "pod_fail": n}.
//   refuse "all": every AUTH refused unverified; "not_authorized": tokens are verified as usual
//   and the valid ones refused too (both count reason "forced"). sts_fail / pod_fail: the next n
//   requests answer 503 ServiceUnavailable / 500.
// STS errors: InvalidAction, MissingParameter, ValidationError, InvalidIdentityToken (400),
//   AccessDenied (403), ServiceUnavailable (503), InvalidHostHeader (400, a Host header that
//   does not name 127.0.0.1:<port> / localhost:<port>; this code is fake_aws's own).
// Pod Identity errors (plain text, like the agent's): 400 no Authorization, 403 wrong one.
// AUTH refusal reasons (/_stats auth_refused): bad_format, wrong_host, wrong_user, resource_type,
//   wrong_region, expired (X-Amz-Date too old or too far in the future), unknown_key,
//   key_expired, security_token, signature, forced.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const ACCOUNT_ID = '123456789012';
const MAX_CLIENT_BUFFER = 64 * 1024 * 1024; // unparsed client bytes per connection
const MAX_INLINE = 64 * 1024; // redis' own limit for an inline command / a RESP header line
const MAX_MULTIBULK = 1024 * 1024;
const PRESIGN_EXPIRES = 900;
const REFUSED_USER = 'fake-aws-refused';
const REFUSED_PASS = 'refused-by-fake-aws';

function log(msg) {
  process.stderr.write(`fake_aws ${new Date().toISOString()} ${msg}\n`);
}

function die(msg) {
  process.stderr.write(`fake_aws: config error: ${msg}\n`);
  process.exit(2);
}

function shortTok(s) {
  s = String(s ?? '');
  return s.length > 20 ? `${s.slice(0, 20)}...(${s.length} chars)` : s;
}

// ---------------------------------------------------------------------------------------------
// Config

function loadConfig(argv) {
  const i = argv.indexOf('--config');
  if (i < 0 || i + 1 >= argv.length) die('usage: fake_aws.mjs --config <path-to-json>');
  let cfg;
  try {
    cfg = JSON.parse(fs.readFileSync(argv[i + 1], 'utf8'));
  } catch (e) {
    die(`cannot read ${argv[i + 1]}: ${e.message}`);
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) die('the config must be a JSON object');
  const known = new Set([
    'tls_cert', 'tls_key', 'backend_port', 'backend_user', 'backend_password', 'region',
    'cache_name', 'serverless', 'iam_user', 'role_arn', 'web_identity_token_file',
    'pod_identity_token_file', 'credential_lifetime_seconds', 'static_credentials',
    'max_auth_age_seconds', 'clock_skew_seconds',
  ]);
  for (const k of Object.keys(cfg)) if (!known.has(k)) die(`unknown field '${k}'`);
  const str = (k, required = true) => {
    if (cfg[k] === undefined && !required) return undefined;
    if (typeof cfg[k] !== 'string' || cfg[k] === '') die(`'${k}' must be a non-empty string`);
    return cfg[k];
  };
  const num = (k, dflt, min, max) => {
    if (cfg[k] === undefined) {
      if (dflt === undefined) die(`'${k}' is required`);
      return dflt;
    }
    if (typeof cfg[k] !== 'number' || !Number.isFinite(cfg[k]) || cfg[k] < min || cfg[k] > max)
      die(`'${k}' must be a number in [${min}, ${max}]`);
    return cfg[k];
  };
  const c = {
    tlsCert: str('tls_cert'),
    tlsKey: str('tls_key'),
    backendPort: num('backend_port', undefined, 1, 65535),
    backendUser: str('backend_user'),
    backendPassword: str('backend_password'),
    region: str('region'),
    cacheName: str('cache_name'),
    iamUser: str('iam_user'),
    roleArn: str('role_arn', false),
    webIdentityTokenFile: str('web_identity_token_file', false),
    podIdentityTokenFile: str('pod_identity_token_file', false),
    credentialLifetime: num('credential_lifetime_seconds', 3600, 1, 7 * 86400),
    maxAuthAge: num('max_auth_age_seconds', 43200, 0.1, 365 * 86400),
    clockSkew: num('clock_skew_seconds', 300, 0, 86400),
  };
  if (!Number.isInteger(c.backendPort)) die("'backend_port' must be an integer");
  if (typeof cfg.serverless !== 'boolean') die("'serverless' must be true or false");
  c.serverless = cfg.serverless;
  if (!/^[a-z0-9][a-z0-9-]*$/.test(c.cacheName)) die("'cache_name' must be lower-case [a-z0-9-]");
  if (!/^[a-z0-9-]+$/.test(c.region)) die("'region' looks wrong");
  if (cfg.static_credentials !== undefined) {
    const s = cfg.static_credentials;
    if (!s || typeof s !== 'object' || Array.isArray(s)) die("'static_credentials' must be an object");
    for (const k of Object.keys(s))
      if (!['access_key_id', 'secret_access_key', 'session_token'].includes(k))
        die(`unknown field 'static_credentials.${k}'`);
    if (typeof s.access_key_id !== 'string' || !s.access_key_id) die("'static_credentials.access_key_id' must be a non-empty string");
    if (typeof s.secret_access_key !== 'string' || !s.secret_access_key) die("'static_credentials.secret_access_key' must be a non-empty string");
    if (s.session_token !== undefined && (typeof s.session_token !== 'string' || !s.session_token))
      die("'static_credentials.session_token' must be a non-empty string when given");
    c.staticCredentials = s;
  }
  try {
    c.certPem = fs.readFileSync(c.tlsCert);
    c.keyPem = fs.readFileSync(c.tlsKey);
  } catch (e) {
    die(`cannot read the TLS certificate or key: ${e.message}`);
  }
  return c;
}

const cfg = loadConfig(process.argv.slice(2));

// ---------------------------------------------------------------------------------------------
// Shared state

const stats = {
  sts_ok: 0,
  sts_errors: {},
  pod_ok: 0,
  pod_errors: 0,
  auth_ok: 0,
  auth_refused: {},
  reauth_ok: 0,
  closed_for_age: 0,
  connections: 0,
  issued: 0,
  last_web_identity_token: null,
};
const control = { refuse: 'none', stsFail: 0, podFail: 0 };

// access key id -> { secret, sessionToken (or undefined), expiresAt (ms, or Infinity), source }
const credentials = new Map();
if (cfg.staticCredentials) {
  credentials.set(cfg.staticCredentials.access_key_id, {
    secret: cfg.staticCredentials.secret_access_key,
    sessionToken: cfg.staticCredentials.session_token,
    expiresAt: Infinity,
    source: 'static',
  });
}

function randomFrom(alphabet, n) {
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[bytes[i] % alphabet.length];
  return s;
}

function isoSeconds(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function issueCredentials(source, lifetimeSeconds) {
  const upperAlnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const accessKeyId = 'ASIA' + randomFrom(upperAlnum, 16);
  const secret = randomFrom(b64, 40);
  // Real session tokens are base64 (with '+', '/' and '=' padding), usually 600-1200 chars.
  const sessionToken = 'IQoJb3JpZ2luX2VjE' + crypto.randomBytes(520).toString('base64');
  const expiresAt = Date.now() + lifetimeSeconds * 1000;
  credentials.set(accessKeyId, { secret, sessionToken, expiresAt, source });
  stats.issued++;
  return { accessKeyId, secret, sessionToken, expiration: isoSeconds(expiresAt) };
}

function readTokenFile(path) {
  if (!path) return null;
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch (e) {
    log(`cannot read token file ${path}: ${e.message}`);
    return null;
  }
}

function safeEqualStrings(a, b) {
  const ha = crypto.createHash('sha256').update(String(a)).digest();
  const hb = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb) && String(a) === String(b);
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

function xmlEscape(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res, status, contentType, body, extraHeaders = {}) {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': buf.length, ...extraHeaders });
  res.end(buf);
}

function sendJson(res, status, obj) {
  send(res, status, 'application/json', JSON.stringify(obj));
}

// ---------------------------------------------------------------------------------------------
// STS AssumeRoleWithWebIdentity

function stsError(res, status, type, code, message) {
  const requestId = crypto.randomUUID();
  stats.sts_errors[code] = (stats.sts_errors[code] ?? 0) + 1;
  const body =
    `<ErrorResponse xmlns="${STS_NS}">\n` +
    `  <Error>\n    <Type>${type}</Type>\n    <Code>${xmlEscape(code)}</Code>\n` +
    `    <Message>${xmlEscape(message)}</Message>\n  </Error>\n` +
    `  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`;
  log(`sts: ${status} ${code}: ${message}`);
  send(res, status, 'text/xml', body, { 'x-amzn-RequestId': requestId });
}

function hostMatches(req, defaultPort) {
  const host = req.headers.host;
  const port = req.socket.localPort;
  if (typeof host !== 'string') return false;
  const allowed = [`127.0.0.1:${port}`, `localhost:${port}`];
  if (port === defaultPort) allowed.push('127.0.0.1', 'localhost');
  return allowed.includes(host.toLowerCase());
}

function decodeJwtClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

async function handleSts(req, res, url, defaultPort) {
  if (control.stsFail > 0) {
    control.stsFail--;
    stsError(res, 503, 'Receiver', 'ServiceUnavailable', 'Service is unavailable. Please try again later.');
    return;
  }
  if (!hostMatches(req, defaultPort)) {
    stsError(res, 400, 'Sender', 'InvalidHostHeader',
      `Host header '${req.headers.host}' does not name the endpoint the request was sent to`);
    return;
  }
  let params;
  if (req.method === 'POST') {
    const ct = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    let body;
    try {
      body = await readBody(req, 1024 * 1024);
    } catch (e) {
      stsError(res, 400, 'Sender', 'ValidationError', e.message);
      return;
    }
    if (ct !== 'application/x-www-form-urlencoded') {
      stsError(res, 400, 'Sender', 'InvalidAction',
        `POST requests need Content-Type application/x-www-form-urlencoded, got '${ct}'`);
      return;
    }
    params = new URLSearchParams(body.toString('utf8'));
  } else if (req.method === 'GET') {
    params = url.searchParams;
  } else {
    stsError(res, 400, 'Sender', 'InvalidAction', `Method ${req.method} is not supported`);
    return;
  }
  const action = params.get('Action');
  const version = params.get('Version');
  if (!action) {
    stsError(res, 400, 'Sender', 'InvalidAction', 'The request has no Action parameter');
    return;
  }
  if (action !== 'AssumeRoleWithWebIdentity' || version !== '2011-06-15') {
    stsError(res, 400, 'Sender', 'InvalidAction',
      `Could not find operation ${action} for version ${version ?? 'NO_VERSION_SPECIFIED'}`);
    return;
  }
  for (const p of ['RoleArn', 'RoleSessionName', 'WebIdentityToken']) {
    if (!params.get(p)) {
      stsError(res, 400, 'Sender', 'MissingParameter',
        `The request must contain the parameter ${p}`);
      return;
    }
  }
  const roleArn = params.get('RoleArn');
  const sessionName = params.get('RoleSessionName');
  const webToken = params.get('WebIdentityToken');
  stats.last_web_identity_token = webToken;
  const problems = [];
  if (!/^[\w+=,.@-]*$/.test(sessionName))
    problems.push(`Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
  if (sessionName.length < 2 || sessionName.length > 64)
    problems.push(`Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64`);
  let duration = null;
  if (params.has('DurationSeconds')) {
    const d = params.get('DurationSeconds');
    if (!/^\d+$/.test(d)) {
      problems.push(`Value '${d}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer`);
    } else {
      duration = Number(d);
      if (duration < 900)
        problems.push(`Value '${d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`);
      else if (duration > 43200)
        problems.push(`Value '${d}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200`);
    }
  }
  if (problems.length) {
    stsError(res, 400, 'Sender', 'ValidationError',
      `${problems.length} validation error${problems.length > 1 ? 's' : ''} detected: ${problems.join('; ')}`);
    return;
  }
  const expected = readTokenFile(cfg.webIdentityTokenFile);
  if (expected === null || expected === '' || !safeEqualStrings(webToken, expected)) {
    log(`sts: web identity token ${shortTok(webToken)} does not match the token file's current content`);
    stsError(res, 400, 'Sender', 'InvalidIdentityToken',
      'The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.');
    return;
  }
  if (!cfg.roleArn || roleArn !== cfg.roleArn) {
    log(`sts: RoleArn '${roleArn}' is not the configured role`);
    stsError(res, 403, 'Sender', 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    return;
  }
  const lifetime = duration === null ? cfg.credentialLifetime : Math.min(duration, cfg.credentialLifetime);
  const cred = issueCredentials('sts', lifetime);
  const claims = decodeJwtClaims(webToken) ?? {};
  const subject = typeof claims.sub === 'string' ? claims.sub : 'system:serviceaccount:default:redis-sidecar';
  const audience = typeof claims.aud === 'string' ? claims.aud
    : Array.isArray(claims.aud) && typeof claims.aud[0] === 'string' ? claims.aud[0] : 'sts.amazonaws.com';
  const issuer = typeof claims.iss === 'string' ? claims.iss.replace(/^https:\/\//, '')
    : 'oidc.eks.us-east-1.amazonaws.com/id/FAKEAWS0000000000000000000000000';
  const arnParts = roleArn.split(':');
  const account = arnParts[4] || ACCOUNT_ID;
  const roleName = (arnParts.slice(5).join(':').split('/').pop()) || 'role';
  const requestId = crypto.randomUUID();
  const body =
    `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NS}">\n` +
    `  <AssumeRoleWithWebIdentityResult>\n` +
    `    <SubjectFromWebIdentityToken>${xmlEscape(subject)}</SubjectFromWebIdentityToken>\n` +
    `    <Audience>${xmlEscape(audience)}</Audience>\n` +
    `    <AssumedRoleUser>\n` +
    `      <Arn>arn:aws:sts::${xmlEscape(account)}:assumed-role/${xmlEscape(roleName)}/${xmlEscape(sessionName)}</Arn>\n` +
    `      <AssumedRoleId>AROA${randomFrom('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 17)}:${xmlEscape(sessionName)}</AssumedRoleId>\n` +
    `    </AssumedRoleUser>\n` +
    `    <Credentials>\n` +
    `      <AccessKeyId>${cred.accessKeyId}</AccessKeyId>\n` +
    `      <SecretAccessKey>${xmlEscape(cred.secret)}</SecretAccessKey>\n` +
    `      <SessionToken>${xmlEscape(cred.sessionToken)}</SessionToken>\n` +
    `      <Expiration>${cred.expiration}</Expiration>\n` +
    `    </Credentials>\n` +
    `    <Provider>arn:aws:iam::${xmlEscape(account)}:oidc-provider/${xmlEscape(issuer)}</Provider>\n` +
    `  </AssumeRoleWithWebIdentityResult>\n` +
    `  <ResponseMetadata>\n    <RequestId>${requestId}</RequestId>\n  </ResponseMetadata>\n` +
    `</AssumeRoleWithWebIdentityResponse>\n`;
  stats.sts_ok++;
  log(`sts: 200 issued ${cred.accessKeyId} (expires ${cred.expiration}) for session '${sessionName}', token ${shortTok(webToken)}`);
  send(res, 200, 'text/xml', body, { 'x-amzn-RequestId': requestId });
}

// ---------------------------------------------------------------------------------------------
// EKS Pod Identity agent (errors are plain text, as the real agent's http.Error)

function podError(res, status, message) {
  stats.pod_errors++;
  log(`pod identity: ${status} ${message}`);
  send(res, status, 'text/plain; charset=utf-8', `${message}\n`, { 'X-Content-Type-Options': 'nosniff' });
}

function handlePodIdentity(req, res) {
  if (req.method !== 'GET') {
    podError(res, 405, 'Method Not Allowed');
    return;
  }
  if (control.podFail > 0) {
    control.podFail--;
    podError(res, 500, `[${crypto.randomUUID()}]: (InternalServerException): fake_aws was told to fail, fault: server`);
    return;
  }
  const auth = req.headers.authorization;
  if (!auth) {
    podError(res, 400, 'Service account token cannot be empty');
    return;
  }
  const expected = readTokenFile(cfg.podIdentityTokenFile);
  if (expected === null || expected === '' || !safeEqualStrings(auth, expected)) {
    log(`pod identity: Authorization ${shortTok(auth)} does not match the token file's current content`);
    podError(res, 403, 'Access Denied. The service account token is not valid');
    return;
  }
  const cred = issueCredentials('pod', cfg.credentialLifetime);
  stats.pod_ok++;
  log(`pod identity: 200 issued ${cred.accessKeyId} (expires ${cred.expiration})`);
  send(res, 200, 'application/json', JSON.stringify({
    AccessKeyId: cred.accessKeyId,
    SecretAccessKey: cred.secret,
    Token: cred.sessionToken,
    AccountId: ACCOUNT_ID,
    Expiration: cred.expiration,
  }));
}

// ---------------------------------------------------------------------------------------------
// Control

async function handleControl(req, res) {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'POST a JSON object' });
    return;
  }
  let body;
  try {
    body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8'));
  } catch (e) {
    sendJson(res, 400, { error: `bad JSON: ${e.message}` });
    return;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    sendJson(res, 400, { error: 'the body must be a JSON object' });
    return;
  }
  for (const [k, v] of Object.entries(body)) {
    if (k === 'refuse') {
      if (!['none', 'all', 'not_authorized'].includes(v)) {
        sendJson(res, 400, { error: "refuse must be 'none', 'all' or 'not_authorized'" });
        return;
      }
    } else if (k === 'sts_fail' || k === 'pod_fail') {
      if (!Number.isInteger(v) || v < 0) {
        sendJson(res, 400, { error: `${k} must be a non-negative integer` });
        return;
      }
    } else {
      sendJson(res, 400, { error: `unknown field '${k}'` });
      return;
    }
  }
  if (body.refuse !== undefined) control.refuse = body.refuse;
  if (body.sts_fail !== undefined) control.stsFail = body.sts_fail;
  if (body.pod_fail !== undefined) control.podFail = body.pod_fail;
  log(`control: ${JSON.stringify(body)}`);
  sendJson(res, 200, {});
}

function httpHandler(isTls) {
  const defaultPort = isTls ? 443 : 80;
  return (req, res) => {
    let url;
    try {
      url = new URL(req.url, 'http://placeholder');
    } catch {
      send(res, 400, 'text/plain', 'bad request target\n');
      return;
    }
    const route = (async () => {
      if (url.pathname === '/') return handleSts(req, res, url, defaultPort);
      if (!isTls && url.pathname === '/v1/credentials') return handlePodIdentity(req, res);
      if (!isTls && url.pathname === '/_stats' && req.method === 'GET') return sendJson(res, 200, stats);
      if (!isTls && url.pathname === '/_control') return handleControl(req, res);
      log(`http: 404 ${req.method} ${url.pathname}`);
      return send(res, 404, 'text/plain', 'not found\n');
    })();
    route.catch((e) => {
      log(`http: internal error: ${e.stack ?? e}`);
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  };
}

// ---------------------------------------------------------------------------------------------
// ElastiCache IAM token verification

const TOKEN_PARAMS = new Set([
  'Action', 'User', 'ResourceType', 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date',
  'X-Amz-Expires', 'X-Amz-Security-Token', 'X-Amz-SignedHeaders', 'X-Amz-Signature',
]);
const REQUIRED_TOKEN_PARAMS = [
  'Action', 'User', 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires',
  'X-Amz-SignedHeaders', 'X-Amz-Signature',
];

function refuse(reason, detail) {
  return { ok: false, reason, detail };
}

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return null;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  if (Number.isNaN(d.getTime()) || d.toISOString().replace(/[-:]|\.\d{3}/g, '') !== s) return null;
  return d;
}

async function expectedSignature(key, user, signingDate) {
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: key.accessKeyId,
      secretAccessKey: key.secret,
      ...(key.sessionToken ? { sessionToken: key.sessionToken } : {}),
    },
    region: cfg.region,
    service: 'elasticache',
    sha256: Sha256,
  });
  const query = { Action: 'connect', User: user };
  if (cfg.serverless) query.ResourceType = 'ServerlessCache';
  const presigned = await signer.presign(
    { method: 'GET', protocol: 'http:', hostname: cfg.cacheName, path: '/', query, headers: { host: cfg.cacheName } },
    { expiresIn: PRESIGN_EXPIRES, signingDate },
  );
  return presigned.query['X-Amz-Signature'];
}

async function verifyToken(authUser, token) {
  if (control.refuse === 'all') return refuse('forced', "refuse mode 'all'");
  const q = token.indexOf('?');
  if (q < 0) return refuse('bad_format', 'no query string');
  const hostPath = token.slice(0, q);
  if (!/^[^/?#:@\s]+\/$/.test(hostPath)) return refuse('bad_format', `'${shortTok(hostPath)}' is not '<cache_name>/'`);
  const host = hostPath.slice(0, -1);
  const params = Object.create(null);
  for (const part of token.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return refuse('bad_format', `query part '${shortTok(part)}' is not key=value`);
    let k, v;
    try {
      k = decodeURIComponent(part.slice(0, eq));
      v = decodeURIComponent(part.slice(eq + 1));
    } catch {
      return refuse('bad_format', `bad percent-encoding in '${shortTok(part)}'`);
    }
    if (!TOKEN_PARAMS.has(k)) return refuse('bad_format', `unexpected query parameter '${shortTok(k)}'`);
    if (k in params) return refuse('bad_format', `duplicate query parameter '${k}'`);
    params[k] = v;
  }
  for (const k of REQUIRED_TOKEN_PARAMS) if (!(k in params)) return refuse('bad_format', `missing ${k}`);
  if (host !== cfg.cacheName) return refuse('wrong_host', `host '${host}' is not '${cfg.cacheName}'`);
  if (params.Action !== 'connect') return refuse('bad_format', `Action '${params.Action}' is not 'connect'`);
  if (params.User !== authUser) return refuse('wrong_user', `token is for User '${params.User}', AUTH names '${authUser}'`);
  if (authUser !== cfg.iamUser) return refuse('wrong_user', `user '${authUser}' is not the IAM user '${cfg.iamUser}'`);
  if (cfg.serverless ? params.ResourceType !== 'ServerlessCache' : 'ResourceType' in params)
    return refuse('resource_type', `ResourceType '${params.ResourceType ?? '(absent)'}' but serverless=${cfg.serverless}`);
  if (params['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256')
    return refuse('bad_format', `X-Amz-Algorithm '${params['X-Amz-Algorithm']}'`);
  const amzDate = params['X-Amz-Date'];
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate) return refuse('bad_format', `X-Amz-Date '${amzDate}' is not yyyymmddTHHMMSSZ`);
  const scope = params['X-Amz-Credential'].split('/');
  if (scope.length !== 5 || !scope[0]) return refuse('bad_format', 'X-Amz-Credential is not AKID/date/region/service/aws4_request');
  const [akid, scopeDate, scopeRegion, scopeService, terminator] = scope;
  if (scopeDate !== amzDate.slice(0, 8)) return refuse('bad_format', `credential scope date ${scopeDate} is not X-Amz-Date's ${amzDate.slice(0, 8)}`);
  if (scopeRegion !== cfg.region) return refuse('wrong_region', `credential scope region '${scopeRegion}' is not '${cfg.region}'`);
  if (scopeService !== 'elasticache') return refuse('bad_format', `credential scope service '${scopeService}'`);
  if (terminator !== 'aws4_request') return refuse('bad_format', `credential scope terminator '${terminator}'`);
  if (params['X-Amz-Expires'] !== String(PRESIGN_EXPIRES)) return refuse('bad_format', `X-Amz-Expires '${params['X-Amz-Expires']}' is not 900`);
  if (params['X-Amz-SignedHeaders'] !== 'host') return refuse('bad_format', `X-Amz-SignedHeaders '${params['X-Amz-SignedHeaders']}' is not 'host'`);
  if (!/^[0-9a-f]{64}$/.test(params['X-Amz-Signature'])) return refuse('bad_format', 'X-Amz-Signature is not 64 lower-case hex digits');
  const now = Date.now();
  const ageSeconds = (now - signingDate.getTime()) / 1000;
  if (ageSeconds > PRESIGN_EXPIRES) return refuse('expired', `X-Amz-Date ${amzDate} is ${Math.round(ageSeconds)} s old`);
  if (-ageSeconds > cfg.clockSkew) return refuse('expired', `X-Amz-Date ${amzDate} is ${Math.round(-ageSeconds)} s in the future`);
  const key = credentials.get(akid);
  if (!key) return refuse('unknown_key', `access key ${akid} is unknown`);
  if (now >= key.expiresAt) return refuse('key_expired', `access key ${akid} expired at ${isoSeconds(key.expiresAt)}`);
  const st = params['X-Amz-Security-Token'];
  if (key.sessionToken) {
    if (st === undefined) return refuse('security_token', `X-Amz-Security-Token missing for ${akid}`);
    if (!safeEqualStrings(st, key.sessionToken)) return refuse('security_token', `X-Amz-Security-Token is not ${akid}'s session token`);
  } else if (st !== undefined) {
    return refuse('security_token', `X-Amz-Security-Token given but ${akid} has no session token`);
  }
  const want = await expectedSignature({ accessKeyId: akid, ...key }, authUser, signingDate);
  if (!crypto.timingSafeEqual(Buffer.from(want, 'hex'), Buffer.from(params['X-Amz-Signature'], 'hex')))
    return refuse('signature', `signature mismatch for ${akid}`);
  if (control.refuse === 'not_authorized') return refuse('forced', "valid token, but refuse mode 'not_authorized'");
  return { ok: true, akid };
}

// ---------------------------------------------------------------------------------------------
// Redis TLS front

function encodeCommand(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// Finds "\r\n" at or after `from`; returns the index of '\r' or -1.
function findCrlf(buf, from) {
  return buf.indexOf('\r\n', from, 'latin1');
}

function parseIntStrict(buf, start, end) {
  if (end <= start || end - start > 19) return null;
  const s = buf.toString('latin1', start, end);
  return /^-?\d+$/.test(s) ? Number(s) : null;
}

const AUTH_NAMES = new Set(['auth', 'hello']);

// Parses one command at buf[pos..]. Returns
//   { kind: 'incomplete', need }  need: a lower bound of the bytes (from pos) the command takes
//   { kind: 'error', msg }        not RESP
//   { kind: 'pass', end }         any command but AUTH / HELLO: forward buf[pos..end) untouched
//   { kind: 'auth', end, args, inline }  AUTH / HELLO with its arguments (Buffers)
function parseCommand(buf, pos) {
  const avail = buf.length - pos;
  if (buf[pos] !== 0x2a /* '*' */) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return avail > MAX_INLINE ? { kind: 'error', msg: 'too big inline request' } : { kind: 'incomplete', need: avail + 1 };
    const line = buf.toString('latin1', pos, nl).replace(/\r$/, '');
    const words = line.split(/[ \t]+/).filter((w) => w.length);
    if (words.length && AUTH_NAMES.has(words[0].toLowerCase()))
      return { kind: 'auth', end: nl + 1, args: words.map((w) => Buffer.from(w, 'latin1')), inline: true };
    return { kind: 'pass', end: nl + 1 };
  }
  let lineEnd = findCrlf(buf, pos);
  if (lineEnd < 0) return avail > MAX_INLINE ? { kind: 'error', msg: 'multibulk header too long' } : { kind: 'incomplete', need: avail + 1 };
  const n = parseIntStrict(buf, pos + 1, lineEnd);
  if (n === null || n > MAX_MULTIBULK) return { kind: 'error', msg: 'invalid multibulk length' };
  let p = lineEnd + 2;
  if (n <= 0) return { kind: 'pass', end: p };
  let args = null;
  for (let i = 0; i < n; i++) {
    if (p >= buf.length) return { kind: 'incomplete', need: p - pos + 1 };
    if (buf[p] !== 0x24 /* '$' */) return { kind: 'error', msg: `expected '$', got '${String.fromCharCode(buf[p])}'` };
    lineEnd = findCrlf(buf, p);
    if (lineEnd < 0) return buf.length - p > MAX_INLINE ? { kind: 'error', msg: 'bulk header too long' } : { kind: 'incomplete', need: buf.length - pos + 1 };
    const len = parseIntStrict(buf, p + 1, lineEnd);
    if (len === null || len < 0) return { kind: 'error', msg: 'invalid bulk length' };
    const dataStart = lineEnd + 2;
    const dataEnd = dataStart + len;
    if (dataEnd - pos + 2 > MAX_CLIENT_BUFFER) return { kind: 'error', msg: `command larger than ${MAX_CLIENT_BUFFER} bytes`, fatal: true };
    if (dataEnd + 2 > buf.length) return { kind: 'incomplete', need: dataEnd + 2 - pos };
    if (buf[dataEnd] !== 0x0d || buf[dataEnd + 1] !== 0x0a) return { kind: 'error', msg: 'bulk string not followed by CRLF' };
    if (i === 0) {
      const name = buf.toString('latin1', dataStart, dataEnd).toLowerCase();
      if (AUTH_NAMES.has(name)) args = [];
    }
    if (args) args.push(buf.subarray(dataStart, dataEnd));
    p = dataEnd + 2;
  }
  return args ? { kind: 'auth', end: p, args, inline: false } : { kind: 'pass', end: p };
}

let nextConnId = 1;
const liveConnections = new Set();

class FrontConnection {
  constructor(client) {
    this.id = nextConnId++;
    this.client = client;
    this.chunks = [];
    this.buffered = 0;
    this.need = 0;
    this.pumping = false;
    this.clientEnded = false;
    this.dropInput = false;
    this.closed = false;
    this.authAt = null; // ms of the last successful IAM auth
    this.waitingDrain = false;
    stats.connections++;
    liveConnections.add(this);
    this.backend = net.connect({ host: '127.0.0.1', port: cfg.backendPort });
    this.backend.setNoDelay(true);
    client.setNoDelay(true);
    this.backend.on('data', (d) => {
      if (!this.client.write(d)) {
        this.backend.pause();
        this.client.once('drain', () => this.backend.resume());
      }
    });
    // The backend closing (QUIT, protocol error, ...): flush what it sent, then close the client.
    this.backend.on('end', () => this.client.end());
    this.backend.on('error', (e) => this.close(`backend: ${e.message}`));
    this.backend.on('close', () => {
      if (this.closed) return;
      this.client.end();
      setTimeout(() => this.close('backend closed'), 2000);
    });
    client.on('data', (d) => this.onClientData(d));
    client.on('end', () => {
      this.clientEnded = true;
      if (!this.pumping) this.backend.end();
    });
    client.on('error', (e) => this.close(`client: ${e.message}`));
    client.on('close', () => this.close('client closed'));
    log(`redis#${this.id}: connection from ${client.remoteAddress}:${client.remotePort}`);
  }

  close(why) {
    if (this.closed) return;
    this.closed = true;
    stats.connections--;
    liveConnections.delete(this);
    this.client.destroy();
    this.backend.destroy();
    this.chunks = [];
    log(`redis#${this.id}: closed (${why})`);
  }

  toBackend(buf) {
    if (this.closed || buf.length === 0) return;
    if (!this.backend.write(buf) && !this.waitingDrain) {
      this.waitingDrain = true;
      this.client.pause();
      this.backend.once('drain', () => {
        this.waitingDrain = false;
        this.client.resume();
      });
    }
  }

  onClientData(chunk) {
    if (this.closed) return;
    if (this.dropInput) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered > MAX_CLIENT_BUFFER) {
      this.close(`more than ${MAX_CLIENT_BUFFER} unparsed client bytes`);
      return;
    }
    if (this.buffered < this.need) return;
    this.pump().catch((e) => this.close(`internal error: ${e.stack ?? e}`));
  }

  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.buffered > 0 && this.buffered >= this.need) {
        const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
        this.chunks = [buf]; // chunks arriving while we await are pushed after it
        this.need = 0;
        let pos = 0;
        let passStart = 0;
        let protocolError = false;
        while (pos < buf.length) {
          const r = parseCommand(buf, pos);
          if (r.kind === 'incomplete') {
            this.need = r.need;
            break;
          }
          if (r.kind === 'error') {
            if (r.fatal) {
              this.close(r.msg);
              return;
            }
            // Let the backend answer its protocol error (and close); drop everything after.
            log(`redis#${this.id}: protocol error (${r.msg}); forwarding the rest raw and ignoring further input`);
            this.toBackend(buf.subarray(passStart));
            this.dropInput = true;
            protocolError = true;
            break;
          }
          if (r.kind === 'auth') {
            this.toBackend(buf.subarray(passStart, pos));
            const out = await this.rewriteAuth(r, buf.subarray(pos, r.end));
            if (this.closed) return;
            this.toBackend(out);
            passStart = r.end;
          }
          pos = r.end;
        }
        if (protocolError) {
          this.chunks = [];
          this.buffered = 0;
          break;
        }
        this.toBackend(buf.subarray(passStart, pos));
        const rest = buf.subarray(pos);
        const extra = this.chunks.slice(1);
        this.chunks = rest.length ? [rest, ...extra] : extra;
        this.buffered = this.chunks.reduce((n, c) => n + c.length, 0);
        if (extra.length === 0) break;
      }
    } finally {
      this.pumping = false;
    }
    if (this.clientEnded && !this.closed) this.backend.end();
  }

  recordDecision(cmd, user, token, v) {
    if (v.ok) {
      const reauth = this.authAt !== null;
      this.authAt = Date.now();
      stats.auth_ok++;
      if (reauth) stats.reauth_ok++;
      log(`redis#${this.id}: ${cmd} user '${user}' accepted (${v.akid})${reauth ? ' [re-auth]' : ''}, token ${shortTok(token)}`);
    } else {
      stats.auth_refused[v.reason] = (stats.auth_refused[v.reason] ?? 0) + 1;
      log(`redis#${this.id}: ${cmd} user '${user}' refused: ${v.reason}: ${v.detail}; token ${shortTok(token)}`);
    }
  }

  // Returns the bytes to send to the backend instead of an AUTH / HELLO command.
  async rewriteAuth(r, raw) {
    const args = r.args;
    const name = args[0].toString('latin1').toLowerCase();
    if (name === 'auth') {
      if (args.length === 2) {
        this.recordDecision('AUTH', '(none)', args[1].toString('latin1'),
          refuse('wrong_user', 'AUTH with a password only; IAM users need a user name'));
        return encodeCommand(['AUTH', REFUSED_USER, REFUSED_PASS]);
      }
      if (args.length !== 3) return raw; // the backend answers the syntax error
      const user = args[1].toString('utf8');
      const token = args[2].toString('utf8');
      const v = await verifyToken(user, token);
      this.recordDecision('AUTH', user, token, v);
      return v.ok
        ? encodeCommand(['AUTH', cfg.backendUser, cfg.backendPassword])
        : encodeCommand(['AUTH', REFUSED_USER, REFUSED_PASS]);
    }
    // HELLO [protover [AUTH username password] [SETNAME clientname]]
    const authAt = [];
    for (let i = 2; i < args.length;) {
      const opt = args[i].toString('latin1').toLowerCase();
      if (opt === 'auth' && i + 2 < args.length) {
        authAt.push(i);
        i += 3;
      } else if (opt === 'setname' && i + 1 < args.length) {
        i += 2;
      } else {
        authAt.length = 0;
        break; // syntax error: the backend answers it
      }
    }
    if (authAt.length === 0) {
      // No AUTH (or a syntax error): forward, but never hand an IAM token to the backend.
      const anyAuth = args.some((a, i) => i >= 2 && a.toString('latin1').toLowerCase() === 'auth');
      if (!anyAuth) return raw;
      const out = args.map((a) => a);
      for (let i = 2; i < out.length; i++)
        if (out[i].toString('latin1').toLowerCase() === 'auth') {
          if (i + 1 < out.length) out[i + 1] = Buffer.from(REFUSED_USER);
          if (i + 2 < out.length) out[i + 2] = Buffer.from(REFUSED_PASS);
        }
      return encodeCommand(out);
    }
    const out = args.map((a) => a);
    const last = authAt[authAt.length - 1];
    const user = args[last + 1].toString('utf8');
    const token = args[last + 2].toString('utf8');
    const protover = args[1].toString('latin1');
    let v;
    if (protover !== '2' && protover !== '3') {
      v = null; // the backend answers NOPROTO without authenticating: do not count it
    } else if (authAt.length > 1) {
      v = refuse('bad_format', 'HELLO with more than one AUTH clause');
    } else {
      v = await verifyToken(user, token);
    }
    if (v) this.recordDecision('HELLO', user, token, v);
    const [u, p] = v && v.ok ? [cfg.backendUser, cfg.backendPassword] : [REFUSED_USER, REFUSED_PASS];
    for (const i of authAt) {
      out[i + 1] = Buffer.from(u);
      out[i + 2] = Buffer.from(p);
    }
    return encodeCommand(out);
  }
}

// ---------------------------------------------------------------------------------------------
// Start

const servers = [];

function listen(server) {
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

let tlsOptions;
try {
  tlsOptions = { cert: cfg.certPem, key: cfg.keyPem };
  tls.createSecureContext(tlsOptions);
} catch (e) {
  die(`bad TLS certificate or key: ${e.message}`);
}

const stsServer = https.createServer(tlsOptions, httpHandler(true));
const httpServer = http.createServer(httpHandler(false));
// allowHalfOpen: a client that shuts down its sending side still gets the replies.
const redisServer = tls.createServer({ ...tlsOptions, allowHalfOpen: true }, (socket) => new FrontConnection(socket));
for (const s of [stsServer, httpServer, redisServer]) {
  s.on('tlsClientError', (e) => log(`tls: handshake failed: ${e.message}`));
  s.on('clientError', (e, socket) => socket.destroy());
}

const ageTimer = setInterval(() => {
  const now = Date.now();
  for (const c of [...liveConnections]) {
    if (c.authAt !== null && now - c.authAt > cfg.maxAuthAge * 1000) {
      stats.closed_for_age++;
      c.close(`last IAM auth ${((now - c.authAt) / 1000).toFixed(1)} s ago > max_auth_age_seconds ${cfg.maxAuthAge}`);
    }
  }
}, 1000);

function shutdown(sig) {
  log(`${sig}: exiting`);
  clearInterval(ageTimer);
  for (const c of [...liveConnections]) c.close('shutdown');
  for (const s of servers) s.close();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

try {
  const ports = {
    sts_https: await listen(stsServer),
    http: await listen(httpServer),
    redis: await listen(redisServer),
  };
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  log(`listening ${JSON.stringify(ports)}; backend 127.0.0.1:${cfg.backendPort}; cache '${cfg.cacheName}' region ${cfg.region} serverless=${cfg.serverless} iam_user '${cfg.iamUser}'`);
} catch (e) {
  process.stderr.write(`fake_aws: cannot listen: ${e.message}\n`);
  process.exit(1);
}
