// The agent's own view: signs in with the phone's SIP credentials
// (POST /agent/login), keeps the signed session token in this tab's
// sessionStorage, renders each `view` event of GET /agent/events, and sets
// away / available with PUT /agent/state. Leads offered to or owned by the
// agent come as `leads` events at once; a new offer chimes, and the
// buttons accept, call the patient, record an outcome or snooze (POST
// /agent/leads/{id}/…). A call rings the agent's own phone first; its
// status line says so, then that the patient answered (the lead turns
// `contacted`), or why the call was refused.
'use strict';

(() => {
  const { el, duration, clock, words, live, showStatus } = window.frontdesk;
  const KEY = 'frontdesk.agentSession';
  const $ = (id) => document.getElementById(id);

  let connection = null;
  let timeZone;
  let lastUpdate = null;
  let current = null;

  function signIn(message) {
    if (connection) connection.stop();
    connection = null;
    current = null;
    $('view').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('who').textContent = 'frontdesk';
    $('login-error').textContent = message || '';
    showStatus('signed-out');
  }

  function start() {
    const token = sessionStorage.getItem(KEY);
    if (!token) return signIn();
    $('sign-in').hidden = true;
    $('view').hidden = false;
    $('sign-out').hidden = false;
    connection = live('/agent/events', token, {
      event(name, data) {
        if (name === 'view') render(JSON.parse(data));
        if (name === 'leads') renderLeads(JSON.parse(data).leads);
        if (name === 'signed_out') {
          sessionStorage.removeItem(KEY);
          signIn(`You were signed out (${JSON.parse(data).reason}).`);
        }
      },
      status(state) {
        showStatus(state, lastUpdate, timeZone);
      },
      unauthorized() {
        sessionStorage.removeItem(KEY);
        signIn('Your session ended. Please sign in again.');
      },
    });
  }

  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const user = $('user').value.trim();
    const password = $('password').value;
    $('login-error').textContent = '';
    let response;
    try {
      response = await fetch('/agent/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user, password }),
        cache: 'no-store',
      });
    } catch (_) {
      $('login-error').textContent = 'The server cannot be reached.';
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $('login-error').textContent = response.status === 401
        ? 'Wrong user or password.'
        : body.error || `Sign-in failed (HTTP ${response.status}).`;
      return;
    }
    $('password').value = '';
    sessionStorage.setItem(KEY, body.token);
    start();
  });

  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    signIn();
  });

  for (const button of document.querySelectorAll('[data-set-state]')) {
    button.addEventListener('click', () => setState(button.dataset.setState));
  }

  async function setState(state) {
    const token = sessionStorage.getItem(KEY);
    if (!token) return signIn();
    $('message').textContent = '';
    let response;
    try {
      response = await fetch('/agent/state', {
        method: 'PUT',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ state }),
        cache: 'no-store',
      });
    } catch (_) {
      $('message').textContent = 'The server cannot be reached.';
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      return signIn('Your session ended. Please sign in again.');
    }
    if (!response.ok) {
      $('message').textContent = body.error || `Not changed (HTTP ${response.status}).`;
      return;
    }
    showAgent(body);
    $('message').textContent = `You are now ${words(body.state)}.`;
  }

  function showAgent(agent) {
    current = agent;
    $('who').textContent = `${agent.name} (${agent.id})`;
    const state = $('state');
    state.textContent = words(agent.state);
    state.className = `badge big state-${agent.state}`;
    document.body.dataset.state = agent.state;
    $('set-available').disabled = agent.state === 'available' || agent.state === 'offline';
    $('set-away').disabled = agent.state === 'away' || agent.state === 'offline';
  }

  function render(view) {
    timeZone = view.clinic.time_zone;
    lastUpdate = view.generated_at;
    document.body.dataset.generatedAt = view.generated_at;
    showStatus('live', lastUpdate, timeZone);
    if (view.agent) showAgent(view.agent);
    if (current && current.state === 'offline') {
      $('message').textContent = 'Your phone is not registered: sign it in to take calls.';
    }
    const queues = view.queues.map((q) =>
      el('tr', { dataset: { queue: q.id } },
        el('td', null, q.name),
        el('td', { class: 'num waiting' }, q.waiting),
        el('td', { class: 'num' }, q.waiting ? duration(q.longest_wait_ms) : '–'),
        el('td', { class: 'num' }, `${q.agents_available} / ${q.agents_signed_in}`)));
    $('queues').tBodies[0].replaceChildren(...queues);
    const names = new Map(view.queues.map((q) => [q.id, q.name]));
    const now = Date.parse(view.generated_at);
    const waiting = view.waiting.map((w) =>
      el('li', { dataset: { call: w.id, department: w.department }, class: `priority-${w.priority}` },
        el('strong', null, names.get(w.department) || w.department),
        ` · ${w.caller} · calling for ${duration(now - Date.parse(w.started_at))}`,
        w.priority === 'urgent' ? el('span', { class: 'badge outcome-abandoned' }, 'urgent') : null));
    if (!waiting.length) waiting.push(el('li', { class: 'none' }, 'Nobody is waiting in your queues.'));
    $('waiting').replaceChildren(...waiting);
    const calls = view.calls.map((c) =>
      el('tr', { dataset: { call: c.id, outcome: c.outcome } },
        el('td', null, clock(c.started_at, timeZone)),
        el('td', { class: 'caller' }, c.caller),
        el('td', null, names.get(c.department) || c.department || '–'),
        el('td', null, el('span', { class: `badge outcome-${c.outcome}` }, words(c.outcome))),
        el('td', { class: 'num' }, duration(c.wait_ms))));
    if (!calls.length) calls.push(el('tr', { class: 'none' }, el('td', { colspan: 5 }, 'No calls yet.')));
    $('calls').tBodies[0].replaceChildren(...calls);
  }

  const OUTCOMES = ['booked', 'reached', 'no_answer', 'wrong_number', 'duplicate'];
  let offered = new Set();
  let chimes = 0;

  // A short two-tone chime for a new offer (Web Audio; a browser that
  // blocks sound before a click stays silent, the list still shows it).
  function chime() {
    chimes += 1;
    document.body.dataset.leadChimes = String(chimes);
    try {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      const context = new Context();
      [660, 880].forEach((frequency, i) => {
        const tone = context.createOscillator();
        const gain = context.createGain();
        tone.frequency.value = frequency;
        gain.gain.value = 0.15;
        tone.connect(gain).connect(context.destination);
        tone.start(context.currentTime + i * 0.18);
        tone.stop(context.currentTime + i * 0.18 + 0.15);
      });
      setTimeout(() => context.close(), 1000);
    } catch (_) { /* no sound: the offer still shows */ }
  }

  async function leadAction(id, action, body) {
    const token = sessionStorage.getItem(KEY);
    if (!token) return signIn();
    let response;
    try {
      response = await fetch(`/agent/leads/${encodeURIComponent(id)}/${action}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body || {}),
        cache: 'no-store',
      });
    } catch (_) {
      $('message').textContent = 'The server cannot be reached.';
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      return signIn('Your session ended. Please sign in again.');
    }
    $('message').textContent = response.ok
      ? `Lead ${id}: ${words(answer.lead.state)}.`
      : answer.error || `Not done (HTTP ${response.status}).`;
  }

  // A voicemail lead's message: fetched with the session (an <audio>
  // element cannot send Authorization) into a Blob, played by the one
  // player below the list (outside it, so that a `leads` event does not
  // cut the message short).
  let voicemailUrl = null;
  async function playVoicemail(id) {
    const token = sessionStorage.getItem(KEY);
    if (!token) return signIn();
    let response;
    try {
      response = await fetch(`/agent/leads/${encodeURIComponent(id)}/voicemail`, {
        headers: { Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
    } catch (_) {
      $('message').textContent = 'The server cannot be reached.';
      return;
    }
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      return signIn('Your session ended. Please sign in again.');
    }
    if (!response.ok) {
      $('message').textContent = response.status === 404
        ? 'This message is no longer kept.'
        : `The message cannot be played (HTTP ${response.status}).`;
      return;
    }
    const blob = await response.blob();
    if (voicemailUrl) URL.revokeObjectURL(voicemailUrl);
    voicemailUrl = URL.createObjectURL(blob);
    const player = $('voicemail-player');
    player.hidden = false;
    player.dataset.lead = id;
    player.src = voicemailUrl;
    try {
      await player.play();
    } catch (_) { /* autoplay refused: the controls are there */ }
  }

  // Click-to-call's status per lead, kept across `leads` events: `state`
  // is calling, connected, refused or no_consent; `from` the lead's state
  // when the call started (it turns `contacted` when the patient answers).
  const calls = new Map();
  // The leads last shown, by id.
  let shown = new Map();

  function callStatus(id, state, text, from) {
    calls.set(id, { state, text, from });
    const line = document.querySelector(`[data-testid=lead-call-status][data-lead="${CSS.escape(id)}"]`);
    if (line) {
      line.dataset.state = state;
      line.textContent = text;
      line.hidden = false;
    }
  }

  async function callLead(lead, button) {
    const token = sessionStorage.getItem(KEY);
    if (!token) return signIn();
    button.disabled = true;
    const from = (shown.get(lead.id) || lead).state;
    callStatus(lead.id, 'calling', 'Starting the call…', from);
    let response;
    try {
      response = await fetch(`/agent/leads/${encodeURIComponent(lead.id)}/call`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
    } catch (_) {
      button.disabled = false;
      return callStatus(lead.id, 'refused', 'The server cannot be reached.');
    }
    const answer = await response.json().catch(() => ({}));
    button.disabled = false;
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      return signIn('Your session ended. Please sign in again.');
    }
    if (!response.ok) {
      return callStatus(lead.id, 'refused',
        `Not called: ${answer.error || `HTTP ${response.status}`}.`);
    }
    if (answered(from, shown.get(lead.id))) return callStatus(lead.id, 'connected', ANSWERED);
    callStatus(lead.id, 'calling',
      `Calling: your phone rings first, then ${lead.phone} (call ${answer.call.id}).`, from);
  }

  const ANSWERED = 'Connected: the patient answered.';

  /** Whether the patient answered: the lead turned `contacted` since. */
  function answered(from, lead) {
    return from !== 'contacted' && Boolean(lead) && lead.state === 'contacted';
  }

  /** The Call button and its status line for an owned `lead`. */
  function callControls(lead) {
    const noConsent = Boolean(lead.consent) && lead.consent.call === false;
    const button = el('button', {
      type: 'button',
      disabled: noConsent,
      title: noConsent ? 'The patient did not consent to calls.' : `Call ${lead.phone} from your phone`,
      dataset: { testid: 'lead-call', lead: lead.id },
    }, 'Call');
    button.addEventListener('click', () => callLead(lead, button));
    let status = calls.get(lead.id);
    if (noConsent) {
      status = { state: 'no_consent', text: 'No calls: the patient did not consent to calls (consent.call is false).' };
    } else if (status && status.state === 'calling' && answered(status.from, lead)) {
      status = { state: 'connected', text: ANSWERED };
      calls.set(lead.id, status);
    }
    const line = el('p', {
      class: 'note',
      role: 'status',
      hidden: !status,
      dataset: { testid: 'lead-call-status', lead: lead.id, state: status ? status.state : 'idle' },
    }, status ? status.text : '');
    return { button, line };
  }

  function renderLeads(leads) {
    const now = new Set();
    let fresh = false;
    const items = leads.map((lead) => {
      const isOffer = lead.owner && (lead.offer_until !== null);
      if (isOffer) {
        now.add(lead.id);
        if (!offered.has(lead.id)) fresh = true;
      }
      const context = [
        lead.department,
        lead.branch ? `branch ${lead.branch}` : null,
        `source ${lead.source}`,
        lead.campaign ? `campaign ${lead.campaign}` : null,
        lead.intent && lead.intent.matched ? `matched “${lead.intent.matched}”` : 'no intent matched',
      ].filter(Boolean).join(' · ');
      const related = (lead.related || []).length
        ? el('p', { class: 'note', dataset: { testid: 'lead-related' } }, `Related: ${lead.related.join(', ')}`)
        : null;
      const actions = el('div', { class: 'actions' });
      if (lead.kind === 'voicemail') {
        const play = el('button', { type: 'button', dataset: { testid: 'voicemail-play', lead: lead.id } }, 'Play message');
        play.addEventListener('click', () => playVoicemail(lead.id));
        actions.append(play);
      }
      let call = null;
      if (isOffer) {
        const accept = el('button', { type: 'button', dataset: { testid: 'lead-accept', lead: lead.id } }, 'Accept');
        accept.addEventListener('click', () => leadAction(lead.id, 'accept'));
        actions.append(accept);
      } else {
        call = callControls(lead);
        actions.append(call.button);
        for (const outcome of OUTCOMES) {
          const button = el('button', {
            type: 'button', class: 'secondary',
            dataset: { testid: 'lead-outcome', lead: lead.id, outcome },
          }, words(outcome));
          button.addEventListener('click', () => leadAction(lead.id, 'outcome', { outcome }));
          actions.append(button);
        }
        const snooze = el('button', { type: 'button', class: 'secondary', dataset: { testid: 'lead-snooze', lead: lead.id } }, 'Snooze 30 min');
        snooze.addEventListener('click', () =>
          leadAction(lead.id, 'snooze', { until: new Date(Date.now() + 30 * 60000).toISOString() }));
        actions.append(snooze);
      }
      return el('li', {
        class: `lead priority-${lead.priority}`,
        dataset: { testid: isOffer ? 'lead-offer' : 'lead-owned', lead: lead.id, state: lead.state },
      },
      el('strong', null, `${lead.name || 'Patient'} · ${lead.phone}`),
      lead.emergency ? el('span', { class: 'badge outcome-abandoned' }, 'emergency') : null,
      el('span', { class: `badge` }, words(lead.state)),
      el('p', { dataset: { testid: 'lead-message' } }, lead.message),
      el('p', { class: 'note' }, context),
      related,
      lead.snoozed_until ? el('p', { class: 'note' }, `Snoozed until ${clock(lead.snoozed_until, timeZone)}`) : null,
      actions,
      call ? call.line : null);
    });
    if (!items.length) items.push(el('li', { class: 'none' }, 'No leads for you now.'));
    $('leads').replaceChildren(...items);
    shown = new Map(leads.map((lead) => [lead.id, lead]));
    for (const id of calls.keys()) if (!shown.has(id)) calls.delete(id);
    offered = now;
    if (fresh) chime();
  }

  start();
})();
