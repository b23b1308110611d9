// Real client libraries through the bridge: ioredis and node-redis (v5), RESP2 and RESP3.
// Run by bridge_node_test (C++), which starts a TLS redis-server and the sidecar and passes
//   BRIDGE_PORT      the sidecar's TCP port on 127.0.0.1
//   BRIDGE_SOCKET    its unix socket
//   BRIDGE_PASSWORD  REDIS_SIDECAR_CLIENT_PASSWORD (the libraries AUTH / HELLO AUTH with it)
// Usage: node --test bridge_clients.test.mjs

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';

import { RESP_TYPES } from 'redis';

import { closeAll, closeLater, ioredis, nodeRedis } from './clients.mjs';

const socketPath = process.env.BRIDGE_SOCKET;
assert.ok(socketPath, 'BRIDGE_SOCKET must be set');

const timeout = 15000;
after(closeAll);

test('ioredis: SET/GET, binary values, errors', { timeout }, async () => {
    const r = ioredis();
    await r.connect();
    assert.equal(await r.set('io:k', 'v1'), 'OK');
    assert.equal(await r.get('io:k'), 'v1');
    assert.equal(await r.incr('io:n'), 1);
    const bin = Buffer.from([0, 13, 10, 36, 42, 255]);
    await r.set('io:bin', bin);
    assert.deepEqual(await r.getBuffer('io:bin'), bin);
    await r.rpush('io:list', 'a');
    await assert.rejects(r.incr('io:list'), /WRONGTYPE/);
    assert.equal(await r.del('io:k', 'io:n', 'io:bin', 'io:list'), 4);
    await r.quit();
});

test('ioredis: pipeline of 1,000 commands', { timeout }, async () => {
    const r = ioredis();
    await r.connect();
    const p = r.pipeline();
    for (let i = 0; i < 1000; i++) p.set(`io:p:${i}`, `v${i}`);
    for (let i = 0; i < 1000; i++) p.get(`io:p:${i}`);
    const results = await p.exec();
    assert.equal(results.length, 2000);
    for (let i = 0; i < 1000; i++) {
        assert.deepEqual(results[i], [null, 'OK']);
        assert.deepEqual(results[1000 + i], [null, `v${i}`]);
    }
    await r.quit();
});

test('ioredis: MULTI/EXEC and WATCH', { timeout }, async () => {
    const r = ioredis();
    await r.connect();
    const res = await r.multi().set('io:tx', '10').incrby('io:tx', 5).get('io:tx').exec();
    assert.deepEqual(res, [[null, 'OK'], [null, 15], [null, '15']]);

    const other = ioredis();
    await other.connect();
    await r.watch('io:tx');
    await other.set('io:tx', 'changed');
    assert.equal(await r.multi().set('io:tx', 'mine').exec(), null);  // aborted
    assert.equal(await r.get('io:tx'), 'changed');
    await Promise.all([r.quit(), other.quit()]);
});

test('ioredis: pub/sub between a subscriber and a publisher', { timeout }, async () => {
    const sub = ioredis();
    const pub = ioredis();
    await Promise.all([sub.connect(), pub.connect()]);
    assert.equal(await sub.subscribe('io:ch'), 1);
    await sub.psubscribe('io:*');
    const got = once(sub, 'message');
    const gotPattern = once(sub, 'pmessage');
    assert.equal(await pub.publish('io:ch', 'hello'), 2);  // channel + pattern, one connection
    assert.deepEqual(await got, ['io:ch', 'hello']);
    assert.deepEqual(await gotPattern, ['io:*', 'io:ch', 'hello']);
    await sub.unsubscribe('io:ch');
    await sub.punsubscribe('io:*');
    assert.equal(await sub.ping(), 'PONG');
    await Promise.all([sub.quit(), pub.quit()]);
});

test('ioredis: over the unix socket', { timeout }, async () => {
    // ioredis 5 speaks RESP2 only; RESP3 is node-redis' part below.
    const r = ioredis({ path: socketPath });
    await r.connect();
    assert.equal(await r.set('io:unix', 'yes'), 'OK');
    const p = r.pipeline();
    for (let i = 0; i < 100; i++) p.incr('io:unix:n');
    const results = await p.exec();
    assert.deepEqual(results.at(-1), [null, 100]);
    assert.equal(await r.call('ACL', 'WHOAMI'), 'app');  // the sidecar's upstream user
    await r.quit();
});

test('ioredis: wrong password is refused', { timeout }, async () => {
    const r = ioredis({ password: 'not-the-password' });
    const failed = once(r, 'error');
    r.connect().catch(() => {});
    const [err] = await failed;
    assert.match(err.message, /WRONGPASS/);
    r.disconnect();
});

test('node-redis RESP3: HELLO 3 AUTH, maps, pipeline, MULTI/EXEC', { timeout }, async () => {
    const c = nodeRedis({ RESP: 3 });
    await c.connect();
    assert.equal(await c.set('nr:k', 'v'), 'OK');
    assert.equal(await c.get('nr:k'), 'v');
    assert.equal(await c.get('nr:missing'), null);
    await c.hSet('nr:h', { a: '1', b: '2' });
    // A RESP3 map arrives as a map type: ask for it as a JS Map to prove it was `%`, not `*`.
    const asMap = await c.withTypeMapping({ [RESP_TYPES.MAP]: Map }).hGetAll('nr:h');
    assert.ok(asMap instanceof Map, 'HGETALL came back as a RESP3 map');
    assert.deepEqual([...asMap.entries()].sort(), [['a', '1'], ['b', '2']]);
    const hello = await c.sendCommand(['HELLO', '3']);
    assert.equal(hello instanceof Map ? hello.get('proto') : hello.proto, 3, 'HELLO 3 reply');
    assert.equal(await c.sendCommand(['ACL', 'WHOAMI']), 'app');

    const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => c.incr('nr:n')));
    assert.deepEqual(replies, Array.from({ length: 500 }, (_, i) => i + 1));

    const res = await c.multi().set('nr:tx', '1').incr('nr:tx').get('nr:tx').exec();
    assert.deepEqual(res, ['OK', 2, '2']);
    await c.close();
});

test('node-redis RESP3: pub/sub on a dedicated connection', { timeout }, async () => {
    const pub = nodeRedis({ RESP: 3 });
    await pub.connect();
    const sub = pub.duplicate();
    sub.on('error', () => {});
    closeLater(() => sub.destroy());
    await sub.connect();
    let deliver;
    const received = new Promise((resolve) => { deliver = resolve; });
    await sub.subscribe('nr:ch', (message, channel) => deliver([channel, message]));
    assert.equal(await pub.publish('nr:ch', 'hello-resp3'), 1);
    assert.deepEqual(await received, ['nr:ch', 'hello-resp3']);
    // RESP3 lets the subscribed connection run ordinary commands too.
    assert.equal(await sub.ping(), 'PONG');
    await sub.unsubscribe('nr:ch');
    await Promise.all([sub.close(), pub.close()]);
});

test('node-redis RESP2: SET/GET and pub/sub', { timeout }, async () => {
    const c = nodeRedis();
    await c.connect();
    assert.equal(await c.set('nr2:k', 'v2'), 'OK');
    assert.equal(await c.get('nr2:k'), 'v2');
    const sub = c.duplicate();
    sub.on('error', () => {});
    closeLater(() => sub.destroy());
    await sub.connect();
    let deliver;
    const received = new Promise((resolve) => { deliver = resolve; });
    await sub.subscribe('nr2:ch', (m) => deliver(m));
    assert.equal(await c.publish('nr2:ch', 'resp2-message'), 1);
    assert.equal(await received, 'resp2-message');
    await Promise.all([sub.close(), c.close()]);
});
