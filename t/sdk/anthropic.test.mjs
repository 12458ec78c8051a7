// The official @anthropic-ai/sdk npm client against nginx with the module's
// Anthropic Messages front door (llm_api messages, llm_api count_tokens,
// llm_models).
//
// Starts its own nginx (temporary prefix, free ports, the module loaded with
// load_module) and, in this process, a node http server with the fake
// providers, which check what they get (the path, the provider's credential
// and never the client's, anthropic-version, a JSON body) and record it:
//
//   /claude/v1/messages[/count_tokens]   anthropic: text, tool_use, events
//   /claudem/v1/messages                 the same, behind a provider model=
//   /claudecut/v1/messages               anthropic: a stream cut after the
//                                        first delta
//   /down1/v1/messages                   anthropic: 503 overloaded
//   /gpt/v1/chat/completions             openai: text, tool_calls, chunks
//   /down2/v1/chat/completions           openai: 503
//
// Run by make test (test-sdk):
//
//   [LLM_MODULE_SO=/abs/path/ngx_http_llm_fallback_module.so] \
//   [LLM_NGINX_BINARY=/usr/sbin/nginx] node --test t/sdk/
//
// (the .so defaults to build/ngx_http_llm_fallback_module.so)
//
// LLM_KEEP_PREFIX=1 keeps the temporary nginx prefix (conf, logs) for a look.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import Anthropic from '@anthropic-ai/sdk';

const nginxBin = process.env.LLM_NGINX_BINARY || '/usr/sbin/nginx';
const moduleSo = process.env.LLM_MODULE_SO
    || new URL('../../build/ngx_http_llm_fallback_module.so',
               import.meta.url).pathname;

const CLIENT_KEY = 'sk-ant-client-key-never-forwarded';
const ANT_KEY = 'sk-ant-provider-key';
const OAI_KEY = 'sk-openai-provider-key';
const PROVIDER_MODEL = 'claude-provider-model';

const A_TEXT = 'Hello from the fake anthropic provider.';
const O_TEXT = 'Hello from the fake openai provider.';
const A_WORDS = ['Hello', ' from', ' the', ' anthropic', ' stream'];
const O_WORDS = ['Hello', ' from', ' the', ' openai', ' stream'];
const WEATHER = '18 degrees and sunny';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ the fakes

// every request a fake got: { name, method, path, query, headers, raw }
const seen = [];

// what a fake found wrong in a request (also answered as a 400 that names
// it, which the module relays to the SDK as it is not a fallback condition)
const problems = [];

function seenBy(name) {
    return seen.filter((r) => r.name === name);
}

function lastSeen(name) {
    const all = seenBy(name);
    assert.ok(all.length > 0, `the fake "${name}" got a request`);
    return all.at(-1);
}

function sse(event, data) {
    return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function chunk(delta, finish = null, extra = {}) {
    return 'data: ' + JSON.stringify({
        id: 'chatcmpl-fake-stream',
        object: 'chat.completion.chunk',
        created: 1700000000,
        model: 'gpt-fake',
        choices: [{ index: 0, delta, finish_reason: finish }],
        ...extra,
    }) + '\n\n';
}

// the text of a string content or of its text blocks / parts
function textOf(content) {
    if (typeof content === 'string') {
        return content;
    }
    if (!Array.isArray(content)) {
        return '';
    }
    return content.filter((b) => b.type === 'text')
        .map((b) => b.text).join('');
}

function lastUserText(body) {
    const users = (body.messages || []).filter((m) => m.role === 'user');
    return users.length ? textOf(users.at(-1).content) : '';
}

class Problem extends Error {}

function check(cond, what) {
    if (!cond) {
        throw new Problem(what);
    }
}

// the headers no provider may get: the client's credential in any header
function checkNoClientSecrets(req) {
    for (const [k, v] of Object.entries(req.headers)) {
        check(!String(v).includes(CLIENT_KEY),
              `the client's key reached the provider in ${k}`);
    }
}

function checkAnthropicRequest(name, req, url, body, countTokens) {
    const want = `/${name}/v1/messages${countTokens ? '/count_tokens' : ''}`;

    check(req.method === 'POST', `method ${req.method}`);
    check(url.pathname === want, `path ${url.pathname}, not ${want}`);
    check(req.headers['x-api-key'] === ANT_KEY,
          `x-api-key ${req.headers['x-api-key']}, not the provider's`);
    check(req.headers.authorization === undefined,
          'an Authorization header reached an anthropic provider');
    check(typeof req.headers['anthropic-version'] === 'string'
          && req.headers['anthropic-version'].length > 0,
          'no anthropic-version');
    check(/^application\/json/.test(req.headers['content-type'] || ''),
          `content-type ${req.headers['content-type']}`);
    checkNoClientSecrets(req);

    check(body && typeof body === 'object' && !Array.isArray(body),
          'the body is not a JSON object');
    check(typeof body.model === 'string', 'no model');
    check(Array.isArray(body.messages) && body.messages.length > 0,
          'no messages');
    if (!countTokens) {
        check(Number.isInteger(body.max_tokens), 'no max_tokens');
    }
}

function checkOpenAIRequest(name, req, url, body) {
    const want = `/${name}/v1/chat/completions`;

    check(req.method === 'POST', `method ${req.method}`);
    check(url.pathname === want, `path ${url.pathname}, not ${want}`);
    check(req.headers.authorization === `Bearer ${OAI_KEY}`,
          `authorization ${req.headers.authorization}, not the provider's`);
    check(req.headers['x-api-key'] === undefined,
          'an x-api-key header reached an openai provider');
    check(/^application\/json/.test(req.headers['content-type'] || ''),
          `content-type ${req.headers['content-type']}`);
    checkNoClientSecrets(req);

    check(body && typeof body === 'object' && !Array.isArray(body),
          'the body is not a JSON object');
    check(Array.isArray(body.messages) && body.messages.length > 0,
          'no messages');
    check(body.max_tokens === undefined || Number.isInteger(body.max_tokens),
          'max_tokens is not an integer');
}

function anthropicMessage(model, content, stopReason, usage) {
    return {
        id: 'msg_fake_01',
        type: 'message',
        role: 'assistant',
        model,
        content,
        stop_reason: stopReason,
        stop_sequence: null,
        usage: {
            input_tokens: 12,
            output_tokens: 6,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            ...usage,
        },
    };
}

// the tool_result of the last user turn, checked against the tool_use of
// the assistant turn before it
function anthropicToolResult(body) {
    const msgs = body.messages;
    const last = msgs.at(-1);

    if (last.role !== 'user' || !Array.isArray(last.content)) {
        return null;
    }

    const result = last.content.find((b) => b.type === 'tool_result');
    if (!result) {
        return null;
    }

    const prev = msgs.at(-2);
    check(prev && prev.role === 'assistant' && Array.isArray(prev.content),
          'a tool_result without an assistant turn before it');
    const use = prev.content.find((b) => b.type === 'tool_use');
    check(use && use.id === result.tool_use_id,
          `tool_result ${result.tool_use_id} answers no tool_use`);

    return { use, result: textOf(result.content) };
}

// the text events of an Anthropic stream, written one by one with pauses;
// resolves to the bytes written
async function anthropicStream(res, model, words, { cut = false } = {}) {
    const out = [];
    const write = (s) => {
        out.push(s);
        res.write(s);
    };

    res.writeHead(200, { 'Content-Type': 'text/event-stream' });

    write(sse('message_start', {
        type: 'message_start',
        message: anthropicMessage(model, [], null, { output_tokens: 1 }),
    }));
    write(sse('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'text', text: '' },
    }));
    write(sse('ping', { type: 'ping' }));

    for (const w of words) {
        await sleep(10);
        write(sse('content_block_delta', {
            type: 'content_block_delta',
            index: 0,
            delta: { type: 'text_delta', text: w },
        }));

        if (cut) {
            await sleep(100);
            res.socket.destroy();
            return out.join('');
        }
    }

    write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }));
    write(sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: words.length },
    }));
    write(sse('message_stop', { type: 'message_stop' }));
    res.end();

    return out.join('');
}

async function anthropicFake(name, req, res, url, raw, rec) {
    const countTokens = url.pathname.endsWith('/count_tokens');
    const body = JSON.parse(raw.toString('utf8'));

    checkAnthropicRequest(name, req, url, body, countTokens);

    if (name === 'down1') {
        return json(res, 503, {
            type: 'error',
            error: { type: 'overloaded_error', message: 'Overloaded' },
        });
    }

    if (countTokens) {
        return json(res, 200, { input_tokens: 42 });
    }

    if (body.stream === true) {
        rec.sent = await anthropicStream(res, body.model, A_WORDS,
                                         { cut: name === 'claudecut' });
        return undefined;
    }

    const tool = anthropicToolResult(body);
    if (tool) {
        return json(res, 200, anthropicMessage(body.model, [{
            type: 'text',
            text: `The weather in ${tool.use.input.city}: ${tool.result}.`,
        }], 'end_turn'));
    }

    if (Array.isArray(body.tools) && /weather/i.test(lastUserText(body))) {
        return json(res, 200, anthropicMessage(body.model, [
            { type: 'text', text: 'Let me look.' },
            {
                type: 'tool_use',
                id: 'toolu_fake_01',
                name: 'get_weather',
                input: { city: 'Paris' },
            },
        ], 'tool_use', { output_tokens: 20 }));
    }

    return json(res, 200,
                anthropicMessage(body.model, [{ type: 'text', text: A_TEXT }],
                                 'end_turn'));
}

async function openaiStream(res, body) {
    const usage = body.stream_options?.include_usage
        ? { usage: { prompt_tokens: 20, completion_tokens: 5,
                     total_tokens: 25 } }
        : {};

    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(chunk({ role: 'assistant', content: '' }));

    if (Array.isArray(body.tools) && /weather/i.test(lastUserText(body))) {
        res.write(chunk({
            tool_calls: [{
                index: 0,
                id: 'call_fake_s1',
                type: 'function',
                function: { name: 'get_weather', arguments: '' },
            }],
        }));
        for (const part of ['{"city":', '"Paris"}']) {
            await sleep(10);
            res.write(chunk({
                tool_calls: [{ index: 0, function: { arguments: part } }],
            }));
        }
        res.write(chunk({}, 'tool_calls'));

    } else {
        for (const w of O_WORDS) {
            await sleep(10);
            res.write(chunk({ content: w }));
        }
        res.write(chunk({}, 'stop'));
    }

    if (usage.usage) {
        res.write('data: ' + JSON.stringify({
            id: 'chatcmpl-fake-stream',
            object: 'chat.completion.chunk',
            created: 1700000000,
            model: 'gpt-fake',
            choices: [],
            ...usage,
        }) + '\n\n');
    }

    res.end('data: [DONE]\n\n');
}

function completion(message, finish) {
    return {
        id: 'chatcmpl-fake-01',
        object: 'chat.completion',
        created: 1700000000,
        model: 'gpt-fake',
        choices: [{ index: 0, message, finish_reason: finish }],
        usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 },
    };
}

async function openaiFake(name, req, res, url, raw) {
    const body = JSON.parse(raw.toString('utf8'));

    checkOpenAIRequest(name, req, url, body);

    if (name === 'down2') {
        return json(res, 503, {
            error: {
                message: 'fake provider overloaded',
                type: 'server_error',
                param: null,
                code: null,
            },
        });
    }

    check(body.model === 'gpt-fake', `model ${body.model}, not gpt-fake`);

    if (body.stream === true) {
        return openaiStream(res, body);
    }

    const last = body.messages.at(-1);

    if (last.role === 'tool') {
        const call = body.messages.slice(0, -1).reverse()
            .find((m) => m.role === 'assistant' && m.tool_calls);
        check(call && call.tool_calls[0].id === last.tool_call_id,
              `the tool message ${last.tool_call_id} answers no tool call`);
        const args = JSON.parse(call.tool_calls[0].function.arguments);

        return json(res, 200, completion({
            role: 'assistant',
            content: `The weather in ${args.city}: ${textOf(last.content)}.`,
        }, 'stop'));
    }

    if (Array.isArray(body.tools) && /weather/i.test(lastUserText(body))) {
        return json(res, 200, completion({
            role: 'assistant',
            content: null,
            tool_calls: [{
                id: 'call_fake_01',
                type: 'function',
                function: {
                    name: 'get_weather',
                    arguments: '{"city":"Paris"}',
                },
            }],
        }, 'tool_calls'));
    }

    return json(res, 200,
                completion({ role: 'assistant', content: O_TEXT }, 'stop'));
}

function json(res, status, obj) {
    const body = JSON.stringify(obj);
    res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
}

const ANTHROPIC_FAKES = ['claude', 'claudem', 'claudecut', 'down1'];
const OPENAI_FAKES = ['gpt', 'down2'];

function fakeServer() {
    return http.createServer((req, res) => {
        const parts = [];

        req.on('data', (d) => parts.push(d));
        req.on('end', async () => {
            const url = new URL(req.url, 'http://fake');
            const name = url.pathname.split('/')[1];
            const raw = Buffer.concat(parts);
            const rec = {
                name,
                method: req.method,
                path: url.pathname,
                query: url.search,
                headers: { ...req.headers },
                raw,
            };

            seen.push(rec);

            try {
                if (ANTHROPIC_FAKES.includes(name)) {
                    await anthropicFake(name, req, res, url, raw, rec);

                } else if (OPENAI_FAKES.includes(name)) {
                    await openaiFake(name, req, res, url, raw);

                } else {
                    throw new Problem(`no fake provider at ${url.pathname}`);
                }

            } catch (e) {
                const what = `fake ${name}: ${e.message}`;
                problems.push(what);

                if (!res.headersSent) {
                    json(res, 400, {
                        type: 'error',
                        error: {
                            type: 'invalid_request_error',
                            message: what,
                        },
                    });
                } else {
                    res.socket?.destroy();
                }
            }
        });
    });
}

// ------------------------------------------------------------ nginx

let prefix;
let fakes;
let nginx;
let nginxExit;
let gwPort;
let failed = false;

function freePort() {
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

function canConnect(port) {
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
    });
}

function errorLog() {
    try {
        return fs.readFileSync(path.join(prefix, 'logs', 'error.log'), 'utf8');
    } catch {
        return '';
    }
}

function config(fakePort) {
    return `
load_module ${moduleSo};
${process.getuid && process.getuid() === 0 ? 'user root;' : ''}
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;

events {
    worker_connections 128;
}

http {
    default_type application/json;

    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    access_log logs/access.log;

    llm_provider claude    uri=/_llm/claude    format=anthropic
                           api_key=${ANT_KEY};
    llm_provider claudem   uri=/_llm/claudem   format=anthropic
                           api_key=${ANT_KEY} model=${PROVIDER_MODEL};
    llm_provider claudecut uri=/_llm/claudecut format=anthropic
                           api_key=${ANT_KEY};
    llm_provider down1     uri=/_llm/down1     format=anthropic
                           api_key=${ANT_KEY};
    llm_provider gpt       uri=/_llm/gpt       model=gpt-fake
                           api_key=${OAI_KEY};
    llm_provider down2     uri=/_llm/down2     api_key=${OAI_KEY};

    server {
        listen 127.0.0.1:${gwPort};

        location = /a/v1/messages {
            llm_api messages;
            llm_fallback_chain claude;
        }
        location = /a/v1/messages/count_tokens {
            llm_api count_tokens;
            llm_fallback_chain claude;
        }
        location = /a/v1/models {
            llm_models;
        }
        location = /m/v1/messages {
            llm_api messages;
            llm_fallback_chain claudem;
        }
        location = /o/v1/messages {
            llm_api messages;
            llm_fallback_chain gpt;
        }
        location = /o/v1/messages/count_tokens {
            llm_api count_tokens;
            llm_fallback_chain gpt;
        }
        location = /fail/v1/messages {
            llm_api messages;
            llm_fallback_chain down1 down2;
        }
        location = /cut/v1/messages {
            llm_api messages;
            llm_fallback_chain claudecut gpt;
        }

        location ~ ^/_llm/(claude|claudem|claudecut|down1)(/count_tokens)?$ {
            internal;
            proxy_pass http://127.0.0.1:${fakePort}/$1/v1/messages$2;
            proxy_http_version 1.1;
            proxy_buffering off;
        }

        location ~ ^/_llm/(gpt|down2)$ {
            internal;
            proxy_pass http://127.0.0.1:${fakePort}/$1/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_buffering off;
        }
    }
}
`;
}

before(async () => {
    assert.ok(moduleSo, 'LLM_MODULE_SO must name the module .so');
    assert.ok(fs.existsSync(moduleSo), `${moduleSo} does not exist`);

    prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'llm-sdk-anthropic-'));
    for (const d of ['conf', 'logs', 'tmp']) {
        fs.mkdirSync(path.join(prefix, d));
    }

    gwPort = await freePort();

    fakes = fakeServer();
    await new Promise((resolve) => fakes.listen(0, '127.0.0.1', resolve));

    fs.writeFileSync(path.join(prefix, 'conf', 'nginx.conf'),
                     config(fakes.address().port));

    nginx = spawn(nginxBin, ['-p', prefix + '/', '-c', 'conf/nginx.conf',
                             '-g', 'daemon off;'],
                  { stdio: ['ignore', 'inherit', 'inherit'] });
    nginxExit = new Promise((resolve) => {
        nginx.once('exit', (code, signal) => resolve({ code, signal }));
    });

    const deadline = Date.now() + 30000;
    while (!(await canConnect(gwPort))) {
        if (nginx.exitCode !== null || nginx.signalCode !== null) {
            throw new Error(`nginx exited at start:\n${errorLog()}`);
        }
        if (Date.now() > deadline) {
            throw new Error(`nginx did not listen in 30 s:\n${errorLog()}`);
        }
        await sleep(50);
    }
});

after(async () => {
    if (fakes) {
        fakes.closeAllConnections();
        fakes.close();
    }

    if (nginx && nginx.exitCode === null && nginx.signalCode === null) {
        nginx.kill('SIGQUIT');
        const timer = setTimeout(() => nginx.kill('SIGKILL'), 10000);
        await nginxExit;
        clearTimeout(timer);
    }

    if (!prefix) {
        return;
    }

    const log = errorLog();
    if (/\[(alert|crit|emerg)\]/.test(log)) {
        failed = true;
        console.error(`nginx error.log has alerts:\n${log}`);
    }

    if (failed || process.env.LLM_KEEP_PREFIX) {
        console.error(`nginx prefix kept: ${prefix}`);

    } else {
        fs.rmSync(prefix, { recursive: true, force: true });
    }

    assert.ok(!/\[(alert|crit|emerg)\]/.test(log),
              'no [alert], [crit] or [emerg] in error.log');
});

// ------------------------------------------------------------ the client

// a client of the gateway's door under "base"; its fetch records what the
// SDK sent ({ url, method, headers, body }) in "sent", and with "received"
// the bytes of each response body the SDK read (a promise per response)
function client(base, { sent = [], received = null, ...opts } = {}) {
    return new Anthropic({
        baseURL: `http://127.0.0.1:${gwPort}/${base}`,
        apiKey: CLIENT_KEY,
        timeout: 20000,
        ...opts,
        fetch: async (url, init) => {
            sent.push({
                url: String(url),
                method: init.method,
                headers: new Headers(init.headers),
                body: init.body,
            });

            const res = await fetch(url, init);

            if (!received || !res.body) {
                return res;
            }

            const [mine, theirs] = res.body.tee();
            received.push(new Response(mine).arrayBuffer()
                          .then((b) => Buffer.from(b)));

            return new Response(theirs, {
                status: res.status,
                statusText: res.statusText,
                headers: res.headers,
            });
        },
    });
}

// mark the run failed so the prefix (logs) is kept; no test may leave a
// problem found by a fake behind
function tracked(name, fn) {
    test(name, async (t) => {
        const before = problems.length;
        try {
            await fn(t);
            assert.deepEqual(problems.slice(before), [],
                             'the fake providers found nothing wrong');
        } catch (e) {
            failed = true;
            throw e;
        }
    });
}

const hello = {
    model: 'claude-sonnet-4-5',
    max_tokens: 1024,
    messages: [{ role: 'user', content: 'Say hello.' }],
};

const weatherTool = {
    name: 'get_weather',
    description: 'The current weather in a city',
    input_schema: {
        type: 'object',
        properties: { city: { type: 'string' } },
        required: ['city'],
    },
};

// ------------------------------------------------------------ the tests

tracked('messages.create to an anthropic provider: its answer, its '
        + 'credential', async () => {
    const sent = [];
    const { data: msg, response } = await client('a', { sent }).messages
        .create(hello).withResponse();

    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-llm-provider'), 'claude');

    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'claude-sonnet-4-5');
    assert.deepEqual(msg.content, [{ type: 'text', text: A_TEXT }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.input_tokens, 12);
    assert.equal(msg.usage.output_tokens, 6);

    const got = lastSeen('claude');
    assert.equal(got.path, '/claude/v1/messages');
    assert.equal(got.headers['x-api-key'], ANT_KEY);
    assert.equal(got.headers['anthropic-version'],
                 sent[0].headers.get('anthropic-version'),
                 "the SDK's anthropic-version reached the provider");
    assert.deepEqual(JSON.parse(got.raw), hello);
});

tracked('messages.create to an openai provider: a Message with text, '
        + 'end_turn and usage', async () => {
    const { data: msg, response } = await client('o').messages
        .create({ ...hello, system: 'Be brief.' }).withResponse();

    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-llm-provider'), 'gpt');
    assert.match(response.headers.get('content-type'), /^application\/json/);

    assert.match(msg.id, /^msg_/);
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'gpt-fake');
    assert.deepEqual(msg.content, [{ type: 'text', text: O_TEXT }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.stop_sequence, null);
    assert.equal(msg.usage.input_tokens, 20);
    assert.equal(msg.usage.output_tokens, 5);

    const body = JSON.parse(lastSeen('gpt').raw);
    assert.deepEqual(body.messages, [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Say hello.' },
    ]);
    assert.equal(lastSeen('gpt').headers['anthropic-version'], undefined);
});

tracked('messages.stream from an anthropic provider: the events as they '
        + 'came, text helpers, finalMessage', async () => {
    const received = [];
    const stream = client('a', { received }).messages.stream(hello);

    const texts = [];
    const types = [];
    stream.on('text', (delta) => texts.push(delta));
    stream.on('streamEvent', (ev) => types.push(ev.type));

    const msg = await stream.finalMessage();

    assert.deepEqual(texts, A_WORDS, 'one text event per provider delta');
    assert.equal(msg.model, 'claude-sonnet-4-5');
    assert.deepEqual(msg.content, [{ type: 'text', text: A_WORDS.join('') }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.output_tokens, A_WORDS.length);
    assert.deepEqual(types, [
        'message_start', 'content_block_start',
        ...A_WORDS.map(() => 'content_block_delta'),
        'content_block_stop', 'message_delta', 'message_stop',
    ]);

    const got = lastSeen('claude');
    assert.equal(JSON.parse(got.raw).stream, true);

    assert.equal(received.length, 1);
    assert.equal((await received[0]).toString('utf8'), got.sent,
                 'the SDK read the bytes the provider wrote');
});

tracked('messages.stream from an openai provider: Anthropic events, text '
        + 'helpers, finalMessage', async () => {
    const stream = client('o').messages.stream(hello);

    const texts = [];
    const types = [];
    stream.on('text', (delta) => texts.push(delta));
    stream.on('streamEvent', (ev) => types.push(ev.type));

    const msg = await stream.finalMessage();
    const response = (await stream.withResponse()).response;

    assert.equal(response.headers.get('x-llm-provider'), 'gpt');
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);

    assert.deepEqual(texts, O_WORDS, 'one text event per provider chunk');
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.role, 'assistant');
    assert.deepEqual(msg.content, [{ type: 'text', text: O_WORDS.join('') }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.includes('message_delta'));

    const body = JSON.parse(lastSeen('gpt').raw);
    assert.equal(body.stream, true);
    if (body.stream_options?.include_usage) {
        assert.equal(msg.usage.output_tokens, 5);
    }
});

tracked('a stream cut after its first delta ends in an APIError after the '
        + 'text', async () => {
    const gpt = seenBy('gpt').length;
    const stream = client('cut').messages.stream(hello);

    const texts = [];
    stream.on('text', (delta) => texts.push(delta));

    const err = await stream.finalMessage().then(() => null, (e) => e);

    assert.deepEqual(texts, [A_WORDS[0]], 'the text before the failure');
    assert.ok(err instanceof Anthropic.APIError, `got ${err}`);
    assert.equal(err.type, 'api_error');
    assert.equal(seenBy('gpt').length - gpt, 0,
                 'no fallback once the stream started');
});

// the tool round trip: a tool_use answer, the tool_result sent back
async function toolRoundTrip(base) {
    const c = client(base);
    const first = {
        ...hello,
        tools: [weatherTool],
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    };

    const msg1 = await c.messages.create(first);

    assert.equal(msg1.stop_reason, 'tool_use');
    const use = msg1.content.find((b) => b.type === 'tool_use');
    assert.ok(use, `a tool_use block in ${JSON.stringify(msg1.content)}`);
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { city: 'Paris' });

    const msg2 = await c.messages.create({
        ...first,
        messages: [
            ...first.messages,
            { role: 'assistant', content: msg1.content },
            {
                role: 'user',
                content: [{
                    type: 'tool_result',
                    tool_use_id: use.id,
                    content: WEATHER,
                }],
            },
        ],
    });

    assert.equal(msg2.stop_reason, 'end_turn');
    assert.deepEqual(msg2.content,
                     [{ type: 'text',
                        text: `The weather in Paris: ${WEATHER}.` }],
                     'the provider got the tool_result');

    return use;
}

tracked('tool use round trip, anthropic provider', async () => {
    const use = await toolRoundTrip('a');

    assert.equal(use.id, 'toolu_fake_01');

    const reqs = seenBy('claude').slice(-2).map((r) => JSON.parse(r.raw));
    assert.deepEqual(reqs[0].tools, [weatherTool]);
    assert.deepEqual(reqs[1].messages.at(-1).content, [{
        type: 'tool_result',
        tool_use_id: 'toolu_fake_01',
        content: WEATHER,
    }]);
});

tracked('tool use round trip, openai provider: tool_calls and a "tool" '
        + 'message', async () => {
    const use = await toolRoundTrip('o');

    assert.equal(use.id, 'call_fake_01');

    const reqs = seenBy('gpt').slice(-2).map((r) => JSON.parse(r.raw));

    assert.deepEqual(reqs[0].tools, [{
        type: 'function',
        function: {
            name: 'get_weather',
            description: weatherTool.description,
            parameters: weatherTool.input_schema,
        },
    }]);

    const assistant = reqs[1].messages.find((m) => m.role === 'assistant');
    assert.ok(assistant, 'an assistant message in the second request');
    assert.equal(assistant.tool_calls.length, 1);
    assert.equal(assistant.tool_calls[0].id, 'call_fake_01');
    assert.equal(assistant.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(assistant.tool_calls[0].function.arguments),
                     { city: 'Paris' });

    const tool = reqs[1].messages.at(-1);
    assert.equal(tool.role, 'tool');
    assert.equal(tool.tool_call_id, 'call_fake_01');
    assert.equal(textOf(tool.content), WEATHER);
});

tracked('a streamed openai tool call: finalMessage has the tool_use with '
        + 'its input', async () => {
    const stream = client('o').messages.stream({
        ...hello,
        tools: [weatherTool],
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    });

    const json = [];
    stream.on('inputJson', (partial) => json.push(partial));

    const msg = await stream.finalMessage();

    assert.equal(msg.stop_reason, 'tool_use');
    assert.deepEqual(msg.content, [{
        type: 'tool_use',
        id: 'call_fake_s1',
        name: 'get_weather',
        input: { city: 'Paris' },
    }]);
    assert.equal(json.join(''), '{"city":"Paris"}');
});

tracked('every provider failing: a 502 APIError, not retried by the SDK',
        async () => {
    const sent = [];
    const c = client('fail', { sent });
    const down1 = seenBy('down1').length;
    const down2 = seenBy('down2').length;

    assert.equal(c.maxRetries, 2, "the SDK's default: 2 retries");

    const err = await c.messages.create(hello).then(() => null, (e) => e);

    assert.ok(err instanceof Anthropic.APIError, `got ${err}`);
    assert.ok(err instanceof Anthropic.InternalServerError, `got ${err}`);
    assert.equal(err.status, 502);
    assert.equal(err.type, 'api_error');
    assert.equal(err.error?.type, 'error');
    assert.equal(err.headers.get('x-should-retry'), 'false');

    assert.equal(sent.length, 1, 'the SDK sent the request once');
    assert.equal(seenBy('down1').length - down1, 1, 'one attempt at down1');
    assert.equal(seenBy('down2').length - down2, 1, 'one attempt at down2');
});

tracked('messages.countTokens: input_tokens from the anthropic provider',
        async () => {
    const sent = [];
    const params = {
        model: 'claude-sonnet-4-5',
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'Count me.' }],
    };

    const res = await client('a', { sent }).messages.countTokens(params);

    assert.deepEqual(res, { input_tokens: 42 });

    const got = lastSeen('claude');
    assert.equal(got.path, '/claude/v1/messages/count_tokens');
    assert.equal(got.headers['x-api-key'], ANT_KEY);
    assert.equal(got.raw.toString('utf8'), sent[0].body,
                 'the count_tokens body went as the SDK sent it');
});

tracked('messages.countTokens without an anthropic provider: NotFoundError',
        async () => {
    const gpt = seenBy('gpt').length;
    const err = await client('o').messages.countTokens({
        model: 'claude-sonnet-4-5',
        messages: [{ role: 'user', content: 'Count me.' }],
    }).then(() => null, (e) => e);

    assert.ok(err instanceof Anthropic.NotFoundError, `got ${err}`);
    assert.equal(err.status, 404);
    assert.equal(err.type, 'not_found_error');
    assert.equal(seenBy('gpt').length - gpt, 0, 'no provider was called');
});

// what Claude Code sends: system text blocks and tools with cache_control,
// betas, metadata.user_id, thinking, a stream
const claudeCodeParams = {
    model: 'claude-sonnet-4-5',
    max_tokens: 32000,
    system: [
        {
            type: 'text',
            text: "You are Claude Code, Anthropic's official CLI for Claude.",
            cache_control: { type: 'ephemeral' },
        },
        {
            type: 'text',
            text: 'Working directory: /home/é/項目 "quoted"\n\tand \u2028 ✓ 🚀',
            cache_control: { type: 'ephemeral', ttl: '1h' },
        },
    ],
    messages: [
        {
            role: 'user',
            content: [
                {
                    type: 'text',
                    text: '<system-reminder>\nAs you answer, use the tools.'
                        + '\n</system-reminder>',
                },
                {
                    type: 'text',
                    text: 'List the files here.',
                    cache_control: { type: 'ephemeral' },
                },
            ],
        },
    ],
    tools: [
        {
            name: 'Bash',
            description: 'Executes a bash command.',
            input_schema: {
                type: 'object',
                properties: {
                    command: { type: 'string', description: 'The command' },
                    timeout: { type: 'number' },
                },
                required: ['command'],
                additionalProperties: false,
                $schema: 'http://json-schema.org/draft-07/schema#',
            },
        },
        {
            name: 'Read',
            description: 'Reads a file.',
            input_schema: {
                type: 'object',
                properties: { file_path: { type: 'string' } },
                required: ['file_path'],
            },
            cache_control: { type: 'ephemeral' },
        },
    ],
    metadata: {
        user_id: 'user_0123abcd_account_4567_session_89ef-0000-1111',
    },
    thinking: { type: 'enabled', budget_tokens: 31999 },
    temperature: 1,
    stream: true,
};

const BETAS = ['claude-code-20250219', 'interleaved-thinking-2025-05-14',
               'fine-grained-tool-streaming-2025-05-14'];

async function claudeCode(base, fake) {
    const sent = [];
    const received = [];
    const c = client(base, { sent, received });

    const stream = await c.beta.messages.create({
        ...claudeCodeParams,
        betas: BETAS,
    });

    let text = '';
    for await (const ev of stream) {
        if (ev.type === 'content_block_delta'
            && ev.delta.type === 'text_delta')
        {
            text += ev.delta.text;
        }
    }

    assert.equal(text, A_WORDS.join(''));
    assert.equal(sent.length, 1);
    assert.equal(typeof sent[0].body, 'string', 'the SDK sent a string');
    assert.equal(sent[0].headers.get('anthropic-beta'), BETAS.join(','));
    assert.equal(sent[0].body, JSON.stringify(claudeCodeParams),
                 'the SDK sends JSON.stringify(params) without betas');

    const got = lastSeen(fake);
    assert.equal(got.headers['anthropic-beta'], BETAS.join(','),
                 'the provider got anthropic-beta');
    assert.equal(got.headers['anthropic-version'],
                 sent[0].headers.get('anthropic-version'));
    assert.equal(got.headers['x-api-key'], ANT_KEY);

    assert.equal((await received[0]).toString('utf8'), got.sent,
                 'the events came back as the provider wrote them');

    return { sent: Buffer.from(sent[0].body, 'utf8'), got: got.raw };
}

tracked('a Claude Code request passes through byte for byte', async () => {
    const { sent, got } = await claudeCode('a', 'claude');

    assert.ok(got.equals(sent),
              `the provider got the bytes the SDK sent:\n${sent}\n${got}`);
});

tracked('a Claude Code request to a provider with model=: only the model '
        + 'differs', async () => {
    const { sent, got } = await claudeCode('m', 'claudem');

    const want = Buffer.from(JSON.stringify({
        ...JSON.parse(sent.toString('utf8')),
        model: PROVIDER_MODEL,
    }), 'utf8');

    assert.ok(got.equals(want),
              `the provider got the SDK's bytes but for model:\n${want}\n`
              + `${got}`);
});

tracked('models.list: the providers\' models in the Anthropic shape',
        async () => {
    const ids = [];
    for await (const m of client('a').models.list()) {
        assert.equal(m.type, 'model');
        assert.equal(typeof m.display_name, 'string');
        assert.ok(!Number.isNaN(Date.parse(m.created_at)));
        ids.push(m.id);
    }

    assert.deepEqual(ids, [PROVIDER_MODEL, 'gpt-fake']);
});
