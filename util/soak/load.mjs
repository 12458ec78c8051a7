// The soak's load client (node util/soak/load.mjs CONFIG-JSON), forked by
// soak.mjs. CONFIG: {port, clients, seed, streamShare, uniqueShare, pool}.
//
// CLIENTS loops, each sending one request after the other on keep-alive
// connections (one http.Agent), about half of them "stream": true. Half
// of the prompts are new (cache MISS), the others come from a small pool
// (cache HIT while the entry is younger than ttl).
//
// Every answer is checked:
//   non-stream: 200, a chat.completion whose content answers this prompt;
//   stream:     200, text/event-stream, chat.completion.chunk events whose
//               content answers this prompt, a finish_reason, data: [DONE]
//               last. An error event after content from a flaky provider
//               is a stream interrupted after its commit point (by
//               design, counted apart); from the always-healthy provider,
//               or before any content, it is a failure.
//
// A few requests (abortShare) are abandoned by their client at a random
// moment (waiting for the answer, or in the middle of a stream): not
// checked, counted apart; they exercise the module's clean-up.
//
// A request whose keep-alive connection nginx closed just as it was sent
// (an old worker closing its idle connections at a reload) failed before
// nginx read it: it is sent again, and its time is reported so that
// soak.mjs can check that it happened at a reload.
//
// IPC: "stop" ends the loops (requests under way finish); the reply is
// {final: stats}. Every 10 s it sends {progress}.

import http from 'node:http';
import { makeRng, answerMatches, answerPrefix, percentile } from
    './common.mjs';

const cfg = JSON.parse(process.argv[2]);
const rand = makeRng(cfg.seed);
const HEALTHY = cfg.healthy;
const TIMEOUT = 120000;

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity,
                               maxFreeSockets: cfg.clients + 16 });

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
    aborted: 0,                 // requests the client gave up on purpose
    lat: { plain: [], stream: [] },
    ttfb: [],
};

let stopping = false;
let uniq = 0;


function bump(o, k, n = 1) {
    o[k] = (o[k] || 0) + n;
}

function fail(req, reason, detail) {
    st.failed++;
    bump(st.failures, reason);

    if (st.samples.length < 40) {
        st.samples.push({ at: new Date().toISOString(), reason,
                          id: req.id, stream: req.stream,
                          prompt: req.prompt, ...detail });
    }
}


// one HTTP exchange: resolves {status, headers, body, ttfb} or rejects
function exchange(req, retry = 0) {
    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        let ttfb = 0;

        const r = http.request({
            host: '127.0.0.1', port: cfg.port, method: 'POST',
            path: '/v1/chat/completions', agent,
            headers: { 'Content-Type': 'application/json',
                       'Content-Length': Buffer.byteLength(req.body),
                       'X-Soak-Id': req.id },
        }, (res) => {
            const chunks = [];

            res.on('data', (c) => {
                if (!ttfb) {
                    ttfb = Date.now() - t0;
                }
                chunks.push(c);
            });
            res.on('end', () => resolve({
                status: res.statusCode, headers: res.headers,
                body: Buffer.concat(chunks).toString(), ttfb,
                complete: res.complete,
            }));
            res.on('error', (err) => reject(err));
            res.on('aborted', () => reject(new Error('response aborted')));
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
            if (r.reusedSocket && !r.res && retry < 3
                && (err.code === 'ECONNRESET' || err.code === 'EPIPE'))
            {
                st.kaRetries.push(Date.now());
                exchange(req, retry + 1).then(resolve, reject);
                return;
            }

            reject(err);
        });

        r.end(req.body);
    });
}


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

    if (res.status < 200 || res.status > 299) {
        return fail(req, `plain: status ${res.status}`,
                    { status: res.status, headers: res.headers,
                      body: res.body.slice(0, 600) });
    }

    if (j?.object !== 'chat.completion' || !answerMatches(req.prompt,
                                                          content))
    {
        return fail(req, 'plain: not the chat.completion answering it',
                    { status: res.status, headers: res.headers,
                      body: res.body.slice(0, 600) });
    }

    st.ok++;
    return true;
}


function checkStream(req, res) {
    const provider = res.headers['x-llm-provider'];
    const detail = () => ({ status: res.status, headers: res.headers,
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
        if (provider === HEALTHY) {
            return fail(req, 'stream: error event from the healthy provider',
                        detail());
        }

        if (content === '' || !answerPrefix(req.prompt, content)) {
            return fail(req, 'stream: error event before any content',
                        detail());
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

    st.ok++;
    return true;
}


async function one() {
    const stream = rand() < cfg.streamShare;
    const prompt = rand() < cfg.uniqueShare
        ? `u${cfg.seed}-${++uniq}`
        : `p${rand.int(1, cfg.pool)}`;

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

    const req = { id: `${cfg.seed}-${st.total + 1}`, stream, prompt,
                  body: JSON.stringify(body) };

    if (rand() < cfg.abortShare) {
        req.abortAfter = rand.int(0, 1500);
    }

    const t0 = Date.now();

    st.total++;
    bump(st, stream ? 'stream' : 'plain');

    let res;

    try {
        res = await exchange(req);
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

    const h = res.headers;

    bump(st.providers, h['x-llm-provider'] ?? '(none)');
    bump(st.cache, h['x-llm-cache'] ?? '(none)');
    bump(st.attempts, h['x-llm-attempts'] ?? '-');

    if (Number(h['x-llm-attempts']) > 1) {
        st.fellBack++;
    }

    if (h['x-llm-fallback']) {
        st.fallback++;

        for (const r of h['x-llm-fallback'].split(',')) {
            bump(st.reasons, r.trim());
        }
    }

    if (stream) {
        checkStream(req, res);
    } else {
        checkPlain(req, res);
    }
}

async function loop() {
    while (!stopping) {
        await one();
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

const loops = Array.from({ length: cfg.clients }, loop);
let last = { t: Date.now(), total: 0 };

const progress = setInterval(() => {
    const now = Date.now();

    process.send({ progress: {
        total: st.total, ok: st.ok, failed: st.failed,
        interrupted: Object.values(st.interrupted).reduce((a, b) => a + b, 0),
        rps: (st.total - last.total) / ((now - last.t) / 1000),
        kaRetries: st.kaRetries.length,
    } });

    last = { t: now, total: st.total };
}, 10000);

process.on('message', async (m) => {
    if (m !== 'stop') {
        return;
    }

    stopping = true;
    clearInterval(progress);

    await Promise.all(loops);

    agent.destroy();
    process.send({ final: summary(true) });
});
