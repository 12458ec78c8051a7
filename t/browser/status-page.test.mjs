// The llm_status html page in headless Chromium (Debian's chromium, driven
// with playwright-core over the DevTools protocol).
//
// Starts its own nginx (temporary prefix, free ports, two workers, the
// module loaded with load_module) in front of fake providers served by
// node: "flaky" answers or fails with 503 as the test says, "steady" always
// answers (after 120 ms), "local" has no breaker. Requests go through
// nginx while the page is open; after each step the test waits for the
// page's own refresh and compares what the page shows with the JSON the
// same location serves: the breaker opening after two failures and closing
// after a successful trial. The page must load nothing but itself and its
// location's ?format=json, break no Content-Security-Policy rule and never
// reload. Screenshots are written to build/status-page-open.png (the
// breaker open) and build/status-page.png (closed again).
//
//   [LLM_MODULE_SO=/abs/path/ngx_http_llm_fallback_module.so] \
//   [LLM_NGINX_BINARY=/usr/sbin/nginx] [LLM_CHROMIUM=/usr/bin/chromium] \
//   [LLM_SCREENSHOT=/abs/path/status-page.png] node --test t/browser/
//
// LLM_KEEP_PREFIX=1 keeps the temporary nginx prefix (conf, logs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

const top = new URL('../../', import.meta.url).pathname;
const nginxBin = process.env.LLM_NGINX_BINARY || '/usr/sbin/nginx';
const moduleSo = process.env.LLM_MODULE_SO
    || path.join(top, 'build/ngx_http_llm_fallback_module.so');
const chromiumBin = process.env.LLM_CHROMIUM || '/usr/bin/chromium';
const screenshot = process.env.LLM_SCREENSHOT
    || path.join(top, 'build/status-page.png');

// the breaker: two failures open it for COOLDOWN_MS
const COOLDOWN_MS = 5000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let prefix;
let fake;
let nginx;
let nginxExit;
let gwPort;
let browser;
let page;
let failed = false;
let flakyUp = true;

const seen = { requests: [], console: [], errors: [], navigations: 0 };

function completion(model, content, prompt, completionTokens) {
    return JSON.stringify({
        id: 'chatcmpl-browser',
        object: 'chat.completion',
        created: 1700000000,
        model,
        choices: [{
            index: 0,
            message: { role: 'assistant', content },
            finish_reason: 'stop',
        }],
        usage: {
            prompt_tokens: prompt,
            completion_tokens: completionTokens,
            total_tokens: prompt + completionTokens,
        },
    });
}

function fakeServer() {
    return http.createServer((req, res) => {
        req.resume();
        req.on('end', async () => {
            const json = { 'Content-Type': 'application/json' };

            if (req.url === '/flaky' && !flakyUp) {
                res.writeHead(503, json);
                res.end(JSON.stringify({ error: {
                    message: 'overloaded', type: 'server_error',
                    param: null, code: null } }));
                return;
            }

            if (req.url === '/flaky') {
                await sleep(30);
                res.writeHead(200, json);
                res.end(completion('flaky-1-0613', 'from flaky', 11, 13));
                return;
            }

            if (req.url === '/steady') {
                await sleep(120);
                res.writeHead(200, json);
                res.end(completion('steady-model', 'from steady', 5, 7));
                return;
            }

            if (req.url === '/local') {
                res.writeHead(200, json);
                res.end(completion('local-model', 'from local', 3, 4));
                return;
            }

            res.writeHead(404, json);
            res.end('{}');
        });
    });
}

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
        return fs.readFileSync(path.join(prefix, 'logs', 'error.log'),
                               'utf8');
    } catch {
        return '';
    }
}

function config(fakePort) {
    return `
load_module ${moduleSo};
${process.getuid && process.getuid() === 0 ? 'user root;' : ''}
worker_processes 2;
error_log logs/error.log info;
pid logs/nginx.pid;

events {
    worker_connections 128;
}

http {
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    llm_circuit_breaker zone=llm_browser:1m failures=2 window=60s
                        cooldown=${COOLDOWN_MS}ms max_cooldown=1m;

    llm_provider flaky uri=/_llm/flaky model=flaky-1;
    llm_provider steady uri=/_llm/steady;
    llm_provider local uri=/_llm/local breaker=off;

    server {
        listen 127.0.0.1:${gwPort};

        location /chat { llm_fallback_chain flaky steady; }
        location /local { llm_fallback_chain local; }

        location = /llm/status {
            llm_status html;
            allow 127.0.0.1;
            deny all;
        }

        location /_llm/ {
            internal;
            proxy_pass http://127.0.0.1:${fakePort}/;
        }
    }
}
`;
}

// one request to nginx: { status, headers, body }
function request(method, uri, body) {
    return new Promise((resolve, reject) => {
        const req = http.request({
            host: '127.0.0.1', port: gwPort, method, path: uri,
            headers: body ? { 'Content-Type': 'application/json' } : {},
        }, (res) => {
            let data = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { data += c; });
            res.on('end', () => resolve({ status: res.statusCode,
                                          headers: res.headers,
                                          body: data }));
        });
        req.on('error', reject);
        req.setTimeout(20000, () => req.destroy(new Error('timeout')));
        req.end(body);
    });
}

const chatBody = JSON.stringify({
    model: 'client-model',
    messages: [{ role: 'user', content: 'hi' }],
});

async function chat(uri = '/chat') {
    const res = await request('POST', uri, chatBody);
    assert.equal(res.status, 200, `${uri}: ${res.body}`);
    return res;
}

async function statusJson() {
    const res = await request('GET', '/llm/status?format=json');
    assert.equal(res.status, 200);
    return JSON.parse(res.body);
}

// waits for the page to render JSON fetched after now: two refreshes,
// since one may have been in flight already
async function pageRefresh() {
    const seq = await page.evaluate(
        () => Number(document.getElementById('updated').dataset.seq));
    await page.waitForFunction(
        (s) => Number(document.getElementById('updated').dataset.seq) >= s,
        seq + 2, { timeout: 20000, polling: 50 });
}

// what the page shows, read from the DOM
function readPage() {
    return page.evaluate(() => {
        const text = (e) => (e ? e.textContent : null);
        const dd = (card, k) => text(document.querySelector(
            `#${card} dd[data-k="${k}"]`));
        const rows = {};

        for (const tr of document.querySelectorAll('#providers tbody tr')) {
            const c = (k) => tr.querySelector(`td[data-k="${k}"]`);
            const badge = c('state').querySelector('.state');
            const bars = [...c('latency').querySelectorAll('.bar')];

            rows[tr.dataset.provider] = {
                name: text(c('name')),
                state: c('state').dataset.state,
                label: text(badge),
                colour: getComputedStyle(badge).backgroundColor,
                retry: text(c('retry_in')),
                consecutive: text(c('consecutive_failures')),
                opened: text(c('opened')),
                attempts: text(c('attempts')),
                rate: text(c('success_rate')),
                failures: [...c('failures').querySelectorAll('li')]
                    .map((li) => li.textContent),
                tokens: text(c('tokens')),
                bars: bars.map((b) => Number(b.dataset.n)),
                tall: bars.map((b) => b.getBoundingClientRect().height > 0),
                mean: text(c('latency').querySelector('.mean')),
                cost: text(c('cost')),
                probe: text(c('probe')),
            };
        }

        return {
            zone: text(document.getElementById('zone')),
            updated: document.getElementById('updated').className,
            columns: [...document.querySelectorAll('#providers thead th')]
                .map((th) => th.textContent),
            rows,
            requests: ['total', '2xx', '4xx', '5xx']
                .map((k) => dd('requests', k)),
            cache: ['hit_ratio', 'hit', 'miss', 'stale', 'bypass', 'error']
                .map((k) => dd('cache', k)),
            breaker: dd('breaker', 'failures'),
            limits: document.getElementById('limits').hidden
                ? null : text(document.getElementById('limits')),
        };
    });
}

const COLOURS = {
    closed: 'rgb(26, 127, 55)',
    open: 'rgb(207, 34, 46)',
    half_open: 'rgb(191, 135, 0)',
    disabled: 'rgb(110, 119, 129)',
};

function rate(p) {
    return p.attempts ? (100 * p.successes / p.attempts).toFixed(1) + '%'
                      : '\u2014';
}

// the page against the JSON, provider by provider
function compare(shown, d) {
    assert.equal(shown.zone, `zone ${d.zone}`);
    assert.equal(shown.updated, '', 'the last refresh did not fail');
    assert.deepEqual(Object.keys(shown.rows), Object.keys(d.providers));

    for (const [name, p] of Object.entries(d.providers)) {
        const r = shown.rows[name];
        const what = (f) => `${name}: ${f}`;

        assert.equal(r.name, name);
        assert.equal(r.state, p.state, what('state'));
        assert.equal(r.label, p.state.replace('_', '-'), what('label'));
        assert.equal(r.colour, COLOURS[p.state], what('colour'));
        assert.equal(r.consecutive, String(p.consecutive_failures),
                     what('consecutive failures'));
        assert.equal(r.opened, String(p.opened), what('opened'));
        assert.equal(r.attempts, String(p.attempts), what('attempts'));
        assert.equal(r.rate, rate(p), what('success rate'));
        assert.equal(r.tokens,
                     `${p.tokens.prompt} / ${p.tokens.completion}`,
                     what('tokens'));
        assert.deepEqual(r.bars, p.attempt_duration_ms.buckets,
                         what('latency buckets'));
        assert.deepEqual(r.tall, p.attempt_duration_ms.buckets
                             .map((n) => n > 0), what('bar heights'));
        assert.equal(r.mean, p.attempt_duration_ms.count
            ? `mean ${Math.round(p.attempt_duration_ms.sum
                                  / p.attempt_duration_ms.count)} ms`
            : 'no attempts', what('mean'));

        const reasons = Object.entries(p.failures)
            .filter(([, n]) => n > 0)
            .map(([k, n]) => `${k === 'open' ? 'skipped' : k} ${n}`);
        assert.deepEqual(r.failures, reasons.length ? reasons : ['none'],
                         what('failures by reason'));

        if (p.state === 'open') {
            // the JSON was fetched after the page's: a second or two less
            const m = /^(\d+) s$/.exec(r.retry);
            assert.ok(m, what(`retry "${r.retry}"`));
            assert.ok(Number(m[1]) >= p.retry_in
                      && Number(m[1]) <= p.retry_in + 2,
                      what(`retry ${r.retry} against ${p.retry_in}`));

        } else {
            assert.equal(r.retry, '\u2014', what('retry'));
        }
    }

    const q = d.requests;
    assert.deepEqual(shown.requests,
                     [q.total, q['2xx'], q['4xx'], q['5xx']].map(String));

    const c = d.cache;
    const lookups = c.hit + c.miss + c.stale + c.error;
    assert.deepEqual(shown.cache, [
        lookups ? (100 * c.hit / lookups).toFixed(1) + '%' : '\u2014',
        ...[c.hit, c.miss, c.stale, c.bypass, c.error].map(String)]);
    assert.equal(shown.breaker, `${d.breaker.failures} in `
                                + `${d.breaker.window_ms / 1000} s`);
}

before(async () => {
    assert.ok(fs.existsSync(moduleSo), `${moduleSo} does not exist`);
    assert.ok(fs.existsSync(chromiumBin), `${chromiumBin} does not exist`);

    prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'llm-browser-'));
    for (const d of ['conf', 'logs', 'tmp']) {
        fs.mkdirSync(path.join(prefix, d));
    }

    fake = fakeServer();
    await new Promise((resolve) => fake.listen(0, '127.0.0.1', resolve));

    gwPort = await freePort();
    fs.writeFileSync(path.join(prefix, 'conf', 'nginx.conf'),
                     config(fake.address().port));

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

    browser = await chromium.launch({
        executablePath: chromiumBin,
        headless: true,
        timeout: 60000,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
    });
});

after(async () => {
    if (browser) {
        await browser.close();
    }

    if (fake) {
        fake.closeAllConnections();
        fake.close();
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

tracked('the page renders every provider from the JSON', async () => {
    page = await browser.newPage({ viewport: { width: 1360, height: 640 } });

    page.on('request', (r) => seen.requests.push(r.url()));
    page.on('console', (m) => seen.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => seen.errors.push(String(e)));
    page.on('framenavigated', (f) => {
        if (f === page.mainFrame()) {
            seen.navigations++;
        }
    });

    const res = await page.goto(
        `http://127.0.0.1:${gwPort}/llm/status?refresh=1`);
    assert.equal(res.status(), 200);
    assert.equal(res.headers()['content-type'], 'text/html; charset=utf-8');
    assert.equal(res.headers()['cache-control'], 'no-store');
    assert.match(res.headers()['content-security-policy'],
                 /^default-src 'none'; script-src 'sha256-/);

    await pageRefresh();

    // a mark that a reload would lose
    await page.evaluate(() => { window.llmTestMark = 'kept'; });

    const shown = await readPage();
    compare(shown, await statusJson());

    assert.deepEqual(Object.keys(shown.rows), ['flaky', 'steady', 'local']);
    assert.equal(shown.rows.local.state, 'disabled');
    assert.ok(!shown.columns.includes('Cost'), 'no cost column');
    assert.ok(!shown.columns.includes('Probe'), 'no probe column');
    assert.equal(shown.limits, null, 'no limits section');
});

tracked('answers are counted: attempts, tokens, latency', async () => {
    await chat();
    await chat();
    await chat('/local');

    await pageRefresh();
    const shown = await readPage();
    const d = await statusJson();
    compare(shown, d);

    assert.equal(shown.rows.flaky.attempts, '2');
    assert.equal(shown.rows.flaky.rate, '100.0%');
    assert.equal(shown.rows.flaky.tokens, '22 / 26');
    assert.equal(shown.rows.local.attempts, '1');
    assert.equal(shown.requests[0], '3');
});

tracked('a failing provider opens: red, retry time, failures by reason',
        async () => {
    flakyUp = false;

    // two 503s open the breaker; the third request skips flaky
    for (let i = 0; i < 3; i++) {
        const res = await chat();
        assert.match(res.body, /from steady/);
    }

    await pageRefresh();
    const shown = await readPage();
    const d = await statusJson();
    compare(shown, d);

    const f = shown.rows.flaky;
    assert.equal(d.providers.flaky.state, 'open');
    assert.equal(f.state, 'open');
    assert.equal(f.colour, COLOURS.open);
    assert.equal(f.consecutive, '2');
    assert.equal(f.opened, '1');
    assert.equal(f.attempts, '4');
    assert.equal(f.rate, '50.0%');
    assert.deepEqual(f.failures, ['skipped 1', 'http_503 2']);
    assert.match(f.retry, /^[1-5] s$/);
    assert.equal(shown.rows.steady.attempts, '3');

    await page.screenshot({ path: screenshot.replace(/\.png$/, '-open.png'),
                            fullPage: true });
});

tracked('the provider recovers: a trial closes the breaker', async () => {
    flakyUp = true;

    // half-open once the cooldown is over
    const deadline = Date.now() + COOLDOWN_MS + 15000;
    while ((await statusJson()).providers.flaky.state !== 'half_open') {
        assert.ok(Date.now() < deadline, 'flaky did not become half-open');
        await sleep(100);
    }

    await pageRefresh();
    let shown = await readPage();
    compare(shown, await statusJson());
    assert.equal(shown.rows.flaky.colour, COLOURS.half_open);

    const res = await chat();
    assert.match(res.body, /from flaky/);

    await pageRefresh();
    shown = await readPage();
    const d = await statusJson();
    compare(shown, d);

    const f = shown.rows.flaky;
    assert.equal(f.state, 'closed');
    assert.equal(f.colour, COLOURS.closed);
    assert.equal(f.consecutive, '0');
    assert.equal(f.opened, '1');
    assert.equal(f.attempts, '5');
    assert.equal(f.rate, '60.0%');
    assert.equal(f.retry, '\u2014');

    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(fs.statSync(screenshot).size > 10000, 'a screenshot');
});

tracked('the page loaded only itself and its JSON, and never reloaded',
        async () => {
    const base = `http://127.0.0.1:${gwPort}/llm/status`;

    assert.equal(await page.evaluate(() => window.llmTestMark), 'kept');
    assert.equal(seen.navigations, 1, 'one navigation');
    assert.ok(seen.requests.length > 5, 'the page refreshed');

    for (const url of seen.requests) {
        assert.ok(url === `${base}?refresh=1` || url === `${base}?format=json`,
                  `requested ${url}`);
    }

    assert.deepEqual(seen.errors, [], 'no script errors');
    assert.deepEqual(seen.console, [], 'nothing on the console (no CSP '
                                       + 'violation)');
});

tracked('cost, probe and limits are shown when the JSON has them',
        async () => {
    const p = await browser.newPage({ viewport: { width: 1360, height: 640 } });
    const errors = [];
    p.on('pageerror', (e) => errors.push(String(e)));

    // the same JSON with fields of features to come
    await p.route('**/llm/status?format=json', async (route) => {
        const d = await statusJson();
        d.providers.flaky.cost = 0.0123;
        d.providers.flaky.probe = { state: 'failing', last: 3 };
        d.providers.steady.probe = { state: 'ok' };
        d.limits = { tenant_a: { requests: 10, rejected: 2 } };
        await route.fulfill({ status: 200, contentType: 'application/json',
                              body: JSON.stringify(d) });
    });

    await p.goto(`http://127.0.0.1:${gwPort}/llm/status?refresh=1`);
    await p.waitForFunction(
        () => Number(document.getElementById('updated').dataset.seq) >= 1,
        null, { timeout: 20000 });

    const shown = await p.evaluate(() => ({
        columns: [...document.querySelectorAll('#providers thead th')]
            .map((th) => th.textContent),
        cost: document.querySelector(
            'tr[data-provider="flaky"] td[data-k="cost"]').textContent,
        probe: document.querySelector(
            'tr[data-provider="flaky"] td[data-k="probe"]').textContent,
        steadyCost: document.querySelector(
            'tr[data-provider="steady"] td[data-k="cost"]').textContent,
        limits: document.getElementById('limits').hidden ? null
            : document.querySelector('#limits tr[data-limit="tenant_a"]')
                .textContent,
    }));

    await p.close();

    assert.ok(shown.columns.includes('Cost'));
    assert.ok(shown.columns.includes('Probe'));
    assert.equal(shown.cost, '0.0123');
    assert.equal(shown.probe, 'failing');
    assert.equal(shown.steadyCost, '\u2014');
    assert.equal(shown.limits, 'tenant_arequests 10, rejected 2');
    assert.deepEqual(errors, []);
});
