// One fake LLM provider of the soak (node util/soak/fake.mjs CONFIG-JSON),
// forked by soak.mjs. CONFIG: {name, port, format: "openai"|"anthropic",
// flaky: bool, bulk: bool, late: bool, seed}.
//
// It answers OpenAI Chat Completions (POST .../chat/completions) or the
// Anthropic Messages API (POST .../messages), as JSON or, for "stream":
// true, as real SSE written token by token with small pauses. The answer's
// content is "re:PROMPT t1 t2 ..." (common.mjs), PROMPT being the last
// message's text, so the client can tell its own answer.
//
// A flaky provider injects, per request, a random fault (the FAULTS tables
// below): reset (RST), hang (longer than llm_attempt_timeout), 5xx, 429
// with Retry-After, garbage bodies and status lines, truncated bodies,
// malformed and error events, streams that end without content; and, in a
// small fraction of streams, a failure after the first content (cut,
// malformed event, error event, silence), which the client sees as an
// error event by design. From time to time it also has an outage: for a
// few seconds every request fails the same way, or its listener is closed
// (connection refused).
//
// A bulk provider (never fails) answers with large text: 10-150 KB in all,
// in deltas of up to 14 KB, most of them over 4 KB, so that the events
// nginx writes are larger than its buffers; for a prompt starting with
// "S" (the slow readers'), 100-500 KB in deltas under 2 KB, so that a slow
// reader's failure is not one of large events; its OpenAI chunks sometimes
// leave out "id" or "created" or span several data: lines, which makes the
// module rewrite them rather than pass them on. Its events come with no
// pause, so the stream ends while a slow client is still far behind.
//
// A late provider (the one live server of the multi-server upstream)
// answers most requests at once and some after 1.3-2.5 s, longer than the
// attempt timeout of its location: cancelled attempts on a live server.
//
// On "stats" (IPC) it replies with the count of each fault it injected,
// and the number and largest size of the events over 4 KB it sent.

import http from 'node:http';
import { makeRng, sleep, answerTokens } from './common.mjs';

const cfg = JSON.parse(process.argv[2]);
const rand = makeRng(cfg.seed);
const anthropic = cfg.format === 'anthropic';

const stats = { requests: 0, bad_requests: 0, bad_samples: [],
                refused_outages: 0,
                outages: 0, faults: {}, events_4k: 0, events_8k: 0,
                largest_event: 0 };

// weights per fault; "ok" is a full answer
const FAULTS = {
    plain: [
        [74, 'ok'], [4, 'slow'], [4, 'reset'], [3, 'hang'], [5, '5xx'],
        [0.05, '429'], [2, 'garbage'], [2, 'not_completion'],
        [2, 'truncated'], [1.5, 'bad_status'], [1.5, 'close'],
    ],
    stream: [
        [70, 'ok'], [3, 'slow'], [3, 'reset'], [2, 'hang'],
        [2, 'hang_before_content'], [4, '5xx'], [0.05, '429'],
        [2, 'garbage_sse'], [2, 'error_event'], [2, 'no_content'],
        [2, 'cut_before_content'], [1, 'bad_status'],
        [anthropic ? 0 : 1, 'json_answer'],
        // after the first content: an error event for the client
        [0.6, 'cut_after'], [0.3, 'malformed_after'],
        [0.3, 'error_after'], [0.2, 'idle_after'],
    ],
};

// the late provider: "late" answers after the attempt timeout
const LATE = [[90, 'ok'], [10, 'late']];

// the sizes of a bulk provider's deltas (bytes; the first is one token)
const BULK_DELTAS = [[2, [40, 600]], [3, [4200, 6000]], [3, [6000, 9000]],
                     [2, [9000, 14000]]];
const SMALL_DELTAS = [[1, [40, 600]], [1, [600, 2000]]];

// the kinds of outage, taken in a random order, each once per round
const OUTAGES = ['refuse', '5xx', 'hang', 'reset', 'ratelimit'];

let outage = null;      // { kind, until }
let server = null;


function count(fault) {
    stats.faults[fault] = (stats.faults[fault] || 0) + 1;
}


function promptOf(body) {
    const msgs = Array.isArray(body?.messages) ? body.messages : [];
    const last = msgs[msgs.length - 1];
    let c = last?.content;

    if (Array.isArray(c)) {
        c = c.map((p) => p?.text ?? '').join('');
    }

    return typeof c === 'string' ? c : '';
}


// ---------------------------------------------------------------- bodies

function completion(tokens) {
    const text = tokens.join('');

    if (anthropic) {
        return JSON.stringify({
            id: `msg_${cfg.name}_${rand.int(1, 1e9)}`, type: 'message',
            role: 'assistant', model: `${cfg.name}-model`,
            content: [{ type: 'text', text }],
            stop_reason: 'end_turn', stop_sequence: null,
            usage: { input_tokens: 7, output_tokens: tokens.length },
        });
    }

    return JSON.stringify({
        id: `chatcmpl-${cfg.name}-${rand.int(1, 1e9)}`,
        object: 'chat.completion', created: Math.floor(Date.now() / 1000),
        model: `${cfg.name}-model`,
        choices: [{ index: 0, message: { role: 'assistant', content: text },
                    finish_reason: 'stop' }],
        usage: { prompt_tokens: 7, completion_tokens: tokens.length,
                 total_tokens: 7 + tokens.length },
    });
}

function errorBody(status) {
    if (anthropic) {
        const type = status === 429 ? 'rate_limit_error'
                   : status === 529 ? 'overloaded_error' : 'api_error';
        return JSON.stringify({ type: 'error',
                                error: { type, message: `fake ${status}` } });
    }

    return JSON.stringify({ error: { message: `fake ${status}`,
                                     type: 'server_error', param: null,
                                     code: null } });
}

function sse(data, event) {
    return (event ? `event: ${event}\n` : '')
        + `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

// a bulk answer's length in tokens (" tN" is 7 bytes on average)
function bulkTokens(prompt) {
    const kb = prompt.startsWith('S') ? rand.int(100, 500) : rand.int(10, 150);

    return Math.ceil(kb * 1024 / 7);
}

// tokens grouped into deltas of random sizes: a bulk provider's deltas;
// the first is the first token alone
function deltas(tokens, prompt) {
    if (!cfg.bulk) {
        return tokens;
    }

    const sizes = prompt.startsWith('S') ? SMALL_DELTAS : BULK_DELTAS;

    const out = [tokens[0]];
    let cur = '';
    let want = 0;

    for (const t of tokens.slice(1)) {
        if (cur === '') {
            const [lo, hi] = rand.weighted(sizes);
            want = rand.int(lo, hi);
        }

        cur += t;

        if (cur.length >= want) {
            out.push(cur);
            cur = '';
        }
    }

    if (cur !== '') {
        out.push(cur);
    }

    return out;
}

// an OpenAI chunk's SSE; a bulk provider's are sometimes left without
// "id" or "created" (the module fills them in: a rewritten event) or
// split over two data: lines
function openaiEvent(o, first) {
    if (cfg.bulk && !first) {
        const v = rand.int(0, 3);

        if (v === 1) {
            delete o.id;

        } else if (v === 2) {
            delete o.created;

        } else if (v === 3) {
            const j = JSON.stringify(o);
            const i = j.indexOf(',"choices":');

            return `data: ${j.slice(0, i + 1)}\ndata: ${j.slice(i + 1)}\n\n`;
        }
    }

    return sse(o);
}

// the events of a stream, in three parts: before the first content, one
// event per token (per delta for a bulk provider), and the end
function streamEvents(tokens, usage, prompt) {
    const id = `${cfg.name}-${rand.int(1, 1e9)}`;

    if (anthropic) {
        return {
            head: [
                sse({ type: 'message_start', message: {
                    id: `msg_${id}`, type: 'message', role: 'assistant',
                    model: `${cfg.name}-model`, content: [],
                    stop_reason: null, usage: { input_tokens: 7,
                                                output_tokens: 1 } } },
                    'message_start'),
                sse({ type: 'content_block_start', index: 0,
                      content_block: { type: 'text', text: '' } },
                    'content_block_start'),
                sse({ type: 'ping' }, 'ping'),
            ],
            tokens: deltas(tokens, prompt).map((t) => sse({
                type: 'content_block_delta', index: 0,
                delta: { type: 'text_delta', text: t } },
                'content_block_delta')),
            tail: [
                sse({ type: 'content_block_stop', index: 0 },
                    'content_block_stop'),
                sse({ type: 'message_delta',
                      delta: { stop_reason: 'end_turn',
                               stop_sequence: null },
                      usage: { output_tokens: tokens.length } },
                    'message_delta'),
                sse({ type: 'message_stop' }, 'message_stop'),
            ],
            error: sse({ type: 'error', error: { type: 'overloaded_error',
                                                 message: 'Overloaded' } },
                       'error'),
            malformed: 'event: content_block_delta\ndata: {"type":\n\n',
        };
    }

    const chunk = (delta, finish = null, first = false) => openaiEvent({
        id: `chatcmpl-${id}`, object: 'chat.completion.chunk',
        created: Math.floor(Date.now() / 1000), model: `${cfg.name}-model`,
        choices: [{ index: 0, delta, finish_reason: finish }],
    }, first);

    const tail = [chunk({}, 'stop')];

    if (usage) {
        tail.push(sse({
            id: `chatcmpl-${id}`, object: 'chat.completion.chunk',
            created: Math.floor(Date.now() / 1000),
            model: `${cfg.name}-model`, choices: [],
            usage: { prompt_tokens: 7, completion_tokens: tokens.length,
                     total_tokens: 7 + tokens.length },
        }));
    }

    tail.push('data: [DONE]\n\n');

    return {
        head: [chunk({ role: 'assistant', content: '' }, null, true)],
        tokens: deltas(tokens, prompt).map((t) => chunk({ content: t })),
        tail,
        error: sse({ error: { message: 'overloaded, try later',
                              type: 'server_error', param: null,
                              code: 'overloaded' } }),
        malformed: 'data: {"choices":[{"delta":\n\n',
    };
}


// ---------------------------------------------------------------- answers

function gone(res) {
    return res.destroyed || res.socket === null || res.socket.destroyed;
}

// resolves when nginx closes the connection, or after ms
function waitClose(res, ms) {
    return new Promise((resolve) => {
        if (gone(res)) {
            resolve();
            return;
        }

        const t = setTimeout(resolve, ms);
        res.once('close', () => { clearTimeout(t); resolve(); });
    });
}

function raw(res, data) {
    const s = res.socket;
    s.end(data);
    setTimeout(() => s.destroy(), 50);
}

function reset(res) {
    res.socket.resetAndDestroy();
}

async function hang(res) {
    await waitClose(res, 60000);
    res.socket?.destroy();
}

function sendJson(res, status, body, headers = {}) {
    res.writeHead(status, { 'Content-Type': 'application/json',
                            'Content-Length': Buffer.byteLength(body),
                            ...headers });
    res.end(body);
}

function sendError(res, status, headers) {
    sendJson(res, status, errorBody(status), headers);
}

function sseHead(res) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream',
                         'Cache-Control': 'no-cache' });
}

function countEvent(e) {
    if (e.length > 4096) {
        stats.events_4k++;
        stats.events_8k += e.length > 8192;
        stats.largest_event = Math.max(stats.largest_event, e.length);
    }
}

// writes events with a small pause before each (a bulk provider's without
// pause: nginx's buffers, not the provider, set the pace); false when nginx
// went away
async function write(res, events, pause = [5, 25]) {
    for (const e of events) {
        if (!cfg.bulk) {
            await sleep(rand.int(pause[0], pause[1]));
        }

        if (gone(res)) {
            return false;
        }

        countEvent(e);

        if (!res.write(e) && cfg.bulk) {
            await new Promise((resolve) => {
                const done = () => {
                    res.off('drain', done);
                    res.off('close', done);
                    resolve();
                };

                res.on('drain', done);
                res.on('close', done);
            });
        }
    }

    return true;
}

function fiveXX() {
    const codes = anthropic ? [500, 502, 503, 529] : [500, 502, 503, 504];
    return codes[rand.int(0, codes.length - 1)];
}

// the faults answered alike, stream or not: true when FAULT is one
function failAlike(res, fault) {
    switch (fault) {
    case 'reset':
        reset(res);
        return true;
    case 'hang':
        hang(res);
        return true;
    case '5xx':
        sendError(res, fiveXX());
        return true;
    case '429':
    case 'ratelimit':
        sendError(res, 429, { 'Retry-After': fault === '429' ? '1' : '2' });
        return true;
    }

    return false;
}

async function answerPlain(res, fault, tokens) {
    const body = completion(tokens);

    if (failAlike(res, fault)) {
        return;
    }

    switch (fault) {
    case 'slow':
    case 'late':
        await sleep(fault === 'late' ? rand.int(1300, 2500)
                                     : rand.int(300, 1200));
        if (!gone(res)) {
            sendJson(res, 200, body);
        }
        return;
    case 'garbage':
        return sendJson(res, 200, rand() < 0.5
            ? '<html><body>502 Bad Gateway</body></html>'
            : '{"choices":[{"message":{"content":"trunc');
    case 'not_completion':
        return sendJson(res, 200, anthropic ? '{"type":"message","content":[]}'
                                            : '{"object":"chat.completion",'
                                              + '"choices":[]}');
    case 'truncated':
        res.writeHead(200, { 'Content-Type': 'application/json',
                             'Content-Length': Buffer.byteLength(body) });
        res.write(body.slice(0, Math.floor(body.length / 2)));
        await sleep(20);
        res.socket?.destroy();
        return;
    case 'bad_status':
        return raw(res, 'SPDY/9 what\r\nX: y\r\n\r\n' + body);
    case 'close':
        return res.socket.destroy();
    default:
        await sleep(rand.int(0, 60));
        if (!gone(res)) {
            sendJson(res, 200, body);
        }
    }
}

async function answerStream(res, fault, tokens, usage, prompt) {
    const ev = streamEvents(tokens, usage, prompt);
    const first = ev.tokens.slice(0, 1);
    const rest = ev.tokens.slice(1);

    if (failAlike(res, fault)) {
        return;
    }

    switch (fault) {
    case 'bad_status':
        return raw(res, 'garbage\r\n\r\n' + ev.head.join(''));
    case 'json_answer':
        return sendJson(res, 200, completion(tokens));
    }

    sseHead(res);

    if (!await write(res, ev.head)) {
        return;
    }

    switch (fault) {
    case 'hang_before_content':
        return hang(res);
    case 'garbage_sse':
        await write(res, [ev.malformed, '\x00\xff garbage \n\n']);
        return res.end();
    case 'error_event':
        await write(res, [ev.error]);
        return res.end();
    case 'no_content':
        await write(res, ev.tail);
        return res.end();
    case 'cut_before_content':
        await sleep(rand.int(5, 50));
        return res.socket?.destroy();
    case 'slow':
        await sleep(rand.int(300, 1200));
        break;
    case 'late':
        await sleep(rand.int(1300, 2500));
        break;
    }

    if (!await write(res, first)) {
        return;
    }

    switch (fault) {
    case 'cut_after':
        await write(res, rest.slice(0, rand.int(0, rest.length)));
        await sleep(rand.int(5, 50));
        return res.socket?.destroy();
    case 'malformed_after':
        await write(res, [ev.malformed]);
        return hang(res);
    case 'error_after':
        await write(res, [ev.error]);
        return res.end();
    case 'idle_after':
        return hang(res);
    }

    if (await write(res, [...rest, ...ev.tail])) {
        res.end();
    }
}

function handle(req, res) {
    const chunks = [];

    res.on('error', () => {});
    req.on('error', () => {});
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        let body = null;

        try {
            body = JSON.parse(Buffer.concat(chunks).toString());
        } catch {
            // answered below
        }

        stats.requests++;

        const path = anthropic ? '/v1/messages' : '/v1/chat/completions';

        // X-Soak-Content-Type: $content_type in the provider location
        const ct = req.headers['x-soak-content-type'];

        if (req.method !== 'POST' || req.url !== path || body === null
            || (anthropic && typeof body.max_tokens !== 'number')
            || (ct !== undefined && ct !== 'application/json'))
        {
            if (stats.bad_samples.length < 3) {
                stats.bad_samples.push({ method: req.method, url: req.url,
                                         headers: req.headers });
            }

            // never expected: the client would get a 400
            stats.bad_requests++;
            sendJson(res, 400, errorBody(400));
            return;
        }

        const stream = body.stream === true;
        const now = Date.now();
        let fault = 'ok';

        if (outage && now < outage.until) {
            fault = outage.kind;

        } else if (cfg.flaky) {
            fault = rand.weighted(stream ? FAULTS.stream : FAULTS.plain);

        } else if (cfg.late) {
            fault = rand.weighted(LATE);
        }

        count(`${stream ? 'stream' : 'plain'}:${fault}`);

        const prompt = promptOf(body);
        const tokens = answerTokens(prompt, cfg.bulk ? bulkTokens(prompt)
                                                     : rand.int(4, 12));
        const usage = body.stream_options?.include_usage === true;
        const p = stream ? answerStream(res, fault, tokens, usage, prompt)
                         : answerPlain(res, fault, tokens);

        Promise.resolve(p).catch(() => res.socket?.destroy());
    });
}


// ---------------------------------------------------------------- listener

async function listen() {
    for (;;) {
        const srv = http.createServer(handle);

        // nginx closes idle upstream connections first (keepalive_timeout
        // 20s in its upstream blocks), never the fake: no request is ever
        // sent on a connection the fake is closing
        srv.keepAliveTimeout = 120000;
        srv.headersTimeout = 130000;
        srv.requestTimeout = 0;
        srv.on('clientError', (err, socket) => socket.destroy());

        try {
            await new Promise((resolve, reject) => {
                srv.once('error', reject);
                srv.listen(cfg.port, '127.0.0.1', resolve);
            });
            server = srv;
            return;
        } catch {
            await sleep(100);
        }
    }
}

async function outages() {
    // the first one refuses connections, so that even a short run has some
    for (let round = ['refuse'];; ) {
        await sleep(rand.int(10000, 30000));

        if (round.length === 0) {
            round = OUTAGES.map((k) => [rand(), k])
                .sort((a, b) => a[0] - b[0]).map(([, k]) => k);
        }

        const kind = round.pop();
        const ms = rand.int(3000, 6000);

        stats.outages++;
        outage = { kind, until: Date.now() + ms };

        if (kind === 'refuse') {
            // connection refused: no listener for a while
            stats.refused_outages++;
            const old = server;
            server = null;
            old.close();
            old.closeIdleConnections();
            await sleep(ms);
            await listen();

        } else {
            await sleep(ms);
        }

        outage = null;
    }
}

process.on('message', (m) => {
    if (m === 'stats') {
        process.send({ stats });
    }
});

process.on('disconnect', () => process.exit(0));

await listen();

if (cfg.flaky) {
    outages();
}

process.send({ ready: cfg.port });
