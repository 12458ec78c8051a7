// The official openai npm client against nginx with the module.
//
// Starts its own nginx (temporary prefix, free ports, the module loaded with
// load_module) with fake providers served by the same nginx: "bad" and
// "bad2" answer 503, "good" answers a chat.completion. Run by make test:
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

import OpenAI from 'openai';

const nginxBin = process.env.LLM_NGINX_BINARY || '/usr/sbin/nginx';
const moduleSo = process.env.LLM_MODULE_SO
    || new URL('../../build/ngx_http_llm_fallback_module.so',
               import.meta.url).pathname;

const GOOD_CONTENT = 'Hello from the good fake provider.';

const goodBody = JSON.stringify({
    id: 'chatcmpl-fake-good',
    object: 'chat.completion',
    created: 1700000000,
    model: 'fake-good-model',
    choices: [{
        index: 0,
        message: { role: 'assistant', content: GOOD_CONTENT },
        finish_reason: 'stop',
    }],
    usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 },
});

const badBody = JSON.stringify({
    error: {
        message: 'fake provider overloaded',
        type: 'server_error',
        param: null,
        code: null,
    },
});

const STREAM_WORDS = ['Hello', ' world', ' from', ' the', ' stream'];

function sseChunk(delta, finish = null) {
    return 'data: ' + JSON.stringify({
        id: 'chatcmpl-fake-stream',
        object: 'chat.completion.chunk',
        created: 1700000000,
        model: 'fake-stream-model',
        choices: [{ index: 0, delta, finish_reason: finish }],
    }) + '\n\n';
}

// streaming fake providers, in node: events written one by one, with
// pauses, and a stream cut after its first content
function streamServer() {
    return http.createServer((req, res) => {
        req.resume();
        req.on('end', async () => {
            res.writeHead(200, { 'Content-Type': 'text/event-stream' });
            res.write(sseChunk({ role: 'assistant', content: '' }));

            if (req.url === '/scut') {
                res.write(sseChunk({ content: 'partial' }));
                await sleep(100);
                res.socket.destroy();
                return;
            }

            for (const w of STREAM_WORDS) {
                await sleep(20);
                res.write(sseChunk({ content: w }));
            }

            res.write(sseChunk({}, 'stop'));
            res.end('data: [DONE]\n\n');
        });
    });
}

let prefix;
let streams;
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readLog(name) {
    try {
        return fs.readFileSync(path.join(prefix, 'logs', name), 'utf8');
    } catch {
        return '';
    }
}

function errorLog() {
    return readLog('error.log');
}

// requests the fake providers got, by location ("/bad", "/good", ...)
function fakeHits(location) {
    return readLog('fake.log').split('\n')
        .filter((l) => l.split(' ')[0] === location).length;
}

// requests the gateway got for a URI
function gatewayHits(uri) {
    return readLog('gateway.log').split('\n')
        .filter((l) => l.split(' ')[0] === uri).length;
}

function config(fakePort, streamPort) {
    // nginx's own "return" bodies: single quotes, no "$" in the JSON
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

    log_format uri_status '$uri $status';

    llm_provider bad  uri=/_llm/bad  model=m-bad  api_key=sk-bad;
    llm_provider bad2 uri=/_llm/bad2 model=m-bad2 api_key=sk-bad2;
    llm_provider good uri=/_llm/good model=m-good api_key=sk-good;
    llm_provider sgood uri=/_llm/sgood api_key=sk-sgood;
    llm_provider scut uri=/_llm/scut api_key=sk-scut;

    server {
        listen 127.0.0.1:${fakePort};
        access_log logs/fake.log uri_status;

        location = /bad {
            return 503 '${badBody}';
        }
        location = /bad2 {
            return 503 '${badBody}';
        }
        location = /good {
            return 200 '${goodBody}';
        }
    }

    server {
        listen 127.0.0.1:${gwPort};
        access_log logs/gateway.log uri_status;

        location = /v1/chat/completions {
            llm_fallback_chain bad good;
        }
        location = /fail/v1/chat/completions {
            llm_fallback_chain bad bad2;
        }
        location = /stream/v1/chat/completions {
            llm_fallback_chain bad sgood;
        }
        location = /cut/v1/chat/completions {
            llm_fallback_chain scut good;
        }

        location ~ ^/_llm/(sgood|scut)$ {
            internal;
            proxy_pass http://127.0.0.1:${streamPort}/$1;
            proxy_http_version 1.1;
            proxy_buffering off;
        }

        location = /_llm/bad {
            internal;
            proxy_pass http://127.0.0.1:${fakePort}/bad;
        }
        location = /_llm/bad2 {
            internal;
            proxy_pass http://127.0.0.1:${fakePort}/bad2;
        }
        location = /_llm/good {
            internal;
            proxy_pass http://127.0.0.1:${fakePort}/good;
        }
    }
}
`;
}

before(async () => {
    assert.ok(moduleSo, 'LLM_MODULE_SO must name the module .so');
    assert.ok(fs.existsSync(moduleSo), `${moduleSo} does not exist`);

    prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'llm-sdk-'));
    for (const d of ['conf', 'logs', 'tmp']) {
        fs.mkdirSync(path.join(prefix, d));
    }

    gwPort = await freePort();
    const fakePort = await freePort();

    streams = streamServer();
    await new Promise((resolve) => streams.listen(0, '127.0.0.1', resolve));

    fs.writeFileSync(path.join(prefix, 'conf', 'nginx.conf'),
                     config(fakePort, streams.address().port));

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
    if (streams) {
        streams.closeAllConnections();
        streams.close();
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

function client(base = '') {
    return new OpenAI({
        baseURL: `http://127.0.0.1:${gwPort}${base}/v1`,
        apiKey: 'sk-client-key-never-forwarded',
        timeout: 20000,
    });
}

const messages = [
    { role: 'system', content: 'You are a test.' },
    { role: 'user', content: 'Say hello.' },
];

// mark the run failed so the prefix (logs) is kept
function tracked(name, fn) {
    test(name, async (t) => {
        try {
            await fn(t);
        } catch (e) {
            failed = true;
            throw e;
        }
    });
}

tracked('chat.completions.create falls back to the healthy provider',
        async () => {
    const { data, response } = await client().chat.completions
        .create({ model: 'gpt-4o-mini', messages })
        .withResponse();

    assert.equal(response.status, 200);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.equal(data.choices[0].message.content, GOOD_CONTENT);
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.equal(data.usage.prompt_tokens, 9);
    assert.equal(data.usage.completion_tokens, 7);

    assert.equal(response.headers.get('x-llm-provider'), 'good');
    assert.equal(response.headers.get('x-llm-attempts'), '2');
    assert.equal(response.headers.get('x-llm-fallback'), 'bad:http_503');
    assert.match(response.headers.get('content-type'), /^application\/json/);
});

tracked('stream: true yields content chunks and ends', async () => {
    const stream = await client().chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
    });

    let content = '';
    let chunks = 0;
    let finish = null;

    for await (const chunk of stream) {
        chunks++;
        assert.equal(chunk.object, 'chat.completion.chunk');
        for (const choice of chunk.choices) {
            content += choice.delta?.content ?? '';
            finish = choice.finish_reason ?? finish;
        }
    }

    assert.ok(chunks >= 1, `got ${chunks} chunks`);
    assert.equal(content, GOOD_CONTENT);
    assert.equal(finish, 'stop');
});

tracked('every provider failing: 502 APIError, not retried by the SDK',
        async () => {
    const bad = fakeHits('/bad');
    const bad2 = fakeHits('/bad2');
    const gw = gatewayHits('/fail/v1/chat/completions');

    const err = await client('/fail').chat.completions
        .create({ model: 'gpt-4o-mini', messages })
        .then(() => null, (e) => e);

    assert.ok(err instanceof OpenAI.APIError, `got ${err}`);
    assert.equal(err.status, 502);
    assert.ok(err instanceof OpenAI.InternalServerError);
    assert.equal(err.headers.get('x-should-retry'), 'false');
    assert.equal(err.type, 'llm_providers_exhausted');

    // access log lines are written when each request ends
    await sleep(200);

    assert.equal(gatewayHits('/fail/v1/chat/completions') - gw, 1,
                 'the SDK sent the request once (no retries)');
    assert.equal(fakeHits('/bad') - bad, 1, 'one attempt at "bad"');
    assert.equal(fakeHits('/bad2') - bad2, 1, 'one attempt at "bad2"');
});

tracked('a request the gateway rejects is a BadRequestError', async () => {
    const good = fakeHits('/good');

    const err = await client().chat.completions
        .create({ model: 'gpt-4o-mini', messages: [] })
        .then(() => null, (e) => e);

    assert.ok(err instanceof OpenAI.BadRequestError, `got ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.param, 'messages');
    assert.ok(err.message.length > 0);

    await sleep(100);
    assert.equal(fakeHits('/good') - good, 0, 'no provider was called');
});

tracked('a stream that fell back from a failing provider arrives chunk by '
        + 'chunk', async () => {
    const { data: stream, response } = await client('/stream').chat
        .completions.create({ model: 'gpt-4o-mini', messages, stream: true })
        .withResponse();

    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'),
                 /^text\/event-stream/);
    assert.equal(response.headers.get('x-llm-provider'), 'sgood');
    assert.equal(response.headers.get('x-llm-fallback'), 'bad:http_503');

    const deltas = [];
    let finish = null;

    for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        for (const choice of chunk.choices) {
            if (choice.delta?.content) {
                deltas.push(choice.delta.content);
            }
            finish = choice.finish_reason ?? finish;
        }
    }

    assert.deepEqual(deltas, STREAM_WORDS, 'one chunk per provider event');
    assert.equal(finish, 'stop');
});

tracked('a stream cut after its first content ends in an APIError after '
        + 'the chunks', async () => {
    const stream = await client('/cut').chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
    });

    let content = '';

    const err = await (async () => {
        for await (const chunk of stream) {
            for (const choice of chunk.choices) {
                content += choice.delta?.content ?? '';
            }
        }
    })().then(() => null, (e) => e);

    assert.equal(content, 'partial', 'the chunks before the failure');
    assert.ok(err instanceof OpenAI.APIError, `got ${err}`);
    assert.match(err.message, /stream failed after it started/);
});
