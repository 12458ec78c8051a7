// Black holes for connects (node util/soak/blackhole.mjs PORT...), forked
// by soak.mjs: a listening socket on each 127.0.0.1:PORT with a backlog of
// one that is never accepted from. Once soak.mjs has filled the accept
// queue with connections of its own, the kernel drops every further SYN:
// a connect() to the port neither succeeds nor is refused, it hangs (as to
// a host that went away), and works offline on the loopback. The event
// loop is blocked for good once the sockets listen, so nothing ever
// accepts; SIGTERM and SIGKILL end it as usual.

import net from 'node:net';

const ports = process.argv.slice(2).map(Number);
let listening = 0;

for (const port of ports) {
    net.createServer().listen({ port, host: '127.0.0.1', backlog: 1 }, () => {
        if (++listening === ports.length) {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
        }
    });
}
