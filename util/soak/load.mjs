// The soak's load client (node util/soak/load.mjs CONFIG-JSON), forked by
// soak.mjs. CONFIG: {seed, reliable: [provider...], abortShare, profiles:
// [{name, proto: "h1"|"h2", port, paths: [...], clients, sessions,
//   streamShare, uniqueShare, pool, prefix, slow, deadlineMs, think}]}.
//
// Each profile runs CLIENTS loops, each sending one request after the
// other to one of PATHS: over HTTP/1.1 keep-alive connections (one
// http.Agent per profile), or over HTTP/2 (node's http2 client, prior
// knowledge, SESSIONS connections shared by the profile's loops). About
// STREAMSHARE of them are "stream": true. UNIQUESHARE of the prompts are
// new (cache MISS), the others come from a pool of POOL (cache HIT while
// the entry is younger than ttl); PREFIX starts every prompt (the fakes
// read it: "S" asks a bulk provider for a long answer). THINK: [lo, hi]
// ms between two requests of a loop.
//
// SLOW loops read slowly: over HTTP/1.1 on a new connection for each
// request, they read nothing for 1.5-4 s (the socket buffers fill, nginx
// has to hold the stream), then no faster than 64-256 KB/s, so that they
// stay far behind a provider that is done long before (over HTTP/2, the
// stream's flow control window holds nginx back). DEADLINEMS bounds the
// time to the response header (the request deadline of the location,
// with a margin); later is a failure.
//
// Every answer is checked:
//   non-stream: 200, a chat.completion whose content answers this prompt
//               ("re:PROMPT t1 t2 ... tN", every token once and in order);
//   stream:     200, text/event-stream, chat.completion.chunk events whose
//               content answers this prompt, a finish_reason, data: [DONE]
//               last. An error event after content from a flaky provider
//               is a stream interrupted after its commit point (by
//               design, counted apart); from a RELIABLE provider (one that
//               never fails after its first content), or before any
//               content, it is a failure.
//
// A few requests (abortShare) are abandoned by their client at a random
// moment (waiting for the answer, or in the middle of a stream): not
// checked, counted apart; they exercise the module's clean-up.
//
// A request whose keep-alive connection nginx closed just as it was sent
// (an old worker closing its idle connections at a reload) failed before
// nginx read it: it is sent again, and its time is reported so that
// soak.mjs can check that it happened at a reload; so is one on a new
// connection that nginx closed, answering nothing, as a reload began
// (rare: soak.mjs fails unless each was at a reload). On HTTP/2, a stream
// nginx refused (REFUSED_STREAM, after its GOAWAY) is sent again likewise.
//
// Killed workers: before it kills a worker (stopped meanwhile), soak.mjs
// sends {kill: {ports, at}}, the client ports of the worker's connections;
// a request on one of those connections (opened before AT) that fails is
// counted apart ("on the killed worker"), not as a failure; the reply is
// {killAck}.
//
// IPC: "stop" ends the loops (requests under way finish); the reply is
// {final: stats}. Every 10 s it sends {progress}.

import http from 'node:http';
import http2 from 'node:http2';
import { makeRng, answerMatches, answerPrefix, percentile } from
    './common.mjs';

const cfg = JSON.parse(process.argv[2]);
const rand = makeRng(cfg.seed);
const RELIABLE = new Set(cfg.reliable);
const TIMEOUT = 120000;
const REFUSED_STREAM = http2.constants.NGHTTP2_REFUSED_STREAM;
const CANCEL = http2.constants.NGHTTP2_CANCEL;

const st = {
    started: Date.now(), total: 0, ok: 0, failed: 0,
    plain: 0, stream: 0,
    interrupted: {},            // provider -> streams cut after commit
    failures: {},               // reason -> count
    samples: [],                // the first failures, in detail
    interruptedSamples: [],
    providers: {},              // X-LLM-Provider -> count
    cache: {},                  // X-LLM-Cache -> count
    fallback: 0,                // answers with an X-LLM-Fallback header
    fellBack: 0,                // ... after a failed attempt
    reasons: {},                // "provider:reason" from X-LLM-Fallback
    attempts: {},               // X-LLM-Attempts -> count
    kaRetries: [],              // times of keep-alive races retried
    freshRetries: [],           // the same on a new connection
    aborted: 0,                 // requests the client gave up on purpose
    killed: { total: 0, ok: 0, reasons: {}, ports: 0, samples: [] },
    h2: { sessions: 0, goaways: 0, refused: [], notSent: 0,
          sessionErrors: {} },
    events4k: 0, events8k: 0, largestEvent: 0,
    slow: { pauses: 0, pausedMs: 0, bytes: 0, done: 0 },
    profiles: {},               // name -> per-profile counters
    lat: { plain: [], stream: [] },
    ttfb: [],
};

const killed = new Map();       // client port -> when its worker was killed

let stopping = false;
let uniq = 0;


function bump(o, k, n = 1) {
    o[k] = (o[k] || 0) + n;
}

// a request whose connection was to a worker soak.mjs killed
function onKilled(req) {
    const c = req.conn;
    const at = c?.port !== undefined ? killed.get(c.port) : undefined;

    return at !== undefined && c.born <= at;
}

function fail(req, reason, detail) {
    const P = req.prof.st;

    if (onKilled(req)) {
        st.killed.total++;
        P.killed++;
        bump(st.killed.reasons, reason);

        if (st.killed.samples.length < 5) {
            st.killed.samples.push({ reason, id: req.id,
                                     profile: req.prof.name,
                                     port: req.conn.port });
        }

        return false;
    }

    const h = req.headers ?? {};
    const sample = { at: new Date().toISOString(), reason, id: req.id,
                     profile: req.prof.name, path: req.path,
                     stream: req.stream,
                     prompt: req.prompt, provider: h['x-llm-provider'],
                     cache: h['x-llm-cache'], ...detail };

    st.failed++;
    P.failed++;
    bump(st.failures, reason);
    bump(P.failures, reason);
    bump(P.failedBy, `${h['x-llm-provider'] ?? 'no answer'}`
                     + ` ${h['x-llm-cache'] ?? '-'}`);

    if (st.samples.length < 40) {
        st.samples.push(sample);
    }

    if (P.samples.length < 5) {
        P.samples.push(sample);
    }

    return false;
}

function ok(req) {
    st.ok++;
    req.prof.st.ok++;

    if (onKilled(req)) {
        st.killed.ok++;
    }

    return true;
}


// ---------------------------------------------------------------- reading

// a slow reader: it reads nothing for 1.5-4 s from the start (PAUSE, on
// a connection of its own, so that the kernel's receive window has not
// grown: a client that read fast first would have a megabyte of it on the
// loopback), then no faster than 64-256 KB/s: a slow mobile link; the
// provider is done long before the client, which stays far behind
function slowReader(req) {
    const rate = rand.int(64, 256) * 1024 / 1000;       // bytes per ms

    let owed = 0;

    const hold = (stream, ms) => {
        st.slow.pauses++;
        st.slow.pausedMs += ms;
        stream.pause();
        setTimeout(() => stream.resume(), ms);
    };

    return {
        pause: (stream) => hold(stream, rand.int(1500, 4000)),

        data: (stream, chunk) => {
            st.slow.bytes += chunk.length;
            owed += chunk.length;

            const ms = Math.floor(owed / rate);

            if (ms >= 20) {
                owed = 0;
                hold(stream, ms);
            }
        },
    };
}

function connOf(s) {
    if (!s.soak) {
        const c = { port: undefined, born: Date.now() };
        const grab = () => { c.port = s.localPort; };

        s.soak = c;

        if (s.connecting) {
            s.once('connect', grab);
        } else {
            grab();
        }
    }

    return s.soak;
}


// ---------------------------------------------------------------- HTTP/1.1

// one HTTP/1.1 exchange: resolves {status, headers, body, ttfb,
// headersMs} or rejects
function exchange1(req, retry = 0) {
    const prof = req.prof;

    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        let ttfb = 0;
        let headersMs = 0;

        const r = http.request({
            host: '127.0.0.1', port: prof.port, method: 'POST',
            path: req.path, agent: prof.agent,
            headers: { 'Content-Type': 'application/json',
                       'Content-Length': Buffer.byteLength(req.body),
                       'X-Soak-Id': req.id },
        }, (res) => {
            const chunks = [];

            headersMs = Date.now() - t0;
            req.headers = res.headers;

            res.on('data', (c) => {
                if (!ttfb) {
                    ttfb = Date.now() - t0;
                }
                chunks.push(c);
                slow?.data(res, c);
            });
            res.on('end', () => resolve({
                status: res.statusCode, headers: res.headers,
                body: Buffer.concat(chunks).toString(), ttfb, headersMs,
                complete: res.complete,
            }));
            res.on('error', (err) => reject(err));
            res.on('aborted', () => reject(new Error('response aborted')));
        });

        const slow = prof.slow && slowReader(req);

        r.on('socket', (s) => {
            req.conn = connOf(s);

            if (slow) {
                s.once('connect', () => slow.pause(s));
            }
        });

        r.setTimeout(TIMEOUT, () => r.destroy(new Error('client timeout')));

        if (req.abortAfter !== undefined) {
            const t = setTimeout(() => {
                req.abandoned = true;
                r.destroy(new Error('abandoned'));
            }, req.abortAfter);

            r.on('close', () => clearTimeout(t));
        }

        r.on('error', (err) => {
            if (!r.res && retry < 3 && !onKilled(req)
                && (err.code === 'ECONNRESET' || err.code === 'EPIPE'))
            {
                (r.reusedSocket ? st.kaRetries : st.freshRetries)
                    .push(Date.now());
                exchange1(req, retry + 1).then(resolve, reject);
                return;
            }

            reject(err);
        });

        r.end(req.body);
    });
}


// ---------------------------------------------------------------- HTTP/2

function session(prof, k) {
    let s = prof.sessions[k];

    if (s && !s.closed && !s.destroyed && !s.soakGoaway) {
        return s;
    }

    s = http2.connect(`http://127.0.0.1:${prof.port}`,
                      { settings: { enablePush: false } });
    st.h2.sessions++;

    s.soak = { port: undefined, born: Date.now() };
    s.once('connect', () => { s.soak.port = s.socket?.localPort; });
    s.on('goaway', () => {
        s.soakGoaway = true;
        st.h2.goaways++;
    });
    s.on('error', (err) => bump(st.h2.sessionErrors, err.code ?? 'error'));
    s.on('frameError', () => {});

    prof.sessions[k] = s;

    return s;
}

// one HTTP/2 exchange, as exchange1()
function exchange2(req, retry = 0) {
    const prof = req.prof;

    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const s = session(prof, req.client % prof.sessions.length);
        let stream;

        try {
            stream = s.request({
                ':method': 'POST', ':path': req.path,
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(req.body),
                'x-soak-id': req.id,
            });
        } catch (err) {
            // the session is closing (GOAWAY) or gone: nothing was sent
            s.soakGoaway = true;
            st.h2.notSent++;

            if (retry < 5) {
                exchange2(req, retry + 1).then(resolve, reject);
            } else {
                reject(err);
            }
            return;
        }

        req.conn = s.soak;

        const chunks = [];
        const slow = prof.slow && slowReader(req);
        let status = 0;
        let headers = null;
        let ttfb = 0;
        let headersMs = 0;
        let ended = false;
        let error = null;
        let timedOut = false;

        stream.on('response', (h) => {
            status = h[':status'];
            headers = h;
            headersMs = Date.now() - t0;
            req.headers = h;
        });
        stream.on('data', (c) => {
            if (!ttfb) {
                ttfb = Date.now() - t0;
            }
            chunks.push(c);
            slow?.data(stream, c);
        });
        stream.on('end', () => { ended = true; });
        stream.on('error', (err) => { error = error ?? err; });
        stream.on('close', () => {
            // node ends a stream it cancelled itself too
            if (ended && status && !req.abandoned && !timedOut) {
                resolve({ status, headers, body:
                          Buffer.concat(chunks).toString(), ttfb,
                          headersMs, complete: true });
                return;
            }

            // refused after a GOAWAY: never processed, sent again
            if (!status && stream.rstCode === REFUSED_STREAM && retry < 3
                && !req.abandoned)
            {
                st.h2.refused.push(Date.now());
                exchange2(req, retry + 1).then(resolve, reject);
                return;
            }

            reject(error ?? new Error(`stream closed (RST_STREAM `
                                      + `${stream.rstCode}, status `
                                      + `${status || 'none'})`));
        });

        stream.setTimeout(TIMEOUT, () => {
            timedOut = true;
            error = new Error('client timeout');
            stream.close(CANCEL);
        });

        if (req.abortAfter !== undefined) {
            const t = setTimeout(() => {
                req.abandoned = true;
                error = new Error('abandoned');
                stream.close(CANCEL);
            }, req.abortAfter);

            stream.on('close', () => clearTimeout(t));
        }

        stream.end(req.body);
        slow?.pause(stream);
    });
}


// ---------------------------------------------------------------- checks

function parseEvents(body) {
    const events = [];

    for (const block of body.split('\n\n')) {
        if (block === '') {
            continue;
        }

        const data = block.split('\n').filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).replace(/^ /, '')).join('\n');

        events.push(data);
    }

    return { events, tail: body.endsWith('\n\n') };
}


function checkPlain(req, res) {
    let j = null;

    try {
        j = JSON.parse(res.body);
    } catch {
        // j stays null
    }

    const content = j?.choices?.[0]?.message?.content;
    const detail = () => ({ status: res.status, headers: res.headers,
                            body: res.body.slice(0, 600) });

    if (res.status < 200 || res.status > 299) {
        return fail(req, `plain: status ${res.status}`, detail());
    }

    if (j?.object !== 'chat.completion' || !answerMatches(req.prompt,
                                                          content))
    {
        return fail(req, 'plain: not the chat.completion answering it',
                    detail());
    }

    return ok(req);
}


function checkStream(req, res) {
    const P = req.prof.st;
    const provider = res.headers['x-llm-provider'];
    const detail = () => ({ status: res.status, headers: res.headers,
                            length: res.body.length,
                            body: res.body.slice(-1200) });

    if (res.status !== 200
        || !/^text\/event-stream/.test(res.headers['content-type'] || ''))
    {
        return fail(req, `stream: status ${res.status}`, detail());
    }

    const { events, tail } = parseEvents(res.body);
    let content = '';
    let error = null;
    let finish = false;
    let bad = null;

    events.forEach((data, i) => {
        if (data.length > 4096) {
            st.events4k++;
            P.events4k++;
            st.events8k += data.length > 8192;
            st.largestEvent = Math.max(st.largestEvent, data.length);
        }

        if (data === '[DONE]') {
            if (i !== events.length - 1) {
                bad = bad ?? 'an event after [DONE]';
            }
            return;
        }

        let j;

        try {
            j = JSON.parse(data);
        } catch {
            bad = bad ?? 'an event that is not JSON';
            return;
        }

        if (j.error) {
            error = error ?? j.error;
            return;
        }

        if (j.object !== 'chat.completion.chunk') {
            bad = bad ?? 'an event that is not a chat.completion.chunk';
            return;
        }

        for (const c of j.choices ?? []) {
            content += c.delta?.content ?? '';
            finish = finish || (c.finish_reason ?? null) !== null;
        }
    });

    const done = events[events.length - 1] === '[DONE]' && tail;

    if (bad) {
        return fail(req, `stream: ${bad}`, detail());
    }

    if (error) {
        if (RELIABLE.has(provider)) {
            return fail(req, `stream: error event (${error.code ?? '-'})`
                        + ' from a provider that never fails after content',
                        { ...detail(), error });
        }

        if (content === '' || !answerPrefix(req.prompt, content)) {
            return fail(req, 'stream: error event before any content',
                        { ...detail(), error });
        }

        // committed to a flaky provider that broke: by design
        bump(st.interrupted, provider ?? '-');

        if (st.interruptedSamples.length < 5) {
            st.interruptedSamples.push({ provider, error });
        }

        return false;
    }

    if (!done) {
        return fail(req, 'stream: no data: [DONE] at the end', detail());
    }

    if (!finish || !answerMatches(req.prompt, content)) {
        return fail(req, 'stream: content or finish_reason wrong', detail());
    }

    if (req.prof.slow) {
        st.slow.done++;
    }

    return ok(req);
}


// ---------------------------------------------------------------- loops

async function one(prof, client) {
    const P = prof.st;
    const stream = rand() < prof.streamShare;
    const prompt = rand() < prof.uniqueShare
        ? `${prof.prefix}u${cfg.seed}-${++uniq}`
        : `${prof.prefix}p${rand.int(1, prof.pool)}`;

    const body = { model: 'soak-model',
                   messages: [{ role: 'system', content: 'be brief' },
                              { role: 'user', content: prompt }],
                   max_tokens: 64 };

    if (stream) {
        body.stream = true;

        if (rand() < 0.5) {
            body.stream_options = { include_usage: true };
        }
    }

    const req = { id: `${cfg.seed}-${st.total + 1}`, stream, prompt, prof,
                  client, body: JSON.stringify(body),
                  path: prof.paths[rand.int(0, prof.paths.length - 1)] };

    if (rand() < cfg.abortShare) {
        req.abortAfter = rand.int(0, 1500);
    }

    const t0 = Date.now();

    st.total++;
    P.total++;
    bump(st, stream ? 'stream' : 'plain');
    bump(P, stream ? 'stream' : 'plain');

    let res;

    try {
        res = await (prof.proto === 'h2' ? exchange2(req) : exchange1(req));
    } catch (err) {
        if (req.abandoned) {
            st.aborted++;
            return;
        }

        fail(req, `${stream ? 'stream' : 'plain'}: ${err.code ?? err.message}`,
             { error: String(err) });
        return;
    }

    st.lat[stream ? 'stream' : 'plain'].push(Date.now() - t0);
    st.ttfb.push(res.ttfb);
    P.headersMax = Math.max(P.headersMax, res.headersMs);

    const h = res.headers;

    bump(st.providers, h['x-llm-provider'] ?? '(none)');
    bump(P.providers, h['x-llm-provider'] ?? '(none)');
    bump(st.cache, h['x-llm-cache'] ?? '(none)');
    bump(P.cache, h['x-llm-cache'] ?? '(none)');
    bump(st.attempts, h['x-llm-attempts'] ?? '-');

    if (Number(h['x-llm-attempts']) > 1) {
        st.fellBack++;
    }

    if (h['x-llm-fallback']) {
        st.fallback++;

        for (const r of h['x-llm-fallback'].split(',')) {
            bump(st.reasons, r.trim());
            bump(P.reasons, r.trim());
        }
    }

    if (prof.deadlineMs && res.headersMs > prof.deadlineMs) {
        fail(req, `${req.path.split('/')[1]}: answered after the request`
             + ` deadline (${prof.deadlineMs} ms with its margin)`,
             { status: res.status, headers: h, ms: res.headersMs });
        return;
    }

    if (stream) {
        checkStream(req, res);
    } else {
        checkPlain(req, res);
    }
}

async function loop(prof, client) {
    while (!stopping) {
        await one(prof, client);

        if (prof.think) {
            await new Promise((r) => setTimeout(r, rand.int(...prof.think)));
        }
    }
}


function summary(final) {
    const lat = (a) => {
        const s = Float64Array.from(a).sort();
        return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99),
                 max: s.length ? s[s.length - 1] : NaN };
    };

    const out = { ...st, seconds: (Date.now() - st.started) / 1000 };

    if (final) {
        out.latency = { all: lat([...st.lat.plain, ...st.lat.stream]),
                        plain: lat(st.lat.plain),
                        stream: lat(st.lat.stream),
                        ttfb: lat(st.ttfb) };
    }

    delete out.lat;
    delete out.ttfb;

    return out;
}


process.on('disconnect', () => process.exit(0));

const loops = [];

for (const prof of cfg.profiles) {
    prof.st = st.profiles[prof.name] = {
        proto: prof.proto, clients: prof.clients, slow: !!prof.slow,
        deadlineMs: prof.deadlineMs ?? 0, total: 0, ok: 0, failed: 0,
        killed: 0, stream: 0, plain: 0, headersMax: 0, events4k: 0,
        failures: {}, providers: {}, cache: {}, reasons: {},
        failedBy: {}, samples: [],
    };

    if (prof.proto === 'h2') {
        prof.sessions = new Array(Math.max(1, prof.sessions ?? 1))
            .fill(null);

    } else {
        // slow readers: a connection per request (see slowReader())
        prof.agent = new http.Agent({ keepAlive: !prof.slow,
                                      maxSockets: Infinity,
                                      maxFreeSockets: prof.clients + 16 });
    }

    for (let i = 0; i < prof.clients; i++) {
        loops.push(loop(prof, i));
    }
}

let last = { t: Date.now(), total: 0 };

const progress = setInterval(() => {
    const now = Date.now();

    process.send({ progress: {
        total: st.total, ok: st.ok, failed: st.failed,
        interrupted: Object.values(st.interrupted).reduce((a, b) => a + b, 0),
        rps: (st.total - last.total) / ((now - last.t) / 1000),
        kaRetries: st.kaRetries.length, killed: st.killed.total,
    } });

    last = { t: now, total: st.total };
}, 10000);

process.on('message', async (m) => {
    if (m?.kill) {
        for (const port of m.kill.ports) {
            killed.set(port, m.kill.at);
        }

        st.killed.ports += m.kill.ports.length;
        process.send({ killAck: m.kill.at });
        return;
    }

    if (m !== 'stop') {
        return;
    }

    stopping = true;
    clearInterval(progress);

    await Promise.all(loops);

    for (const prof of cfg.profiles) {
        prof.agent?.destroy();
        prof.sessions?.forEach((s) => s?.close());
    }

    process.send({ final: summary(true) });
});
