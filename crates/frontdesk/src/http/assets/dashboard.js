// The dashboard: takes the admin token (typed in, or once from /?token=…),
// keeps it in this tab's sessionStorage, and renders each `snapshot` event
// of GET /api/events. Every figure comes from that one document, which the
// server builds from the JSON API's own answers.
'use strict';

(() => {
  const { el, svg, duration, clock, percent, words, live, showStatus } = window.frontdesk;
  const KEY = 'frontdesk.adminToken';
  const $ = (id) => document.getElementById(id);

  // The demo prints /?token=…: take it once, then drop it from the address
  // bar and the history, so that it is not bookmarked or shared.
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    const token = params.get('token').trim();
    if (token) sessionStorage.setItem(KEY, token);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }

  let connection = null;
  let timeZone;
  let lastUpdate = null;

  function signIn(message) {
    if (connection) connection.stop();
    connection = null;
    $('board').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('token-error').textContent = message || '';
    showStatus('signed-out');
    $('token').focus();
  }

  function start() {
    const token = sessionStorage.getItem(KEY);
    if (!token) return signIn();
    $('sign-in').hidden = true;
    $('board').hidden = false;
    $('sign-out').hidden = false;
    connection = live('/api/events', token, {
      event(name, data) {
        if (name === 'snapshot') render(JSON.parse(data));
      },
      status(state) {
        showStatus(state, lastUpdate, timeZone);
      },
      unauthorized() {
        sessionStorage.removeItem(KEY);
        signIn('That token was refused. Check it and try again.');
      },
    });
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    $('token').value = '';
    start();
  });

  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    signIn();
  });

  function render(doc) {
    timeZone = doc.clinic.time_zone;
    lastUpdate = doc.generated_at;
    document.body.dataset.generatedAt = doc.generated_at;
    document.body.dataset.journal = doc.journal;
    $('journal-error').hidden = doc.journal === 'ok';
    $('clinic').textContent = doc.clinic.name;
    document.title = `${doc.clinic.name} · frontdesk`;
    showStatus('live', lastUpdate, timeZone);
    renderTiles(doc);
    renderAlerts(doc);
    renderCluster(doc);
    renderLeads(doc);
    renderChart(doc.waiting_chart);
    renderDepartments(doc);
    renderAgents(doc);
    renderCalls(doc);
  }

  function renderTiles(doc) {
    const waiting = doc.queues.reduce((sum, q) => sum + q.waiting, 0);
    const longest = doc.queues.reduce((most, q) => Math.max(most, q.longest_wait_ms), 0);
    $('total-waiting').textContent = waiting;
    $('longest-wait').textContent = waiting ? duration(longest) : '–';
    // The departments' sums, as in the table below: a call counts as
    // connected when an agent answers it, abandoned when its caller hangs
    // up while waiting in a queue. Calls today counts every call once.
    const sum = (field) => doc.departments.reduce((total, d) => total + d[field], 0);
    $('calls-today').textContent = doc.totals.calls;
    $('connected-today').textContent = sum('connected');
    $('abandoned-today').textContent = sum('abandoned');
    $('agents-available').textContent =
      `${doc.agents_by_state.available || 0} / ${doc.agents.length - (doc.agents_by_state.offline || 0)}`;
  }

  function renderAlerts(doc) {
    const items = doc.alerts.map((alert) =>
      el('li', { class: `alert-${alert.kind}`, dataset: { department: alert.department, kind: alert.kind, lead: alert.lead || '' } },
        el('strong', null, doc.queue_names[alert.department] || alert.department),
        ` · ${words(alert.kind)} · ${alert.detail} `,
        el('span', { class: 'muted' }, `since ${clock(alert.since, timeZone)}`)));
    if (!items.length) items.push(el('li', { class: 'none' }, 'No alerts.'));
    $('alerts').replaceChildren(...items);
  }

  // With --redis only: this node, Redis, and every node heard of.
  function renderCluster(doc) {
    const cluster = doc.cluster;
    $('cluster-card').hidden = !cluster;
    if (!cluster) return;
    $('cluster-summary').textContent = `· this node ${cluster.node} · redis ${cluster.redis}`;
    const items = cluster.nodes.map((node) =>
      el('li', { class: node.alive ? 'none' : 'alert-cluster_store_down', dataset: { node: node.node, alive: String(node.alive) } },
        el('strong', null, node.node),
        ` · ${node.sip} · ${node.alive ? 'alive' : 'not heard from'} `,
        el('span', { class: 'muted' }, `last seen ${clock(new Date(node.last_seen).toISOString(), timeZone)}`)));
    if (!items.length) items.push(el('li', { class: 'none' }, 'No node heard from yet.'));
    $('cluster-nodes').replaceChildren(...items);
  }

  // Open leads as the server orders them: emergencies first, then the
  // oldest. A lead past its respond-by time is marked overdue.
  function renderLeads(doc) {
    const leads = doc.leads || [];
    const now = Date.parse(doc.generated_at);
    const rows = leads.map((l) => {
      const overdue = Date.parse(l.respond_by) <= now;
      const classes = [l.emergency ? 'emergency' : null, overdue ? 'overdue' : null].filter(Boolean);
      return el('tr', {
        class: classes.length ? classes.join(' ') : null,
        dataset: { lead: l.id, emergency: String(l.emergency), state: l.state, department: l.department },
      },
        el('td', { class: 'num age' }, duration(l.age_ms)),
        el('td', { class: 'name' }, l.emergency ? el('span', { class: 'badge emergency' }, 'emergency') : null,
          l.emergency ? ' ' : null, l.name || '–'),
        el('td', { class: 'phone' }, l.phone),
        el('td', { class: 'source' }, l.source),
        el('td', { class: 'department' }, doc.queue_names[l.department] || l.department),
        el('td', { class: 'intent' }, l.intent ? `“${l.intent}”` : '–'),
        el('td', { class: 'branch' }, l.branch || '–'),
        el('td', { class: 'state' }, el('span', { class: `badge lead-${l.state}` }, words(l.state)),
          overdue ? el('span', { class: 'muted' }, ' overdue') : null));
    });
    if (!rows.length) rows.push(el('tr', { class: 'none' }, el('td', { colspan: 8 }, 'No open leads.')));
    $('leads').tBodies[0].replaceChildren(...rows);
    $('leads-count').textContent = leads.length ? `(${leads.length})` : '';
  }

  function renderChart(chart) {
    const values = chart.waiting;
    const peak = values.reduce((most, v) => (v === null ? most : Math.max(most, v)), 0);
    const top = Math.max(4, peak);
    const width = 720;
    const height = 130;
    const x = (i) => ((i + 0.5) * width) / values.length;
    const y = (v) => height - 8 - (v / top) * (height - 20);
    const nodes = [];
    for (let level = 1; level <= top; level += Math.max(1, Math.ceil(top / 4))) {
      nodes.push(svg('line', { class: 'grid', x1: 0, x2: width, y1: y(level), y2: y(level) }));
    }
    // One run per stretch of samples: no line across a gap (before the
    // daemon started, say). Each run is a line over a shaded area.
    const runs = [];
    values.forEach((v, i) => {
      if (v === null) return;
      const run = runs[runs.length - 1];
      if (run && run[run.length - 1][0] === i - 1) run.push([i, v]);
      else runs.push([[i, v]]);
    });
    let line = '';
    let area = '';
    for (const run of runs) {
      const points = run.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      line += `M${points.join('L')}`;
      area += `M${x(run[0][0]).toFixed(1)},${y(0)}L${points.join('L')}` +
        `L${x(run[run.length - 1][0]).toFixed(1)},${y(0)}Z`;
    }
    nodes.push(svg('path', { class: 'area', d: area }));
    nodes.push(svg('path', { class: 'line', d: line }));
    const node = $('chart');
    node.replaceChildren(...nodes);
    node.dataset.peak = peak;
    node.dataset.samples = values.filter((v) => v !== null).length;
    $('chart-peak').textContent = `peak ${peak}`;
  }

  function renderDepartments(doc) {
    const reports = new Map(doc.departments.map((r) => [r.id, r]));
    const alerted = new Set(doc.alerts.map((a) => a.department));
    const rows = doc.queues.map((q) => {
      const r = reports.get(q.id) || {};
      const ttc = r.time_to_connect_ms || {};
      return el('tr', { dataset: { department: q.id }, class: alerted.has(q.id) ? 'alerted' : null },
        el('td', { class: 'name' }, doc.queue_names[q.id] || q.id),
        el('td', { class: 'num waiting' }, q.waiting),
        el('td', { class: 'num longest' }, q.waiting ? duration(q.longest_wait_ms) : '–'),
        el('td', { class: 'num agents' }, `${q.agents_available} / ${q.agents_signed_in}`),
        el('td', { class: 'num offered' }, r.offered ?? '–'),
        el('td', { class: 'num connected' }, r.connected ?? '–'),
        el('td', { class: 'num abandoned' }, r.abandoned ?? '–'),
        el('td', { class: 'num ttc' }, `${duration(ttc.p50)} / ${duration(ttc.p90)}`),
        el('td', { class: 'num sla' }, r.offered ? percent(r.within_sla) : '–'));
    });
    $('departments').tBodies[0].replaceChildren(...rows);
    $('today-note').textContent =
      `Today: since midnight ${doc.clinic.time_zone} (${doc.today.from}). ` +
      'Time to connect: p50 / p90 of the calls an agent answered, from entering the queue. ' +
      "Within SLA: share of offered calls answered within the department's SLA.";
  }

  function renderAgents(doc) {
    const chips = Object.entries(doc.agents_by_state).map(([state, count]) =>
      el('span', { class: `chip state-${state}`, dataset: { state, count } }, `${words(state)} ${count}`));
    $('agents-by-state').replaceChildren(...chips);
    const rows = doc.agents.map((a) =>
      el('tr', { dataset: { agent: a.id, state: a.state } },
        el('td', { class: 'name' }, `${a.name} `, el('span', { class: 'muted' }, a.id)),
        el('td', null, el('span', { class: `badge state-${a.state}` }, words(a.state))),
        el('td', null, a.skills.join(', ')),
        el('td', null, a.branch || '–'),
        el('td', { class: 'num' }, a.calls_today)));
    $('agents').tBodies[0].replaceChildren(...rows);
  }

  function renderCalls(doc) {
    const names = new Map(doc.agents.map((a) => [a.id, a.name]));
    const rows = doc.calls.map((c) =>
      el('tr', { dataset: { call: c.id, outcome: c.outcome } },
        el('td', null, clock(c.started_at, timeZone)),
        el('td', { class: 'caller' }, c.caller),
        el('td', { class: 'source' }, c.source || '–'),
        el('td', { class: 'department', dataset: { department: c.department || '' } },
          c.department ? doc.queue_names[c.department] || c.department : '–'),
        el('td', { class: 'owner', dataset: { agent: c.agent || '' } },
          c.agent ? `${names.get(c.agent) || ''} ${c.agent}`.trim() : '–'),
        el('td', { class: 'outcome' }, el('span', { class: `badge outcome-${c.outcome}` }, words(c.outcome))),
        el('td', { class: 'num' }, duration(c.wait_ms))));
    if (!rows.length) rows.push(el('tr', { class: 'none' }, el('td', { colspan: 7 }, 'No calls yet.')));
    $('calls').tBodies[0].replaceChildren(...rows);
  }

  start();
})();
