// The client libraries for the cluster node scripts: the ones tests/bridge/node/setup.sh installs
// (ioredis 5.9.3, node-redis 5.9.0, from that folder's package-lock.json), loaded by path. ESM
// ignores NODE_PATH, so a require() rooted in that folder finds them.

import { createRequire } from 'node:module';

const require = createRequire(new URL('../../bridge/node/package.json', import.meta.url));

/** ioredis' default export (the Redis class; Redis.Cluster is the cluster client). */
export const Redis = require('ioredis');
/** node-redis (`createCluster`, `createClient`). */
export const nodeRedis = require('redis');

/** A positive integer from the environment, or a thrown error naming the variable. */
export function envInt(name, fallback) {
    const raw = process.env[name];
    if (raw === undefined || raw === '') {
        if (fallback !== undefined) return fallback;
        throw new Error(`${name} must be set`);
    }
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw} is not a number`);
    return n;
}
