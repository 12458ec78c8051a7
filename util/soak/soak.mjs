// make soak: the module under load, faults, Redis restarts and reloads for
// SOAK_SECONDS (default 1800), then a summary of pass criteria; the exit
// status is non-zero when any fails. See README.md, "Soak test".
//
//   node util/soak/soak.mjs        (util/soak/run.sh wraps it with a trap)
//
// Environment (defaults):
//   SOAK_SECONDS 1800   load duration
//   SOAK_CLIENTS 200    concurrent clients
//   SOAK_DIR     build/soak (conf, logs, summary; emptied at start)
//   SOAK_NGINX   /usr/sbin/nginx
//   SOAK_MODULE  build/ngx_http_llm_fallback_module.so
//   SOAK_SEED    random (printed; fakes and clients draw from it)
//   SOAK_RELOAD_EVERY 30, SOAK_REDIS_EVERY 60, SOAK_REDIS_DOWN 10 (s;
//                0 turns a fault off)
//   SOAK_WINDOW  60 (30 when SOAK_SECONDS < 135): the first and last
//                windows whose averages of worker RSS and fds are compared
//   SOAK_WARMUP  15 (s before the first window)
//   SOAK_RSS_MIB 5, SOAK_FDS 20: the most RSS and fd growth that is flat
//   SOAK_BREAK_HEALTHY 0: 1 makes the "healthy" provider flaky too, to see
//                the soak fail (a check of the checks)
//   SOAK_FIELD   1: the clients of the field (HTTP/2, slow readers, large
//                events, the multi-server upstream with black holes); 0
//                leaves only the HTTP/1.1 clients of the main location
//   SOAK_BAD_RELOAD_EVERY 90 (s; 0 turns it off): a reload that fails (a
//                listen on a port already taken), half-way between two
//                good reloads
//   SOAK_KILLS   1 (3 when SOAK_SECONDS >= 600; 0 turns it off): workers
//                killed with SIGKILL, spread over the run

import { spawn, spawnSync, fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, freePort, canConnect } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const top = path.resolve(here, '../..');
const env = process.env;

const num = (v, d) => (v === undefined || v === '' ? d : Number(v));

const SECONDS = num(env.SOAK_SECONDS, 1800);
const CLIENTS = num(env.SOAK_CLIENTS, 200);
const DIR = path.resolve(env.SOAK_DIR || `${top}/build/soak`);
const NGINX = path.resolve(env.SOAK_NGINX || '/usr/sbin/nginx');
const MODULE = path.resolve(env.SOAK_MODULE
                            || `${top}/build/ngx_http_llm_fallback_module.so`);
const SEED = num(env.SOAK_SEED, Math.floor(Math.random() * 1e9));
const RELOAD_EVERY = num(env.SOAK_RELOAD_EVERY, 30);
const REDIS_EVERY = num(env.SOAK_REDIS_EVERY, 60);
const REDIS_DOWN = num(env.SOAK_REDIS_DOWN, 10);
const WINDOW = num(env.SOAK_WINDOW, SECONDS < 135 ? 30 : 60);
const WARMUP = num(env.SOAK_WARMUP, 15);
const RSS_MIB = num(env.SOAK_RSS_MIB, 5);
const FDS = num(env.SOAK_FDS, 20);
const FIELD = num(env.SOAK_FIELD, 1) !== 0;
const BAD_RELOAD_EVERY = num(env.SOAK_BAD_RELOAD_EVERY, 90);
const KILLS = num(env.SOAK_KILLS, SECONDS >= 600 ? 3 : 1);
const SAMPLE_MS = 2000;
const OLD_WORKER_S = 30;

// the multi-server upstream's location
const MULTI_ATTEMPT_S = 1;
const MULTI_DEADLINE_S = 6;
const MULTI_CONNECT_S = 20;     // proxy_connect_timeout: far beyond both
const DEADLINE_MARGIN_S = 6;    // a loaded machine's margin

const HEALTHY = 'healthy';
const PROVIDERS = [
    { name: 'flaky1', format: 'openai', flaky: true },
    { name: 'flaky2', format: 'openai', flaky: true },
    { name: 'anthropic_flaky', format: 'anthropic', flaky: true },
    { name: HEALTHY, format: 'openai',
      flaky: env.SOAK_BREAK_HEALTHY === '1' },
    { name: 'bulk_anthropic', format: 'anthropic', bulk: true },
    { name: 'bulk_openai', format: 'openai', bulk: true },
    { name: 'multi', format: 'openai', late: true },
];

// the providers that never fail after their first content: an error event
// in a stream from one of them is a failure
const RELIABLE = [HEALTHY, 'bulk_anthropic', 'bulk_openai', 'multi',
                  'multi2'];

// the provider the failing reload's configuration leaves out: a reload
// that fails must not forget its state
const DROPPED = 'anthropic_flaky';

const children = new Map();     // name -> ChildProcess
let master = 0;
let t0 = 0;                     // load start (ms)
let finishing = false;

const since = () => (Date.now() - t0) / 1000;

function log(...a) {
    const t = t0 ? `[${since().toFixed(0).padStart(5)}s]` : '[  -  ]';
    console.log(t, ...a);
}


// ---------------------------------------------------------------- children

// every child runs in DIR, so run.sh's trap can find what is left of them
// (nginx workers included) by their working directory
function track(name, proc) {
    children.set(name, proc);
    fs.writeFileSync(`${DIR}/pids/${name}.pid`, `${proc.pid}\n`);
    proc.on('exit', () => {
        if (children.get(name) === proc) {
            children.delete(name);
        }
    });
    return proc;
}

function exited(proc, ms) {
    return new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) {
            resolve(true);
            return;
        }

        const t = setTimeout(() => resolve(false), ms);
        proc.once('exit', () => { clearTimeout(t); resolve(true); });
    });
}

async function cleanup() {
    const nginx = children.get('nginx');

    if (nginx) {
        nginx.kill('SIGTERM');
        await exited(nginx, 5000);
    }

    for (const [, proc] of children) {
        proc.kill('SIGKILL');
    }
}

async function abort(why, code = 2) {
    console.error(`soak: ${why}`);
    await cleanup();
    console.error(`soak: logs in ${DIR}/logs`);
    process.exit(code);
}

process.on('SIGINT', () => abort('interrupted', 130));
process.on('SIGTERM', () => abort('terminated', 143));
process.on('uncaughtException', (e) => abort(e.stack));
process.on('unhandledRejection', (e) => abort(e?.stack ?? String(e)));


// ---------------------------------------------------------------- redis

let redisPort = 0;
const redisStats = { kills: 0, restarts: 0 };

function redisPing() {
    return new Promise((resolve) => {
        const c = net.connect(redisPort, '127.0.0.1');
        let got = '';
        const done = (v) => { c.destroy(); resolve(v); };

        c.setTimeout(1000, () => done(false));
        c.on('error', () => done(false));
        c.on('connect', () => c.write('PING\r\n'));
        c.on('data', (d) => {
            got += d;
            if (got.includes('\r\n')) {
                done(got.startsWith('+PONG'));
            }
        });
    });
}

// started again on the same port: a redis-server that exits at once (the
// port taken meanwhile by another process) is tried again for 10 s
async function redisStart() {
    for (let attempt = 0; attempt < 20; attempt++) {
        const out = fs.openSync(`${DIR}/logs/redis.out`, 'a');
        const proc = spawn('redis-server', [
            '--port', String(redisPort), '--bind', '127.0.0.1',
            '--save', '', '--appendonly', 'no', '--daemonize', 'no',
            '--dir', `${DIR}/redis`, '--logfile', `${DIR}/logs/redis.log`,
        ], { cwd: DIR, stdio: ['ignore', out, out] });

        fs.closeSync(out);
        track('redis', proc);
        await sleep(100);

        for (let i = 0; i < 100 && proc.exitCode === null; i++) {
            if (await redisPing() && proc.exitCode === null) {
                return;
            }
            await sleep(50);
        }

        proc.kill('SIGKILL');
        await exited(proc, 5000);
        await sleep(500);
    }

    throw new Error(`redis-server on port ${redisPort} did not start`);
}

async function redisKill() {
    const proc = children.get('redis');

    if (proc) {
        proc.kill('SIGKILL');
        await exited(proc, 5000);
        redisStats.kills++;
    }
}


// ---------------------------------------------------------------- fakes

const fakes = new Map();        // name -> { port, proc }

async function fakeStart(p, i) {
    const port = await freePort();
    const proc = fork(`${here}/fake.mjs`,
                      [JSON.stringify({ ...p, port, seed: SEED + i + 1 })],
                      { cwd: DIR, stdio: ['ignore', 'inherit', 'inherit',
                                          'ipc'] });
    track(`fake-${p.name}`, proc);

    await new Promise((resolve, reject) => {
        proc.once('message', resolve);
        proc.once('exit', () => reject(new Error(`fake ${p.name} exited`)));
    });

    fakes.set(p.name, { port, proc });
}

function fakeStats(proc) {
    return new Promise((resolve) => {
        const t = setTimeout(() => resolve(null), 3000);
        proc.once('message', (m) => { clearTimeout(t); resolve(m.stats); });
        proc.send('stats');
    });
}


// ---------------------------------------------------------------- black holes

const held = [];                // our connections filling their queues

// a connect to PORT: "connect", "refused" or "timeout" (after MS)
function tryConnect(port, ms) {
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        const t = setTimeout(() => { s.destroy(); resolve('timeout'); }, ms);

        s.once('connect', () => {
            clearTimeout(t);
            held.push(s);
            resolve('connect');
        });
        s.once('error', (e) => {
            clearTimeout(t);
            s.destroy();
            resolve(e.code === 'ECONNREFUSED' ? 'refused' : e.code);
        });
    });
}

// blackhole.mjs on two ports, their accept queues filled by us, and a
// check that a connect to either now hangs
async function blackholeStart() {
    for (let i = 0; i < 2; i++) {
        blackholes.push(await freePort());
    }

    track('blackhole', fork(`${here}/blackhole.mjs`,
                            blackholes.map(String),
                            { cwd: DIR, stdio: ['ignore', 'inherit',
                                                'inherit', 'ipc'] }));

    for (const port of blackholes) {
        let r = 'refused';

        for (let i = 0; i < 100 && r !== 'timeout'; i++) {
            r = await tryConnect(port, 500);

            if (r === 'refused') {
                await sleep(50);
            }
        }

        if (r !== 'timeout') {
            throw new Error(`127.0.0.1:${port} does not black-hole connects`
                            + ` (${r})`);
        }
    }
}

// busyPort, held for as long as the soak runs: the failing reload's
// listen cannot bind it
let busy = null;

async function busyStart() {
    busy = net.createServer((c) => c.destroy());
    await new Promise((resolve, reject) => {
        busy.once('error', reject);
        busy.listen(0, '127.0.0.1', resolve);
    });
    busyPort = busy.address().port;
}


// ---------------------------------------------------------------- nginx

let nginxPort = 0;              // HTTP/1.1 clients
let h2Port = 0;                 // HTTP/2 clients (prior knowledge)
let slowPort = 0;               // slow readers: a small sndbuf
let busyPort = 0;               // taken: the failing reload's listen
let http2On = false;            // nginx >= 1.25.1: "http2 on;"
let nginxVersion = '?';
const blackholes = [];          // ports that black-hole connects

const clientPorts = () => [nginxPort, h2Port, slowPort];

// the version of NGINX: "listen ... http2" is deprecated from 1.25.1
function nginxVersionOf() {
    const r = spawnSync(NGINX, ['-v'], { encoding: 'utf8' });
    const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${r.stderr}${r.stdout}`);

    if (!m) {
        throw new Error(`${NGINX} -v: ${r.stderr || r.error}`);
    }

    const [maj, min, pat] = m.slice(1).map(Number);

    nginxVersion = `${maj}.${min}.${pat}`;
    http2On = maj > 1 || min > 25 || (min === 25 && pat >= 1);
}

// the configuration; FAILING: the one of a reload that fails, DROPPED
// left out and a listen on busyPort, which another process holds, so
// that the new workers never start
function nginxConf(failing = false) {
    const port = (n) => fakes.get(n).port;
    const drop = (n) => (failing && n === DROPPED ? '' : n);
    const main = ['flaky1', 'flaky2', 'anthropic_flaky', HEALTHY]
        .map(drop).filter(Boolean).join(' ');

    const cache = `llm_cache redis=127.0.0.1:${redisPort} ttl=5s stale=30s
                      timeout=200ms;`;

    const locations = `
        location = /v1/chat/completions {
            llm_fallback_chain ${main};
            llm_fallback_on error timeout invalid_response http_5xx
                            http_429;
            llm_attempt_timeout 2s;
            llm_stream_idle_timeout 3s;
            ${cache}
        }

        # large events (bulk providers), for slow readers too
        location = /big/a/v1/chat/completions {
            llm_fallback_chain bulk_anthropic bulk_openai ${HEALTHY};
            llm_fallback_on error timeout invalid_response http_5xx
                            http_429;
            llm_attempt_timeout 10s;
            llm_stream_idle_timeout 3s;
            ${cache}
        }

        location = /big/o/v1/chat/completions {
            llm_fallback_chain bulk_openai bulk_anthropic ${HEALTHY};
            llm_fallback_on error timeout invalid_response http_5xx
                            http_429;
            llm_attempt_timeout 10s;
            llm_stream_idle_timeout 3s;
            ${cache}
        }

        # the multi-server upstreams: attempts end at ${MULTI_ATTEMPT_S}s
        # and the request at ${MULTI_DEADLINE_S}s, whatever the connects to
        # their black holes do (proxy_connect_timeout ${MULTI_CONNECT_S}s)
        location = /multi/v1/chat/completions {
            llm_fallback_chain multi ${HEALTHY};
            llm_fallback_on error timeout invalid_response http_5xx
                            http_429;
            llm_attempt_timeout ${MULTI_ATTEMPT_S}s;
            llm_fallback_timeout ${MULTI_DEADLINE_S}s;
            llm_stream_idle_timeout 3s;
        }

        location = /multi2/v1/chat/completions {
            llm_fallback_chain multi2 ${HEALTHY};
            llm_fallback_on error timeout invalid_response http_5xx
                            http_429;
            llm_attempt_timeout ${MULTI_ATTEMPT_S}s;
            llm_fallback_timeout ${MULTI_DEADLINE_S}s;
            llm_stream_idle_timeout 3s;
        }

        location = /llm/status { llm_status; }

        # HTTP/1.0, a connection per attempt: refusals reach the module
        location = /_llm/flaky1 {
            internal;
            proxy_pass http://127.0.0.1:${port('flaky1')}/v1/chat/completions;
            proxy_read_timeout 10s;
        }

        # HTTP/1.1 keep-alive
        location = /_llm/flaky2 {
            internal;
            proxy_pass http://flaky2/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 10s;
        }

        # HTTP/1.1, a connection per attempt
        location = /_llm/anthropic {
            internal;
            proxy_pass http://127.0.0.1:${port('anthropic_flaky')}/v1/messages;
            proxy_http_version 1.1;
            proxy_set_header X-Soak-Content-Type $content_type;
            proxy_read_timeout 10s;
        }

        # $content_type walks the subrequest's headers (the fake checks
        # what arrives): the headers the module sets must be whole
        location = /_llm/healthy {
            internal;
            proxy_pass http://healthy/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Soak-Content-Type $content_type;
            proxy_read_timeout 60s;
        }

        location = /_llm/bulk_anthropic {
            internal;
            proxy_pass http://127.0.0.1:${port('bulk_anthropic')}/v1/messages;
            proxy_http_version 1.1;
            proxy_set_header X-Soak-Content-Type $content_type;
            proxy_read_timeout 10s;
        }

        location = /_llm/bulk_openai {
            internal;
            proxy_pass http://bulk_openai/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Soak-Content-Type $content_type;
            proxy_read_timeout 10s;
        }

        location = /_llm/multi {
            internal;
            proxy_pass http://multi/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout ${MULTI_CONNECT_S}s;
            proxy_read_timeout ${MULTI_CONNECT_S}s;
        }

        location = /_llm/multi2 {
            internal;
            proxy_pass http://multi2/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout ${MULTI_CONNECT_S}s;
            proxy_read_timeout ${MULTI_CONNECT_S}s;
        }
`;

    const what = failing ? ` (a reload that fails: ${DROPPED} left out,`
        + ` 127.0.0.1:${busyPort} taken)` : '';

    return `# written by util/soak/soak.mjs${what}
load_module ${MODULE};
worker_processes 2;
master_process on;
daemon off;
pid ${DIR}/logs/nginx.pid;
error_log ${DIR}/logs/error.log info;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }

http {
    log_format soak '$msec $http_x_soak_id $status $request_time pid=$pid '
                    'provider=$llm_provider attempts=$llm_attempts '
                    'cache=$llm_cache_status '
                    'fallback="$llm_fallback_reasons" ttft=$llm_ttft';
    access_log ${DIR}/logs/access.log.gz soak gzip=4 buffer=256k
               flush=5s;

    client_body_temp_path ${DIR}/tmp/body;
    proxy_temp_path ${DIR}/tmp/proxy;
    fastcgi_temp_path ${DIR}/tmp/fastcgi;
    uwsgi_temp_path ${DIR}/tmp/uwsgi;
    scgi_temp_path ${DIR}/tmp/scgi;

    llm_circuit_breaker zone=soak_breakers:1m failures=8 window=10s
                        cooldown=1s max_cooldown=8s probes=1;

    llm_provider flaky1 uri=/_llm/flaky1 model=flaky1-model
                 api_key=sk-soak-flaky1;
    llm_provider flaky2 uri=/_llm/flaky2 api_key=sk-soak-flaky2;
${failing ? '' : `    llm_provider anthropic_flaky uri=/_llm/anthropic
                 format=anthropic model=claude-soak
                 api_key=sk-soak-anthropic;
`}    # the last resort: its own timeout, so a busy machine cannot make it
    # miss the 2s of the others
    llm_provider ${HEALTHY} uri=/_llm/healthy timeout=30s
                 api_key=sk-soak-healthy;
    llm_provider bulk_anthropic uri=/_llm/bulk_anthropic format=anthropic
                 model=claude-bulk api_key=sk-soak-bulk-anthropic;
    llm_provider bulk_openai uri=/_llm/bulk_openai
                 api_key=sk-soak-bulk-openai;
    # no breaker: every request tries the multi-server upstreams
    llm_provider multi uri=/_llm/multi api_key=sk-soak-multi breaker=off;
    llm_provider multi2 uri=/_llm/multi2 api_key=sk-soak-multi breaker=off;

    upstream flaky2 {
        server 127.0.0.1:${port('flaky2')};
        keepalive 32;
        keepalive_timeout 20s;
    }

    upstream healthy {
        server 127.0.0.1:${port(HEALTHY)};
        keepalive 64;
        keepalive_timeout 20s;
    }

    upstream bulk_openai {
        server 127.0.0.1:${port('bulk_openai')};
        keepalive 16;
        keepalive_timeout 20s;
    }

    # two of its three servers black-hole connects; nginx's own max_fails
    # must not see the module's cancelled attempts
    upstream multi {
        server 127.0.0.1:${blackholes[0]} max_fails=1 fail_timeout=10s;
        server 127.0.0.1:${port('multi')} max_fails=1 fail_timeout=10s;
        server 127.0.0.1:${blackholes[1]} max_fails=1 fail_timeout=10s;
        keepalive 16;
        keepalive_timeout 20s;
    }

    # the same without max_fails: nothing is ever marked down, so an
    # attempt that nginx moves on from one black hole meets the other
    upstream multi2 {
        server 127.0.0.1:${blackholes[0]} max_fails=0;
        server 127.0.0.1:${port('multi')} max_fails=0;
        server 127.0.0.1:${blackholes[1]} max_fails=0;
        keepalive 16;
        keepalive_timeout 20s;
    }

    server {
        listen 127.0.0.1:${nginxPort};
        # slow readers: the server's socket buffer fills at once
        listen 127.0.0.1:${slowPort} sndbuf=8k;
${failing ? `        listen 127.0.0.1:${busyPort};\n` : ''}${locations}
    }

    server {
        listen 127.0.0.1:${h2Port}${http2On ? '' : ' http2'};
${http2On ? '        http2 on;\n' : ''}${locations}
    }
}
`;
}

// nginx -t: with an AddressSanitizer nginx, the pool main() never frees
// (util/sanitizer-check.sh) must not fail it
function nginxTest(conf) {
    return new Promise((resolve) => {
        const asan = `${env.ASAN_OPTIONS ?? ''}:detect_leaks=0`;
        const p = spawn(NGINX, ['-t', '-p', `${DIR}/`, '-c', conf],
                        { cwd: DIR, stdio: ['ignore', 'pipe', 'pipe'],
                          env: { ...env, ASAN_OPTIONS: asan } });
        let out = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { out += d; });
        p.on('exit', (code) => resolve({ code, out }));
    });
}

async function nginxStart() {
    const conf = `${DIR}/conf/nginx.conf`;

    fs.writeFileSync(conf, nginxConf());

    const t = await nginxTest(conf);
    if (t.code !== 0) {
        throw new Error(`nginx -t failed:\n${t.out}`);
    }

    const out = fs.openSync(`${DIR}/logs/nginx.stderr`, 'a');
    // glibc's mmap threshold fixed (it grows with the largest block freed,
    // and then large answers stay in the heap): the workers' RSS follows
    // what they hold, not the high-water mark of the largest answers
    const proc = spawn(NGINX, ['-p', `${DIR}/`, '-c', conf],
                       { cwd: DIR, stdio: ['ignore', out, out],
                         env: { MALLOC_MMAP_THRESHOLD_: '131072', ...env } });
    fs.closeSync(out);
    track('nginx', proc);
    master = proc.pid;

    proc.on('exit', (code, sig) => {
        if (!finishing) {
            abort(`nginx master exited (${sig ?? code}) during the run`);
        }
    });

    for (let i = 0; i < 100; i++) {
        if (await canConnect(nginxPort)) {
            return;
        }
        await sleep(50);
    }

    throw new Error('nginx does not listen');
}


// ---------------------------------------------------------------- sampling

const samples = [];             // { t, rss, fds, mrss, mfds, old }
const reloads = [];             // when SIGHUP was sent (ms)
const oldWorkers = new Map();   // pid -> { reload, last }
let oldWorkerMax = 0;

const TCP_STATES = {
    '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV',
    '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE',
    '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING',
};

// inode -> "STATE peer" of every TCP socket on the machine
function tcpSockets() {
    const names = new Map([[redisPort, 'redis'],
                           ...blackholes.map((p) => [p, 'black hole']),
                           ...[...fakes].map(([n, f]) => [f.port, n])]);
    const socks = new Map();
    let text = '';

    try {
        text = fs.readFileSync('/proc/net/tcp', 'utf8');
    } catch {
        return socks;
    }

    for (const line of text.split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);

        if (f.length < 10 || f[9] === '0') {
            continue;
        }

        const lport = parseInt(f[1].split(':')[1], 16);
        const rport = parseInt(f[2].split(':')[1], 16);
        const peer = clientPorts().includes(lport) ? 'client'
                   : names.get(rport) ?? `port ${rport}`;

        socks.set(f[9], `${TCP_STATES[f[3]] ?? f[3]} ${peer}`);
    }

    return socks;
}

// a process' RSS (KiB) and open fds; with TCP (tcpSockets()), its fds by
// kind ("ESTABLISHED client", "CLOSE_WAIT flaky1", a file's path, ...),
// and "steady": the fds that do not follow the load, files, pipes and the
// like, and sockets in CLOSE_WAIT (the peer closed, nginx did not: a
// leaked connection ends there)
function readProc(pid, tcp) {
    try {
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
            .replace(/\0/g, ' ').trim();
        const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
        const fds = fs.readdirSync(`/proc/${pid}/fd`);
        const kinds = {};
        let steady = 0;

        for (const fd of tcp ? fds : []) {
            let kind;

            try {
                kind = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
            } catch {
                continue;
            }

            const inode = /^socket:\[(\d+)\]$/.exec(kind)?.[1];

            if (inode) {
                kind = tcp.get(inode) ?? 'socket (other)';
                steady += kind.startsWith('CLOSE_WAIT ');

            } else {
                steady++;
            }

            kinds[kind] = (kinds[kind] || 0) + 1;
        }

        return { pid, cmd, rss, fds: fds.length, steady, kinds };
    } catch {
        return null;        // it exited meanwhile
    }
}

// the master's children: current workers and old ones shutting down
function nginxProcs(tcp) {
    let kids = [];

    try {
        kids = fs.readFileSync(`/proc/${master}/task/${master}/children`,
                               'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
        return { workers: [], old: [] };
    }

    const procs = kids.map((pid) => readProc(pid, tcp)).filter(Boolean);

    return {
        workers: procs.filter((p) => p.cmd === 'nginx: worker process'),
        old: procs.filter((p) => /shutting down/.test(p.cmd)),
    };
}

// the two current workers summed, or null (a reload in progress)
function workerSum(workers) {
    if (workers.length !== 2) {
        return null;
    }

    const kinds = {};

    for (const w of workers) {
        for (const [k, v] of Object.entries(w.kinds)) {
            kinds[k] = (kinds[k] || 0) + v;
        }
    }

    const sum = (k) => workers.reduce((a, w) => a + w[k], 0);

    return { rss: sum('rss'), fds: sum('fds'), steady: sum('steady'),
             kinds };
}

function sample() {
    if (!master) {
        return;
    }

    const { workers, old } = nginxProcs(tcpSockets());
    const w = workerSum(workers);
    const m = readProc(master);
    const now = Date.now();

    // how long after its reload an old worker is still there
    for (const p of old) {
        const o = oldWorkers.get(p.pid)
            ?? { reload: reloads.findLast((r) => r <= now) ?? now };
        o.last = now;
        oldWorkers.set(p.pid, o);
        oldWorkerMax = Math.max(oldWorkerMax, (o.last - o.reload) / 1000);
    }

    if (!w || !m || !t0) {
        return;
    }

    samples.push({ t: since(), rss: w.rss, fds: w.fds, steady: w.steady,
                   mrss: m.rss, mfds: m.fds, old: old.length });
}

// the Redis connections an idle worker may keep open after the run: one
// for lookups and one for large stores, per worker (2 workers)
const REDIS_FDS = 4;

// the idle workers' fds: at start, and after the run once every
// connection is closed (upstream keep-alive included: keepalive_timeout
// 20s); waits up to MS for them to come down to BASE
async function idleFds(base, ms) {
    const end = Date.now() + ms;
    let w = null;

    for (;;) {
        w = workerSum(nginxProcs(tcpSockets()).workers) ?? w;

        if ((w && (!base || w.fds <= base.fds + REDIS_FDS))
            || Date.now() > end)
        {
            return w;
        }

        await sleep(1000);
    }
}

function windowAvg(from, to) {
    const s = samples.filter((x) => x.t >= from && x.t < to);
    const avg = (k) => s.reduce((a, x) => a + x[k], 0) / (s.length || 1);

    return { n: s.length, rss: avg('rss'), fds: avg('fds'),
             steady: avg('steady'), mrss: avg('mrss'),
             mfds: avg('mfds') };
}


// ---------------------------------------------------------------- llm_status

const breaker = { transitions: {}, last: {} };
let lastStatus = null;

function getStatus() {
    return new Promise((resolve) => {
        const r = http.get({ host: '127.0.0.1', port: nginxPort,
                             path: '/llm/status', agent: false,
                             timeout: 3000 }, (res) => {
            let body = '';
            res.on('data', (d) => { body += d; });
            res.on('end', () => {
                try {
                    resolve(JSON.parse(body));
                } catch {
                    resolve(null);
                }
            });
        });

        r.on('timeout', () => r.destroy());
        r.on('error', () => resolve(null));
    });
}

async function pollStatus() {
    const s = await getStatus();

    if (!s) {
        return;
    }

    lastStatus = s;

    for (const [name, p] of Object.entries(s.providers ?? {})) {
        const prev = breaker.last[name];

        if (prev && prev !== p.state) {
            const k = `${name} ${prev}->${p.state}`;
            breaker.transitions[k] = (breaker.transitions[k] || 0) + 1;
        }

        breaker.last[name] = p.state;
    }
}


// ---------------------------------------------------------------- error log

const elog = { offset: 0, partial: '', levels: {}, bad: [], badCount: 0,
               breaker: {}, streamCuts: 0, redisLost: 0, redisConnect: 0,
               refused: 0, noLive: {}, connectTimeouts: {}, badKinds: {},
               expected: { killExit: 0, killLock: 0, bindFailed: 0,
                           bindGaveUp: 0 } };

const BAD = /\[(alert|crit|emerg)\]|exited on signal|zero size buf/;

// the lines our own chaos causes: the SIGKILL'd workers' exit (and a
// lock one held, which the master releases), the failing reloads' bind()
function expected(line) {
    const x = elog.expected;
    const pid = /worker process (\d+) exited on signal 9$/.exec(line)?.[1]
        ?? /shared memory zone ".*" was locked by (\d+)$/.exec(line)?.[1];

    if (pid && kills.some((k) => String(k.pid) === pid)) {
        x[line.includes('exited') ? 'killExit' : 'killLock']++;
        return true;
    }

    if (busyPort && /\[emerg\]/.test(line)
        && line.includes(`bind() to 127.0.0.1:${busyPort} failed (98: `))
    {
        x.bindFailed++;
        return true;
    }

    if (badReloadSent && /\[emerg\] .*still could not bind\(\)$/
        .test(line))
    {
        x.bindGaveUp++;
        return true;
    }

    return false;
}

// a bad line without what changes from one to the next
function badKind(line) {
    return line.replace(/^\S+ \S+ /, '').replace(/\d+#\d+: (\*\d+ )?/, '')
        .replace(/, client: .*$/, '').replace(/[0-9A-Fa-f]{8,}/g, 'X')
        .replace(/\d+/g, 'N').slice(0, 100);
}

function bad(line) {
    if (BAD.test(line) && !expected(line)) {
        const k = badKind(line);

        if (!elog.badKinds[k]) {
            elog.badKinds[k] = { n: 0, first: line };
        }
        elog.badKinds[k].n++;

        elog.badCount++;
        if (elog.bad.length < 20) {
            elog.bad.push(line);
        }
    }
}

function scanLog() {
    let fd;

    try {
        fd = fs.openSync(`${DIR}/logs/error.log`, 'r');
    } catch {
        return;
    }

    try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.min(size - elog.offset, 64 << 20));

        if (buf.length <= 0) {
            return;
        }

        fs.readSync(fd, buf, 0, buf.length, elog.offset);
        elog.offset += buf.length;

        const lines = (elog.partial + buf.toString()).split('\n');
        elog.partial = lines.pop();

        for (const l of lines) {
            const lv = /^\S+ \S+ \[(\w+)\]/.exec(l)?.[1] ?? '?';
            elog.levels[lv] = (elog.levels[lv] || 0) + 1;

            bad(l);

            const b = /llm provider "(\w+)" circuit breaker (opened|reopened|closed)/
                .exec(l);
            if (b) {
                const k = `${b[1]} ${b[2]}`;
                elog.breaker[k] = (elog.breaker[k] || 0) + 1;
            }

            if (l.includes('stream failed after its first content')) {
                elog.streamCuts++;
            }
            if (/Connection refused\) while connecting to upstream/
                .test(l))
            {
                elog.refused++;
            }
            const up = /upstream: "http:\/\/([^/"]+)/.exec(l)?.[1] ?? '-';

            if (l.includes('no live upstreams')) {
                elog.noLive[up] = (elog.noLive[up] || 0) + 1;
            }
            if (/upstream timed out .* while connecting to upstream/
                .test(l))
            {
                elog.connectTimeouts[up] = (elog.connectTimeouts[up] || 0)
                                           + 1;
            }
            if (l.includes('llm cache: lost the connection')) {
                elog.redisLost++;
            }
            if (/llm cache: connect\(\) to redis .* failed/.test(l)) {
                elog.redisConnect++;
            }
        }
    } finally {
        fs.closeSync(fd);
    }
}


// ---------------------------------------------------------------- chaos

const badReloads = [];          // { at, problems, dropped: {before, after} }
const kills = [];               // { at, pid, ports, respawned }
let badReloadSent = 0;
let loadProc = null;
let killAcked = null;

// the current workers' pids (not those shutting down), sorted
function currentWorkers() {
    return nginxProcs(null).workers.map((p) => p.pid).sort();
}

// what a failed reload must not change: every provider still there and
// tracked, no counter lower
function compareStatus(b, a) {
    const problems = [];

    for (const [name, x] of Object.entries(b.providers ?? {})) {
        const y = a.providers?.[name];

        if (!y) {
            problems.push(`${name} gone from llm_status`);
            continue;
        }

        if (x.tracked && !y.tracked) {
            problems.push(`${name} no longer tracked`);
        }

        const counters = [
            ...['attempts', 'successes', 'opened'].map((k) =>
                [k, x[k], y[k]]),
            ...Object.entries(x.failures ?? {}).map(([k, v]) =>
                [`failures.${k}`, v, y.failures?.[k]]),
        ];

        for (const [k, was, is] of counters) {
            if ((is ?? 0) < (was ?? 0)) {
                problems.push(`${name} ${k} ${was} -> ${is ?? 0}`);
            }
        }
    }

    return problems;
}

// a reload that fails: the configuration leaves DROPPED out and listens on
// busyPort, which we hold, so the master gives up at bind() (5 tries, 500
// ms apart) and keeps its workers; they must go on, with their breakers
async function badReload() {
    const conf = `${DIR}/conf/nginx.conf`;
    const before = await getStatus();
    const workers = currentWorkers();
    const mark = elog.expected.bindGaveUp;
    const r = { at: since(), problems: [] };

    fs.writeFileSync(conf, nginxConf(true));
    badReloadSent++;
    process.kill(master, 'SIGHUP');

    for (let i = 0; i < 150 && elog.expected.bindGaveUp === mark; i++) {
        await sleep(100);
        scanLog();
    }

    fs.writeFileSync(conf, nginxConf());

    if (elog.expected.bindGaveUp === mark) {
        r.problems.push('no "still could not bind()" in the error log'
                        + ' within 15 s');
    }

    await sleep(1000);

    const after = await getStatus();
    const now = currentWorkers();

    if (now.join() !== workers.join()) {
        r.problems.push(`the workers changed: ${workers.join(' ')} ->`
                        + ` ${now.join(' ') || 'none'}`);
    }

    if (!before || !after) {
        r.problems.push('llm_status did not answer');
    } else {
        r.problems.push(...compareStatus(before, after));

        const d = (s) => s.providers?.[DROPPED];
        const show = (x) => (x ? `${x.state} opened=${x.opened}`
                                 + ` attempts=${x.attempts}` : 'absent');
        r.dropped = `${show(d(before))} -> ${show(d(after))}`;
    }

    badReloads.push(r);
    log(`failed reload (bind() to :${busyPort}): `
        + (r.problems.length ? `PROBLEMS: ${r.problems.join('; ')}`
                             : 'workers and breakers kept')
        + `; ${DROPPED}: ${r.dropped ?? '-'}`);
}

// the client ports of a worker's connections (from /proc/net/tcp)
function clientPortsOf(pid) {
    const inodes = new Set();
    const listen = clientPorts();
    const ports = [];

    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        try {
            const m = /^socket:\[(\d+)\]$/
                .exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
            if (m) {
                inodes.add(m[1]);
            }
        } catch {
            // closed meanwhile
        }
    }

    for (const line of fs.readFileSync('/proc/net/tcp', 'utf8')
        .split('\n').slice(1))
    {
        const f = line.trim().split(/\s+/);

        if (f.length < 10 || f[3] === '0A' || !inodes.has(f[9])) {
            continue;
        }

        if (listen.includes(parseInt(f[1].split(':')[1], 16))) {
            ports.push(parseInt(f[2].split(':')[1], 16));
        }
    }

    return ports;
}

// SIGKILL to a current worker: stopped first (SIGSTOP) so that its
// connections can be listed and told to the load client, which counts
// the requests on them apart, then killed
async function killWorker() {
    const workers = currentWorkers();

    if (workers.length === 0) {
        log('SIGKILL: no current worker');
        return;
    }

    const pid = workers[kills.length % workers.length];
    let ports = [];

    process.kill(pid, 'SIGSTOP');

    const at = Date.now();
    const k = { at: since(), pid, ports: 0, respawned: false };

    kills.push(k);

    try {
        ports = clientPortsOf(pid);
        k.ports = ports.length;

        const acked = new Promise((resolve) => { killAcked = resolve; });
        loadProc.send({ kill: { ports, at } });
        await Promise.race([acked, sleep(5000)]);

    } finally {
        process.kill(pid, 'SIGKILL');
    }

    log(`worker ${pid} killed (SIGKILL) with ${ports.length} client`
        + ' connections');

    for (let i = 0; i < 50 && !k.respawned; i++) {
        await sleep(100);
        const now = currentWorkers();
        k.respawned = now.length === 2 && !now.includes(pid);
    }
}

// the good reloads, the failing ones and the kills, in time order, one at
// a time: at RELOAD_EVERY, half-way between two of them every
// BAD_RELOAD_EVERY, and KILLS spread over the run, 20 s after a reload
function schedule() {
    const ev = [];

    if (RELOAD_EVERY > 0) {
        for (let t = RELOAD_EVERY; t < SECONDS; t += RELOAD_EVERY) {
            ev.push([t, 'reload']);
        }
    }

    if (BAD_RELOAD_EVERY > 0) {
        for (let t = BAD_RELOAD_EVERY / 2; t <= SECONDS - 20;
             t += BAD_RELOAD_EVERY)
        {
            ev.push([t, 'bad reload']);
        }
    }

    // between the two windows of the RSS comparison when there is room:
    // a new worker's RSS is not the one it replaced
    const lo = WARMUP + WINDOW + 5;
    const hi = SECONDS - WINDOW - 10;

    for (let i = 0; i < KILLS; i++) {
        let t = (i + 1) * SECONDS / (KILLS + 1);

        t = Math.max(WARMUP, 30 * Math.floor((t - 20) / 30) + 20);

        if (lo <= hi) {
            t = Math.min(Math.max(t, lo), hi);
        }

        ev.push([t, 'kill']);
    }

    return ev.sort((a, b) => a[0] - b[0]);
}

async function chaos() {
    for (const [at, kind] of schedule()) {
        await sleep(t0 + at * 1000 - Date.now());

        if (kind === 'reload') {
            reloads.push(Date.now());
            process.kill(master, 'SIGHUP');

        } else if (kind === 'bad reload') {
            await badReload();

        } else {
            await killWorker();
        }
    }
}


// ---------------------------------------------------------------- clients

// most clients on the main location over HTTP/1.1; with SOAK_FIELD, some
// over HTTP/2 there, slow readers of large streams (on the sndbuf=8k
// port, and over HTTP/2), large events, and the multi-server upstream
function clientProfiles() {
    const n = (share) => Math.max(1, Math.round(CLIENTS * share));
    const main = ['/v1/chat/completions'];
    const big = ['/big/a/v1/chat/completions', '/big/o/v1/chat/completions'];
    const multi = ['/multi/v1/chat/completions',
                   '/multi2/v1/chat/completions'];
    const deadlineMs = (MULTI_DEADLINE_S + DEADLINE_MARGIN_S) * 1000;

    const field = !FIELD ? [] : [
        { name: 'h2', proto: 'h2', port: h2Port, paths: main,
          clients: n(0.10), sessions: 4, streamShare: 0.5, uniqueShare: 0.5,
          pool: 200, prefix: '' },
        { name: 'big', proto: 'h1', port: nginxPort, paths: big,
          clients: n(0.04), streamShare: 0.85, uniqueShare: 0.5, pool: 20,
          prefix: 'b', think: [50, 250] },
        { name: 'big-h2', proto: 'h2', port: h2Port, paths: big,
          clients: n(0.01), sessions: 1, streamShare: 0.85,
          uniqueShare: 0.5, pool: 20, prefix: 'b', think: [50, 250] },
        { name: 'slow', proto: 'h1', port: slowPort, paths: big,
          clients: n(0.08), slow: true, streamShare: 0.9, uniqueShare: 0.5,
          pool: 10, prefix: 'S' },
        { name: 'slow-h2', proto: 'h2', port: h2Port, paths: big,
          clients: n(0.02), sessions: 1, slow: true, streamShare: 0.9,
          uniqueShare: 0.5, pool: 10, prefix: 'S' },
        { name: 'multi', proto: 'h1', port: nginxPort, paths: multi,
          clients: n(0.04), streamShare: 0.5, uniqueShare: 1, pool: 1,
          prefix: 'm', deadlineMs },
        { name: 'multi-h2', proto: 'h2', port: h2Port, paths: multi,
          clients: n(0.01), sessions: 1, streamShare: 0.5, uniqueShare: 1,
          pool: 1, prefix: 'm', deadlineMs },
    ];

    const rest = CLIENTS - field.reduce((a, p) => a + p.clients, 0);

    if (rest < 1) {
        throw new Error(`SOAK_CLIENTS=${CLIENTS} is too few for the field`
                        + ' clients (SOAK_FIELD=0 runs without them)');
    }

    return [{ name: 'main', proto: 'h1', port: nginxPort, paths: main,
              clients: rest, streamShare: 0.5, uniqueShare: 0.5, pool: 200,
              prefix: '' }, ...field];
}


// ---------------------------------------------------------------- summary

function table(rows) {
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) =>
        String(r[i]).length)));

    return rows.map((r) => r.map((c, i) => String(c).padEnd(w[i]))
                              .join('  ').trimEnd()).join('\n');
}

function sorted(o) {
    return Object.entries(o).sort((a, b) => b[1] - a[1]);
}

function summarize(load, fakeStat, old, shutdown, idle) {
    const out = [];
    const p = (s = '') => out.push(s);
    const kib = (k) => `${(k / 1024).toFixed(1)} MiB`;
    const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : '-');

    const first = windowAvg(WARMUP, WARMUP + WINDOW);
    const last = windowAvg(SECONDS - WINDOW, SECONDS);
    const drss = (last.rss - first.rss) / 1024;
    const dfds = last.fds - first.fds;
    const dsteady = last.steady - first.steady;
    const left = idle.end.fds - idle.base.fds;
    const dmrss = (last.mrss - first.mrss) / 1024;
    const dmfds = last.mfds - first.mfds;
    const interrupted = Object.values(load.interrupted)
        .reduce((a, b) => a + b, 0);
    const healthyErrors = Object.entries(load.failures)
        .filter(([k]) => k.includes('from a provider that never fails'))
        .reduce((a, [, v]) => a + v, 0);
    const earlyErrors = load.failures['stream: error event before any '
                                      + 'content'] ?? 0;
    const P = load.profiles;
    const field = (re) => Object.entries(P).filter(([n]) => re.test(n));
    const sum = (list, k) => list.reduce((a, [, x]) => a + (x[k] ?? 0), 0);
    const reasons = (list) => {
        const r = {};
        for (const [, x] of list) {
            for (const [k, v] of Object.entries(x.failures)) {
                r[k] = (r[k] || 0) + v;
            }
        }
        return sorted(r).map(([k, v]) => `${k} x${v}`).join(', ');
    };
    const noLive = Object.values(elog.noLive).reduce((a, b) => a + b, 0);
    const peer = (hp) => {
        const port = Number(hp.split(':')[1]);
        const f = [...fakes].find(([, x]) => x.port === port);
        return f ? f[0] : blackholes.includes(port) ? `black hole ${hp}`
                                                    : hp;
    };
    const multiTimeouts = sum(field(/^multi/).map(([n, x]) =>
        [n, { t: (x.reasons['multi:timeout'] ?? 0)
                 + (x.reasons['multi2:timeout'] ?? 0) }]), 't');

    // keep-alive races: nginx closing idle connections at a reload
    const atReload = (t) =>
        reloads.some((r) => t >= r - 1000 && t <= r + 15000);
    const unexplained = load.kaRetries.filter((t) => !atReload(t)).length;
    const fresh = load.freshRetries ?? [];
    const freshAway = fresh.filter((t) => !atReload(t)).length;

    const opened = Object.values(lastStatus?.providers ?? {})
        .reduce((a, x) => a + (x.opened ?? 0), 0);

    p('');
    p(`==================== soak summary (${SECONDS} s, ${CLIENTS} clients,`
      + ` seed ${SEED}, nginx ${nginxVersion}) ====================`);
    p('');
    p(table([
        ['requests', 'rps', 'ok', 'failed', 'stream', 'non-stream',
         'interrupted after commit (by design)', 'abandoned by the client'],
        [load.total, (load.total / load.seconds).toFixed(1), load.ok,
         load.failed, load.stream, load.plain, interrupted, load.aborted],
    ]));
    p('');
    p(table([
        ['latency', 'n', 'p50', 'p99', 'max'],
        ...['all', 'plain', 'stream', 'ttfb'].map((k) => [
            k === 'ttfb' ? 'first byte' : k, load.latency[k].n,
            ms(load.latency[k].p50), ms(load.latency[k].p99),
            ms(load.latency[k].max)]),
    ]));
    p('');
    p(table([['X-LLM-Provider', 'responses',
              'streams interrupted after commit'],
             ...sorted(load.providers).map(([k, v]) =>
                 [k, v, load.interrupted[k] ?? 0])]));
    p('');
    p(table([['X-LLM-Cache', 'responses'], ...sorted(load.cache)]));
    p('');
    p(`fallback: ${load.fellBack} responses came after a failed attempt`
      + ` (X-LLM-Attempts > 1), ${load.fallback - load.fellBack} more`
      + ' skipped open providers only; X-LLM-Attempts: '
      + sorted(load.attempts).map(([k, v]) => `${k}:${v}`).join(' '));
    p(table([['X-LLM-Fallback reason', 'count'],
             ...sorted(load.reasons).slice(0, 24)]));
    p('');

    const st = lastStatus?.providers ?? {};
    p(table([
        ['provider (llm_status)', 'state', 'opened', 'attempts', 'successes',
         'failures (top)'],
        ...Object.entries(st).map(([n, x]) => [
            n, x.state, x.opened, x.attempts, x.successes,
            sorted(x.failures ?? {}).filter(([, v]) => v)
                .slice(0, 5).map(([k, v]) => `${k}:${v}`).join(' ')]),
    ]));
    p(`breaker transitions seen polling llm_status every ${SAMPLE_MS / 1000}`
      + ' s: ' + (sorted(breaker.transitions).map(([k, v]) => `${k} x${v}`)
                  .join(', ') || 'none'));
    p('breaker transitions in the error log: '
      + (sorted(elog.breaker).map(([k, v]) => `${k} x${v}`).join(', ')
         || 'none'));
    p(`llm_status requests: ${JSON.stringify(lastStatus?.requests ?? {})}`);
    p(`llm_status cache:    ${JSON.stringify(lastStatus?.cache ?? {})}`);
    p('');

    p(table([
        ['clients', 'proto', 'loops', 'requests', 'ok', 'failed',
         'on a killed worker', 'stream', 'events > 4 KB', 'slowest header',
         'X-LLM-Provider', 'X-LLM-Cache'],
        ...Object.entries(P).map(([n, x]) => [
            n + (x.slow ? ' (slow reader)' : ''), x.proto, x.clients,
            x.total, x.ok, x.failed, x.killed, x.stream, x.events4k,
            ms(x.headersMax) + (x.deadlineMs ? ` (bound ${x.deadlineMs})`
                                             : ''),
            sorted(x.providers).map(([k, v]) => `${k}:${v}`).join(' '),
            sorted(x.cache).map(([k, v]) => `${k}:${v}`).join(' ')]),
    ]));
    p('');
    p(`HTTP/2: ${load.h2.sessions} sessions, ${load.h2.goaways} GOAWAYs,`
      + ` ${load.h2.refused.length} refused streams sent again,`
      + ` ${load.h2.notSent} requests moved to a new session; session`
      + ' errors: ' + (sorted(load.h2.sessionErrors)
          .map(([k, v]) => `${k}:${v}`).join(' ') || 'none'));
    p(`slow readers: ${load.slow.pauses} pauses (${(load.slow.pausedMs
      / 1000).toFixed(0)} s), ${(load.slow.bytes / 1048576).toFixed(1)}`
      + ` MiB read, ${load.slow.done} streams complete with [DONE]`);
    const bulk = Object.entries(fakeStat).filter(([n]) => /^bulk/.test(n));
    p(`large events: the bulk providers sent ${sum(bulk, 'events_4k')}`
      + ` over 4 KB (${sum(bulk, 'events_8k')} over 8 KB, the largest`
      + ` ${Math.max(0, ...bulk.map(([, x]) => x?.largest_event ?? 0))} B);`
      + ` the clients got ${load.events4k} over 4 KB (${load.events8k} over`
      + ` 8 KB, the largest ${load.largestEvent} B)`);
    p(`multi-server upstreams (2 of 3 servers black-hole connects, attempt`
      + ` ${MULTI_ATTEMPT_S}s, deadline ${MULTI_DEADLINE_S}s; multi`
      + ' max_fails=1, multi2 max_fails=0):'
      + ` ${sum(field(/^multi/), 'total')} requests, ${multiTimeouts}`
      + ' attempts to them timed out; "no live upstreams": '
      + (sorted(elog.noLive).map(([k, v]) => `${k} x${v}`).join(', ')
         || 'none') + '; connect timeouts: '
      + (sorted(elog.connectTimeouts).map(([k, v]) => `${peer(k)} x${v}`)
          .join(', ') || 'none'));
    p(`failed reloads (${DROPPED} left out, a listen on the taken`
      + ` 127.0.0.1:${busyPort}): ${badReloads.length};`
      + ` ${elog.expected.bindFailed} "bind() failed" and`
      + ` ${elog.expected.bindGaveUp} "still could not bind()" lines`);
    for (const r of badReloads) {
        p(`  at ${r.at.toFixed(0)} s: ${r.problems.length
            ? `PROBLEMS: ${r.problems.join('; ')}`
            : 'the workers stayed, no breaker counter went down'};`
          + ` ${DROPPED} ${r.dropped ?? '-'}`);
    }
    p(`workers killed (SIGKILL): ${kills.map((k) => `${k.pid} at`
      + ` ${k.at.toFixed(0)} s with ${k.ports} client connections`
      + `${k.respawned ? '' : ' (NOT replaced)'}`).join(', ') || 'none'};`
      + ` requests on their connections: ${load.killed.total} failed,`
      + ` ${load.killed.ok} ok (` + (sorted(load.killed.reasons)
          .map(([k, v]) => `${k} x${v}`).join(', ') || 'none') + ');'
      + ` expected log lines: ${elog.expected.killExit} "exited on signal`
      + ` 9", ${elog.expected.killLock} "was locked by"`);
    p('');

    const badRequests = Object.values(fakeStat)
        .reduce((a, x) => a + (x?.bad_requests ?? 0), 0);

    p('faults injected by the fake providers:');
    for (const [name, s] of Object.entries(fakeStat)) {
        if (!s) {
            continue;
        }
        p(`  ${name}: ${s.requests} requests, ${s.outages} outages`
          + ` (${s.refused_outages} with the listener closed)`
          + (s.bad_requests ? `, ${s.bad_requests} BAD REQUESTS` : ''));
        p('    ' + sorted(s.faults).map(([k, v]) => `${k}:${v}`)
            .join(' '));
        for (const b of s.bad_samples ?? []) {
            p(`    a bad request: ${JSON.stringify(b).slice(0, 600)}`);
        }
    }
    p(`chaos: ${reloads.length} reloads (SIGHUP), Redis killed`
      + ` ${redisStats.kills} times and restarted ${redisStats.restarts};`
      + ` error log: ${elog.redisLost} lost Redis connections,`
      + ` ${elog.redisConnect} failed connects; ${elog.refused} provider`
      + ` connections refused; ${elog.streamCuts} streams failed after`
      + ' their first content');
    p('error log lines by level: ' + sorted(elog.levels)
        .map(([k, v]) => `${k}:${v}`).join(' '));
    p('');

    p(table([
        ['memory and fds', `first ${WINDOW}s (from ${WARMUP}s)`,
         `last ${WINDOW}s`, 'growth', 'bound'],
        ['worker RSS (sum of 2)', kib(first.rss), kib(last.rss),
         `${drss.toFixed(2)} MiB`, `< ${RSS_MIB} MiB`],
        ['worker open fds (sum)', first.fds.toFixed(1), last.fds.toFixed(1),
         dfds.toFixed(1), '(follows the load)'],
        ['  files, pipes, CLOSE_WAIT', first.steady.toFixed(1),
         last.steady.toFixed(1), dsteady.toFixed(1), `< ${FDS}`],
        ['master RSS', kib(first.mrss), kib(last.mrss),
         `${dmrss.toFixed(2)} MiB`, `< ${RSS_MIB} MiB`],
        ['master open fds', first.mfds.toFixed(1), last.mfds.toFixed(1),
         dmfds.toFixed(1), `< ${FDS}`],
        ['samples', first.n, last.n, '', ''],
    ]));
    p(`idle workers' open fds: ${idle.base.fds} after the start,`
      + ` ${idle.end.fds} after the run once their connections closed`
      + ` (their Redis connections may stay: +${REDIS_FDS})`);

    if (left > 2) {
        p('  by kind, after the run: ' + sorted(idle.end.kinds)
            .map(([k, v]) => `${k} x${v}`).join(', '));
    }

    p(`old workers: the longest one lived ${old.toFixed(0)} s after its`
      + ` reload (${oldWorkers.size} seen)`);
    p(`keep-alive connections closed by nginx as a request was sent (sent`
      + ` again): ${load.kaRetries.length}, ${unexplained} of them away from`
      + ' a reload');
    p(`new connections nginx closed answering nothing (sent again):`
      + ` ${fresh.length}, ${freshAway} of them away from a reload`);
    p('');

    if (load.failed) {
        p('failed requests by client profile, answering provider and'
          + ' X-LLM-Cache, and the first of each profile:');
        for (const [n, x] of Object.entries(P).filter(([, y]) => y.failed)) {
            p(`  ${n}: ` + sorted(x.failedBy).map(([k, v]) => `${k} x${v}`)
                .join(', '));
            for (const f of x.samples.slice(0, 3)) {
                p('    ' + JSON.stringify(f).slice(0, 1500));
            }
        }
        p('');
    }

    if (elog.badCount) {
        p('bad error log lines, by kind (count, the first of each):');
        for (const [, x] of Object.entries(elog.badKinds)
            .sort((a, b) => b[1].n - a[1].n))
        {
            p(`  x${x.n}: ${x.first.slice(0, 600)}`);
        }
        p('');
    }

    const coverage = load.cache.HIT > 0 && load.cache.MISS > 0
        && load.fellBack > 0 && opened > 0
        && (RELOAD_EVERY === 0 || reloads.length > 0)
        && elog.refused > 0 && elog.streamCuts > 0
        && (REDIS_EVERY === 0 || redisStats.restarts > 0)
        && Object.values(fakeStat).some((s) => s?.outages > 0)
        && (!FIELD || (sum(field(/h2$/), 'ok') > 0 && load.slow.pauses > 0
                       && load.events8k > 0 && multiTimeouts > 0))
        && (KILLS <= 0 || load.killed.ports > 0);

    const criteria = [
        ['zero failed client requests', load.failed === 0,
         `${load.failed} failed: ` + (sorted(load.failures)
             .map(([k, v]) => `${k} x${v}`).join(', ') || 'none')],
        ['zero stream errors although a healthy provider existed before'
         + ' commit', healthyErrors + earlyErrors === 0,
         `${healthyErrors} from ${RELIABLE.join(', ')},`
         + ` ${earlyErrors} before content`],
        ...(!FIELD ? [] : [
            ['HTTP/2 clients: zero failed',
             sum(field(/h2$/), 'failed') === 0,
             `${sum(field(/h2$/), 'failed')} of`
             + ` ${sum(field(/h2$/), 'total')}: `
             + (reasons(field(/h2$/)) || 'none')],
            ['slow readers (sndbuf=8k, HTTP/2): every stream whole, with'
             + ' [DONE]', sum(field(/^slow/), 'failed') === 0,
             `${sum(field(/^slow/), 'failed')} of`
             + ` ${sum(field(/^slow/), 'total')}: `
             + (reasons(field(/^slow/)) || 'none')],
            ['large events (bulk providers, up to 14 KB): zero failed',
             sum(field(/^(big|slow)/), 'failed') === 0,
             `${sum(field(/^(big|slow)/), 'failed')} of`
             + ` ${sum(field(/^(big|slow)/), 'total')}: `
             + (reasons(field(/^(big|slow)/)) || 'none')],
            [`multi-server upstreams with black holes: zero failed, every`
             + ` answer within ${MULTI_DEADLINE_S}s (+${DEADLINE_MARGIN_S}s)`,
             sum(field(/^multi/), 'failed') === 0,
             `${sum(field(/^multi/), 'failed')} of`
             + ` ${sum(field(/^multi/), 'total')}: `
             + (reasons(field(/^multi/)) || 'none')],
            ['no upstream server marked down by cancelled attempts (no'
             + ' "no live upstreams")', noLive === 0, `${noLive}`],
        ]),
        ...(BAD_RELOAD_EVERY <= 0 ? [] : [
            ['failed reloads: the running workers stay, breaker state'
             + ' kept', badReloads.length > 0
             && badReloads.every((r) => r.problems.length === 0),
             `${badReloads.filter((r) => r.problems.length).length} of`
             + ` ${badReloads.length} with problems`],
        ]),
        ...(KILLS <= 0 ? [] : [
            ['killed workers replaced by the master',
             kills.length === KILLS && kills.every((k) => k.respawned),
             `${kills.filter((k) => k.respawned).length} of ${KILLS}`],
        ]),
        ['new connections closed unanswered only at a reload (each sent'
         + ' again)', freshAway === 0,
         `${fresh.length}, ${freshAway} away from a reload`],
        ['the providers got only well-formed requests (method, path, JSON,'
         + ' headers)', badRequests === 0, `${badRequests} bad`],
        ['zero "exited on signal", [alert], [crit], [emerg], "zero size'
         + ' buf" lines (but our SIGKILLs\' and failing reloads\')',
         elog.badCount === 0, `${elog.badCount}`],
        [`worker RSS flat (growth < ${RSS_MIB} MiB)`,
         first.n > 0 && last.n > 0 && drss < RSS_MIB,
         `${drss.toFixed(2)} MiB`],
        [`worker fds flat (files, pipes, CLOSE_WAIT: growth < ${FDS})`,
         first.n > 0 && last.n > 0 && dsteady < FDS, dsteady.toFixed(1)],
        ['no fd left open: idle workers after the run as after the start',
         left <= REDIS_FDS, `${left > 0 ? '+' : ''}${left}`],
        ['master RSS and fds flat', dmrss < RSS_MIB && dmfds < FDS,
         `${dmrss.toFixed(2)} MiB, ${dmfds.toFixed(1)} fds`],
        [`old workers exit within ${OLD_WORKER_S} s of a reload`,
         old <= OLD_WORKER_S, `${old.toFixed(0)} s`],
        ['nginx stops gracefully (SIGQUIT) after the run', shutdown,
         shutdown ? 'yes' : 'no'],
        ['no keep-alive connection closed away from a reload',
         unexplained === 0, `${unexplained}`],
        ['the run exercised HIT, MISS, fallback, breaker opening,'
         + ' refusals, cuts after commit, reloads, Redis restarts'
         + (FIELD ? ', HTTP/2, slow readers, events > 8 KB, attempts'
                    + ' timed out on the multi-server upstream' : '')
         + (KILLS > 0 ? ', a killed worker with client connections' : ''),
         coverage,
         coverage ? 'yes' : 'no'],
    ];

    p(table([['criterion', 'result', 'value'],
             ...criteria.map(([c, ok, v]) => [c, ok ? 'PASS' : 'FAIL', v])]));
    p('');

    const pass = criteria.every(([, ok]) => ok);
    p(`soak: ${pass ? 'PASSED' : 'FAILED'}; logs, configuration and`
      + ` summary in ${DIR}`);

    return { text: out.join('\n'), pass };
}


// ---------------------------------------------------------------- main

async function main() {
    if (SECONDS < WARMUP + 2 * WINDOW) {
        throw new Error(`SOAK_SECONDS must be at least ${WARMUP + 2 * WINDOW}`
                        + ` (SOAK_WARMUP + 2 x SOAK_WINDOW)`);
    }

    if (!fs.existsSync(MODULE)) {
        throw new Error(`${MODULE} not found: run make build`);
    }

    fs.rmSync(DIR, { recursive: true, force: true });
    for (const d of ['conf', 'logs', 'tmp', 'redis', 'pids']) {
        fs.mkdirSync(`${DIR}/${d}`, { recursive: true });
    }

    log(`soak: ${SECONDS} s, ${CLIENTS} clients, seed ${SEED}, in ${DIR}`);

    nginxVersionOf();

    redisPort = await freePort();
    nginxPort = await freePort();
    h2Port = await freePort();
    slowPort = await freePort();

    await busyStart();
    await blackholeStart();
    log(`black holes (connects hang) on 127.0.0.1:${blackholes.join(', :')};`
        + ` 127.0.0.1:${busyPort} taken for the failing reloads`);

    await redisStart();
    log(`redis-server on 127.0.0.1:${redisPort}`);

    for (const [i, p] of PROVIDERS.entries()) {
        await fakeStart(p, i);
    }
    log('fake providers: ' + PROVIDERS.map((p) =>
        `${p.name} (${p.format}${p.flaky ? ', flaky' : ''}`
        + `${p.bulk ? ', bulk' : ''}${p.late ? ', late' : ''}) `
        + `:${fakes.get(p.name).port}`).join(', '));

    await nginxStart();
    await sleep(1000);
    const idleBase = await idleFds(null, 10000);
    log(`nginx ${nginxVersion} ${NGINX} (master ${master}) on 127.0.0.1:`
        + `${nginxPort} (HTTP/2 :${h2Port}, sndbuf=8k :${slowPort}),`
        + ` workers with ${idleBase?.fds} open fds`);

    const profiles = clientProfiles();
    log('clients: ' + profiles.map((p) => `${p.clients} ${p.name}`)
        .join(', '));

    const load = track('load', fork(`${here}/load.mjs`, [JSON.stringify({
        seed: SEED, reliable: RELIABLE, abortShare: 0.01, profiles,
    })], { cwd: DIR, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));

    loadProc = load;

    t0 = Date.now();

    const finalStats = new Promise((resolve) => {
        load.on('message', (m) => {
            if (m.progress) {
                const g = m.progress;
                const w = samples[samples.length - 1];
                log(`${g.total} requests (${g.rps.toFixed(0)}/s),`
                    + ` ${g.failed} failed, ${g.interrupted} interrupted`
                    + ` after commit, ${g.killed} on killed workers;`
                    + ` workers ${w ? (w.rss / 1024)
                        .toFixed(1) : '-'} MiB, ${w?.fds ?? '-'} fds;`
                    + ` redis ${children.has('redis') ? 'up' : 'DOWN'};`
                    + ` log alerts ${elog.badCount}`);
            }
            if (m.killAck) {
                killAcked?.();
            }
            if (m.final) {
                resolve(m.final);
            }
        });
    });

    load.on('exit', (code) => {
        if (!finishing) {
            abort(`the load client exited (${code}) during the run`);
        }
    });

    const timers = [
        setInterval(sample, SAMPLE_MS),
        setInterval(pollStatus, SAMPLE_MS),
        setInterval(scanLog, SAMPLE_MS),
    ];

    const chaosDone = chaos();

    let redisCycle = null;

    if (REDIS_EVERY > 0) {
        redisCycle = (async () => {
            // down from 20 s into each period, for REDIS_DOWN s
            for (let k = 0; ; k++) {
                const at = k * REDIS_EVERY + 20;

                if (at + REDIS_DOWN > SECONDS - 5) {
                    return;
                }

                await sleep(t0 + at * 1000 - Date.now());
                await redisKill();
                log('redis-server killed (SIGKILL)');
                await sleep(REDIS_DOWN * 1000);
                await redisStart();
                redisStats.restarts++;
                log('redis-server restarted');
            }
        })();
    }

    await sleep(SECONDS * 1000);

    await chaosDone;
    await redisCycle;

    log('time is up: stopping the clients');
    finishing = true;
    load.send('stop');

    const stats = await Promise.race([finalStats, sleep(180000)]);
    if (!stats) {
        throw new Error('the load client did not finish within 180 s');
    }

    // the old workers of the last reload: wait for them to go
    for (let i = 0; i < OLD_WORKER_S && [...oldWorkers.values()]
        .some((o) => Date.now() - o.last < SAMPLE_MS * 1.5); i++)
    {
        await sleep(1000);
    }

    await pollStatus();
    timers.forEach(clearInterval);
    sample();

    log('waiting for the idle workers to close every connection');
    const idleEnd = await idleFds(idleBase, 40000);

    const fakeStat = {};
    for (const [name, f] of fakes) {
        fakeStat[name] = await fakeStats(f.proc);
    }

    // graceful stop
    const nginx = children.get('nginx');
    process.kill(master, 'SIGQUIT');
    const shutdown = await exited(nginx, 30000)
        && nginx.exitCode === 0;
    scanLog();

    // what nginx wrote before its error log was open
    fs.readFileSync(`${DIR}/logs/nginx.stderr`, 'utf8').split('\n')
        .forEach(bad);

    const s = summarize(stats, fakeStat, oldWorkerMax, shutdown,
                        { base: idleBase, end: idleEnd });

    fs.writeFileSync(`${DIR}/summary.txt`, s.text + '\n');
    fs.writeFileSync(`${DIR}/stats.json`, JSON.stringify({
        load: stats, fakes: fakeStat, samples, status: lastStatus,
        breaker, elog: { ...elog, partial: undefined }, reloads,
        redis: redisStats, badReloads, kills, nginx: nginxVersion,
    }, null, 1));
    console.log(s.text);

    await cleanup();
    process.exit(s.pass ? 0 : 1);
}

main().catch((e) => abort(e.stack ?? String(e)));
