// The agent's own view: signs in with the phone's SIP credentials
// (POST /agent/login), keeps the signed session token in this tab's
// sessionStorage, renders each `view` event of GET /agent/events, and sets
// away / available with PUT /agent/state. Leads offered to or owned by the
// agent come as `leads` events at once; a new offer chimes, and the
// buttons accept, call the patient, record an outcome or snooze (POST
// /agent/leads/{id}/…). A call rings the agent's own phone first; its
// status line says so, then that the patient answered (the lead turns
// `contacted`), or why the call was refused. "Take calls here" makes the
// page a phone of the agent's (WebRTC; the phone's part, below).
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
    phone.off();
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
    const NOT_REGISTERED = 'Your phone is not registered: sign it in, or take calls here, in this browser.';
    if (current && current.state === 'offline') {
      $('message').textContent = NOT_REGISTERED;
    } else if ($('message').textContent === NOT_REGISTERED) {
      $('message').textContent = '';
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


  // ---- The phone in this browser (issue 23) ----
  //
  // "Take calls here" makes this page a device of the agent: a microphone
  // (getUserMedia) in one RTCPeerConnection that stays up while the phone
  // is on, and a WebSocket at /agent/phone for the signalling. The page
  // gathers its ICE candidates first (no trickle), opens the socket and
  // sends `hello` with the session token (a WebSocket cannot carry an
  // Authorization header) and its offer; `ready` brings the daemon's
  // answer. Calls then come and go on that one connection: `ringing`
  // (the banner and a ring tone made with Web Audio), `answer` or
  // `decline`, `connected`, `hold`, `transfer`, `hangup`, `ended`. Mute is
  // local (the track is disabled, nothing is sent). A keep-alive `ping`
  // goes every 15 s; a socket that drops unasked is opened again with a
  // back-off, since the daemon sets an agent whose page stays gone away.
  // Tests read `window.frontdeskPhone` (the state and the peer connection).
  const phone = (() => {
    const PING_EVERY = 15000;
    /** Unanswered pings before the socket counts as dead. */
    const PINGS_MISSED = 2;
    /** How long ICE gathering may take (loopback and LAN only: no STUN). */
    const GATHER_BOUND = 5000;
    /** Close codes after which the page does not reconnect (the contract's). */
    const FINAL = { 4400: 'the phone was refused', 4401: 'your session ended', 4408: 'the phone did not answer in time', 4409: 'another page of yours took over the phone' };
    const STATES = ['off', 'connecting', 'ready', 'ringing', 'in_call', 'on_hold'];
    const TARGET = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

    let state = 'off';
    let wanted = false;
    let socket = null;
    let pc = null;
    let microphone = null;
    let pinger = null;
    let pingsOut = 0;
    let retry = null;
    let retryDelay = 1000;
    /** The current call: { id, from, answering }. */
    let call = null;
    let muted = false;
    let held = false;
    let pendingTransfer = null;

    const audioPlayer = $('phone-audio');

    // The ring tone: two-tone bursts (440 + 480 Hz, as North American
    // phones ring), 1.2 s every 3 s, on an AudioContext made when the agent
    // switched the phone on (a click), so the browser lets it sound.
    const ring = {
      context: null,
      timer: null,
      nodes: [],
      bursts: 0,
      prepare() {
        const Context = window.AudioContext || window.webkitAudioContext;
        if (!Context) return;
        try {
          if (!this.context) this.context = new Context();
          this.context.resume().catch(() => {});
        } catch (_) { this.context = null; }
      },
      start() {
        if (this.timer) return;
        this.burst();
        this.timer = setInterval(() => this.burst(), 3000);
      },
      burst() {
        const context = this.context;
        if (!context) return;
        this.bursts += 1;
        const at = context.currentTime;
        const gain = context.createGain();
        gain.gain.setValueAtTime(0, at);
        gain.gain.linearRampToValueAtTime(0.12, at + 0.05);
        gain.gain.setValueAtTime(0.12, at + 1.15);
        gain.gain.linearRampToValueAtTime(0, at + 1.2);
        gain.connect(context.destination);
        this.nodes = [440, 480].map((frequency) => {
          const tone = context.createOscillator();
          tone.frequency.value = frequency;
          tone.connect(gain);
          tone.start(at);
          tone.stop(at + 1.2);
          return tone;
        });
      },
      stop() {
        clearInterval(this.timer);
        this.timer = null;
        for (const tone of this.nodes) {
          try { tone.stop(); } catch (_) { /* already stopped */ }
        }
        this.nodes = [];
      },
      close() {
        this.stop();
        if (this.context) this.context.close().catch(() => {});
        this.context = null;
      },
    };

    function note(text) {
      $('phone-note').textContent = text || '';
    }

    function setState(next) {
      state = next;
      const badge = $('phone-state');
      badge.dataset.state = next;
      badge.className = `badge phone-${next}`;
      badge.textContent = words(next);
      $('phone').dataset.state = next;
      document.body.dataset.phone = next;
      const on = next !== 'off';
      $('phone-on').hidden = on;
      $('phone-off').hidden = !on;
      // Hang up first: switching off in a call would drop the patient back
      // into the queue.
      $('phone-off').disabled = next === 'in_call' || next === 'on_hold';
      $('phone-off').title = $('phone-off').disabled ? 'Hang up first.' : '';
      $('phone-incoming').hidden = next !== 'ringing';
      $('phone-call').hidden = next !== 'in_call' && next !== 'on_hold';
      $('phone-answer').disabled = !call || call.answering;
      $('phone-decline').disabled = !call || call.answering;
      $('phone-mute').textContent = muted ? 'Unmute' : 'Mute';
      $('phone-mute').setAttribute('aria-pressed', String(muted));
      $('phone-hold').textContent = held ? 'Resume' : 'Hold';
      $('phone-hold').setAttribute('aria-pressed', String(held));
      $('phone-transfer').disabled = next !== 'in_call' && next !== 'on_hold';
      if (next === 'ringing') ring.start();
      else ring.stop();
    }

    function send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    }

    /** Why the page cannot make calls here, or null. */
    function unsupported() {
      if (!window.isSecureContext) {
        return 'The microphone works only over HTTPS or on this computer (localhost). ' +
          'Ask your administrator for the https:// address of this page ' +
          '(the daemon started with --sips).';
      }
      if (!navigator.mediaDevices || !window.RTCPeerConnection || !window.WebSocket) {
        return 'This browser cannot make calls (no microphone access or WebRTC).';
      }
      return null;
    }

    /** Resolves once ICE gathering is complete, or after GATHER_BOUND
     *  with the candidates found so far. */
    function gathered(connection) {
      return new Promise((resolve) => {
        if (connection.iceGatheringState === 'complete') return resolve();
        const done = () => {
          if (connection.iceGatheringState !== 'complete') return;
          clearTimeout(timer);
          connection.removeEventListener('icegatheringstatechange', done);
          resolve();
        };
        const timer = setTimeout(() => {
          connection.removeEventListener('icegatheringstatechange', done);
          resolve();
        }, GATHER_BOUND);
        connection.addEventListener('icegatheringstatechange', done);
      });
    }

    function teardown() {
      clearInterval(pinger);
      pinger = null;
      pingsOut = 0;
      if (socket) {
        const old = socket;
        socket = null;
        old.onopen = old.onmessage = old.onclose = old.onerror = null;
        if (old.readyState === WebSocket.OPEN || old.readyState === WebSocket.CONNECTING) old.close(1000);
      }
      if (pc) {
        pc.ontrack = null;
        pc.close();
        pc = null;
      }
      audioPlayer.srcObject = null;
      endCall();
    }

    function endCall() {
      call = null;
      held = false;
      pendingTransfer = null;
      muted = false;
      if (microphone) microphone.getAudioTracks().forEach((track) => { track.enabled = true; });
      $('phone-transfer-to').value = '';
    }

    /** Switches the phone off: socket, peer connection, microphone, tone. */
    function off(message) {
      wanted = false;
      clearTimeout(retry);
      retry = null;
      teardown();
      if (microphone) microphone.getTracks().forEach((track) => track.stop());
      microphone = null;
      ring.close();
      setState('off');
      note(message || unsupported() || '');
    }

    async function on() {
      const why = unsupported();
      if (why) return note(why);
      wanted = true;
      retryDelay = 1000;
      ring.prepare();
      note('');
      await connect();
    }

    async function connect() {
      clearTimeout(retry);
      retry = null;
      teardown();
      setState('connecting');
      const token = sessionStorage.getItem(KEY);
      if (!token) return off();
      if (!microphone) {
        let stream;
        try {
          stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        } catch (error) {
          return off(`No microphone: ${error.name === 'NotAllowedError'
            ? 'the browser was not allowed to use it'
            : error.message || error.name}.`);
        }
        // Switched off while the browser asked: let the microphone go.
        if (!wanted) {
          stream.getTracks().forEach((track) => track.stop());
          return undefined;
        }
        microphone = stream;
      }
      if (!wanted) return undefined;
      const connection = new RTCPeerConnection({ iceServers: [] });
      pc = connection;
      const [track] = microphone.getAudioTracks();
      connection.addTransceiver(track, { direction: 'sendrecv', streams: [microphone] });
      connection.ontrack = (event) => {
        audioPlayer.srcObject = event.streams[0] || new MediaStream([event.track]);
      };
      try {
        await connection.setLocalDescription(await connection.createOffer());
        await gathered(connection);
      } catch (error) {
        return off(`The browser could not prepare the call: ${error.message || error.name}.`);
      }
      if (!wanted || pc !== connection) return undefined;
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(`${scheme}//${location.host}/agent/phone`);
      socket = ws;
      ws.onopen = () => send({ type: 'hello', token, offer: connection.localDescription.sdp });
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (_) {
          return;
        }
        if (message && typeof message.type === 'string') receive(message, connection);
      };
      ws.onclose = (event) => closed(event.code, ws);
      return undefined;
    }

    function closed(code, ws) {
      if (ws !== socket) return;
      socket = null;
      if (code === 4401) {
        off();
        sessionStorage.removeItem(KEY);
        signIn('Your session ended. Please sign in again.');
        return;
      }
      if (FINAL[code]) return off(`The phone is off: ${FINAL[code]}.`);
      if (!wanted) return undefined;
      // Dropped unasked (network, restart): a call in progress is already
      // back in its queue; come back with a new connection.
      const inCall = call && (state === 'in_call' || state === 'on_hold');
      teardown();
      setState('connecting');
      note(`${inCall ? 'The call was cut: the patient goes back to the head of the queue. ' : ''}` +
        `The phone lost its connection; trying again in ${Math.round(retryDelay / 1000)} s…`);
      retry = setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
      return undefined;
    }

    function receive(message, connection) {
      const mine = call && message.call === call.id;
      switch (message.type) {
        case 'ready':
          if (typeof message.answer !== 'string' || pc !== connection || state !== 'connecting') return;
          connection.setRemoteDescription({ type: 'answer', sdp: message.answer }).then(() => {
            retryDelay = 1000;
            setState('ready');
            note('You take calls in this browser. Keep this page open.');
            clearInterval(pinger);
            pingsOut = 0;
            pinger = setInterval(() => {
              if (pingsOut >= PINGS_MISSED && socket) return socket.close(4000);
              pingsOut += 1;
              return send({ type: 'ping' });
            }, PING_EVERY);
          }).catch((error) => {
            off(`The phone's answer was refused by the browser: ${error.message || error.name}.`);
          });
          return;
        case 'pong':
          pingsOut = 0;
          return;
        case 'replaced':
          off('The phone is off: another page of yours took over the phone.');
          return;
        case 'error':
          note(`The phone says: ${String(message.error || 'error')}.`);
          return;
        case 'ringing':
          if (typeof message.call !== 'string') return;
          if (call && call.id !== message.call) {
            // One call at a time: the other goes to the next agent at once.
            send({ type: 'decline', call: message.call });
            return;
          }
          call = { id: message.call, from: String(message.from || 'A caller'), answering: false };
          $('phone-from').textContent = call.from;
          $('phone-with').textContent = call.from;
          note('');
          setState('ringing');
          return;
        case 'connected':
          if (!mine) return;
          call.answering = false;
          setState('in_call');
          audioPlayer.play().catch(() => {});
          note('');
          return;
        case 'stopped':
          if (!mine) return;
          endCall();
          setState('ready');
          note(message.reason === 'cancelled'
            ? 'The call stopped ringing (the caller hung up, or it was answered elsewhere).'
            : `The call stopped ringing (${String(message.reason || '')}).`);
          return;
        case 'held':
          if (!mine) return;
          held = message.on === true;
          setState(held ? 'on_hold' : 'in_call');
          return;
        case 'transferred':
          if (!mine) return;
          if (message.ok === true) call.transferredTo = pendingTransfer || 'the target';
          note(message.ok === true
            ? `Transferred to ${call.transferredTo}.`
            : `The transfer to ${pendingTransfer || 'the target'} was refused; the call stays with you.`);
          pendingTransfer = null;
          return;
        case 'ended': {
          if (!mine) return;
          const transferredTo = call.transferredTo;
          endCall();
          setState('ready');
          note(transferredTo ? `Transferred to ${transferredTo}; the call left you.` : 'The call ended.');
          return;
        }
        default:
          return;
      }
    }

    $('phone-on').addEventListener('click', () => { on(); });
    $('phone-off').addEventListener('click', () => off());
    $('phone-answer').addEventListener('click', () => {
      if (!call || state !== 'ringing') return;
      call.answering = true;
      ring.stop();
      send({ type: 'answer', call: call.id });
      $('phone-answer').disabled = true;
      $('phone-decline').disabled = true;
      note('Answering…');
      // Playing needs this click's permission in some browsers.
      audioPlayer.play().catch(() => {});
    });
    $('phone-decline').addEventListener('click', () => {
      if (!call || state !== 'ringing') return;
      send({ type: 'decline', call: call.id });
      endCall();
      setState('ready');
      note('You declined the call.');
    });
    $('phone-hangup').addEventListener('click', () => {
      if (!call) return;
      send({ type: 'hangup', call: call.id });
      endCall();
      setState('ready');
      note('You hung up.');
    });
    $('phone-mute').addEventListener('click', () => {
      if (!call || !microphone) return;
      muted = !muted;
      microphone.getAudioTracks().forEach((track) => { track.enabled = !muted; });
      setState(state);
    });
    $('phone-hold').addEventListener('click', () => {
      if (!call) return;
      send({ type: 'hold', call: call.id, on: !held });
    });
    $('phone-transfer-form').addEventListener('submit', (event) => {
      event.preventDefault();
      if (!call) return;
      const to = $('phone-transfer-to').value.trim();
      if (!TARGET.test(to)) {
        note('Transfer to a queue id (cardiology) or an agent id (1002).');
        return;
      }
      pendingTransfer = to;
      send({ type: 'transfer', call: call.id, to });
      note(`Transferring to ${to}…`);
    });

    const why = unsupported();
    if (why) {
      $('phone-on').disabled = true;
      $('phone-on').title = why;
      note(why);
    }
    setState('off');

    // Read-only, for tests and the curious: the phone's state and its
    // peer connection (getStats()).
    window.frontdeskPhone = Object.freeze({
      get state() { return state; },
      get states() { return STATES.slice(); },
      get call() { return call ? call.id : null; },
      get from() { return call ? call.from : null; },
      get muted() { return muted; },
      get held() { return held; },
      get ringing() { return ring.timer !== null; },
      get ringBursts() { return ring.bursts; },
      get audioState() { return ring.context ? ring.context.state : 'none'; },
      get peerConnection() { return pc; },
      get socketOpen() { return Boolean(socket) && socket.readyState === WebSocket.OPEN; },
    });

    return { off };
  })();

  start();
})();
