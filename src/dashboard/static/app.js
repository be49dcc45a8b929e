// The blobasaur dashboard: plain ES module, no build step, no dependencies. Every value shown comes
// from the server's /api/ (JSON) and is put in the page as text, never as markup.
const main = document.getElementById('main');
const statusEl = document.getElementById('status');
let timer = null;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function api(path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json', 'x-blobasaur-dashboard': '1' }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  if (!res.ok) {
    let msg = `${res.status}`;
    try { msg = (await res.json()).error; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return res.json();
}

const fmt = {
  bytes(n) {
    if (n === null || n === undefined) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`;
  },
  num(n) { return n === null || n === undefined ? '–' : n >= 100 ? Math.round(n).toLocaleString('en') : (Math.round(n * 10) / 10).toString(); },
  ms(n) { return n === null || n === undefined ? '–' : n < 1 ? `${Math.round(n * 1000)} µs` : `${fmt.num(n)} ms`; },
  time(ms) { return ms === null || ms === undefined ? '–' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'); },
  dur(s) { const d = Math.floor(s / 86400), hh = Math.floor(s / 3600) % 24, mm = Math.floor(s / 60) % 60; return d > 0 ? `${d}d ${hh}h` : hh > 0 ? `${hh}h ${mm}m` : `${mm}m ${s % 60}s`; },
  pct(r) { return r === null || r === undefined ? '–' : `${(r * 100).toFixed(1)} %`; },
};

/** A line chart drawn as SVG: one polyline per series, the y axis from 0 to the largest value. */
function chart(title, history, series, format) {
  const W = 300, H = 90, top = 12, bottom = 14;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('preserveAspectRatio', 'none');
  const line = (x1, y1, x2, y2, cls) => { const l = document.createElementNS(svg.namespaceURI, 'line'); Object.entries({ x1, y1, x2, y2, class: cls }).forEach(([k, v]) => l.setAttribute(k, v)); svg.append(l); };
  const text = (x, y, s, anchor = 'start') => { const t = document.createElementNS(svg.namespaceURI, 'text'); t.setAttribute('x', x); t.setAttribute('y', y); t.setAttribute('text-anchor', anchor); t.textContent = s; svg.append(t); };
  let max = 0;
  for (const s of series) for (const p of history) { const v = s.get(p); if (v !== null && v > max) max = v; }
  const t0 = history.length ? history[0].t : 0, t1 = history.length ? history[history.length - 1].t : 1;
  const x = (t) => (t1 === t0 ? W : ((t - t0) / (t1 - t0)) * W);
  const y = (v) => top + (H - top - bottom) * (1 - (max === 0 ? 0 : v / max));
  line(0, H - bottom, W, H - bottom, 'axis');
  series.forEach((s, i) => {
    const pts = history.filter((p) => s.get(p) !== null).map((p) => `${x(p.t).toFixed(1)},${y(s.get(p)).toFixed(1)}`);
    if (pts.length === 0) return;
    const pl = document.createElementNS(svg.namespaceURI, 'polyline');
    pl.setAttribute('points', pts.join(' '));
    pl.setAttribute('class', `l${i}`);
    svg.append(pl);
  });
  text(2, 10, `max ${format(max)}`);
  text(W - 2, H - 2, history.length > 1 ? `last ${Math.round((t1 - t0) / 1000)} s` : 'collecting…', 'end');
  const last = history[history.length - 1];
  return h('div', { class: 'card' }, h('h3', {}, title), svg,
    h('div', { class: 'legend' }, series.map((s, i) => h('span', { class: `k${i}` }, `${s.name}: ${last ? format(s.get(last)) : '–'}`))));
}

function stat(title, value) { return h('div', { class: 'card' }, h('h3', {}, title), h('div', { class: 'big' }, value)); }

function table(headers, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { class: x.num ? 'num' : null }, x.label ?? x)))),
    h('tbody', {}, rows.length === 0 ? h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'none')) : rows));
}

function td(v, num = false) { return h('td', { class: num ? 'num' : null }, v); }

function setNav(page) {
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === page);
}

// ---- pages --------------------------------------------------------------------------------------

async function overview() {
  const o = await api('/api/overview');
  const hs = o.history;
  const last = hs[hs.length - 1] ?? {};
  main.replaceChildren(
    h('h1', {}, 'Overview'),
    h('p', { class: 'muted', id: 'ident' }, `blobasaur ${o.version} · ${o.mode} · ${o.addr} · data ${o.dataDir} · up ${fmt.dur(o.uptimeSec)}`),
    h('div', { class: 'stats' },
      stat('ops/s', fmt.num(last.opsPerSec ?? 0)),
      stat('clients', String(o.clients)),
      stat('files on disk', fmt.bytes(o.shards.reduce((n, s) => n + s.fileBytes, 0))),
      stat('free inside files', fmt.bytes(o.shards.reduce((n, s) => n + s.freeBytes, 0))),
      stat('commands', o.totalCommands.toLocaleString('en')),
      stat('read cache hit ratio', fmt.pct(o.readCache.hits + o.readCache.misses === 0 ? null : o.readCache.hits / (o.readCache.hits + o.readCache.misses))),
    ),
    h('div', { class: 'grid' },
      chart('Operations per second', hs, [{ name: 'ops/s', get: (p) => p.opsPerSec }], fmt.num),
      chart('Command latency', hs, [{ name: 'p50', get: (p) => p.p50 }, { name: 'p99', get: (p) => p.p99 }], fmt.ms),
      chart('Read cache hit ratio', hs, [{ name: 'hits', get: (p) => p.hitRatio }], fmt.pct),
      chart('Clients', hs, [{ name: 'connected', get: (p) => p.clients }], fmt.num),
      chart('Memory', hs, [{ name: 'rss', get: (p) => p.rssBytes }, { name: 'heap', get: (p) => p.heapBytes }], fmt.bytes),
      chart('Disk', hs, [{ name: 'files', get: (p) => p.fileBytes }, { name: 'free pages', get: (p) => p.freeBytes }, { name: 'WAL', get: (p) => p.walBytes }], fmt.bytes),
      chart('Background work', hs, [{ name: 'vacuum B/s', get: (p) => p.vacuumedBytesPerSec }, { name: 'expired rows swept/s', get: (p) => p.sweptPerSec }], fmt.num),
    ),
    h('h2', {}, 'Shards'),
    table(['shard', { label: 'file', num: true }, { label: 'WAL', num: true }, { label: 'free pages', num: true }, { label: 'queued writes', num: true }, { label: 'committed writes', num: true }, 'auto_vacuum', 'health'],
      o.shards.map((s) => h('tr', {}, td(String(s.shard)), td(fmt.bytes(s.fileBytes), true), td(fmt.bytes(s.walBytes), true), td(fmt.bytes(s.freeBytes), true),
        td(String(s.queueDepth), true), td(s.committedWrites.toLocaleString('en'), true), td(s.autoVacuum),
        td(h('span', { class: `pill ${s.healthy ? 'ok' : 'bad'}` }, s.healthy ? 'ok' : 'failing'))))),
    h('p', { class: 'muted' }, `Background vacuum returned ${fmt.bytes(o.vacuum.bytes)} in ${o.vacuum.steps} steps (longest ${fmt.ms(o.vacuum.longestStepMs)})` +
      `${o.vacuum.lastRunAt ? `, last at ${fmt.time(o.vacuum.lastRunAt)}` : ''}. Expired rows swept: ${o.sweptRows.toLocaleString('en')}.` +
      (o.checkpoints ? ` WAL checkpoints: ${o.checkpoints.completed} (${o.checkpoints.failed} failed).` : '')),
  );
  showFeatures(o.features);
  return 2000;
}

function showFeatures(f) {
  document.querySelector('nav a[data-page=slowlog]').hidden = !f.slowlog;
  document.querySelector('nav a[data-page=cluster]').hidden = !f.cluster;
}

function keyLink(k, type) {
  const href = type === 'hash' ? `#/ns?k=${k.b64}` : `#/key?k=${k.b64}`;
  return h('a', { href }, k.text);
}

async function keysPage(params) {
  const pattern = params.get('pattern') ?? '*';
  const type = params.get('type') ?? '';
  const cursor = params.get('cursor') ?? '';
  const q = new URLSearchParams({ pattern, type, count: '100' });
  if (cursor) q.set('cursor', cursor);
  const r = await api(`/api/keys?${q}`);
  const form = h('form', { class: 'bar', onsubmit: (e) => { e.preventDefault(); const fd = new FormData(e.target); location.hash = `#/keys?${new URLSearchParams({ pattern: fd.get('pattern'), type: fd.get('type') })}`; } },
    h('input', { name: 'pattern', value: pattern, placeholder: 'pattern, e.g. user:*', size: 30 }),
    h('select', { name: 'type' }, ['', 'string', 'hash'].map((t) => h('option', { value: t, selected: t === type }, t === '' ? 'any type' : t === 'hash' ? 'namespace (hash)' : 'blob (string)'))),
    h('button', { type: 'submit' }, 'Scan'));
  const next = r.cursor === null ? null : `#/keys?${new URLSearchParams({ pattern, type, cursor: r.cursor })}`;
  main.replaceChildren(h('h1', {}, 'Keys'), form,
    table(['key', 'type'], r.keys.map((k) => h('tr', {}, td(keyLink(k.key, k.type)), td(k.type === 'hash' ? 'namespace' : 'blob')))),
    h('p', {}, cursor ? h('a', { href: `#/keys?${new URLSearchParams({ pattern, type })}` }, '⟲ from the start') : null, ' ',
      next ? h('a', { href: next, id: 'next' }, 'next page →') : h('span', { class: 'muted' }, 'end of scan')));
  return null;
}

function metaList(m) {
  return h('dl', { class: 'meta' },
    h('dt', {}, 'size'), h('dd', {}, `${fmt.bytes(m.size)} (${m.size.toLocaleString('en')} bytes)`),
    h('dt', {}, 'stored size'), h('dd', {}, `${fmt.bytes(m.storedSize)}${m.codec !== 'none' ? ` (${m.codec}, ${(m.size / Math.max(1, m.storedSize)).toFixed(2)}×)` : ''}`),
    h('dt', {}, 'codec'), h('dd', {}, m.codec),
    h('dt', {}, 'created'), h('dd', {}, fmt.time(m.createdAt)),
    h('dt', {}, 'updated'), h('dd', {}, fmt.time(m.updatedAt)),
    h('dt', {}, 'expires'), h('dd', {}, m.expiresAt === null ? 'never' : fmt.time(m.expiresAt)),
    h('dt', {}, 'version'), h('dd', {}, String(m.version)));
}

const PREVIEW_BYTES = 65536;

function hexdump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = bytes.subarray(i, i + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

async function preview(valueUrl) {
  const res = await fetch(`${valueUrl}&limit=${PREVIEW_BYTES}`);
  if (!res.ok) throw new Error(`value: ${res.status}`);
  const kind = res.headers.get('x-value-kind');
  const size = Number(res.headers.get('x-value-size'));
  const cut = size > PREVIEW_BYTES ? h('p', { class: 'muted' }, `first ${fmt.bytes(PREVIEW_BYTES)} of ${fmt.bytes(size)} shown`) : null;
  if (kind === 'image') {
    // The whole image (not the preview's first bytes), as the browser decodes it.
    return h('div', {}, h('img', { class: 'preview', id: 'preview-image', src: valueUrl, alt: 'stored image' }));
  }
  const buf = new Uint8Array(await res.arrayBuffer());
  if (kind === 'json' || kind === 'text') {
    let text = new TextDecoder().decode(buf);
    if (kind === 'json') { try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* cut JSON: shown as text */ } }
    return h('div', {}, h('pre', { class: 'preview', id: 'preview-text' }, text), cut);
  }
  return h('div', {}, h('pre', { class: 'preview', id: 'preview-hex' }, hexdump(buf.subarray(0, 4096))), size > 4096 ? h('p', { class: 'muted' }, `first 4 KiB of ${fmt.bytes(size)} shown`) : null);
}

async function blobPage(params) {
  const k = params.get('k');
  const ns = params.get('ns');
  const q = new URLSearchParams({ k });
  if (ns) q.set('ns', ns);
  const r = await api(`/api/key?${q}`);
  if (r.type === 'hash') { location.replace(`#/ns?k=${k}`); return null; }
  const valueUrl = `/api/value?${q}`;
  const del = h('button', { class: 'danger', id: 'delete', onclick: async () => {
    if (!confirm(`Delete ${ns ? `field ${r.key.text} of ${r.ns.text}` : `key ${r.key.text}`}? This cannot be undone.`)) return;
    await api('/api/delete', ns ? { k, ns } : { k });
    location.hash = ns ? `#/ns?k=${ns}` : '#/keys';
  } }, 'Delete…');
  main.replaceChildren(
    h('h1', {}, ns ? h('span', {}, h('a', { href: `#/ns?k=${ns}` }, r.ns.text), ' → ', r.key.text) : r.key.text),
    h('p', { class: 'muted' }, ns ? 'field of a namespace' : 'blob'),
    metaList(r.meta),
    h('p', {}, h('a', { href: `${valueUrl}&download=1`, download: true }, 'Download value'), ' ', del),
    h('h2', {}, 'Preview'),
    await preview(valueUrl));
  return null;
}

async function nsPage(params) {
  const ns = params.get('k');
  const cursor = params.get('cursor') ?? '';
  const q = new URLSearchParams({ ns, count: '50' });
  if (cursor) q.set('cursor', cursor);
  const r = await api(`/api/fields?${q}`);
  const del = h('button', { class: 'danger', id: 'delete', onclick: async () => {
    if (!confirm(`Delete the namespace ${r.ns.text} with all its fields? This cannot be undone.`)) return;
    await api('/api/delete', { k: ns });
    location.hash = '#/keys';
  } }, 'Delete namespace…');
  main.replaceChildren(
    h('h1', {}, r.ns.text),
    h('p', { class: 'muted' }, 'namespace (a hash: HSET/HGET fields) ', del),
    table(['field', { label: 'size', num: true }, { label: 'stored', num: true }, 'codec', 'updated', { label: 'version', num: true }, 'expires'],
      r.fields.map((f) => h('tr', {}, td(h('a', { href: `#/key?k=${f.field.b64}&ns=${ns}` }, f.field.text)), td(fmt.bytes(f.meta.size), true), td(fmt.bytes(f.meta.storedSize), true),
        td(f.meta.codec), td(fmt.time(f.meta.updatedAt)), td(String(f.meta.version), true), td(f.meta.expiresAt === null ? 'never' : fmt.time(f.meta.expiresAt))))),
    h('p', {}, r.cursor ? h('a', { href: `#/ns?${new URLSearchParams({ k: ns, cursor: r.cursor })}` }, 'next page →') : h('span', { class: 'muted' }, 'all fields shown')));
  return null;
}

async function clientsPage() {
  const r = await api('/api/clients');
  main.replaceChildren(h('h1', {}, 'Connected clients'),
    table([{ label: 'id', num: true }, 'address', 'name', 'library', { label: 'age', num: true }, { label: 'idle', num: true }, 'last command', { label: 'RESP', num: true }, { label: 'output', num: true }, ''],
      r.clients.map((c) => h('tr', {}, td(String(c.id), true), td(c.addr), td(c.name), td(c.lib), td(fmt.dur(c.ageSec), true), td(fmt.dur(c.idleSec), true), td(c.lastCommand),
        td(String(c.resp), true), td(fmt.bytes(c.outputBytes), true),
        td(h('button', { class: 'link', onclick: async () => { if (confirm(`Close the connection of client ${c.id} (${c.addr})?`)) { await api('/api/clients/kill', { id: c.id }); render(); } } }, 'kill'))))));
  return 3000;
}

async function slowlogPage() {
  const r = await api('/api/slowlog?count=128');
  main.replaceChildren(h('h1', {}, 'Slow log'), h('p', { class: 'muted' }, r.thresholdUs < 0 ? 'off (slowlog-log-slower-than is negative)' : `commands that took ${fmt.ms(r.thresholdUs / 1000)} or more (CONFIG SET slowlog-log-slower-than changes it)`),
    table([{ label: 'id', num: true }, 'when', { label: 'duration', num: true }, 'command', 'client'],
      r.entries.map((e) => h('tr', {}, td(String(e.id), true), td(fmt.time(e.timestamp * 1000)), td(fmt.ms(e.durationUs / 1000), true), td(e.args.join(' ')), td(`${e.client}${e.clientName ? ` (${e.clientName})` : ''}`)))));
  return 5000;
}

const PALETTE = ['#2f6fdb', '#d9622b', '#1e8e3e', '#8e44ad', '#c0392b', '#16a085', '#b7950b', '#7f8c8d'];

async function clusterPage() {
  const r = await api('/api/cluster');
  const color = new Map(r.nodes.map((n, i) => [n.id, PALETTE[i % PALETTE.length]]));
  const segs = [];
  for (const n of r.nodes) for (const [a, b] of n.slots) segs.push({ a, b, n });
  segs.sort((x, y) => x.a - y.a);
  const bar = h('div', { class: 'slotmap', title: 'slots 0..16383' });
  let at = 0;
  const seg = (from, to, bg, title) => { const d = h('div', { title }); d.style.width = `${((to - from + 1) / 16384) * 100}%`; d.style.background = bg; bar.append(d); };
  for (const s of segs) {
    if (s.a > at) seg(at, s.a - 1, '#eee', `${at}-${s.a - 1} unassigned`);
    seg(s.a, s.b, color.get(s.n.id), `${s.a}-${s.b} ${s.n.name}`);
    at = s.b + 1;
  }
  if (at <= 16383) seg(at, 16383, '#eee', `${at}-16383 unassigned`);
  const s = r.summary;
  main.replaceChildren(h('h1', {}, 'Cluster'),
    h('p', {}, h('span', { class: `pill ${s.state === 'ok' ? 'ok' : 'bad'}` }, `cluster_state: ${s.state}`), ` ${s.assigned} of 16384 slots assigned, ${s.pfail} possibly failing, ${s.fail} failed, ${s.size} nodes with slots`),
    h('h2', {}, 'Slot map'), bar,
    table(['', 'node', 'address', 'slots', 'state', 'link', { label: 'last heard', num: true }],
      r.nodes.map((n) => { const sw = h('span', {}, '■'); sw.style.color = color.get(n.id); return h('tr', {}, td(sw), td(`${n.name}${n.myself ? ' (this node)' : ''}`), td(n.addr), td(n.slots.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ')),
        td(h('span', { class: `pill ${n.state === 'ok' ? 'ok' : 'bad'}` }, n.state)), td(n.linked ? 'connected' : 'not connected'), td(n.myself ? '–' : `${Math.round(n.lastHeardMsAgo / 1000)} s ago`, true)); })),
    ...(r.conflicts.count ? [h('p', { class: 'error' }, `${r.conflicts.count} slots claimed by more than one node: ${r.conflicts.ranges}`)] : []));
  return 3000;
}

const PAGES = { '': ['overview', overview], keys: ['keys', keysPage], key: ['keys', blobPage], ns: ['keys', nsPage], clients: ['clients', clientsPage], slowlog: ['slowlog', slowlogPage], cluster: ['cluster', clusterPage] };

async function render() {
  clearTimeout(timer);
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const [nav, page] = PAGES[path] ?? PAGES[''];
  setNav(nav);
  try {
    const every = await page(new URLSearchParams(query ?? ''));
    statusEl.textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = path || 'overview';
    if (every) timer = setTimeout(render, every);
  } catch (err) {
    main.replaceChildren(h('p', { class: 'error' }, `Could not load: ${err.message}`));
    document.body.dataset.loaded = 'error';
  }
}

window.addEventListener('hashchange', render);
api('/api/features').then(showFeatures, () => {});
render();
