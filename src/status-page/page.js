'use strict';
(function () {
  var query = new URLSearchParams(location.search);
  var every = Math.max(0.5, Number(query.get('refresh')) || 3) * 1000;
  var seq = 0;
  var shown = null;
  var dash = '\u2014';

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function pct(a, b) { return b > 0 ? (100 * a / b).toFixed(1) + '%' : dash; }
  function ms(v) { return v >= 1000 ? v / 1000 + ' s' : v + ' ms'; }

  function text(v) {
    if (v === null || v === undefined) { return dash; }
    if (isNum(v)) { return String(v); }
    if (typeof v !== 'object') { return String(v); }
    return Object.keys(v).map(function (k) {
      return k + ' ' + text(v[k]);
    }).join(', ');
  }

  function cell(tr, key, content, cls) {
    var td = el('td', cls);
    td.dataset.k = key;
    if (content instanceof Node) { td.appendChild(content); }
    else { td.textContent = content; }
    tr.appendChild(td);
    return td;
  }

  function card(title, rows, id) {
    var c = el('div', 'card'), dl = el('dl');
    c.id = id;
    c.appendChild(el('h2', null, title));
    rows.forEach(function (r) {
      var dd = el('dd', null, r[1]);
      dd.dataset.k = r[0];
      dl.appendChild(el('dt', null, r[2] || r[0]));
      dl.appendChild(dd);
    });
    c.appendChild(dl);
    return c;
  }

  function reasons(f) {
    var ul = el('ul', 'reasons');
    Object.keys(f || {}).forEach(function (k) {
      if (!(f[k] > 0)) { return; }
      var li = el('li', null, (k === 'open' ? 'skipped' : k) + ' ' + f[k]);
      li.dataset.reason = k;
      li.dataset.n = f[k];
      ul.appendChild(li);
    });
    if (!ul.firstChild) { ul.appendChild(el('li', 'none', 'none')); }
    return ul;
  }

  function histogram(h, bounds) {
    var wrap = el('div'), box = el('div', 'hist');
    var buckets = (h && h.buckets) || [];
    var max = Math.max.apply(null, buckets.concat([1]));
    buckets.forEach(function (n, i) {
      var bar = el('span', 'bar');
      bar.dataset.n = n;
      bar.title = (i < bounds.length ? '\u2264 ' + ms(bounds[i])
                   : '> ' + ms(bounds[bounds.length - 1])) + ': ' + n;
      bar.style.height = n ? Math.max(6, Math.round(100 * n / max)) + '%'
                           : '0';
      box.appendChild(bar);
    });
    wrap.appendChild(box);
    wrap.appendChild(el('div', 'mean', h && h.count
        ? 'mean ' + Math.round(h.sum / h.count) + ' ms' : 'no attempts'));
    return wrap;
  }

  function summary(d) {
    var s = $('summary'), q = d.requests || {}, c = d.cache || {};
    var lookups = (c.hit || 0) + (c.miss || 0) + (c.stale || 0)
                  + (c.error || 0);
    var cards = [
      card('Requests', [['total', q.total], ['2xx', q['2xx']],
                        ['4xx', q['4xx']], ['5xx', q['5xx']]], 'requests'),
      card('Cache', [['hit_ratio', pct(c.hit || 0, lookups), 'hit ratio'],
                     ['hit', c.hit], ['miss', c.miss], ['stale', c.stale],
                     ['bypass', c.bypass], ['error', c.error]], 'cache')
    ];
    if (d.breaker) {
      cards.push(card('Circuit breaker', [
        ['failures', d.breaker.failures + ' in ' + ms(d.breaker.window_ms),
         'opens after'],
        ['cooldown', ms(d.breaker.cooldown_ms) + ' \u2026 '
                     + ms(d.breaker.max_cooldown_ms)],
        ['probes', d.breaker.probes, 'trials']], 'breaker'));
    }
    s.replaceChildren.apply(s, cards);
  }

  function limits(d) {
    var box = $('limits');
    if (!d.limits || typeof d.limits !== 'object') {
      box.hidden = true;
      return;
    }
    var t = el('table'), tb = el('tbody');
    Object.keys(d.limits).forEach(function (k) {
      var tr = el('tr');
      tr.dataset.limit = k;
      cell(tr, 'name', k, 'name');
      cell(tr, 'value', text(d.limits[k]), 'list');
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    box.replaceChildren(el('h2', null, 'Limits'), t);
    box.hidden = false;
  }

  function providers(d) {
    var names = Object.keys(d.providers || {});
    var list = names.map(function (n) { return d.providers[n]; });
    var cost = list.some(function (p) { return 'cost' in p; });
    var probe = list.some(function (p) { return 'probe' in p; });
    var bounds = d.attempt_duration_buckets_ms || [];
    var cols = ['Provider', 'State', 'Retry in', 'Consecutive failures',
                'Opened', 'Attempts', 'Success rate', 'Failures',
                'Tokens in / out'];
    if (cost) { cols.push('Cost'); }
    if (probe) { cols.push('Probe'); }
    cols.push('Latency');

    var head = document.querySelector('#providers thead tr');
    head.replaceChildren.apply(head, cols.map(function (c) {
      return el('th', c === 'Failures' || c === 'Latency' ? 'list' : null, c);
    }));

    var rows = names.map(function (name) {
      var p = d.providers[name], tr = el('tr'), st = el('span');
      tr.dataset.provider = name;
      cell(tr, 'name', name, 'name');
      st.className = 'state s-' + p.state;
      st.textContent = p.state.replace('_', '-');
      cell(tr, 'state', st).dataset.state = p.state;
      cell(tr, 'retry_in', p.state === 'open' ? p.retry_in + ' s' : dash);
      cell(tr, 'consecutive_failures', p.consecutive_failures);
      cell(tr, 'opened', p.opened);
      cell(tr, 'attempts', p.attempts);
      cell(tr, 'success_rate', pct(p.successes, p.attempts))
        .dataset.successes = p.successes;
      cell(tr, 'failures', reasons(p.failures), 'list');
      cell(tr, 'tokens', (p.tokens ? p.tokens.prompt : 0) + ' / '
                         + (p.tokens ? p.tokens.completion : 0));
      if (cost) {
        cell(tr, 'cost', isNum(p.cost) ? p.cost.toFixed(4) : text(p.cost));
      }
      if (probe) {
        cell(tr, 'probe', p.probe && p.probe.state ? p.probe.state
                                                   : text(p.probe));
      }
      cell(tr, 'latency', histogram(p.attempt_duration_ms, bounds), 'list');
      return tr;
    });

    var body = document.querySelector('#providers tbody');
    body.replaceChildren.apply(body, rows);
  }

  function render(d) {
    $('zone').textContent = 'zone ' + d.zone;
    summary(d);
    providers(d);
    limits(d);
  }

  function clock(t) { return t.toTimeString().slice(0, 8); }

  function tick() {
    fetch('?format=json', { cache: 'no-store', credentials: 'same-origin',
                            headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) { throw new Error('HTTP ' + res.status); }
        return res.json();
      })
      .then(function (d) {
        render(d);
        shown = new Date();
        var u = $('updated');
        u.className = '';
        u.textContent = 'updated ' + clock(shown) + ', every '
                        + every / 1000 + ' s';
        u.dataset.seq = ++seq;
      })
      .catch(function (e) {
        var u = $('updated');
        u.className = 'stale';
        u.textContent = 'update failed (' + e.message + ')'
                        + (shown ? ', shown: ' + clock(shown) : '');
      })
      .then(function () { setTimeout(tick, every); });
  }

  tick();
}());
