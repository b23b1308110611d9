// Many real clients with many commands in flight each, through the bridge: ioredis with
// auto-pipelining (RESP2) and node-redis (RESP2 and RESP3, which pipelines what one tick sends),
// beside clients in MULTI/EXEC and BLPOP loops. Every key and value is unique to its client and
// command, and every reply is checked: a reply routed to the wrong client or out of order fails
// the test. With multiplexing on this is the reply router under load; off, the pool.
// Run by bridge_node_test (C++) with BRIDGE_PORT / BRIDGE_PASSWORD (see bridge_clients.test.mjs).
// Bounded: a fixed number of commands, and node's per-test timeout.
// Prints "load: <n> replies checked, <c> clients, <u> upstream connections" for the C++ test.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { RESP_TYPES } from 'redis';

import { closeAll, ioredis as connect, nodeRedis } from './clients.mjs';

const IOREDIS_CLIENTS = 40;
const NODE_REDIS_CLIENTS = 20;  // of each protocol
const COMMANDS = 300;           // SETs per client, then as many GETs, INCRs, ...
const TX_CLIENTS = 5;
const TX_ROUNDS = 40;
const BLOCKING_CLIENTS = 3;
const BLOCKING_ITEMS = 60;      // per blocking client

after(closeAll);

// ioredis with auto-pipelining, unless the caller turns it off.
const ioredis = (options = {}) => connect({ enableAutoPipelining: true, ...options });

// A value unique to (client, i): its name, then 0..1,500 random bytes (CR, LF, '$', '*', NUL
// included, as binary data brings them).
function value(tag, i) {
    return Buffer.concat([Buffer.from(`${tag}:${i}:`), randomBytes((i * 37) % 1500)]);
}

const range = (n) => Array.from({ length: n }, (_, i) => i);
let checked = 0;

function check(actual, expected, what) {
    assert.deepEqual(actual, expected, what);
    checked++;
}

// One ioredis client: all its commands in flight at once; auto-pipelining writes them in batches.
async function ioredisWorker(id) {
    const r = ioredis();
    await r.connect();
    const tag = `load:io:${id}`;
    const values = range(COMMANDS).map((i) => value(tag, i));
    const sets = await Promise.all(range(COMMANDS).map((i) => r.set(`${tag}:${i}`, values[i])));
    sets.forEach((reply, i) => check(reply, 'OK', `${tag} SET ${i}`));
    // GETs, INCRs of the client's counter (their replies prove the order: 1, 2, 3, ...) and
    // error replies, interleaved.
    const ops = range(COMMANDS).flatMap((i) => [
        r.getBuffer(`${tag}:${i}`).then((v) => check(v, values[i], `${tag} GET ${i}`)),
        r.incr(`${tag}:n`).then((n) => check(n, i + 1, `${tag} INCR ${i}`)),
        ...(i % 50 === 7
            ? [r.hget(`${tag}:${i}`, 'f').then(
                () => assert.fail(`${tag} HGET on a string succeeded`),
                (e) => check(/WRONGTYPE/.test(e.message), true, `${tag} WRONGTYPE ${i}`))]
            : []),
    ]);
    await Promise.all(ops);
    const some = range(20).map((i) => `${tag}:${i * 7}`);
    const mget = await r.mgetBuffer(...some);
    check(mget, range(20).map((i) => values[i * 7]), `${tag} MGET`);
    check(await r.del(...range(COMMANDS).map((i) => `${tag}:${i}`), `${tag}:n`), COMMANDS + 1,
          `${tag} DEL`);
    await r.quit();
}

// One node-redis client (RESP 2 or 3): the same, plus a hash read back as a RESP3 map.
async function nodeRedisWorker(id, resp) {
    const c = nodeRedis({ RESP: resp });
    await c.connect();
    const tag = `load:nr${resp}:${id}`;
    const values = range(COMMANDS).map((i) => value(tag, i).toString('base64'));
    const sets = await Promise.all(range(COMMANDS).map((i) => c.set(`${tag}:${i}`, values[i])));
    sets.forEach((reply, i) => check(reply, 'OK', `${tag} SET ${i}`));
    await Promise.all(range(COMMANDS).flatMap((i) => [
        c.get(`${tag}:${i}`).then((v) => check(v, values[i], `${tag} GET ${i}`)),
        c.incr(`${tag}:n`).then((n) => check(n, i + 1, `${tag} INCR ${i}`)),
        c.hSet(`${tag}:h`, `f${i}`, values[i]).then((n) => check(n, 1, `${tag} HSET ${i}`)),
    ]));
    const typed = resp === 3 ? c.withTypeMapping({ [RESP_TYPES.MAP]: Map }) : c;
    const hash = await typed.hGetAll(`${tag}:h`);
    if (resp === 3) check(hash instanceof Map, true, `${tag} HGETALL is a RESP3 map`);
    const entries = hash instanceof Map ? [...hash.entries()] : Object.entries(hash);
    check(new Map(entries), new Map(range(COMMANDS).map((i) => [`f${i}`, values[i]])),
          `${tag} HGETALL`);
    check(await c.del([...range(COMMANDS).map((i) => `${tag}:${i}`), `${tag}:n`, `${tag}:h`]),
          COMMANDS + 2, `${tag} DEL`);
    await c.close();
}

// Transactions beside the load: each EXEC's replies belong to this client's MULTI.
async function transactionWorker(id) {
    const r = ioredis({ enableAutoPipelining: false });
    await r.connect();
    const key = `load:tx:${id}`;
    for (let round = 1; round <= TX_ROUNDS; round++) {
        const res = await r.multi().incr(key).set(`${key}:last`, `${id}:${round}`)
            .get(`${key}:last`).exec();
        check(res, [[null, round], [null, 'OK'], [null, `${id}:${round}`]], `${key} EXEC ${round}`);
    }
    await r.del(key, `${key}:last`);
    await r.quit();
}

// Blocking pops beside the load: a pusher sends unique items, each arrives once, in order.
async function blockingWorker(id, pusher) {
    const r = ioredis({ enableAutoPipelining: false });
    await r.connect();
    const list = `load:bl:${id}`;
    const popped = [];
    const pushing = (async () => {
        for (let i = 0; i < BLOCKING_ITEMS; i++) {
            await pusher.rpush(list, `${id}:${i}`);
            if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        }
    })();
    while (popped.length < BLOCKING_ITEMS) {
        const got = await r.blpop(list, 10);
        assert.ok(got, `${list}: BLPOP timed out after ${popped.length} items`);
        check(got[0], list, `${list} BLPOP key`);
        popped.push(got[1]);
    }
    await pushing;
    check(popped, range(BLOCKING_ITEMS).map((i) => `${id}:${i}`), `${list} items`);
    await r.quit();
}

test('many clients, many commands in flight each: every reply reaches its client, in order',
     { timeout: 120000 }, async () => {
    const pusher = ioredis();
    const observer = ioredis({ enableAutoPipelining: false });
    await Promise.all([pusher.connect(), observer.connect()]);
    let upstream = 0;
    let connected = 0;
    const workers = [
        ...range(IOREDIS_CLIENTS).map((id) => ioredisWorker(id)),
        ...range(NODE_REDIS_CLIENTS).map((id) => nodeRedisWorker(id, 2)),
        ...range(NODE_REDIS_CLIENTS).map((id) => nodeRedisWorker(id, 3)),
        ...range(TX_CLIENTS).map((id) => transactionWorker(id)),
        ...range(BLOCKING_CLIENTS).map((id) => blockingWorker(id, pusher)),
    ];
    // While the load runs: how many connections does the server see? (INFO through the bridge
    // is the upstream's own.)
    const sampling = (async () => {
        for (let i = 0; i < 20; i++) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            const info = await observer.info('clients');
            const n = Number(/connected_clients:(\d+)/.exec(info)[1]);
            upstream = Math.max(upstream, n);
        }
    })();
    connected = workers.length + 2;
    await Promise.all([...workers, sampling]);
    await Promise.all([pusher.quit(), observer.quit()]);
    console.log(`load: ${checked} replies checked, ${connected} clients, ` +
                `${upstream} upstream connections`);
});
