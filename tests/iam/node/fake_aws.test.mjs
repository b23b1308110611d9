// Self-test of fake_aws.mjs with independent clients: @aws-sdk/client-sts, tokens signed with
// @smithy/signature-v4, redis-cli --tls and a raw TLS RESP client, against a real redis-server.
// Run: ./setup.sh && node --test fake_aws.test.mjs   (needs redis-server, redis-cli, openssl)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { STSClient, AssumeRoleWithWebIdentityCommand } from '@aws-sdk/client-sts';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(here, 'fake_aws.mjs');
const REGION = 'us-east-1';
const CACHE = 'my-cache';
const CACHE2 = 'my-serverless-cache';
const IAM_USER = 'iam-user-01';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/redis-sidecar';
const BACKEND_USER = 'sidecar-backend';
const BACKEND_PASS = 'backend-pass-' + crypto.randomBytes(6).toString('hex');
const STATIC = { access_key_id: 'AKIAFAKEAWSSTATIC001', secret_access_key: 'static/secret+key/0123456789abcdefghijklm' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const execFileP = promisify(execFile);

let tmp, caPem, caFile, witFile, pitFile;
let redisProc, redisPort;
let main, second; // { proc, ports, stderr() }
let stsCreds; // from the SDK test, used by the redis tests

// ---------------------------------------------------------------------------------------------
// Helpers

function makeCerts(dir) {
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=fake-aws test CA', '-days', '1',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n' +
    'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf']);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', tmp, '--daemonize', 'no', '--protected-mode', 'yes',
      '--user', 'default', 'off',
      '--user', BACKEND_USER, 'on', `>${BACKEND_PASS}`, '~*', '&*', '+@all',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const ok = await new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), 5000);
      proc.stdout.on('data', (d) => {
        out += d;
        if (out.includes('Ready to accept connections')) { clearTimeout(t); resolve(true); }
      });
      proc.once('exit', () => { clearTimeout(t); resolve(false); });
    });
    if (ok) return { proc, port };
    proc.kill('SIGKILL');
    if (attempt === 4) throw new Error(`redis-server did not start:\n${out}`);
  }
}

function startFake(config, name) {
  const cfgPath = path.join(tmp, `${name}.json`);
  fs.writeFileSync(cfgPath, JSON.stringify(config));
  const proc = spawn(process.execPath, [FAKE, '--config', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${name}: no ports line within 10 s; stderr:\n${err}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        try {
          const ports = JSON.parse(out.slice(0, nl));
          resolve({ proc, ports, stderr: () => err });
        } catch (e) {
          reject(new Error(`${name}: bad ports line '${out.slice(0, nl)}'`));
        }
      }
    });
    proc.once('exit', (code) => { clearTimeout(t); reject(new Error(`${name} exited ${code}:\n${err}`)); });
  });
}

function mainConfig(over = {}) {
  return {
    tls_cert: path.join(tmp, 'server.crt'), tls_key: path.join(tmp, 'server.key'),
    backend_port: redisPort, backend_user: BACKEND_USER, backend_password: BACKEND_PASS,
    region: REGION, cache_name: CACHE, serverless: false, iam_user: IAM_USER,
    role_arn: ROLE_ARN, web_identity_token_file: witFile, pod_identity_token_file: pitFile,
    static_credentials: STATIC,
    ...over,
  };
}

// Plain http/https request; returns { status, headers, body }.
function request(port, { method = 'GET', path: p = '/', headers = {}, body, secure = false } = {}) {
  return new Promise((resolve, reject) => {
    const mod = secure ? https : http;
    const req = mod.request({ host: '127.0.0.1', port, method, path: p, headers, ...(secure ? { ca: caPem } : {}) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function stats(fake) {
  const r = await request(fake.ports.http, { path: '/_stats' });
  assert.equal(r.status, 200);
  return JSON.parse(r.body);
}

async function control(fake, obj) {
  const r = await request(fake.ports.http, {
    method: 'POST', path: '/_control', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(obj),
  });
  assert.equal(r.status, 200, r.body);
}

function stsForm(over = {}) {
  const p = {
    Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE_ARN,
    RoleSessionName: 'sidecar-session', WebIdentityToken: fs.readFileSync(witFile, 'utf8').trim(), ...over,
  };
  for (const k of Object.keys(p)) if (p[k] === undefined) delete p[k];
  return new URLSearchParams(p).toString();
}

async function stsPost(fake, form, headers = {}) {
  return request(fake.ports.http, {
    method: 'POST', path: '/', body: form,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
  });
}

function xmlCode(body) {
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
}

// A SigV4 presigned ElastiCache "connect" URL without the scheme, as the sidecar must build it.
async function makeToken({
  akid, secret, sessionToken, user = IAM_USER, region = REGION, host = CACHE, serverless = false,
  date = new Date(), expiresIn = 900, service = 'elasticache', reverse = false,
}) {
  const signer = new SignatureV4({
    credentials: { accessKeyId: akid, secretAccessKey: secret, ...(sessionToken ? { sessionToken } : {}) },
    region, service, sha256: Sha256,
  });
  const query = { Action: 'connect', User: user };
  if (serverless) query.ResourceType = 'ServerlessCache';
  const r = await signer.presign(
    { method: 'GET', protocol: 'http:', hostname: host, path: '/', query, headers: { host } },
    { expiresIn, signingDate: date },
  );
  const entries = Object.entries(r.query);
  if (reverse) entries.reverse();
  return `${host}/?` + entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

function encode(...args) {
  let s = `*${args.length}\r\n`;
  const parts = [Buffer.from(s)];
  for (const a of args) {
    const b = Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

class RespError { constructor(m) { this.message = m; } }

// Parses one RESP2/RESP3 reply at buf[pos..]; returns { value, end } or null when incomplete.
function parseReply(buf, pos) {
  if (pos >= buf.length) return null;
  const le = buf.indexOf('\r\n', pos);
  if (le < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString('utf8', pos + 1, le);
  let p = le + 2;
  const many = (n) => {
    const out = [];
    for (let i = 0; i < n; i++) {
      const r = parseReply(buf, p);
      if (!r) return null;
      out.push(r.value);
      p = r.end;
    }
    return out;
  };
  switch (type) {
    case '+': return { value: line, end: p };
    case '-': return { value: new RespError(line), end: p };
    case ':': case ',': return { value: Number(line), end: p };
    case '_': return { value: null, end: p };
    case '#': return { value: line === 't', end: p };
    case '$': case '=': {
      const n = Number(line);
      if (n < 0) return { value: null, end: p };
      if (p + n + 2 > buf.length) return null;
      return { value: buf.toString('utf8', p, p + n), end: p + n + 2 };
    }
    case '*': case '~': case '>': {
      const n = Number(line);
      if (n < 0) return { value: null, end: p };
      const v = many(n);
      return v && { value: v, end: p };
    }
    case '%': {
      const v = many(2 * Number(line));
      if (!v) return null;
      const m = {};
      for (let i = 0; i < v.length; i += 2) m[v[i]] = v[i + 1];
      return { value: m, end: p };
    }
    default: throw new Error(`unexpected RESP type '${type}'`);
  }
}

class RespConn {
  static open(port) {
    return new Promise((resolve, reject) => {
      const c = new RespConn();
      c.sock = tls.connect({ host: '127.0.0.1', port, ca: caPem }, () => resolve(c));
      c.sock.once('error', reject);
      c.chunks = [];
      c.pending = 0;
      c.need = 0; // bytes a top-level bulk reply still being received takes
      c.replies = [];
      c.waiter = null;
      c.closed = false;
      c.closedAt = null;
      c.sock.on('data', (d) => {
        c.chunks.push(d);
        c.pending += d.length;
        if (c.pending < c.need) return; // no quadratic re-concatenation for multi-MB replies
        let buf = c.chunks.length === 1 ? c.chunks[0] : Buffer.concat(c.chunks);
        let r;
        while ((r = parseReply(buf, 0))) {
          c.replies.push(r.value);
          buf = buf.subarray(r.end);
        }
        c.chunks = buf.length ? [buf] : [];
        c.pending = buf.length;
        const m = /^\$(\d+)\r\n/.exec(buf.toString('latin1', 0, Math.min(buf.length, 24)));
        c.need = m ? m[0].length + Number(m[1]) + 2 : 0;
        c.wake();
      });
      c.sock.on('close', () => { c.closed = true; c.closedAt = Date.now(); c.wake(); });
      c.sock.on('error', () => {});
    });
  }
  wake() { if (this.waiter) { const w = this.waiter; this.waiter = null; w(); } }
  // Resolves on the next reply / close, or after ms.
  wait(ms) {
    return new Promise((r) => {
      const t = setTimeout(() => { this.waiter = null; r(); }, ms);
      this.waiter = () => { clearTimeout(t); r(); };
    });
  }
  send(...bufs) { this.sock.write(Buffer.concat(bufs.map((b) => Buffer.from(b)))); }
  async read(n, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.replies.length} of ${n} replies`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout: ${this.replies.length} of ${n} replies`);
      await this.wait(left);
    }
    return this.replies.splice(0, n);
  }
  async command(...args) { this.send(encode(...args)); return (await this.read(1))[0]; }
  async waitClosed(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.wait(Math.min(50, deadline - Date.now()));
    return this.closed;
  }
  close() { this.sock.destroy(); }
}

function isWrongPass(v) {
  return v instanceof RespError && v.message.startsWith('WRONGPASS');
}

async function podCredentials(fake) {
  const r = await request(fake.ports.http, { path: '/v1/credentials', headers: { Authorization: fs.readFileSync(pitFile, 'utf8').trim() } });
  assert.equal(r.status, 200, r.body);
  const j = JSON.parse(r.body);
  return { akid: j.AccessKeyId, secret: j.SecretAccessKey, sessionToken: j.Token, expiration: j.Expiration };
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-aws-test-'));
  makeCerts(tmp);
  caFile = path.join(tmp, 'ca.crt');
  caPem = fs.readFileSync(caFile);
  witFile = path.join(tmp, 'web-identity-token');
  pitFile = path.join(tmp, 'pod-identity-token');
  fs.writeFileSync(witFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwOnNpZGVjYXIifQ.c2ln\n');
  fs.writeFileSync(pitFile, 'pod-identity-token-' + crypto.randomBytes(8).toString('hex') + '\n');
  ({ proc: redisProc, port: redisPort } = await startRedis());
  [main, second] = await Promise.all([
    startFake(mainConfig(), 'main'),
    // Short-lived credentials and connections, serverless cache.
    startFake(mainConfig({
      cache_name: CACHE2, serverless: true, credential_lifetime_seconds: 3, max_auth_age_seconds: 3,
      static_credentials: undefined,
    }), 'second'),
  ]);
});

after(() => {
  for (const p of [main?.proc, second?.proc, redisProc]) if (p && p.exitCode === null) p.kill('SIGKILL');
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('ports line names three distinct listening ports', () => {
  const p = main.ports;
  assert.deepEqual(Object.keys(p).sort(), ['http', 'redis', 'sts_https']);
  for (const v of Object.values(p)) assert.ok(Number.isInteger(v) && v > 0);
  assert.equal(new Set(Object.values(p)).size, 3);
});

test('STS over HTTPS with @aws-sdk/client-sts: credentials, then InvalidIdentityToken', async () => {
  const client = new STSClient({
    region: REGION,
    endpoint: `https://127.0.0.1:${main.ports.sts_https}`,
    requestHandler: { httpsAgent: new https.Agent({ ca: caPem }) },
    maxAttempts: 1,
  });
  const before = await stats(main);
  const t0 = Date.now();
  const out = await client.send(new AssumeRoleWithWebIdentityCommand({
    RoleArn: ROLE_ARN, RoleSessionName: 'sdk-test', WebIdentityToken: fs.readFileSync(witFile, 'utf8').trim(),
  }));
  const c = out.Credentials;
  assert.match(c.AccessKeyId, /^ASIA[A-Z0-9]{16}$/);
  assert.equal(c.SecretAccessKey.length, 40);
  assert.ok(c.SessionToken.length >= 600, `session token length ${c.SessionToken.length}`);
  assert.ok(c.Expiration instanceof Date);
  const lifetime = (c.Expiration.getTime() - t0) / 1000;
  assert.ok(lifetime > 3590 && lifetime <= 3601, `lifetime ${lifetime}`);
  assert.equal(out.SubjectFromWebIdentityToken, 'system:serviceaccount:app:sidecar'); // the JWT's sub
  assert.equal(out.AssumedRoleUser.Arn, 'arn:aws:sts::123456789012:assumed-role/redis-sidecar/sdk-test');
  assert.match(out.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
  stsCreds = { akid: c.AccessKeyId, secret: c.SecretAccessKey, sessionToken: c.SessionToken };

  await assert.rejects(
    client.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: ROLE_ARN, RoleSessionName: 'sdk-test', WebIdentityToken: 'not-the-token' })),
    (e) => {
      assert.match(e.name, /^InvalidIdentityToken/);
      assert.equal(e.$metadata.httpStatusCode, 400);
      assert.match(e.message, /could not be validated/);
      return true;
    },
  );
  const after = await stats(main);
  assert.equal(after.sts_ok, before.sts_ok + 1);
  assert.equal(after.issued, before.issued + 1);
  assert.equal(after.sts_errors.InvalidIdentityToken ?? 0, (before.sts_errors.InvalidIdentityToken ?? 0) + 1);
  assert.equal(after.last_web_identity_token, 'not-the-token');
});

test('STS errors and checks over plain HTTP', async () => {
  // GET with a query works too.
  let r = await request(main.ports.http, { path: `/?${stsForm()}` });
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /<AccessKeyId>ASIA[A-Z0-9]{16}<\/AccessKeyId>/);
  assert.match(r.body, /<Expiration>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/Expiration>/);

  r = await stsPost(main, stsForm({ RoleArn: 'arn:aws:iam::123456789012:role/other' }));
  assert.equal(r.status, 403);
  assert.equal(xmlCode(r.body), 'AccessDenied');
  assert.match(r.body, /Not authorized to perform sts:AssumeRoleWithWebIdentity/);
  assert.match(r.body, /^<ErrorResponse xmlns="https:\/\/sts.amazonaws.com\/doc\/2011-06-15\/">\s*<Error>\s*<Type>Sender<\/Type>/);

  r = await stsPost(main, stsForm({ RoleSessionName: 'bad session name' }));
  assert.equal(r.status, 400);
  assert.equal(xmlCode(r.body), 'ValidationError');
  r = await stsPost(main, stsForm({ RoleSessionName: 'x' }));
  assert.equal(xmlCode(r.body), 'ValidationError');
  r = await stsPost(main, stsForm({ DurationSeconds: '899' }));
  assert.equal(xmlCode(r.body), 'ValidationError');
  r = await stsPost(main, stsForm({ DurationSeconds: '43200' }));
  assert.equal(r.status, 200);

  r = await stsPost(main, stsForm({ RoleSessionName: undefined }));
  assert.equal(r.status, 400);
  assert.equal(xmlCode(r.body), 'MissingParameter');
  r = await stsPost(main, stsForm({ Action: 'AssumeRole' }));
  assert.equal(xmlCode(r.body), 'InvalidAction');

  r = await stsPost(main, stsForm(), { Host: 'sts.amazonaws.com' });
  assert.equal(r.status, 400);
  assert.equal(xmlCode(r.body), 'InvalidHostHeader');
  r = await stsPost(main, stsForm(), { Host: `localhost:${main.ports.http}` });
  assert.equal(r.status, 200);

  // Rotation: the token file is read per request.
  const oldToken = fs.readFileSync(witFile, 'utf8').trim();
  const newToken = 'rotated-' + crypto.randomBytes(8).toString('hex');
  fs.writeFileSync(witFile, `${newToken}\n`);
  try {
    r = await stsPost(main, stsForm({ WebIdentityToken: oldToken }));
    assert.equal(xmlCode(r.body), 'InvalidIdentityToken');
    r = await stsPost(main, stsForm({ WebIdentityToken: newToken }));
    assert.equal(r.status, 200);
    assert.equal((await stats(main)).last_web_identity_token, newToken);
  } finally {
    fs.writeFileSync(witFile, `${oldToken}\n`);
  }

  // sts_fail: the next n requests answer 503 ServiceUnavailable (Receiver), then it works again.
  await control(main, { sts_fail: 2 });
  for (let i = 0; i < 2; i++) {
    r = await stsPost(main, stsForm());
    assert.equal(r.status, 503);
    assert.equal(xmlCode(r.body), 'ServiceUnavailable');
    assert.match(r.body, /<Type>Receiver<\/Type>/);
  }
  r = await stsPost(main, stsForm());
  assert.equal(r.status, 200);

  // HTTPS endpoint checks Host against its own port.
  r = await request(main.ports.sts_https, { secure: true, method: 'POST', path: '/', body: stsForm(), headers: { 'Content-Type': 'application/x-www-form-urlencoded', Host: `127.0.0.1:${main.ports.http}` } });
  assert.equal(xmlCode(r.body), 'InvalidHostHeader');
});

test('Pod Identity: right, wrong and missing Authorization', async () => {
  const before = await stats(main);
  const c = await podCredentials(main);
  assert.match(c.akid, /^ASIA[A-Z0-9]{16}$/);
  assert.equal(c.secret.length, 40);
  assert.ok(c.sessionToken.length >= 600);
  assert.match(c.expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  let r = await request(main.ports.http, { path: '/v1/credentials', headers: { Authorization: 'wrong' } });
  assert.equal(r.status, 403);
  r = await request(main.ports.http, { path: '/v1/credentials' });
  assert.equal(r.status, 400);
  assert.match(r.body, /Service account token cannot be empty/);
  const after = await stats(main);
  assert.equal(after.pod_ok, before.pod_ok + 1);
  assert.equal(after.pod_errors, before.pod_errors + 2);
  assert.equal(after.issued, before.issued + 1);

  // The credentials authenticate through the TLS front.
  const conn = await RespConn.open(main.ports.redis);
  try {
    assert.equal(await conn.command('AUTH', IAM_USER, await makeToken(c)), 'OK');
    assert.equal(await conn.command('PING'), 'PONG');
  } finally { conn.close(); }
});

test('redis-cli --tls: a token from the STS credentials authenticates; a tampered one is refused', async () => {
  assert.ok(stsCreds, 'needs the SDK test');
  const cli = (pass, ...cmd) => execFileP('redis-cli', ['--tls', '--cacert', caFile, '-h', '127.0.0.1', '-p',
    String(main.ports.redis), '--user', IAM_USER, '--pass', pass, '--no-auth-warning', ...cmd]);
  const before = await stats(main);
  const token = await makeToken(stsCreds);
  let r = await cli(token, 'SET', 'fake-aws-k', 'v1');
  assert.equal(r.stdout.trim(), 'OK');
  r = await cli(await makeToken({ ...stsCreds, reverse: true }), 'GET', 'fake-aws-k'); // any parameter order
  assert.equal(r.stdout.trim(), 'v1');
  const tampered = token.replace(/X-Amz-Signature=([0-9a-f])/, (m, d) => `X-Amz-Signature=${d === '0' ? '1' : '0'}`);
  assert.notEqual(tampered, token);
  r = await cli(tampered, 'GET', 'fake-aws-k');
  assert.match(r.stderr, /WRONGPASS/);
  assert.doesNotMatch(r.stdout, /v1/);
  const after = await stats(main);
  assert.equal(after.auth_ok, before.auth_ok + 2);
  assert.equal(after.auth_refused.signature ?? 0, (before.auth_refused.signature ?? 0) + 1);
});

test('refusals are WRONGPASS from the backend, counted by reason', async () => {
  const now = Date.now();
  const good = { ...stsCreds };
  const cases = [
    ['signature', IAM_USER, { ...good, secret: good.secret.slice(0, -1) + (good.secret.endsWith('A') ? 'B' : 'A') }],
    ['wrong_user', 'someone-else', { ...good, user: 'someone-else' }],
    ['wrong_user', IAM_USER, { ...good, user: 'someone-else' }],
    ['expired', IAM_USER, { ...good, date: new Date(now - 16 * 60 * 1000) }],
    ['expired', IAM_USER, { ...good, date: new Date(now + 10 * 60 * 1000) }],
    ['wrong_region', IAM_USER, { ...good, region: 'eu-west-1' }],
    ['wrong_host', IAM_USER, { ...good, host: 'other-cache' }],
    ['resource_type', IAM_USER, { ...good, serverless: true }],
    ['unknown_key', IAM_USER, { ...good, akid: 'ASIAUNKNOWNKEY000000' }],
    ['security_token', IAM_USER, { ...good, sessionToken: undefined }],
    ['security_token', IAM_USER, { ...good, sessionToken: good.sessionToken.slice(0, -4) + 'AAA=' }],
    ['security_token', IAM_USER, { akid: STATIC.access_key_id, secret: STATIC.secret_access_key, sessionToken: 'unexpected' }],
    ['bad_format', IAM_USER, { ...good, expiresIn: 600 }],
    ['bad_format', IAM_USER, { ...good, service: 'sts' }],
  ];
  for (const [reason, user, spec] of cases) {
    const before = await stats(main);
    const conn = await RespConn.open(main.ports.redis);
    try {
      const reply = await conn.command('AUTH', user, await makeToken(spec));
      assert.ok(isWrongPass(reply), `${reason}: got ${JSON.stringify(reply)}`);
      const noauth = await conn.command('GET', 'fake-aws-k');
      assert.ok(noauth instanceof RespError && /NOAUTH/.test(noauth.message), `${reason}: ${JSON.stringify(noauth)}`);
    } finally { conn.close(); }
    const after = await stats(main);
    assert.equal(after.auth_refused[reason] ?? 0, (before.auth_refused[reason] ?? 0) + 1, `reason ${reason}`);
    assert.equal(after.auth_ok, before.auth_ok, `${reason}: auth_ok must not move`);
  }
  // Not a URL at all / with a scheme / one-argument AUTH.
  const conn = await RespConn.open(main.ports.redis);
  try {
    const before = await stats(main);
    assert.ok(isWrongPass(await conn.command('AUTH', IAM_USER, `http://${await makeToken(good)}`)));
    assert.ok(isWrongPass(await conn.command('AUTH', IAM_USER, 'plain-password')));
    assert.ok(isWrongPass(await conn.command('AUTH', await makeToken(good))));
    const after = await stats(main);
    assert.equal(after.auth_refused.bad_format, (before.auth_refused.bad_format ?? 0) + 2);
    assert.equal(after.auth_refused.wrong_user, before.auth_refused.wrong_user + 1);
  } finally { conn.close(); }
  // The static credentials (no session token) are accepted.
  const sc = await RespConn.open(main.ports.redis);
  try {
    assert.equal(await sc.command('AUTH', IAM_USER, await makeToken({ akid: STATIC.access_key_id, secret: STATIC.secret_access_key })), 'OK');
  } finally { sc.close(); }
});

test('pipelining: replies stay in order across AUTH / HELLO rewrites; inline commands; 5 MB values', async () => {
  const before = await stats(main);
  const conn = await RespConn.open(main.ports.redis);
  try {
    const good = await makeToken(stsCreds);
    const bad = good + '0'; // X-Amz-Signature is last: 65 hex digits
    const big = crypto.randomBytes(3_750_000).toString('base64'); // 5 MB
    conn.send(
      encode('AUTH', IAM_USER, bad),
      encode('PING'),
      `AUTH ${IAM_USER} ${good}\r\n`, // inline AUTH
      'PING\r\n', // inline, forwarded untouched
      encode('SET', 'fake-aws-big', big),
      encode('GET', 'fake-aws-big'),
      encode('HELLO', '3', 'SETNAME', 'fake-aws-test', 'AUTH', IAM_USER, await makeToken({ ...stsCreds, reverse: true })),
      encode('CLIENT', 'GETNAME'),
      encode('HELLO', '2', 'AUTH', IAM_USER, bad),
      encode('AUTH', IAM_USER, good),
      encode('DEL', 'fake-aws-big'),
    );
    const r = await conn.read(11, 15000);
    assert.ok(isWrongPass(r[0]), JSON.stringify(r[0]));
    assert.ok(r[1] instanceof RespError && /NOAUTH/.test(r[1].message));
    assert.equal(r[2], 'OK');
    assert.equal(r[3], 'PONG');
    assert.equal(r[4], 'OK');
    assert.equal(r[5].length, big.length);
    assert.ok(r[5] === big, 'GET returns the 5 MB value unchanged');
    assert.equal(r[6].proto, 3);
    assert.equal(r[7], 'fake-aws-test');
    assert.ok(isWrongPass(r[8]), JSON.stringify(r[8]));
    assert.equal(r[9], 'OK');
    assert.equal(r[10], 1);
  } finally { conn.close(); }
  const after = await stats(main);
  assert.equal(after.auth_ok, before.auth_ok + 3);
  assert.equal(after.reauth_ok, before.reauth_ok + 2);
  assert.equal(after.auth_refused.bad_format, (before.auth_refused.bad_format ?? 0) + 2);
});

test('refuse modes from /_control', async () => {
  const conn = await RespConn.open(main.ports.redis);
  try {
    const before = await stats(main);
    await control(main, { refuse: 'all' });
    assert.ok(isWrongPass(await conn.command('AUTH', IAM_USER, await makeToken(stsCreds))));
    await control(main, { refuse: 'not_authorized' });
    assert.ok(isWrongPass(await conn.command('AUTH', IAM_USER, await makeToken(stsCreds))));
    assert.ok(isWrongPass(await conn.command('AUTH', IAM_USER, await makeToken({ ...stsCreds, region: 'eu-west-1' }))));
    await control(main, { refuse: 'none' });
    assert.equal(await conn.command('AUTH', IAM_USER, await makeToken(stsCreds)), 'OK');
    const after = await stats(main);
    assert.equal(after.auth_refused.forced, (before.auth_refused.forced ?? 0) + 2);
    assert.equal(after.auth_refused.wrong_region, before.auth_refused.wrong_region + 1);
  } finally {
    conn.close();
    await control(main, { refuse: 'none' });
  }
  const r = await request(main.ports.http, { method: 'POST', path: '/_control', body: '{"refuse":"sometimes"}' });
  assert.equal(r.status, 400);
});

test('a command larger than the buffer bound closes the connection', async () => {
  const conn = await RespConn.open(main.ports.redis);
  conn.send('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n');
  assert.ok(await conn.waitClosed(3000), 'connection closed');
});

test('serverless cache: short-lived credentials expire, connections are closed after max_auth_age', async () => {
  const c = await podCredentials(second);
  const serverlessToken = () => makeToken({ ...c, host: CACHE2, serverless: true });
  // A non-serverless token is refused by the serverless cache.
  const x = await RespConn.open(second.ports.redis);
  try {
    assert.ok(isWrongPass(await x.command('AUTH', IAM_USER, await makeToken({ ...c, host: CACHE2 }))));
  } finally { x.close(); }
  const a = await RespConn.open(second.ports.redis);
  const b = await RespConn.open(second.ports.redis);
  try {
    assert.equal(await a.command('AUTH', IAM_USER, await serverlessToken()), 'OK');
    assert.equal(await b.command('AUTH', IAM_USER, await serverlessToken()), 'OK');
    const t0 = Date.now();
    await sleep(1500);
    assert.equal(await b.command('AUTH', IAM_USER, await serverlessToken()), 'OK'); // re-auth keeps b alive
    assert.ok(await a.waitClosed(4000), 'a is closed for age');
    const aAge = a.closedAt - t0;
    assert.ok(aAge >= 2900, `a closed after ${aAge} ms`);
    assert.equal(b.closed, false, 'b was re-authenticated and stays open');
    assert.equal(await b.command('PING'), 'PONG');
    // By now (> 3 s after issue) the key has expired.
    const e = await RespConn.open(second.ports.redis);
    try {
      assert.ok(isWrongPass(await e.command('AUTH', IAM_USER, await serverlessToken())));
    } finally { e.close(); }
    assert.ok(await b.waitClosed(4000), 'b is closed for age too');
    const s = await stats(second);
    assert.equal(s.closed_for_age, 2);
    assert.equal(s.reauth_ok, 1);
    assert.equal(s.auth_refused.resource_type, 1);
    assert.equal(s.auth_refused.key_expired, 1);
    assert.equal(s.connections, 0);
  } finally { a.close(); b.close(); }
  // SIGTERM: exit 0.
  const exited = new Promise((r) => second.proc.once('exit', (code) => r(code)));
  second.proc.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('config errors: message on stderr, exit 2', async () => {
  const run = (cfg) => new Promise((resolve) => {
    const f = path.join(tmp, `bad-${crypto.randomBytes(4).toString('hex')}.json`);
    fs.writeFileSync(f, JSON.stringify(cfg));
    execFile(process.execPath, [FAKE, '--config', f], (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
  const [r1, r2, r3] = await Promise.all([
    run(mainConfig({ region: undefined })),
    run(mainConfig({ serverles: true })),
    run(mainConfig({ tls_cert: path.join(tmp, 'missing.crt') })),
  ]);
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /'region'/);
  assert.equal(r1.stdout, '');
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /unknown field 'serverles'/);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /missing\.crt/);
});
