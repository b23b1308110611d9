// A cluster client under load, for the resharding / failover / node-loss tests of
// tests/cluster/cluster_clients_test.cpp: one ioredis `Redis.Cluster` seeded with the sidecar's
// main port writes `SET {<tag>}:<n> v-<n>` continuously, n = 0, 1, 2... per tag, until SIGTERM
// (or its own bounds), while the C++ test reshards, fails over or kills nodes under it.
//
// Environment:
//   CLUSTER_MAIN_PORT   the sidecar's main port on 127.0.0.1 (the only seed)
//   WRITER_TAGS         comma-separated hash tags; every key of a tag is in that tag's slot
//   WRITER_RATE         writes per second per tag (default 250)
//   WRITER_IN_FLIGHT    concurrent writes per tag (default 2)
//   WRITER_MAX_WRITES   writes per tag at most (default 20000)
//   WRITER_MAX_SECONDS  run time at most (default 60)
//
// Prints `READY` once every tag has 10 acknowledged writes, `PROGRESS ...` every second, and at
// the end one line `SUMMARY <json>`:
//   { tags: { <tag>: { attempted, acked, failed: [n...] } },  every n < attempted was tried
//     acked, failed,                                          totals
//     failures: [ { tag, n, t, error } ],                     the first 200, t in epoch ms
//     first_failure_ms, last_failure_ms,                      epoch ms, or null
//     timeline: [ [t, acked] ],                               every 250 ms, epoch ms
//     nodes: [ "host:port" ],                                 what the client knew at the end
//     started_ms, ended_ms }
// A write is acknowledged when SET returned OK; a failed one may or may not have been applied.
// Exit status 0 whenever the summary was printed (the C++ test judges it).

import { Redis, envInt } from './clients.mjs';
import { setTimeout as sleep } from 'node:timers/promises';

const mainPort = envInt('CLUSTER_MAIN_PORT');
const tags = (process.env.WRITER_TAGS ?? '').split(',').filter((t) => t.length > 0);
if (tags.length === 0) throw new Error('WRITER_TAGS must name at least one hash tag');
const rate = envInt('WRITER_RATE', 250);
const inFlight = envInt('WRITER_IN_FLIGHT', 2);
const maxWrites = envInt('WRITER_MAX_WRITES', 20000);
const maxSeconds = envInt('WRITER_MAX_SECONDS', 60);

const cluster = new Redis.Cluster([{ host: '127.0.0.1', port: mainPort }], {
    // Follow MOVED at once; on CLUSTERDOWN, TRYAGAIN or a closed connection wait a little and
    // refresh the slots (what a failover or a lost node produces). maxRedirections bounds the
    // tries of one command (every retry counts): 40 tries of 250 ms cover an 8-10 s failover.
    retryDelayOnMoved: 0,
    retryDelayOnFailover: 250,
    retryDelayOnClusterDown: 250,
    retryDelayOnTryAgain: 100,
    maxRedirections: 40,
    slotsRefreshTimeout: 2000,
    slotsRefreshInterval: 2000,
    clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
    redisOptions: {
        connectTimeout: 3000,
        // A write never waits longer than this: it then counts as failed (not acknowledged).
        commandTimeout: 8000,
        maxRetriesPerRequest: 5,
    },
});
let lastClientError = null;
cluster.on('error', (err) => { lastClientError = String(err && err.message); });

const state = new Map(tags.map((t) => [t, { next: 0, acked: 0, failed: [] }]));
const failures = [];
let acked = 0;
let failed = 0;
let firstFailure = null;
let lastFailure = null;
let stopping = false;
const timeline = [];
const started = Date.now();

process.on('SIGTERM', () => { stopping = true; });
process.on('SIGINT', () => { stopping = true; });
const hardStop = setTimeout(() => { stopping = true; }, maxSeconds * 1000);

async function worker(tag) {
    const s = state.get(tag);
    while (!stopping && s.next < maxWrites) {
        const n = s.next++;
        try {
            const reply = await cluster.set(`{${tag}}:${n}`, `v-${n}`);
            if (reply !== 'OK') throw new Error(`SET replied ${JSON.stringify(reply)}`);
            s.acked++;
            acked++;
        } catch (err) {
            const t = Date.now();
            s.failed.push(n);
            failed++;
            firstFailure ??= t;
            lastFailure = t;
            if (failures.length < 200) failures.push({ tag, n, t, error: String(err && err.message) });
        }
        const due = started + ((n + 1) * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
    }
}

const ticker = setInterval(() => { timeline.push([Date.now(), acked]); }, 250);
let ticks = 0;
const progress = setInterval(() => {
    ticks++;
    console.log(`PROGRESS t=${ticks}s acked=${acked} failed=${failed}`);
}, 1000);
const readiness = setInterval(() => {
    if ([...state.values()].every((s) => s.acked >= 10)) {
        console.log('READY');
        clearInterval(readiness);
    }
}, 20);

await Promise.all(tags.flatMap((tag) => Array.from({ length: inFlight }, () => worker(tag))));
const ended = Date.now();
clearInterval(ticker);
clearInterval(progress);
clearInterval(readiness);
clearTimeout(hardStop);
timeline.push([ended, acked]);

const summary = {
    tags: Object.fromEntries([...state.entries()].map(([t, s]) => [t, {
        attempted: s.next, acked: s.acked, failed: s.failed.sort((a, b) => a - b),
    }])),
    acked,
    failed,
    failures,
    first_failure_ms: firstFailure,
    last_failure_ms: lastFailure,
    last_client_error: lastClientError,
    timeline,
    nodes: cluster.nodes('all').map((n) => `${n.options.host}:${n.options.port}`),
    started_ms: started,
    ended_ms: ended,
};
console.log(`SUMMARY ${JSON.stringify(summary)}`);
const quit = cluster.quit().catch(() => {});
await Promise.race([quit, sleep(2000)]);
cluster.disconnect();
process.exit(0);
