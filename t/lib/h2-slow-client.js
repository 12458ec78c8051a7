// An HTTP/2 client that reads slowly, for LLMStream's /client/ route:
//   node h2-slow-client.js PORT PATH STALL READ EVERY < body
// POSTs the body (JSON) to 127.0.0.1:PORT PATH over HTTP/2 with prior
// knowledge and a 4 KiB stream window, waits STALL seconds, then reads
// READ bytes every EVERY seconds (the window opens only as it reads),
// and prints the status, a blank line and the body it received.

'use strict';

const http2 = require('http2');

const [port, path, stall, size, every] = process.argv.slice(2);
const chunks = [];

process.stdin.on('data', (d) => chunks.push(d));
process.stdin.on('end', () => {
    const session = http2.connect(`http://127.0.0.1:${port}`,
                                  { settings: { initialWindowSize: 4096 } });
    const req = session.request({ ':method': 'POST', ':path': path,
                                  'content-type': 'application/json' });
    const body = [];
    let status = 502;

    session.on('error', () => {});
    req.on('error', () => {});
    req.on('response', (h) => { status = h[':status']; });

    req.end(Buffer.concat(chunks));
    req.pause();

    const step = () => {
        let n = 0;
        let b;

        while (n < Number(size) && (b = req.read(512)) !== null) {
            body.push(b);
            n += b.length;
        }

        timer = setTimeout(step, Number(every) * 1000);
    };

    let timer = setTimeout(step, Number(stall) * 1000);

    req.on('close', () => {
        clearTimeout(timer);
        process.stdout.write(`${status}\n\n`);
        process.stdout.write(Buffer.concat(body));
        session.close();
    });
});
