// evolive's status page: what runs, what is stored, what changed. Plain
// DOM, no framework, nothing fetched but this server's API. Every piece of
// data is put into the page as text (textContent, createTextNode), never as
// markup: attribute names, errors and meta come from the evaluated code.
'use strict';

(() => {
  const TOKEN_KEY = 'evolive.token';
  const FINGERPRINT = /^[0-9a-f]{64}$/;
  const main = document.getElementById('main');
  const metricsBox = document.getElementById('metrics');
  const logoutButton = document.getElementById('logout');

  // ---- DOM helpers ---------------------------------------------------------

  // el('td', {class: 'num'}, 'text', child, ...): strings become text nodes.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    append(node, children);
    return node;
  }
  function append(node, children) {
    for (const child of [children].flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function short(fingerprint) { return typeof fingerprint === 'string' ? fingerprint.slice(0, 12) : '?'; }
  function evalLink(fingerprint, text) {
    if (!FINGERPRINT.test(fingerprint)) return el('span', { class: 'mono', text: String(fingerprint) });
    return el('a', { class: 'mono', href: '#/evaluations/' + fingerprint, text: text || short(fingerprint) });
  }
  function statusBadge(status) {
    const known = ['queued', 'running', 'finished', 'failed', 'cancelled'].includes(status) ? status : '';
    return el('span', { class: 'status ' + known, 'data-status': known, text: String(status) });
  }
  function number(n) { return typeof n === 'number' ? n.toLocaleString('en-US') : '–'; }
  function seconds(s) {
    if (typeof s !== 'number' || !isFinite(s) || s < 0) return '–';
    if (s < 1) return '< 1 s';
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    const m = Math.floor(s / 60);
    return m < 60 ? m + ' min ' + Math.round(s % 60) + ' s' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  function since(iso) { const t = Date.parse(iso); return isNaN(t) ? NaN : (Date.now() - t) / 1000; }
  function between(from, to) {
    const a = Date.parse(from), b = Date.parse(to);
    return isNaN(a) || isNaN(b) ? NaN : (b - a) / 1000;
  }

  // ---- the API, with the token ---------------------------------------------

  class Unauthorized extends Error {}
  const token = () => localStorage.getItem(TOKEN_KEY) || '';
  let generation = 0; // bumped on every view change: stale answers are dropped
  const controllers = new Set(); // open requests of the current view

  // `streaming`: the body is read as it comes, and the request stays
  // abortable until the caller calls response.done().
  async function request(path, streaming) {
    const headers = {};
    if (token()) headers.Authorization = 'Bearer ' + token();
    const controller = new AbortController();
    controllers.add(controller);
    const done = () => controllers.delete(controller);
    try {
      const response = await fetch(path, { headers, signal: controller.signal, cache: 'no-store' });
      if (response.status === 401) {
        showLogin(token() ? 'The token was refused.' : null);
        throw new Unauthorized();
      }
      response.done = done;
      return response;
    } finally {
      if (!streaming) done();
    }
  }
  async function getJson(path) {
    const response = await request(path);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || 'HTTP ' + response.status);
    return body;
  }
  function abortAll() {
    for (const c of controllers) c.abort();
    controllers.clear();
  }

  // Reads JSON lines as they arrive; `onLine` gets each parsed object.
  async function readLines(response, onLine) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (!line) continue;
        try { onLine(JSON.parse(line)); } catch (e) { /* not JSON: skipped */ }
      }
    }
  }

  // ---- login ----------------------------------------------------------------

  function showLogin(message) {
    generation++;
    abortAll();
    stopTimers();
    metricsBox.hidden = true;
    logoutButton.hidden = true;
    const input = el('input', { type: 'password', id: 'token', autocomplete: 'current-password', placeholder: 'token', required: true });
    const form = el('form', { class: 'login', id: 'login' },
      el('h2', { text: 'This server wants a token' }),
      el('p', { class: 'muted', text: 'The token is kept in this browser (local storage) and sent with every request.' }),
      input,
      message ? el('p', { class: 'message bad', id: 'login-message', text: message }) : null,
      el('button', { type: 'submit', text: 'Use token' }));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      localStorage.setItem(TOKEN_KEY, input.value.trim());
      route();
    });
    clear(main).appendChild(form);
    input.focus();
  }
  logoutButton.addEventListener('click', () => {
    localStorage.removeItem(TOKEN_KEY);
    showLogin(null);
  });

  // ---- timers of the current view ------------------------------------------

  const timers = new Set();
  function every(ms, fn) { fn(); timers.add(setInterval(fn, ms)); }
  function stopTimers() { for (const t of timers) clearInterval(t); timers.clear(); }
  function guard(promise) {
    return promise.catch((e) => { if (!(e instanceof Unauthorized) && e.name !== 'AbortError') console.warn(e); });
  }

  // ---- metrics: a small picture over time ----------------------------------

  const samples = []; // {t, jobs, queued, running}
  const MAX_SAMPLES = 90;
  function parseMetrics(text) {
    const values = {};
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
      if (m) values[m[1] + (m[2] || '')] = Number(m[3]);
    }
    return values;
  }
  async function sampleMetrics() {
    const response = await request('metrics');
    if (!response.ok) return;
    const v = parseMetrics(await response.text());
    samples.push({ t: Date.now() / 1000, jobs: v.evolive_jobs_total || 0,
                   queued: v.evolive_evaluations_queued || 0, running: v.evolive_evaluations_running || 0 });
    if (samples.length > MAX_SAMPLES) samples.shift();
    drawMetrics();
  }
  function rates() {
    const out = [];
    for (let i = 1; i < samples.length; i++) {
      const dt = samples[i].t - samples[i - 1].t;
      out.push(dt > 0 ? Math.max(0, (samples[i].jobs - samples[i - 1].jobs) / dt) : 0);
    }
    return out;
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }
  function sparkline(values, width, height, colour) {
    const picture = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
    const max = Math.max(1, ...values);
    const step = width / (MAX_SAMPLES - 1);
    const points = values.map((v, i) => `${(width - (values.length - 1 - i) * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
    if (points.length > 1) picture.appendChild(svg('polyline', { points: points.join(' '), fill: 'none', stroke: colour, 'stroke-width': 1.5 }));
    return picture;
  }
  function drawMetrics() {
    const r = rates();
    const last = samples[samples.length - 1] || { queued: 0, running: 0 };
    const jobsPerSecond = r.length ? r[r.length - 1] : 0;
    clear(metricsBox);
    append(metricsBox, [
      el('span', { title: 'jobs found per second, all evaluations (evolive_jobs_total)' }, 'jobs/s ',
        el('strong', { id: 'metric-rate', text: jobsPerSecond.toFixed(0) })),
      el('span', { id: 'chart-rate' }, sparkline(r, 160, 28, '#2b6cb0')),
      el('span', { title: 'evaluations waiting for a slot (evolive_evaluations_queued)' }, 'queued ',
        el('strong', { id: 'metric-queued', text: String(last.queued) }), ' · running ', el('strong', { text: String(last.running) })),
      el('span', { id: 'chart-queue' }, sparkline(samples.map((s) => s.queued), 120, 28, '#9a6700')),
    ]);
    metricsBox.hidden = false;
  }

  // ---- live progress of running evaluations --------------------------------

  // One follower per running evaluation: it reads the evaluation's stream
  // (GET .../jobs?follow=1) and counts what goes by.
  const followers = new Map();
  function follow(fingerprint) {
    let f = followers.get(fingerprint);
    if (f) return f;
    f = { jobs: 0, errors: 0, pushed: 0, uploaded: 0, present: 0, pushErrors: 0, history: [], ended: null, started: null };
    followers.set(fingerprint, f);
    (async () => {
      let response;
      try {
        response = await request('v1/evaluations/' + fingerprint + '/jobs?follow=1', true);
        if (!response.ok) throw new Error('HTTP ' + response.status);
        await readLines(response, (line) => {
          const type = line.type || (line.attr !== undefined ? 'job' : '');
          if (type === 'job') {
            f.jobs++;
            if (line.error !== undefined) f.errors++;
            if (line.push) {
              f.pushed++;
              if (line.push.error !== undefined) f.pushErrors++;
              f.uploaded += line.push.uploaded || 0;
              f.present += line.push.present || 0;
            }
          } else if (type === 'started') f.started = line;
          else if (type === 'finished' || type === 'failed') f.ended = line;
        });
      } catch (e) {
        if (e instanceof Unauthorized) return;
      } finally {
        if (response) response.done();
      }
      if (!f.ended) f.ended = { type: 'ended' };
      setTimeout(() => { if (followers.get(fingerprint) === f) followers.delete(fingerprint); }, 10000);
    })();
    return f;
  }
  // Jobs per second over the last five seconds of a follower.
  function followerRate(f) {
    const now = Date.now() / 1000;
    f.history.push({ t: now, jobs: f.jobs });
    while (f.history.length > 2 && now - f.history[0].t > 5) f.history.shift();
    const first = f.history[0];
    return now - first.t > 0.5 ? (f.jobs - first.jobs) / (now - first.t) : 0;
  }

  function progressCard(evaluation) {
    const fingerprint = evaluation.fingerprint;
    const fields = {};
    const field = (name, label) => {
      fields[name] = el('dd', { 'data-field': name, text: '–' });
      return [el('dt', { text: label }), fields[name]];
    };
    const badge = statusBadge(evaluation.status);
    const card = el('section', { class: 'card', 'data-fingerprint': fingerprint, 'data-testid': 'progress' },
      el('div', {}, badge, ' ', evalLink(fingerprint)),
      el('dl', {},
        field('jobs', 'jobs found'), field('errors', 'errors'), field('rate', 'jobs per second'),
        field('workers', 'workers'), field('elapsed', 'elapsed'), field('push', 'push'),
        evaluation.status === 'queued' ? field('position', 'place in line') : null));
    const update = () => {
      const f = evaluation.status === 'running' ? follow(fingerprint) : null;
      fields.jobs.textContent = number(f ? Math.max(f.jobs, evaluation.jobs || 0) : evaluation.jobs);
      fields.errors.textContent = number(f ? Math.max(f.errors, evaluation.errors || 0) : evaluation.errors);
      fields.rate.textContent = f ? followerRate(f).toFixed(1) : '–';
      fields.workers.textContent = evaluation.workers ? String(evaluation.workers) : '–';
      fields.elapsed.textContent = seconds(since(evaluation.startedAt || evaluation.submittedAt));
      fields.push.textContent = f && f.pushed
        ? `${number(f.pushed)} jobs pushed: ${number(f.uploaded)} paths uploaded, ${number(f.present)} present` + (f.pushErrors ? `, ${number(f.pushErrors)} failed` : '')
        : 'not pushing';
      if (fields.position) fields.position.textContent = evaluation.position ? String(evaluation.position) : '–';
      if (f && f.ended) { badge.textContent = f.ended.type === 'finished' ? 'finished' : 'ended'; badge.className = 'status'; }
    };
    update();
    return { card, update };
  }

  // ---- the list of evaluations ----------------------------------------------

  const details = new Map(); // fingerprint → status with metadata (stored results do not change)
  async function detailsOf(fingerprint) {
    if (!details.has(fingerprint)) details.set(fingerprint, getJson('v1/evaluations/' + fingerprint).catch((e) => {
      details.delete(fingerprint);
      throw e;
    }));
    return details.get(fingerprint);
  }
  function parsedMeta(d, key) { return d && d.metadata ? d.metadata[key] : undefined; }
  function inputsSummary(inputs) {
    if (!inputs || typeof inputs !== 'object') return '';
    return Object.entries(inputs).map(([name, input]) => {
      if (!input || typeof input !== 'object') return name;
      if (typeof input.rev === 'string') return name + ' ' + input.rev.slice(0, 12);
      if (typeof input.contentHash === 'string') return name + ' ' + input.contentHash.slice(0, 12);
      if (input.value !== undefined) {
        const text = typeof input.value === 'string' ? input.value : JSON.stringify(input.value);
        return name + ' = ' + (text.length > 30 ? text.slice(0, 27) + '…' : text);
      }
      return name;
    }).join(', ');
  }

  function homeView() {
    const mine = generation;
    const activeBox = el('div', { class: 'cards', id: 'active' });
    const tableBody = el('tbody', { id: 'evaluations' });
    let shown = 20;
    const more = el('button', { type: 'button', id: 'more', text: 'Show more', hidden: true, onclick: () => { shown += 20; refresh(); } });
    append(clear(main), [
      el('h2', { text: 'Running and queued' }), activeBox,
      el('h2', { text: 'Evaluations' }),
      el('table', {},
        el('thead', {}, el('tr', {},
          el('th', { text: 'evaluation' }), el('th', { text: 'status' }), el('th', { text: 'ended' }),
          el('th', { text: 'inputs' }), el('th', { class: 'num', text: 'jobs' }), el('th', { class: 'num', text: 'errors' }),
          el('th', { class: 'num', text: 'duration' }))),
        tableBody),
      more,
    ]);
    let cards = new Map();
    async function refresh() {
      const list = (await getJson('v1/evaluations?limit=' + Math.min(1000, shown + 100))).evaluations || [];
      if (mine !== generation) return;
      const active = list.filter((e) => e.status === 'queued' || e.status === 'running');
      const ended = list.filter((e) => !(e.status === 'queued' || e.status === 'running'));
      ended.sort((a, b) => String(b.endedAt || '').localeCompare(String(a.endedAt || '')));

      const next = new Map();
      for (const e of active) {
        const old = cards.get(e.fingerprint);
        if (old && old.status === e.status) { Object.assign(old.evaluation, e); next.set(e.fingerprint, old); continue; }
        const card = progressCard(e);
        next.set(e.fingerprint, { card: card.card, update: card.update, status: e.status, evaluation: e });
      }
      cards = next;
      clear(activeBox);
      if (!active.length) activeBox.appendChild(el('p', { class: 'muted', text: 'Nothing is running.' }));
      for (const c of cards.values()) activeBox.appendChild(c.card);

      clear(tableBody);
      for (const e of ended.slice(0, shown)) tableBody.appendChild(evaluationRow(e));
      if (!ended.length) tableBody.appendChild(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No evaluations yet.' })));
      more.hidden = ended.length <= shown;
    }
    every(2000, () => guard(refresh()));
    every(500, () => { for (const c of cards.values()) c.update(); });
  }

  function evaluationRow(e) {
    const cells = { inputs: el('td', { class: 'mono' }), jobs: el('td', { class: 'num', text: number(e.jobs) }),
                    errors: el('td', { class: 'num', text: number(e.errors) }), duration: el('td', { class: 'num' }) };
    const row = el('tr', { 'data-fingerprint': e.fingerprint },
      el('td', {}, evalLink(e.fingerprint)), el('td', {}, statusBadge(e.status)),
      el('td', { text: e.endedAt ? String(e.endedAt).replace('T', ' ').replace('Z', ' UTC') : '–' }),
      cells.inputs, cells.jobs, cells.errors, cells.duration);
    cells.duration.textContent = seconds(between(e.startedAt, e.endedAt));
    if (e.stored || e.status === 'finished') {
      guard(detailsOf(e.fingerprint).then((d) => {
        cells.inputs.textContent = inputsSummary(parsedMeta(d, 'inputs'));
        const jobs = Number(parsedMeta(d, 'jobs')), errors = Number(parsedMeta(d, 'errors'));
        if (!isNaN(jobs)) cells.jobs.textContent = number(jobs);
        if (!isNaN(errors)) cells.errors.textContent = number(errors);
        const took = between(parsedMeta(d, 'started'), parsedMeta(d, 'finished'));
        if (!isNaN(took)) cells.duration.textContent = seconds(took);
      }));
    }
    return row;
  }

  // ---- one evaluation ---------------------------------------------------------

  function evaluationView(fingerprint, params) {
    const mine = generation;
    const head = el('section', { id: 'evaluation' }, el('p', { class: 'muted', text: 'Loading…' }));
    const live = el('div', { class: 'cards', id: 'live' });
    const jobsBox = el('section', { id: 'jobs' });
    const compareBox = el('section', { id: 'comparison' });
    append(clear(main), [
      el('h2', {}, 'Evaluation ', el('span', { class: 'mono', text: fingerprint })), head, live,
      el('h2', { text: 'Jobs' }), jobsBox,
      el('h2', { text: 'Compared with another evaluation' }), compareBox,
    ]);
    guard((async () => {
      const d = await getJson('v1/evaluations/' + fingerprint);
      if (mine !== generation) return;
      clear(head).appendChild(evaluationFacts(d));
      if (d.status === 'running' || d.status === 'queued') {
        const card = progressCard(d);
        live.appendChild(card.card);
        every(500, card.update);
      }
      jobsSection(jobsBox, fingerprint, params);
      if (d.stored) comparisonSection(compareBox, fingerprint, params.get('compare'));
      else compareBox.appendChild(el('p', { class: 'muted', text: 'Evaluations are compared once their result is stored.' }));
    })().catch((e) => {
      if (e instanceof Unauthorized) return;
      clear(head).appendChild(el('p', { class: 'bad', text: String(e.message || e) }));
    }));
  }

  function evaluationFacts(d) {
    const m = d.metadata || {};
    const kv = el('dl', { class: 'kv' });
    const fact = (label, value) => { if (value !== undefined && value !== null && value !== '') append(kv, [el('dt', { text: label }), el('dd', {}, value)]); };
    fact('status', statusBadge(d.status));
    fact('jobs', number(m.jobs !== undefined ? Number(m.jobs) : d.jobs));
    fact('errors', number(m.errors !== undefined ? Number(m.errors) : d.errors));
    fact('started', m.started || d.startedAt);
    fact('finished', m.finished || d.endedAt);
    fact('duration', seconds(between(m.started || d.startedAt, m.finished || d.endedAt)));
    fact('workers', d.workers ? String(d.workers) : undefined);
    fact('evaluator', m.evaluator);
    fact('machine', [m['machine.arch'], m['machine.os']].filter(Boolean).join(', '));
    if (m.expression && typeof m.expression === 'object')
      fact('expression', el('span', { class: 'mono', text: `${m.expression.input}: ${m.expression.path}` }));
    fact('message', d.message ? el('pre', { class: 'error', text: String(d.message) }) : undefined);
    const box = el('div', {}, kv);
    if (m.inputs && typeof m.inputs === 'object') {
      const body = el('tbody');
      for (const [name, input] of Object.entries(m.inputs)) {
        const i = input && typeof input === 'object' ? input : {};
        const what = i.url !== undefined ? i.url : i.path !== undefined ? i.path : i.value !== undefined ? JSON.stringify(i.value) : '';
        body.appendChild(el('tr', {},
          el('td', { class: 'mono', text: name }), el('td', { text: String(i.type || '') }),
          el('td', { class: 'mono', text: String(what) }), el('td', { class: 'mono', text: String(i.ref || '') }),
          el('td', { class: 'mono', text: String(i.rev || i.contentHash || '') })));
      }
      append(box, [el('h3', { text: 'Inputs' }), el('table', { id: 'inputs' },
        el('thead', {}, el('tr', {}, ['input', 'type', 'url, path or value', 'ref', 'revision'].map((h) => el('th', { text: h })))), body)]);
    }
    return box;
  }

  function jobsSection(box, fingerprint, params) {
    const PAGE = 50;
    let offset = 0, timer = null;
    const search = el('input', { type: 'search', id: 'job-search', placeholder: 'attribute path contains…', value: params.get('search') || '' });
    const errorsOnly = el('input', { type: 'checkbox', id: 'errors-only' });
    const summary = el('span', { class: 'muted', id: 'job-count' });
    const prev = el('button', { type: 'button', text: '← previous', disabled: true });
    const next = el('button', { type: 'button', text: 'next →', disabled: true });
    const body = el('tbody', { id: 'job-rows' });
    append(box, [
      el('div', { class: 'toolbar' }, search, el('label', {}, errorsOnly, ' errors only'), summary, prev, next),
      el('table', {}, el('thead', {}, el('tr', {}, ['attribute', 'system', 'derivation or error'].map((h) => el('th', { text: h })))), body),
    ]);
    async function load() {
      const query = new URLSearchParams({ search: search.value, offset: String(offset), limit: String(PAGE) });
      if (errorsOnly.checked) query.set('errors', '1');
      const response = await request('v1/evaluations/' + fingerprint + '/jobs?' + query.toString());
      if (!response.ok) {
        const e = await response.json().catch(() => ({}));
        clear(body).appendChild(el('tr', {}, el('td', { colspan: 3, class: 'bad', text: e.error || 'HTTP ' + response.status })));
        return;
      }
      const matching = Number(response.headers.get('X-Total-Count') || 0);
      const total = Number(response.headers.get('X-Jobs-Total') || 0);
      const rows = [];
      await readLines(response, (job) => rows.push(job));
      clear(body);
      for (const job of rows) body.appendChild(jobRow(job));
      if (!rows.length) body.appendChild(el('tr', {}, el('td', { colspan: 3, class: 'muted', text: 'No job matches.' })));
      summary.textContent = matching ? `${number(offset + 1)}–${number(offset + rows.length)} of ${number(matching)} matching (${number(total)} jobs)` : `0 of ${number(total)} jobs match`;
      prev.disabled = offset === 0;
      next.disabled = offset + rows.length >= matching;
    }
    const reload = () => { offset = 0; guard(load()); };
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(reload, 250); });
    errorsOnly.addEventListener('change', reload);
    prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); guard(load()); });
    next.addEventListener('click', () => { offset += PAGE; guard(load()); });
    guard(load());
  }

  function jobRow(job) {
    const attr = typeof job.attr === 'string' ? job.attr : JSON.stringify(job.attrPath);
    let last;
    if (job.error !== undefined) last = el('td', {}, el('pre', { class: 'error', text: String(job.error) }));
    else {
      last = el('td', {}, el('div', { class: 'mono', text: String(job.drvPath || '') }));
      const description = job.meta && typeof job.meta === 'object' ? job.meta.description : undefined;
      if (description !== undefined) last.appendChild(el('div', { class: 'muted', text: String(description) }));
    }
    return el('tr', { class: job.error !== undefined ? 'failed' : '' },
      el('td', { class: 'mono', 'data-attr': '', text: attr }), el('td', { class: 'mono', text: String(job.system || '') }), last);
  }

  // ---- the comparison ---------------------------------------------------------

  function comparisonSection(box, fingerprint, picked) {
    const select = el('select', { id: 'compare-with' });
    const other = el('input', { type: 'text', id: 'compare-fingerprint', placeholder: 'or a fingerprint', size: 30 });
    const result = el('div', { id: 'diff' });
    append(box, [el('div', { class: 'toolbar' }, el('label', {}, 'old: ', select), other,
      el('button', { type: 'button', text: 'Compare', onclick: () => compare(other.value.trim() || select.value) })), result]);

    async function compare(old) {
      clear(result);
      if (!FINGERPRINT.test(old)) {
        result.appendChild(el('p', { class: 'muted', text: old ? 'Not a fingerprint.' : 'No earlier evaluation of the same jobset is stored; pick one to compare with.' }));
        return;
      }
      result.appendChild(el('p', { class: 'muted', text: 'Comparing…' }));
      const response = await request('v1/evaluations/' + old + '/diff/' + fingerprint + '?limit=500');
      const diff = await response.json().catch(() => ({}));
      clear(result);
      if (!response.ok) { result.appendChild(el('p', { class: 'bad', text: diff.error || 'HTTP ' + response.status })); return; }
      result.appendChild(diffView(diff, old));
    }

    guard((async () => {
      let previous = null;
      const answer = await request('v1/evaluations/' + fingerprint + '/previous');
      if (answer.ok) previous = (await answer.json()).fingerprint;
      const list = ((await getJson('v1/evaluations?limit=1000')).evaluations || [])
        .filter((e) => e.fingerprint !== fingerprint && (e.stored || e.status === 'finished'));
      select.appendChild(el('option', { value: previous || '', text: previous ? 'the previous evaluation of this jobset (' + short(previous) + ')' : 'no earlier evaluation of this jobset' }));
      for (const e of list) select.appendChild(el('option', { value: e.fingerprint, text: short(e.fingerprint) + (e.endedAt ? ' · ' + e.endedAt : '') }));
      select.addEventListener('change', () => { other.value = ''; guard(compare(select.value)); });
      await compare(picked && FINGERPRINT.test(picked) ? picked : previous || '');
    })());
  }

  const CATEGORIES = [['added', 'added'], ['removed', 'removed'], ['changed', 'changed'], ['rebuilds', 'rebuilds'],
                      ['newlyFailing', 'newly failing'], ['fixed', 'fixed']];
  function diffView(diff, old) {
    const box = el('div', {});
    append(box, el('p', {}, 'From ', evalLink(old), ` (${number(diff.old && diff.old.jobs)} jobs) to this evaluation (${number(diff.new && diff.new.jobs)} jobs).`));
    const head = el('tr', {}, el('th', { text: 'system' }), CATEGORIES.map(([, title]) => el('th', { class: 'num', text: title })), el('th', { text: 'label' }));
    const body = el('tbody');
    const row = (name, counts, strong) => el('tr', { 'data-system': name },
      el('td', { class: strong ? '' : 'mono' }, strong ? el('strong', { text: name }) : name),
      CATEGORIES.map(([key]) => el('td', { class: 'num', 'data-count': key, text: number(counts[key]) })),
      el('td', { class: 'mono', text: String(counts.label || '') }));
    for (const [system, counts] of Object.entries(diff.systems || {})) body.appendChild(row(system, counts, false));
    body.appendChild(row('all', diff.counts || {}, true));
    append(box, el('table', { id: 'diff-systems' }, el('thead', {}, head), body));
    if (Array.isArray(diff.labels)) append(box, el('p', { class: 'muted' }, 'nixpkgs labels: ', el('span', { class: 'mono', text: diff.labels.join(', ') })));
    for (const [key, title] of CATEGORIES) {
      const names = Array.isArray(diff[key]) ? diff[key] : [];
      const count = diff.counts ? diff.counts[key] : names.length;
      if (!count) continue;
      append(box, el('details', { 'data-list': key },
        el('summary', { text: `${title} (${number(count)})` }),
        el('ul', {}, names.map((n) => el('li', { text: String(n) }))),
        count > names.length ? el('p', { class: 'muted', text: `… and ${number(count - names.length)} more (evolive diff shows all)` }) : null));
    }
    return box;
  }

  // ---- routing ----------------------------------------------------------------

  async function route() {
    generation++;
    abortAll();
    stopTimers();
    followers.clear();
    // Nothing is shown until the API has let us in.
    try {
      await getJson('v1/evaluations?limit=1');
    } catch (e) {
      if (!(e instanceof Unauthorized)) clear(main).appendChild(el('p', { class: 'bad', text: 'The server did not answer: ' + (e.message || e) }));
      return;
    }
    logoutButton.hidden = !token();
    every(2000, () => guard(sampleMetrics()));
    const [path, query] = location.hash.replace(/^#/, '').split('?');
    const params = new URLSearchParams(query || '');
    const m = /^\/evaluations\/([0-9a-f]{64})$/.exec(path || '');
    if (m) evaluationView(m[1], params);
    else homeView();
  }
  window.addEventListener('hashchange', route);
  route();
})();
