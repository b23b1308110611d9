// Real cluster clients through the sidecar in cluster mode: ioredis `Redis.Cluster` and node-redis
// `createCluster`, seeded with the sidecar's main port only, no TLS, no password. Run by
// tests/cluster/cluster_clients_test.cpp, which starts a TLS Redis Cluster with a password
// (3 primaries + 3 replicas) and the sidecar in front of it, and passes
//   CLUSTER_MAIN_PORT   the sidecar's main port on 127.0.0.1 (the clients' only seed)
//   CLUSTER_FIRST_PORT  the first of the node ports (REDIS_SIDECAR_CLUSTER_PORTS)
//   CLUSTER_PORT_COUNT  how many node ports there are
// Every node address a client learns must be 127.0.0.1 with a port in that range: a client that
// got an upstream address (node-<i>.cluster.test, a 127.0.0.2x IP, a TLS port) could not connect.
// Usage: node --test cluster_clients.test.mjs

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import { Redis, nodeRedis, envInt } from './clients.mjs';

const mainPort = envInt('CLUSTER_MAIN_PORT');
const firstPort = envInt('CLUSTER_FIRST_PORT');
const portCount = envInt('CLUSTER_PORT_COUNT');

const timeout = 20000;
const toClose = [];
after(() => { for (const close of toClose) { try { close(); } catch { /* already closed */ } } });

function assertLocal(host, port, what) {
    assert.equal(host, '127.0.0.1', `${what}: host ${host}:${port} is not the sidecar's`);
    assert.ok(port >= firstPort && port < firstPort + portCount,
        `${what}: port ${port} is outside ${firstPort}-${firstPort + portCount - 1}`);
}

/** `promise`, or a rejection after `ms` (a test never hangs waiting for a message). */
function within(promise, ms, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); }),
    ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------- ioredis ---

function ioCluster(options = {}) {
    const c = new Redis.Cluster([{ host: '127.0.0.1', port: mainPort }], {
        clusterRetryStrategy: (times) => (times > 5 ? null : 200),
        slotsRefreshTimeout: 3000,
        ...options,
        redisOptions: { connectTimeout: 5000, maxRetriesPerRequest: 1, commandTimeout: 10000,
            ...(options.redisOptions ?? {}) },
    });
    c.on('error', () => {});  // surfaced through rejected commands instead
    toClose.push(() => c.disconnect());
    return c;
}

async function ioReady(c) {
    if (c.status !== 'ready') await within(once(c, 'ready'), 6000, 'ioredis cluster ready');
    return c;
}

test('ioredis Cluster: every node it knows is a sidecar port', { timeout }, async () => {
    const c = await ioReady(ioCluster());
    const masters = c.nodes('master');
    const replicas = c.nodes('slave');
    assert.equal(masters.length, 3, 'three primaries');
    assert.equal(replicas.length, 3, 'three replicas');
    const ports = new Set();
    for (const n of c.nodes('all')) {
        assertLocal(n.options.host, n.options.port, 'ioredis node');
        ports.add(n.options.port);
    }
    assert.equal(ports.size, 6, 'six distinct node ports');
    // The slot table too: every slot's owner is one of those addresses.
    for (let slot = 0; slot < 16384; slot += 97) {
        const owners = c.slots[slot];
        assert.ok(owners && owners.length >= 1, `slot ${slot} has an owner`);
        for (const key of owners) {
            const [host, port] = key.split(':');
            assertLocal(host, Number(port), `slot ${slot}`);
        }
    }
    // Each node's port answers as that node: its CLUSTER MYID differs.
    const ids = await Promise.all(masters.map((m) => m.call('CLUSTER', 'MYID')));
    assert.equal(new Set(ids).size, 3);
    await c.quit();
});

test('ioredis Cluster: 1,000 keys SET/GET across slots, on every primary', { timeout }, async () => {
    const c = await ioReady(ioCluster());
    const writes = [];
    for (let i = 0; i < 1000; i++) writes.push(c.set(`io:k:${i}`, `v${i}`));
    assert.deepEqual(await Promise.all(writes), Array(1000).fill('OK'));
    const reads = [];
    for (let i = 0; i < 1000; i++) reads.push(c.get(`io:k:${i}`));
    assert.deepEqual(await Promise.all(reads), Array.from({ length: 1000 }, (_, i) => `v${i}`));
    // The keys are spread over the three primaries (each asked on its own port).
    const sizes = await Promise.all(c.nodes('master').map((m) => m.dbsize()));
    for (const size of sizes) assert.ok(size >= 200, `a primary holds ${size} keys: ${sizes}`);
    assert.ok(sizes.reduce((a, b) => a + b, 0) >= 1000, `${sizes}`);
    const deleted = await Promise.all(Array.from({ length: 1000 }, (_, i) => c.del(`io:k:${i}`)));
    assert.equal(deleted.reduce((a, b) => a + b, 0), 1000);
    await c.quit();
});

test('ioredis Cluster: a pipeline of 1,000 commands in one slot', { timeout }, async () => {
    const c = await ioReady(ioCluster());
    const p = c.pipeline();
    for (let i = 0; i < 500; i++) p.set(`{io:pipe}:${i}`, `v${i}`);
    for (let i = 0; i < 500; i++) p.get(`{io:pipe}:${i}`);
    const results = await p.exec();
    assert.equal(results.length, 1000);
    for (let i = 0; i < 500; i++) {
        assert.deepEqual(results[i], [null, 'OK']);
        assert.deepEqual(results[500 + i], [null, `v${i}`]);
    }
    await c.quit();
});

test('ioredis Cluster: MULTI/EXEC with keys in one slot', { timeout }, async () => {
    const c = await ioReady(ioCluster());
    const res = await c.multi()
        .set('{io:tx}:a', '10').incrby('{io:tx}:a', 5).set('{io:tx}:b', 'x').mget('{io:tx}:a', '{io:tx}:b')
        .exec();
    assert.deepEqual(res, [[null, 'OK'], [null, 15], [null, 'OK'], [null, ['15', 'x']]]);
    // A cross-slot transaction is refused (by the client or the node), never half-applied.
    await assert.rejects(c.multi().set('io:tx:x', '1').set('io:tx:y', '2').exec());
    await c.quit();
});

test('ioredis Cluster: SUBSCRIBE and PUBLISH', { timeout }, async () => {
    const sub = await ioReady(ioCluster());
    const pub = await ioReady(ioCluster());
    await sub.subscribe('io:ch');
    const got = once(sub, 'message');
    // PUBLISH goes to any node; the cluster bus carries it to the subscriber's node.
    await pub.publish('io:ch', 'hello');
    assert.deepEqual(await within(got, 5000, 'the message'), ['io:ch', 'hello']);
    await Promise.all([sub.quit(), pub.quit()]);
});

test('ioredis Cluster: SSUBSCRIBE and SPUBLISH (sharded pub/sub)', { timeout }, async () => {
    const sub = await ioReady(ioCluster({ shardedSubscribers: true }));
    const pub = await ioReady(ioCluster());
    const messages = [];
    sub.on('smessage', (channel, message) => messages.push([channel, message]));
    // Two channels in different slots: two shards' subscribers.
    await sub.ssubscribe('io:sch:a');
    await sub.ssubscribe('io:sch:b');
    assert.equal(await pub.spublish('io:sch:a', 'to-a'), 1, 'one subscriber on the shard of a');
    assert.equal(await pub.spublish('io:sch:b', 'to-b'), 1, 'one subscriber on the shard of b');
    const deadline = Date.now() + 5000;
    while (messages.length < 2 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(messages.sort(), [['io:sch:a', 'to-a'], ['io:sch:b', 'to-b']]);
    await Promise.all([sub.quit(), pub.quit()]);
});

test('ioredis Cluster: BLPOP unblocked by an LPUSH from another client', { timeout }, async () => {
    const a = await ioReady(ioCluster());
    const b = await ioReady(ioCluster());
    await a.del('io:queue');
    const started = Date.now();
    const popped = a.blpop('io:queue', 8);
    await sleep(300);
    assert.equal(await b.lpush('io:queue', 'job-1'), 1);
    assert.deepEqual(await popped, ['io:queue', 'job-1']);
    const waited = Date.now() - started;
    assert.ok(waited >= 250 && waited < 5000, `BLPOP returned after ${waited} ms`);
    // And one that times out returns nil after its timeout, not before.
    const t0 = Date.now();
    assert.equal(await a.blpop('io:queue', 1), null);
    assert.ok(Date.now() - t0 >= 900, 'BLPOP 1 waited a second');
    await Promise.all([a.quit(), b.quit()]);
});

// ------------------------------------------------------------------------------- node-redis ---

function nrCluster(options = {}) {
    const c = nodeRedis.createCluster({
        rootNodes: [{ url: `redis://127.0.0.1:${mainPort}` }],
        defaults: { socket: { connectTimeout: 5000, reconnectStrategy: (n) => (n > 5 ? false : 200) } },
        ...options,
    });
    c.on('error', () => {});  // surfaced through rejected commands instead
    toClose.push(() => c.destroy());
    return c;
}

test('node-redis cluster: local node addresses, SET/GET across slots', { timeout }, async () => {
    // useReplicas: it then also learns (and connects to) the replicas.
    const withReplicas = nrCluster({ useReplicas: true });
    await within(withReplicas.connect(), 10000, 'node-redis connect');
    assert.equal(withReplicas.masters.length, 3);
    assert.equal(withReplicas.replicas.length, 3);
    const ports = new Set();
    for (const n of [...withReplicas.masters, ...withReplicas.replicas]) {
        assertLocal(n.host, n.port, 'node-redis node');
        ports.add(n.port);
    }
    assert.equal(ports.size, 6, 'six distinct node ports');
    for (const address of withReplicas.nodeByAddress.keys()) {
        const [host, port] = address.split(':');
        assertLocal(host, Number(port), 'node-redis address');
    }
    await withReplicas.close();

    const c = nrCluster();
    await within(c.connect(), 10000, 'node-redis connect');
    const writes = [];
    for (let i = 0; i < 500; i++) writes.push(c.set(`nr:k:${i}`, `v${i}`));
    assert.deepEqual(await Promise.all(writes), Array(500).fill('OK'));
    const reads = [];
    for (let i = 0; i < 500; i++) reads.push(c.get(`nr:k:${i}`));
    assert.deepEqual(await Promise.all(reads), Array.from({ length: 500 }, (_, i) => `v${i}`));
    assert.equal(await c.get('nr:missing'), null);
    await c.close();
});

test('node-redis cluster: MULTI/EXEC with keys in one slot', { timeout }, async () => {
    const c = nrCluster();
    await within(c.connect(), 10000, 'node-redis connect');
    const res = await c.multi()
        .set('{nr:tx}:a', '1').incr('{nr:tx}:a').set('{nr:tx}:b', 'y').mGet(['{nr:tx}:a', '{nr:tx}:b'])
        .exec();
    assert.deepEqual(res, ['OK', 2, 'OK', ['2', 'y']]);
    await c.close();
});

test('node-redis cluster: SUBSCRIBE/PUBLISH and SSUBSCRIBE/SPUBLISH', { timeout }, async () => {
    const pub = nrCluster();
    const sub = nrCluster();
    await within(Promise.all([pub.connect(), sub.connect()]), 10000, 'node-redis connect');
    const received = [];
    await sub.subscribe('nr:ch', (message, channel) => received.push(['message', channel, message]));
    await sub.sSubscribe('nr:sch', (message, channel) => received.push(['smessage', channel, message]));
    await pub.publish('nr:ch', 'hello');
    assert.equal(await pub.sPublish('nr:sch', 'sharded-hello'), 1);
    const deadline = Date.now() + 5000;
    while (received.length < 2 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(received.sort(),
        [['message', 'nr:ch', 'hello'], ['smessage', 'nr:sch', 'sharded-hello']]);
    await sub.unsubscribe('nr:ch');
    await sub.sUnsubscribe('nr:sch');
    await Promise.all([pub.close(), sub.close()]);
});

test('node-redis cluster: BLPOP unblocked by an LPUSH from another client', { timeout }, async () => {
    const a = nrCluster();
    const b = nrCluster();
    await within(Promise.all([a.connect(), b.connect()]), 10000, 'node-redis connect');
    await a.del('nr:queue');
    const popped = a.blPop('nr:queue', 8);
    await sleep(300);
    assert.equal(await b.lPush('nr:queue', 'job-2'), 1);
    assert.deepEqual(await within(popped, 9000, 'BLPOP'), { key: 'nr:queue', element: 'job-2' });
    await Promise.all([a.close(), b.close()]);
});
