// Client factories shared by the Node test scripts: ioredis and node-redis connected to the
// bridge (BRIDGE_PORT, BRIDGE_PASSWORD), never retrying or reconnecting (a failure is the
// test's), closed by closeAll() (the scripts call it from `after`).

import assert from 'node:assert/strict';

import Redis from 'ioredis';
import { createClient } from 'redis';

export const port = Number(process.env.BRIDGE_PORT);
export const password = process.env.BRIDGE_PASSWORD;
assert.ok(port > 0, 'BRIDGE_PORT must be set');
assert.ok(password, 'BRIDGE_PASSWORD must be set');

const toClose = [];

/// Registers a close function for closeAll().
export function closeLater(close) { toClose.push(close); }

export function closeAll() {
    for (const close of toClose) { try { close(); } catch { /* already closed */ } }
}

export function ioredis(options = {}) {
    const c = new Redis({
        host: '127.0.0.1', port, password, lazyConnect: true,
        maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000, ...options,
    });
    closeLater(() => c.disconnect());
    return c;
}

export function nodeRedis(options = {}) {
    const c = createClient({
        socket: { host: '127.0.0.1', port, connectTimeout: 5000, reconnectStrategy: false },
        password, ...options,
    });
    c.on('error', () => {});  // surfaced through the rejected promises instead
    closeLater(() => c.destroy());
    return c;
}
