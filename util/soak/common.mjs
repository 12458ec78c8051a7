// Helpers shared by the soak's orchestrator (soak.mjs), fake providers
// (fake.mjs) and load client (load.mjs). Node's standard library only.

import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// a small seeded PRNG (mulberry32): runs can be repeated with SOAK_SEED
export function makeRng(seed) {
    let a = seed >>> 0;

    const next = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };

    next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));

    // table: [[weight, value], ...]
    next.weighted = (table) => {
        const total = table.reduce((s, [w]) => s + w, 0);
        let x = next() * total;

        for (const [w, v] of table) {
            if ((x -= w) < 0) {
                return v;
            }
        }

        return table[table.length - 1][1];
    };

    return next;
}

export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

export function canConnect(port) {
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
    });
}

// the content every fake answers to PROMPT: "re:PROMPT t1 t2 ...", so the
// client can check that the answer (fresh, streamed or cached) is the one
// to its own question
export function answerTokens(prompt, n) {
    const tokens = [`re:${prompt}`];

    for (let i = 1; i < n; i++) {
        tokens.push(` t${i}`);
    }

    return tokens;
}

// exactly "re:PROMPT t1 t2 ... tN" for some N: a token lost, doubled or
// out of order (a large delta cut or sent twice) does not match
export function answerMatches(prompt, content) {
    const head = `re:${prompt}`;

    if (typeof content !== 'string' || !content.startsWith(head)) {
        return false;
    }

    let i = head.length;

    for (let k = 1; i < content.length; k++) {
        const t = ` t${k}`;

        if (!content.startsWith(t, i)) {
            return false;
        }

        i += t.length;
    }

    return true;
}

// a prefix of such an answer (a stream cut after its commit point)
export function answerPrefix(prompt, content) {
    const head = `re:${prompt}`;

    return typeof content === 'string' && content.startsWith(head);
}

// percentile of a sorted array
export function percentile(sorted, p) {
    if (sorted.length === 0) {
        return NaN;
    }

    const i = Math.min(sorted.length - 1,
                       Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
    return sorted[i];
}
