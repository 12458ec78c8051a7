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
//   SOAK_WINDOW  60 (30 when SOAK_SECONDS < 600): the first and last
//                windows whose averages of worker RSS and fds are compared
//   SOAK_WARMUP  15 (s before the first window)
//   SOAK_RSS_MIB 5, SOAK_FDS 20: the most RSS and fd growth that is flat
//   SOAK_BREAK_HEALTHY 0: 1 makes the "healthy" provider flaky too, to see
//                the soak fail (a check of the checks)

import { spawn, fork } from 'node:child_process';
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
const WINDOW = num(env.SOAK_WINDOW, SECONDS < 600 ? 30 : 60);
const WARMUP = num(env.SOAK_WARMUP, 15);
const RSS_MIB = num(env.SOAK_RSS_MIB, 5);
const FDS = num(env.SOAK_FDS, 20);
const SAMPLE_MS = 2000;
const OLD_WORKER_S = 30;

const HEALTHY = 'healthy';
const PROVIDERS = [
    { name: 'flaky1', format: 'openai', flaky: true },
    { name: 'flaky2', format: 'openai', flaky: true },
    { name: 'anthropic_flaky', format: 'anthropic', flaky: true },
    { name: HEALTHY, format: 'openai',
      flaky: env.SOAK_BREAK_HEALTHY === '1' },
];

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


// ---------------------------------------------------------------- nginx

let nginxPort = 0;

function nginxConf() {
    const port = (n) => fakes.get(n).port;

    return `# written by util/soak/soak.mjs
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
    llm_provider anthropic_flaky uri=/_llm/anthropic format=anthropic
                 model=claude-soak api_key=sk-soak-anthropic;
    # the last resort: its own timeout, so a busy machine cannot make it
    # miss the 2s of the others
    llm_provider ${HEALTHY} uri=/_llm/healthy timeout=30s
                 api_key=sk-soak-healthy;

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

    server {
        listen 127.0.0.1:${nginxPort};

        location = /v1/chat/completions {
            llm_fallback_chain flaky1 flaky2 anthropic_flaky ${HEALTHY};
            llm_fallback_on error timeout invalid_response http_5xx
                            http_429;
            llm_attempt_timeout 2s;
            llm_stream_idle_timeout 3s;
            llm_cache redis=127.0.0.1:${redisPort} ttl=5s stale=30s
                      timeout=200ms;
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
            proxy_read_timeout 10s;
        }

        location = /_llm/healthy {
            internal;
            proxy_pass http://healthy/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
        }
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
    const proc = spawn(NGINX, ['-p', `${DIR}/`, '-c', conf],
                       { cwd: DIR, stdio: ['ignore', out, out] });
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
    const names = new Map([[nginxPort, 'client'], [redisPort, 'redis'],
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
        const peer = lport === nginxPort ? 'client'
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

// the idle workers' fds: at start, and after the run once every
// connection is closed (upstream keep-alive included: keepalive_timeout
// 20s); waits up to MS for them to come down to BASE
async function idleFds(base, ms) {
    const end = Date.now() + ms;
    let w = null;

    for (;;) {
        w = workerSum(nginxProcs(tcpSockets()).workers) ?? w;

        if ((w && (!base || w.fds <= base.fds + 2)) || Date.now() > end) {
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
               refused: 0 };

const BAD = /\[(alert|crit|emerg)\]|exited on signal/;

function bad(line) {
    if (BAD.test(line)) {
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
    const healthyErrors = load.failures['stream: error event from the '
                                        + 'healthy provider'] ?? 0;
    const earlyErrors = load.failures['stream: error event before any '
                                      + 'content'] ?? 0;

    // keep-alive races: nginx closing idle connections at a reload
    const unexplained = load.kaRetries.filter((t) =>
        !reloads.some((r) => t >= r - 1000 && t <= r + 15000)).length;

    const opened = Object.values(lastStatus?.providers ?? {})
        .reduce((a, x) => a + (x.opened ?? 0), 0);

    p('');
    p(`==================== soak summary (${SECONDS} s, ${CLIENTS} clients,`
      + ` seed ${SEED}) ====================`);
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
      + ' (their Redis connections may stay: +2)');

    if (left > 2) {
        p('  by kind, after the run: ' + sorted(idle.end.kinds)
            .map(([k, v]) => `${k} x${v}`).join(', '));
    }

    p(`old workers: the longest one lived ${old.toFixed(0)} s after its`
      + ` reload (${oldWorkers.size} seen)`);
    p(`keep-alive connections closed by nginx as a request was sent (sent`
      + ` again): ${load.kaRetries.length}, ${unexplained} of them away from`
      + ' a reload');
    p('');

    if (load.samples.length) {
        p('first failed requests:');
        for (const f of load.samples.slice(0, 10)) {
            p('  ' + JSON.stringify(f).slice(0, 1500));
        }
        p('');
    }

    if (elog.bad.length) {
        p('bad error log lines:');
        elog.bad.forEach((l) => p(`  ${l}`));
        p('');
    }

    const coverage = load.cache.HIT > 0 && load.cache.MISS > 0
        && load.fellBack > 0 && opened > 0
        && (RELOAD_EVERY === 0 || reloads.length > 0)
        && elog.refused > 0 && elog.streamCuts > 0
        && (REDIS_EVERY === 0 || redisStats.restarts > 0)
        && Object.values(fakeStat).some((s) => s?.outages > 0);

    const criteria = [
        ['zero failed client requests', load.failed === 0,
         `${load.failed} failed: ` + (sorted(load.failures)
             .map(([k, v]) => `${k} x${v}`).join(', ') || 'none')],
        ['zero stream errors although a healthy provider existed before'
         + ' commit', healthyErrors + earlyErrors === 0,
         `${healthyErrors} from ${HEALTHY}, ${earlyErrors} before content`],
        ['zero "exited on signal", [alert], [crit], [emerg] lines',
         elog.badCount === 0, `${elog.badCount}`],
        [`worker RSS flat (growth < ${RSS_MIB} MiB)`,
         first.n > 0 && last.n > 0 && drss < RSS_MIB,
         `${drss.toFixed(2)} MiB`],
        [`worker fds flat (files, pipes, CLOSE_WAIT: growth < ${FDS})`,
         first.n > 0 && last.n > 0 && dsteady < FDS, dsteady.toFixed(1)],
        ['no fd left open: idle workers after the run as after the start',
         left <= 2, `${left > 0 ? '+' : ''}${left}`],
        ['master RSS and fds flat', dmrss < RSS_MIB && dmfds < FDS,
         `${dmrss.toFixed(2)} MiB, ${dmfds.toFixed(1)} fds`],
        [`old workers exit within ${OLD_WORKER_S} s of a reload`,
         old <= OLD_WORKER_S, `${old.toFixed(0)} s`],
        ['nginx stops gracefully (SIGQUIT) after the run', shutdown,
         shutdown ? 'yes' : 'no'],
        ['no keep-alive connection closed away from a reload',
         unexplained === 0, `${unexplained}`],
        ['the run exercised HIT, MISS, fallback, breaker opening,'
         + ' refusals, cuts after commit, reloads, Redis restarts',
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

    redisPort = await freePort();
    nginxPort = await freePort();

    await redisStart();
    log(`redis-server on 127.0.0.1:${redisPort}`);

    for (const [i, p] of PROVIDERS.entries()) {
        await fakeStart(p, i);
    }
    log('fake providers: ' + PROVIDERS.map((p) =>
        `${p.name} (${p.format}${p.flaky ? ', flaky' : ''}) `
        + `:${fakes.get(p.name).port}`).join(', '));

    await nginxStart();
    await sleep(1000);
    const idleBase = await idleFds(null, 10000);
    log(`nginx ${NGINX} (master ${master}) on 127.0.0.1:${nginxPort},`
        + ` workers with ${idleBase?.fds} open fds`);

    const load = track('load', fork(`${here}/load.mjs`, [JSON.stringify({
        port: nginxPort, clients: CLIENTS, seed: SEED, healthy: HEALTHY,
        streamShare: 0.5, uniqueShare: 0.5, pool: 200, abortShare: 0.01,
    })], { cwd: DIR, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));

    t0 = Date.now();

    const finalStats = new Promise((resolve) => {
        load.on('message', (m) => {
            if (m.progress) {
                const g = m.progress;
                const w = samples[samples.length - 1];
                log(`${g.total} requests (${g.rps.toFixed(0)}/s),`
                    + ` ${g.failed} failed, ${g.interrupted} interrupted`
                    + ` after commit; workers ${w ? (w.rss / 1024)
                        .toFixed(1) : '-'} MiB, ${w?.fds ?? '-'} fds;`
                    + ` redis ${children.has('redis') ? 'up' : 'DOWN'};`
                    + ` log alerts ${elog.badCount}`);
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

    const reloader = RELOAD_EVERY > 0 && setInterval(() => {
        reloads.push(Date.now());
        process.kill(master, 'SIGHUP');
    }, RELOAD_EVERY * 1000);

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

    clearInterval(reloader);
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
        redis: redisStats,
    }, null, 1));
    console.log(s.text);

    await cleanup();
    process.exit(s.pass ? 0 : 1);
}

main().catch((e) => abort(e.stack ?? String(e)));
