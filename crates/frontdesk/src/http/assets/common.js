// What the dashboard and the agent view share: building DOM nodes (text
// only: data from calls is never parsed as HTML), formatting, and reading
// server-sent events with fetch, so that the request can carry an
// Authorization header (EventSource cannot).
'use strict';

window.frontdesk = (() => {
  /** A new element: `attrs` become attributes (`dataset` and `class`
   *  included), `children` strings or nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttributes(node, attrs);
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const SVG = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    setAttributes(node, attrs);
    for (const child of children) node.append(child);
    return node;
  }

  function setAttributes(node, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
  }

  /** Milliseconds as "42 s", "3 min 05 s", "1 h 02 min"; "–" for none. */
  function duration(ms) {
    if (ms === null || ms === undefined) return '–';
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
  }

  /** An RFC 3339 time as the clock time in `timeZone` (the clinic's). */
  function clock(iso, timeZone) {
    if (!iso) return '–';
    const options = { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
    try {
      return new Date(iso).toLocaleTimeString([], { ...options, timeZone });
    } catch (_) {
      return new Date(iso).toLocaleTimeString([], options);
    }
  }

  function percent(share) {
    return share === null || share === undefined ? '–' : `${Math.round(share * 100)} %`;
  }

  const words = (name) => String(name || '').replaceAll('_', ' ');

  class Unauthorized extends Error {}

  /** One GET of an event stream: calls `onEvent(name, data)` per event
   *  until the stream ends; throws Unauthorized on a 401. */
  async function readEvents(url, token, onEvent, signal) {
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
      cache: 'no-store',
      signal,
    });
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll('\r\n', '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) onEvent(name, data.join('\n'));
      }
    }
  }

  /** Keeps reading `url`'s events, reconnecting with a back-off (1 s up
   *  to 10 s) and when nothing arrived for `quietMs` (the server sends
   *  every second). `handlers`: event(name, data), status(text),
   *  unauthorized(). Returns { stop() }. */
  function live(url, token, handlers, quietMs = 6000) {
    let stopped = false;
    let controller = null;
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller && controller.abort(), quietMs);
    };
    (async () => {
      let delay = 1000;
      while (!stopped) {
        controller = new AbortController();
        handlers.status('connecting');
        arm();
        try {
          await readEvents(url, token, (name, data) => {
            arm();
            delay = 1000;
            handlers.status('live');
            handlers.event(name, data);
          }, controller.signal);
        } catch (error) {
          if (error instanceof Unauthorized) {
            stopped = true;
            clearTimeout(watchdog);
            handlers.unauthorized();
            return;
          }
        }
        clearTimeout(watchdog);
        if (stopped) return;
        handlers.status('reconnecting');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 10000);
      }
    })();
    return {
      stop() {
        stopped = true;
        clearTimeout(watchdog);
        if (controller) controller.abort();
      },
    };
  }

  /** The connection dot and its words. */
  function showStatus(state, updatedAt, timeZone) {
    document.body.dataset.connection = state;
    const text = document.getElementById('updated');
    if (!text) return;
    if (state === 'live' && updatedAt) text.textContent = `live · ${clock(updatedAt, timeZone)}`;
    else text.textContent = state === 'signed-out' ? 'not connected' : `${state}…`;
  }

  return { el, svg, duration, clock, percent, words, live, showStatus, Unauthorized };
})();
