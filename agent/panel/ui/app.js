// tda control panel. Everything shown comes from logs or from people, so the DOM is built with
// textContent and attributes only: no HTML string is ever parsed from data.
'use strict';

(function () {
  const mode = document.body.dataset.mode === 'github' ? 'github' : 'agent';
  const $ = (id) => document.getElementById(id);

  // h builds an element: h('div', {class: 'x', onclick: fn}, 'text', child...).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function clear(el, ...children) {
    el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  function when(iso) {
    if (!iso) return '-';
    const t = new Date(iso);
    if (isNaN(t)) return String(iso);
    const secs = Math.round((Date.now() - t.getTime()) / 1000);
    return t.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') + ' (' + ago(secs) + ')';
  }

  function ago(secs) {
    if (secs < 0) return 'in ' + duration(-secs);
    return duration(secs) + ' ago';
  }

  function duration(secs) {
    secs = Math.round(secs);
    if (secs < 90) return secs + 's';
    if (secs < 5400) return Math.round(secs / 60) + 'm';
    if (secs < 172800) return (secs / 3600).toFixed(1).replace(/\.0$/, '') + 'h';
    return (secs / 86400).toFixed(1).replace(/\.0$/, '') + 'd';
  }

  // Messages belong to the action that produced them: the next state change, a sign-out or
  // moving to another incident clears them (clearMessages).
  function showError(msg) { $('error').textContent = msg || ''; if (msg) $('notice').textContent = ''; }
  function showNotice(msg, link) {
    const n = $('notice');
    clear(n, msg);
    if (link) n.append(' ', h('a', { href: link, target: '_blank', rel: 'noopener noreferrer' }, 'Open the run'));
    if (msg) $('error').textContent = '';
  }
  function clearMessages() { $('error').textContent = ''; clear($('notice')); }

  // ---- backends ----

  class APIError extends Error {
    constructor(status, body) {
      super((body && body.error) || ('HTTP ' + status));
      this.status = status;
      this.kind = body && body.kind;
    }
  }

  function agentBackend() {
    let csrf = '';
    let session = null;
    async function call(method, path, body) {
      const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
      if (body !== undefined) {
        opts.headers['Content-Type'] = 'application/json';
        opts.headers['X-CSRF-Token'] = csrf;
        opts.body = JSON.stringify(body);
      }
      const res = await fetch(path, opts);
      let data = null;
      try { data = await res.json(); } catch (e) { data = null; }
      if (!res.ok) throw new APIError(res.status, data);
      return data;
    }
    function withBy(body) {
      if (session && session.shared) body.by = actorName();
      return body;
    }
    return {
      caps: { ack: true, override: true, request: true, decide: true, snapshot: true, restore: true, prune: false, audit: true, deadletters: true, incidents: true, recovery: true },
      async session() {
        try {
          session = await call('GET', 'api/session');
          csrf = session.csrf || '';
          return session;
        } catch (e) {
          if (e.status === 401) return null;
          throw e;
        }
      },
      async signIn(token) {
        session = await call('POST', 'api/login', { token });
        csrf = session.csrf || '';
        return session;
      },
      async signOut() { await call('POST', 'api/logout', {}); session = null; },
      async load() {
        // Dead letters live in the running agent: without them (503) the rest still shows.
        const letters = call('GET', 'api/deadletters').catch((e) => {
          if (e.status === 401) throw e;
          return { unavailable: e.message };
        });
        const q = new URLSearchParams({ limit: '50' });
        if (incidentFilter.status) q.set('status', incidentFilter.status);
        if (incidentFilter.q) q.set('q', incidentFilter.q);
        // The incident page reads its incident afresh with every refresh: the live count.
        const page = selectedIncident ? call('GET', 'api/incidents/' + encodeURIComponent(selectedIncident)).catch((e) => {
          if (e.status === 401) throw e;
          return { unavailable: e.message };
        }) : null;
        const [state, alerts, snapshots, migrations, override, audit, deadletters, incident] = await Promise.all([
          call('GET', 'api/state'), call('GET', 'api/incidents?' + q.toString()), call('GET', 'api/snapshots'),
          call('GET', 'api/migrations?limit=20'), call('GET', 'api/override'), call('GET', 'api/audit?limit=30'), letters, page]);
        return { state, alerts, snapshots, migrations, override, audit, deadletters, incident };
      },
      ackIncident: (id, reason) => call('POST', 'api/incidents/' + encodeURIComponent(id) + '/ack', withBy({ reason })),
      closeIncident: (id, note) => call('POST', 'api/incidents/' + encodeURIComponent(id) + '/close', withBy({ note })),
      entitiesURL: (id, format) => 'api/incidents/' + encodeURIComponent(id) + '/entities.' + format,
      deadletter: (id) => call('GET', 'api/deadletters/' + encodeURIComponent(id)),
      replayLetter: (id, reason) => call('POST', 'api/deadletters/' + encodeURIComponent(id) + '/replay', withBy({ reason })),
      dropLetter: (id, reason) => call('DELETE', 'api/deadletters/' + encodeURIComponent(id), withBy({ reason })),
      ack: (fp, comment) => call('POST', 'api/alerts/' + encodeURIComponent(fp) + '/ack', withBy({ comment })),
      overrideOn: (reason, ttl) => call('POST', 'api/override/on', withBy({ reason, ttl })),
      overrideOff: (reason) => call('POST', 'api/override/off', withBy({ reason })),
      request: (name, reason) => call('POST', 'api/migrations', withBy({ name, reason })),
      decide: (id, approve, reason) => call('POST', 'api/migrations/' + encodeURIComponent(id) + '/' + (approve ? 'approve' : 'reject'), withBy({ reason })),
      snapshot: (target, reason) => call('POST', 'api/snapshots', withBy({ target, reason })),
      restore: (r) => call('POST', 'api/restores', withBy(r)),
      recovery: (fp) => call('GET', 'api/incidents/' + encodeURIComponent(fp) + '/recovery'),
      restores: () => call('GET', 'api/restores'),
      activeIncidents: () => call('GET', 'api/incidents?status=active&limit=5'),
    };
  }

  // In GitHub mode the page is static: it reads the JSON files the workflows publish next to
  // it, and acts by dispatching the repository's workflows with the operator's token, which
  // stays in this tab's sessionStorage.
  function githubBackend() {
    const tokenKey = 'tda.github.token';
    let cfg = null;
    async function config() {
      if (!cfg) {
        const res = await fetch('config.json', { cache: 'no-store' });
        if (!res.ok) throw new Error('config.json is missing: rebuild the page with tda panel export');
        cfg = await res.json();
      }
      return cfg;
    }
    async function data(name, fallback) {
      const c = await config();
      const res = await fetch(c.data + name, { cache: 'no-store' });
      if (res.status === 404) return fallback;
      if (!res.ok) throw new Error(name + ': HTTP ' + res.status);
      return res.json();
    }
    async function dispatch(workflow, inputs) {
      const c = await config();
      const file = c.workflows[workflow];
      const url = c.api + '/repos/' + encodeURIComponent(c.owner) + '/' + encodeURIComponent(c.repo) +
        '/actions/workflows/' + encodeURIComponent(file) + '/dispatches';
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          Accept: 'application/vnd.github+json',
          Authorization: 'Bearer ' + sessionStorage.getItem(tokenKey),
          'Content-Type': 'application/json',
          'X-GitHub-Api-Version': '2022-11-28',
        },
        body: JSON.stringify({ ref: c.ref, inputs, return_run_details: true }),
      });
      let body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      if (!res.ok) {
        const msg = (body && body.message) || ('HTTP ' + res.status);
        if (res.status === 401) throw new Error('GitHub refused the token (' + msg + '): paste a fine-grained token with Actions: write');
        if (res.status === 403 || res.status === 404) throw new Error('GitHub refused the dispatch (' + msg + '): the token needs Actions: write on ' + c.owner + '/' + c.repo + ', and ' + file + ' must exist on ' + c.ref);
        throw new Error('GitHub: ' + msg);
      }
      const link = body && typeof body.html_url === 'string' && body.html_url.startsWith('https://') ? body.html_url : null;
      return { workflow: file, run: body && body.workflow_run_id, link };
    }
    return {
      caps: { ack: false, override: false, request: false, decide: true, snapshot: true, restore: true, prune: true, audit: false, deadletters: false, incidents: false, recovery: false },
      async session() {
        const c = await config();
        $('signin-title').textContent = 'Paste a GitHub token';
        $('signin-help').textContent = 'A fine-grained token for ' + c.owner + '/' + c.repo +
          ' with Actions: write. It stays in this tab only (sessionStorage) and is sent to ' + c.api + ' alone.';
        const t = sessionStorage.getItem(tokenKey);
        return t ? { name: 'GitHub: ' + c.owner + '/' + c.repo + ' (' + c.ref + ')', role: 'operator' } : null;
      },
      async signIn(token) {
        sessionStorage.setItem(tokenKey, token);
        return this.session();
      },
      async signOut() { sessionStorage.removeItem(tokenKey); },
      async load() {
        const [state, alerts, snapshots, migrations] = await Promise.all([
          data('state.json', null), data('alerts.json', []), data('snapshots.json', []), data('migrations.json', [])]);
        return { state, alerts, snapshots, migrations, override: null, audit: [], deadletters: null, incident: null };
      },
      decide: (id, approve, reason) => dispatch('migration', { id: String(id), decision: approve ? 'approve' : 'reject', reason }),
      snapshot: (target, reason) => dispatch('snapshot', { target: target || '', reason }),
      restore: (r) => dispatch('restore', { target: r.target || '', snapshot: r.snapshot, new_name: r.new_name, confirm: r.confirm, reason: r.reason }),
      prune: (reason) => dispatch('prune', { dry_run: 'false', reason }),
    };
  }

  // incidentFilter is the incident list's search; selectedIncident the incident whose page is
  // open (from the address: #incident=ID).
  const incidentFilter = { status: 'active', q: '' };
  let selectedIncident = null;

  const backend = mode === 'github' ? githubBackend() : agentBackend();
  const recovery = window.tdaRecovery;
  let session = null;

  function actorName() {
    return ($('actor-name').value || '').trim();
  }

  // ---- the confirmation dialog ----

  // confirm asks before an action: optional fields, a reason (required unless reason is
  // false), and for the most dangerous actions a word to type. Resolves to the values, or
  // null when cancelled.
  function confirmAction(o) {
    // One question at a time: a second click (a double click on a button) while the dialog
    // is open would take over the open dialog's handlers and leave the first caller waiting.
    if ($('confirm').open) return Promise.resolve(null);
    return new Promise((resolve) => {
      const dlg = $('confirm');
      $('confirm-title').textContent = o.title;
      $('confirm-text').textContent = o.text || '';
      $('confirm-error').textContent = '';
      const inputs = {};
      clear($('confirm-fields'), (o.fields || []).map((f) => {
        const input = f.options
          ? h('select', { id: 'confirm-field-' + f.id }, f.options.map((opt) => h('option', { value: opt.value }, opt.label)))
          : h('input', { type: 'text', id: 'confirm-field-' + f.id, value: f.value || '', autocomplete: 'off' });
        inputs[f.id] = input;
        return h('label', {}, f.label, input);
      }));
      const reason = $('confirm-reason');
      reason.value = '';
      $('confirm-reason-label').hidden = o.reason === false;
      $('confirm-reason-prompt').textContent = o.reasonLabel || 'Reason (required)';
      const typeLabel = $('confirm-type-label');
      const typed = $('confirm-type');
      typed.value = '';
      typeLabel.hidden = !o.typeToConfirm;
      $('confirm-type-prompt').textContent = o.typeToConfirm ? 'Type ' + o.typeToConfirm + ' to confirm' : '';
      const ok = $('confirm-ok');
      ok.textContent = o.confirmLabel || 'Confirm';
      ok.className = o.danger ? 'danger' : 'primary';
      const check = () => { ok.disabled = !!o.typeToConfirm && typed.value !== o.typeToConfirm; };
      typed.oninput = check;
      check();
      const done = (v) => { dlg.onclose = null; if (dlg.open) dlg.close(); resolve(v); };
      $('confirm-cancel').onclick = () => done(null);
      // The close event is queued: one left over from the previous question may arrive once
      // this one is open, and must not answer it.
      dlg.onclose = () => { if (!dlg.open) resolve(null); };
      $('confirm-form').onsubmit = (ev) => {
        ev.preventDefault();
        const r = reason.value.trim();
        if (o.reason !== false && !r) { $('confirm-error').textContent = (o.reasonLabel ? o.reasonLabel.replace(/ \(required\)$/, '') : 'A reason') + ' is required.'; return; }
        if (o.typeToConfirm && typed.value !== o.typeToConfirm) return;
        const values = {};
        for (const [k, el] of Object.entries(inputs)) values[k] = el.value.trim();
        for (const f of o.fields || []) {
          if (f.required && !values[f.id]) { $('confirm-error').textContent = f.label + ' is required.'; return; }
        }
        done({ reason: r, values });
      };
      dlg.showModal();
      (o.fields && o.fields.length ? inputs[o.fields[0].id] : reason).focus();
    });
  }

  async function act(fn, okMsg) {
    if (session && session.shared && mode === 'agent' && !actorName()) {
      showError('Type your name first: it is recorded with every action.');
      $('actor-name').focus();
      return;
    }
    let res;
    try {
      res = await fn();
    } catch (e) {
      showError(e.message);
      return;
    }
    // The state change the action caused is rendered first: its message stays until the next.
    await refresh();
    showNotice(typeof okMsg === 'function' ? okMsg(res) : okMsg, res && res.link);
  }

  // ---- rendering ----

  let lastStatus = null;

  function renderBanner(st) {
    const b = $('banner');
    if (!st) {
      b.className = 'banner unknown';
      $('status-word').textContent = 'unknown';
      $('status-time').textContent = 'no state published yet';
      clear($('reasons'));
      return;
    }
    // A state change (the status, or an incident of the banner opening, being acknowledged or
    // resolved) ends what the previous messages were about; a count going up does not.
    const key = [st.status].concat((st.blocking || []).map((i) => 'b:' + i.id + ':' + i.state),
      (st.acknowledged || []).map((i) => 'a:' + i.id + ':' + i.state)).join(' ');
    if (lastStatus !== null && lastStatus !== key) clearMessages();
    lastStatus = key;
    b.className = 'banner ' + st.status;
    $('status-word').textContent = st.status;
    $('status-time').textContent = 'as of ' + when(st.time) + (st.agent === false ? ' (agent not running)' : '');
    const reasons = (st.reasons || []).map((r) => h('li', {}, r));
    if (!reasons.length && st.status === 'normal') reasons.push(h('li', {}, 'Every source attached, every sink delivering, no HIGH incident open or awaiting its close.'));
    if (st.pending_migrations) reasons.push(h('li', {}, st.pending_migrations + ' migration request(s) awaiting a decision'));
    clear($('reasons'), reasons);
  }

  // ---- incidents ----

  function openIncident(id) {
    if (selectedIncident === id) return;
    clearMessages();
    location.hash = id ? 'incident=' + encodeURIComponent(id) : '';
  }

  function incidentFromHash() {
    const m = /^#incident=([A-Za-z0-9_-]+)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function ackIncident(a) {
    return async () => {
      const r = await confirmAction({ title: 'Acknowledge incident ' + a.id + ' (' + a.rule + ')',
        text: 'Say who is on it and what you are doing; it goes to the audit log. A HIGH incident stops blocking restores and migrations, and stays listed until someone closes it.',
        confirmLabel: 'Acknowledge' });
      if (r) act(() => backend.ackIncident(a.id, r.reason), 'Incident ' + a.id + ' acknowledged.');
    };
  }

  function closeIncident(a) {
    return async () => {
      const r = await confirmAction({ title: 'Close incident ' + a.id + ' (' + a.rule + ')',
        text: 'Write the note for the post-incident review: what happened, what was done, what is left.',
        reasonLabel: 'Note for the review (required)', confirmLabel: 'Close incident' });
      if (r) act(() => backend.closeIncident(a.id, r.reason), 'Incident ' + a.id + ' closed.');
    };
  }

  function statusBadges(a) {
    return [
      h('span', { class: 'badge ' + a.severity }, a.severity),
      a.status ? h('span', { class: 'badge status status-' + a.status }, a.status) : null,
      a.state === 'suppressed' ? h('span', { class: 'badge state-suppressed' }, 'suppressed') : null,
      isBlocking(a) ? h('span', { class: 'badge blocking' }, 'blocking') : null,
    ];
  }

  function isBlocking(a) { return a.severity === 'HIGH' && a.fired && !a.ack && !a.close; }

  function incidentFacts(a) {
    const facts = [a.count + ' events (threshold ' + a.threshold + ' in ' + a.window + ')'];
    if (a.key) facts.push('key ' + a.key);
    facts.push('first event ' + when(a.first_seen), 'last ' + when(a.last_seen));
    if (a.origin) facts.push('from ' + a.origin);
    return facts;
  }

  // incidentActions are the buttons an operator has on an incident in its state.
  function incidentActions(a) {
    const out = [];
    if (!canAct() || !backend.caps.incidents) return out;
    if (!a.ack && !a.close) out.push(h('button', { type: 'button', class: 'primary ack-button', onclick: ackIncident(a) }, 'Acknowledge'));
    if (a.ack && !a.close && a.status === 'resolved') out.push(h('button', { type: 'button', class: 'close-button', onclick: closeIncident(a) }, 'Close with a note'));
    return out;
  }

  function renderAlerts(list) {
    lastAlerts = list;
    const el = $('alert-list');
    $('incident-search').hidden = !backend.caps.incidents;
    if (!list || !list.length) {
      clear(el, h('p', { class: 'empty' }, incidentFilter.status === 'active' && !incidentFilter.q ? 'No incident is open.' : 'No incident matches.'));
      return;
    }
    clear(el, list.map((a) => {
      const past = a.status === 'closed';
      const what = (a.explained && a.explained.what) || a.explanation || '';
      const card = h('article', { class: 'card alert-card incident-card sev-' + a.severity + (past ? ' past' : ''), 'data-fingerprint': a.fingerprint, 'data-id': a.id || '' },
        h('div', { class: 'title' }, statusBadges(a), h('span', { class: 'rule' }, a.rule), a.id ? h('code', { class: 'incident-id' }, a.id) : null),
        h('div', { class: 'facts' }, incidentFacts(a).join(' · ')),
        a.state === 'suppressed' ? h('div', { class: 'facts' }, 'suppressed by override of ' + (a.suppressed_by || '?') + ': ' + (a.override_reason || '')) : null,
        past ? null : h('div', { class: 'explanation' }, what),
        !past && a.excerpt && a.excerpt.length ? h('pre', { class: 'excerpt' }, a.excerpt.join('\n')) : null);
      if (a.ack) card.append(h('p', { class: 'ack' }, 'Acknowledged by ' + a.ack.by + ' ' + when(a.ack.at) + ': ' + a.ack.comment));
      if (a.close) card.append(h('p', { class: 'closed-note' }, 'Closed by ' + a.close.by + ' ' + when(a.close.at) + ': ' + a.close.note));
      const actions = h('div', { class: 'actions' }, incidentActions(a));
      if (backend.caps.incidents && a.id) actions.prepend(h('button', { type: 'button', class: 'open-incident', onclick: () => openIncident(a.id) }, 'Open incident'));
      if (actions.childNodes.length) card.append(actions);
      recovery.decorateAlert(card, a);
      return card;
    }));
  }

  // lastAlerts are the alerts last rendered; a restore started during an open incident
  // starts from before it.
  let lastAlerts = [];

  // stepControl is the panel's own control for a first step, where there is one.
  function stepControl(step, a) {
    switch (step.action) {
      case 'acknowledge':
        return !a.ack && !a.close && canAct() ? h('button', { type: 'button', class: 'primary step-ack', onclick: ackIncident(a) }, 'Acknowledge') : null;
      case 'close':
        return a.ack && !a.close && a.status === 'resolved' && canAct() ? h('button', { type: 'button', class: 'step-close', onclick: closeIncident(a) }, 'Close with a note') : null;
      case 'entities':
        return h('a', { class: 'button step-entities', href: backend.entitiesURL(a.id, 'csv'), download: 'incident-' + a.id + '-entities.csv' }, 'Download affected entities (CSV)');
      case 'restore':
        // Restores start from before the incident: the recovery dialog, when the agent has it.
        if (backend.caps.recovery && canAct()) return h('button', { type: 'button', class: 'step-restore', onclick: () => recovery.open(a.fingerprint) }, 'Restore from before the incident…');
        return h('button', { type: 'button', class: 'step-restore', onclick: () => goTo('snapshots', '.restore-button') }, 'Restore…');
      case 'snapshot':
        return h('button', { type: 'button', class: 'step-snapshot', onclick: () => goTo('snapshots', '.snapshot-button') }, 'Snapshots');
      case 'override':
        return canAct() ? h('button', { type: 'button', class: 'step-override', onclick: () => goTo('override', '#override-reason') }, 'Declare override') : null;
    }
    return null;
  }

  // goTo brings a section into view and focuses its control.
  function goTo(section, sel) {
    const sec = $(section);
    if (!sec || sec.hidden) return;
    sec.scrollIntoView({ behavior: 'smooth', block: 'start' });
    const el = sec.querySelector(sel);
    if (el) el.focus();
  }

  function renderIncidentPage(d) {
    const sec = $('incident-page');
    sec.hidden = !selectedIncident;
    if (!selectedIncident) return;
    const el = $('incident-detail');
    if (!d || d.unavailable) {
      $('incident-title').textContent = 'Incident ' + selectedIncident;
      clear(el, h('p', { class: 'error' }, d ? d.unavailable : 'Not found.'));
      return;
    }
    $('incident-title').textContent = 'Incident ' + d.id + ': ' + d.rule;
    const x = d.explained || { what: d.explanation, steps: [] };
    const facts = h('dl', { class: 'incident-facts' },
      h('dt', {}, 'Status'), h('dd', { class: 'incident-status' }, statusBadges(d)),
      h('dt', {}, 'Count'), h('dd', { class: 'incident-count' }, String(d.count) + ' events (threshold ' + d.threshold + ' in ' + d.window + ')'),
      d.key ? [h('dt', {}, 'Key'), h('dd', {}, d.key)] : null,
      h('dt', {}, 'First event'), h('dd', { class: 'first-event' }, when(d.first_seen)),
      h('dt', {}, 'Last event'), h('dd', {}, when(d.last_seen)),
      h('dt', {}, 'Origin'), h('dd', {}, (d.origin || '-') + (d.source ? ' (' + d.source + ')' : '')),
      d.ack ? [h('dt', {}, 'Acknowledged'), h('dd', { class: 'ack' }, d.ack.by + ' ' + when(d.ack.at) + ': ' + d.ack.comment)] : null,
      d.resolved_at ? [h('dt', {}, 'Resolved'), h('dd', {}, when(d.resolved_at) + ': the burst ended')] : null,
      d.close ? [h('dt', {}, 'Closed'), h('dd', { class: 'closed-note' }, d.close.by + ' ' + when(d.close.at) + ': ' + d.close.note)] : null,
      h('dt', {}, 'Fingerprint'), h('dd', { class: 'fingerprint' }, d.fingerprint));
    const warn = isBlocking(d)
      ? h('p', { class: 'blocking-note' }, 'Nobody has acknowledged this incident: the system stays blocked (restores and migrations refused) until someone does, even after the burst ends.')
      : null;
    const explanation = h('div', { class: 'explained' },
      h('h3', {}, 'What happened'), h('p', { class: 'what' }, x.what || ''),
      x.cause ? [h('h3', {}, 'Likely cause'), h('p', { class: 'cause' }, x.cause)] : null,
      h('h3', {}, 'First steps'),
      h('ol', { class: 'steps' }, (x.steps || []).map((st) => h('li', { class: 'step', 'data-action': st.action || '' },
        h('span', {}, st.text), ' ', stepControl(st, d)))),
      x.state ? h('p', { class: 'facts' }, x.state) : null);
    const timeline = h('table', { class: 'timeline' },
      h('thead', {}, h('tr', {}, ['When', 'What', 'Count', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, (d.timeline || []).map((e) => h('tr', { class: 'timeline-entry', 'data-what': e.what },
        h('td', {}, when(e.at)), h('td', {}, e.what + (e.by ? ' by ' + e.by : '')), h('td', {}, e.count ? String(e.count) : ''),
        h('td', { class: 'wrap' }, (e.snapshot ? e.snapshot + ' ' : '') + (e.text || ''))))));
    const ents = d.entities || { fields: {}, total: 0 };
    const fields = Object.keys(ents.fields || {}).sort();
    const entities = h('div', { class: 'entities' },
      h('p', { class: 'facts' }, ents.total + ' distinct value' + (ents.total === 1 ? '' : 's') + ' named by the events' +
        (ents.truncated ? ' (truncated: more were seen than tda keeps)' : '') + '. ',
        ents.total ? [h('a', { class: 'entities-csv', href: backend.entitiesURL(d.id, 'csv'), download: 'incident-' + d.id + '-entities.csv' }, 'Download CSV'), ' · ',
          h('a', { class: 'entities-json', href: backend.entitiesURL(d.id, 'json'), download: 'incident-' + d.id + '-entities.json' }, 'JSON')] : null),
      fields.length ? h('table', { class: 'entities-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Field'), h('th', {}, 'Count'), h('th', {}, 'Values'))),
        h('tbody', {}, fields.map((f) => h('tr', { class: 'entity-row', 'data-field': f },
          h('td', {}, f), h('td', {}, String(ents.fields[f].length)), h('td', { class: 'wrap values' }, ents.fields[f].join(', ')))))) : null);
    const recoverySlot = h('div', { class: 'incident-recovery' });
    recovery.decorateAlert(recoverySlot, d);
    clear(el, warn, h('div', { class: 'incident-grid' },
      h('div', {}, facts, h('div', { class: 'actions' }, incidentActions(d)), recoverySlot),
      explanation),
      h('h3', {}, 'Timeline'), timeline,
      h('h3', {}, 'Affected entities'), entities,
      d.excerpt && d.excerpt.length ? [h('h3', {}, 'Excerpt'), h('pre', { class: 'excerpt' }, d.excerpt.join('\n'))] : null);
  }

  function rpoClass(secs) { return secs > 86400 ? 'rpo-bad' : ''; }

  function renderSnapshots(targets) {
    const el = $('snapshot-list');
    if (!targets || !targets.length) { clear(el, h('p', { class: 'empty' }, 'No snapshot target is configured.')); return; }
    clear(el, targets.map((t) => {
      const rows = (t.tiers || []).map((tier) => h('tr', { class: 'tier' },
        h('td', {}, tier.name),
        h('td', {}, tier.newest ? when(tier.newest) : 'none'),
        h('td', { class: tier.newest ? rpoClass(tier.rpo_seconds) : 'rpo-bad' }, tier.newest ? (tier.rpo || duration(tier.rpo_seconds)) : '-'),
        h('td', {}, String((tier.snapshots || []).length))));
      const lr = t.last_restore;
      const drill = lr
        ? h('p', { class: 'facts last-restore' }, 'Last restore: ' + lr.status + ' into ' + lr.new_name + ' ' + when(lr.started) +
          (lr.status === 'succeeded' ? ', RPO ' + duration(lr.rpo_seconds) + ', RTO ' + duration(lr.rto_seconds) : '') +
          (lr.error ? ' - ' + lr.error : '') + ' (by ' + lr.by + ')')
        : h('p', { class: 'facts last-restore' }, 'No restore drill recorded: test a restore before you need one.');
      const snaps = [];
      for (const tier of t.tiers || []) for (const s of tier.snapshots || []) if (s.status === 'available') snaps.push(s);
      const actions = h('div', { class: 'actions' });
      if (canAct() && backend.caps.snapshot) {
        actions.append(h('button', { type: 'button', class: 'snapshot-button', onclick: async () => {
          const r = await confirmAction({ title: 'Take a snapshot of ' + t.target, confirmLabel: 'Take snapshot' });
          if (r) act(() => backend.snapshot(t.name, r.reason), (res) => 'Snapshot ' + (res.id || 'requested') + '.');
        } }, 'Take snapshot'));
      }
      if (canAct() && backend.caps.restore && snaps.length) {
        actions.append(h('button', { type: 'button', class: 'danger restore-button', onclick: async () => {
          // During an open incident the restore starts from before it, never from the newest.
          const incident = backend.caps.recovery && recovery.openIncident(lastAlerts);
          if (incident) { recovery.open(incident, t.name); return; }
          const r = await confirmAction({
            title: 'Restore ' + t.target + ' into a new ' + (t.kind === 'postgres' ? 'database' : 'cluster'),
            text: 'The protected ' + t.target + ' is left untouched; the restore creates the new one.',
            fields: [
              { id: 'snapshot', label: 'Snapshot', options: snaps.map((s) => ({ value: s.id, label: s.id + ' (' + when(s.time) + ')' })) },
              { id: 'new_name', label: 'New name', value: t.target + '-restored', required: true },
            ],
            typeToConfirm: t.target, danger: true, confirmLabel: 'Restore',
          });
          if (r) act(() => backend.restore({ target: t.name, snapshot: r.values.snapshot, new_name: r.values.new_name, confirm: t.target, reason: r.reason }),
            'Restore started into ' + r.values.new_name + '.');
        } }, 'Restore…'));
      }
      if (canAct() && backend.caps.prune) {
        actions.append(h('button', { type: 'button', class: 'prune-button', onclick: async () => {
          const r = await confirmAction({ title: 'Prune snapshots of ' + t.target, text: 'Deletes what the retention policy does not keep; never the newest, never one tda did not take.', confirmLabel: 'Prune' });
          if (r) act(() => backend.prune(r.reason), 'Prune dispatched.');
        } }, 'Prune'));
      }
      return h('div', { class: 'target', 'data-target': t.name },
        h('h3', {}, t.target + ' (' + t.kind + ', ' + t.name + ')'),
        t.error ? h('p', { class: 'error' }, t.error) : null,
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Tier'), h('th', {}, 'Newest'), h('th', {}, 'RPO'), h('th', {}, 'Kept'))),
          h('tbody', {}, rows)),
        drill, actions);
    }));
  }

  function renderMigrations(list) {
    const el = $('migration-list');
    $('migration-form').hidden = !(backend.caps.request && canAct());
    if (!list || !list.length) { clear(el, h('p', { class: 'empty' }, 'No migration request.')); return; }
    const pending = list.filter((m) => m.status === 'pending');
    const rest = list.filter((m) => m.status !== 'pending').slice(0, 8);
    const row = (m) => {
      const div = h('div', { class: 'migration status-' + m.status, 'data-id': m.id },
        h('div', { class: 'title' }, h('span', { class: 'badge' }, m.status), h('strong', {}, '#' + m.id + ' ' + m.name)),
        h('div', { class: 'facts' }, 'requested by ' + m.requested_by + ' ' + when(m.requested_at) + (m.reason ? ': ' + m.reason : '')),
        m.decided_by ? h('div', { class: 'facts decision' }, m.status === 'rejected' ? 'rejected' : 'approved', ' by ' + m.decided_by + ' ' + when(m.decided_at) + (m.decision_reason ? ': ' + m.decision_reason : '') +
          (m.valid_until && m.status !== 'rejected' ? ' (valid until ' + when(m.valid_until) + ')' : '')) : null,
        (m.runs || []).map((r) => h('div', { class: 'facts' }, 'run by ' + r.by + ' ' + when(r.started) + ': ' + r.outcome + (r.snapshot ? ', pre-migration snapshot ' + r.snapshot : '') + (r.override ? ' (' + r.override + ')' : ''))));
      if (m.status === 'pending' && backend.caps.decide && canAct()) {
        const decide = (approve) => async () => {
          const r = await confirmAction({ title: (approve ? 'Approve' : 'Reject') + ' migration #' + m.id + ' ' + m.name,
            text: 'Requested by ' + m.requested_by + (m.reason ? ': ' + m.reason : '') + '. The requester cannot approve their own request.',
            confirmLabel: approve ? 'Approve' : 'Reject', danger: !approve });
          if (r) act(() => backend.decide(m.id, approve, r.reason), 'Migration #' + m.id + (approve ? ' approved.' : ' rejected.'));
        };
        div.append(h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'primary approve', onclick: decide(true) }, 'Approve'),
          h('button', { type: 'button', class: 'reject', onclick: decide(false) }, 'Reject')));
      }
      return div;
    };
    clear(el, pending.length ? h('h3', {}, 'Awaiting a decision') : null, pending.map(row),
      rest.length ? h('h3', {}, 'Recent') : null, rest.map(row));
  }

  function renderOverride(st) {
    const sec = $('override');
    sec.hidden = !backend.caps.override;
    if (!backend.caps.override) return;
    const el = $('override-state');
    const a = st && st.active;
    clear(el, a
      ? h('p', { class: 'override-active' }, 'In force: declared by ' + a.actor + ' (' + a.origin + ') until ' + when(a.until) + ': ' + a.reason)
      : h('p', { class: 'empty' }, 'No override. Declare one before approved bulk work; alerts of overridable rules are then recorded as suppressed.'));
    $('override-form').hidden = !canAct();
    $('override-off').hidden = !a;
  }

  // auditTarget names what an entry acted on: an incident by its id, rule and key.
  function auditTarget(e) {
    const d = e.detail || {};
    const about = d.rule ? ' · ' + d.rule + (d.key ? ' · key ' + d.key : '') : '';
    // A snapshot or a restore for an incident: what was acted on first, then the incident.
    if (d.incident && e.target && e.target !== d.incident) return e.target + ' · incident ' + d.incident + about;
    if (d.incident && d.rule) return 'incident ' + (e.target || d.incident) + about;
    return e.target || '';
  }

  function renderAudit(list) {
    const sec = $('audit');
    sec.hidden = !backend.caps.audit;
    if (!backend.caps.audit) return;
    const el = $('audit-list');
    if (!list || !list.length) { clear(el, h('p', { class: 'empty' }, 'Nothing recorded yet.')); return; }
    clear(el, h('table', {},
      h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Target', 'Why', 'Outcome'].map((c) => h('th', {}, c)))),
      h('tbody', {}, list.map((e) => h('tr', { class: 'audit-entry', 'data-action': e.action },
        h('td', {}, when(e.time)), h('td', {}, e.actor + (e.via ? ' (' + e.via + ')' : '')), h('td', {}, e.action),
        h('td', {}, auditTarget(e)), h('td', {}, e.reason || ''),
        h('td', {}, e.outcome + (e.error ? ': ' + e.error : '')))))));
  }

  // shownLetters are the dead letters whose events are open, by id, kept across refreshes;
  // lastLetters is the list last rendered, which opening or closing a letter renders again.
  const shownLetters = new Map();
  let lastLetters = null;

  function renderDeadLetters(list) {
    lastLetters = list;
    const sec = $('deadletters');
    sec.hidden = !backend.caps.deadletters;
    if (!backend.caps.deadletters) return;
    const el = $('deadletter-list');
    if (list && list.unavailable) { clear(el, h('p', { class: 'empty' }, 'Not available: ' + list.unavailable)); return; }
    if (!list || !list.length) { shownLetters.clear(); clear(el, h('p', { class: 'empty' }, 'No dead letter: every batch was delivered or is still being retried.')); return; }
    for (const id of [...shownLetters.keys()]) if (!list.some((l) => String(l.id) === id)) shownLetters.delete(id);
    const rows = [];
    for (const l of list) {
      const id = String(l.id);
      const actions = h('td', { class: 'actions-cell' },
        h('button', { type: 'button', class: 'show-letter', onclick: () => toggleLetter(id) }, shownLetters.has(id) ? 'Hide events' : 'Events'));
      if (canAct()) {
        const what = 'dead letter ' + id + ' of ' + l.instance + ' (' + l.events + ' event' + (l.events === 1 ? '' : 's') + ')';
        actions.append(' ', h('button', { type: 'button', class: 'primary replay-letter', onclick: async () => {
          const r = await confirmAction({ title: 'Replay ' + what, text: 'Its events go back on the queue of ' + l.instance + '. Say what was fixed; a batch that fails again becomes a new dead letter.', confirmLabel: 'Replay' });
          if (r) act(() => backend.replayLetter(id, r.reason), 'Dead letter ' + id + ' replayed.');
        } }, 'Replay'), ' ', h('button', { type: 'button', class: 'danger drop-letter', onclick: async () => {
          const r = await confirmAction({ title: 'Drop ' + what, text: 'Its events are deleted for good and never delivered: ' + (l.error || ''), confirmLabel: 'Drop', danger: true });
          if (r) act(() => backend.dropLetter(id, r.reason), 'Dead letter ' + id + ' dropped.');
        } }, 'Drop'));
      }
      rows.push(h('tr', { class: 'deadletter', 'data-id': id },
        h('td', {}, id), h('td', {}, l.instance + (l.pipeline ? ' (' + l.pipeline + ')' : '')),
        h('td', {}, l.reason + (l.attempts > 1 ? ' after ' + l.attempts + ' attempts' : '')),
        h('td', { class: 'error-text' }, l.error || ''), h('td', {}, String(l.events)),
        h('td', {}, when(l.time)), actions));
      const shown = shownLetters.get(id);
      if (shown) {
        rows.push(h('tr', { class: 'deadletter-events', 'data-id': id }, h('td', { colspan: 7 },
          shown.error ? h('p', { class: 'error' }, shown.error) : h('pre', { class: 'excerpt' }, shown.events.map((e) => JSON.stringify(e)).join('\n')))));
      }
    }
    clear(el, h('table', {},
      h('thead', {}, h('tr', {}, ['Id', 'Instance', 'Reason', 'Error', 'Events', 'Since', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows)));
  }

  async function toggleLetter(id) {
    if (shownLetters.has(id)) {
      shownLetters.delete(id);
    } else {
      try {
        const d = await backend.deadletter(id);
        shownLetters.set(id, { events: d.events || [] });
      } catch (e) {
        shownLetters.set(id, { error: e.message });
      }
    }
    renderDeadLetters(lastLetters);
  }

  function canAct() { return session && session.role === 'operator'; }

  // refresh renders everything afresh. A call while a refresh runs makes it run once more, and
  // resolves once that run is done: an action's message is shown on what it changed.
  let running = null;
  let again = false;
  function refresh() {
    if (!session) return Promise.resolve();
    if (running) { again = true; return running; }
    running = (async () => {
      do {
        again = false;
        await refreshOnce();
      } while (again && session);
    })().finally(() => { running = null; });
    return running;
  }

  async function refreshOnce() {
    try {
      const d = await backend.load();
      renderBanner(d.state);
      renderAlerts(d.alerts);
      renderIncidentPage(d.incident);
      renderSnapshots(d.snapshots);
      renderMigrations(d.migrations);
      renderOverride(d.override);
      renderAudit(d.audit);
      renderDeadLetters(d.deadletters);
      await recovery.render();
      $('panel').hidden = false;
    } catch (e) {
      // Signed out meanwhile: start again from the sign-in (not awaited: it refreshes too).
      if (e.status === 401) { start(); return; }
      showError('Could not load: ' + e.message);
    }
  }

  async function start() {
    try {
      session = await backend.session();
    } catch (e) {
      showError(e.message);
      return;
    }
    $('signin').hidden = !!session;
    $('signout').hidden = !session;
    $('panel').hidden = !session;
    $('who').textContent = session ? session.name + ' · ' + session.role : '';
    $('whoami').hidden = !(session && session.shared && mode === 'agent');
    if (session) await refresh();
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('signin-error').textContent = '';
    try {
      await backend.signIn($('token').value.trim());
      $('token').value = '';
      await start();
    } catch (e) {
      $('signin-error').textContent = e.message;
    }
  });
  $('signout').addEventListener('click', async () => {
    try { await backend.signOut(); } catch (e) { /* signed out anyway */ }
    session = null;
    lastStatus = null;
    clearMessages();
    await start();
  });
  const nameInput = $('actor-name');
  nameInput.value = sessionStorage.getItem('tda.actor') || '';
  nameInput.addEventListener('change', () => sessionStorage.setItem('tda.actor', actorName()));
  $('migration-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('migration-name').value.trim();
    const reason = $('migration-reason').value.trim();
    act(() => backend.request(name, reason), (m) => 'Migration #' + m.id + ' requested; another person must approve it.')
      .then(() => { $('migration-name').value = ''; $('migration-reason').value = ''; });
  });
  $('override-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const reason = $('override-reason').value.trim();
    const ttl = $('override-ttl').value.trim();
    const r = await confirmAction({ title: 'Declare override for ' + ttl, text: 'Reason: ' + reason + '. Overridable alerts will be recorded as suppressed, and blocked actions become possible.', reason: false, confirmLabel: 'Declare override' });
    if (r) act(() => backend.overrideOn(reason, ttl), 'Override declared.');
  });
  $('override-off').addEventListener('click', async () => {
    const r = await confirmAction({ title: 'End the override', confirmLabel: 'End override' });
    if (r) act(() => backend.overrideOff(r.reason), 'Override ended.');
  });
  if (mode === 'github') $('signin-title').textContent = 'Paste a GitHub token';
  recovery.init({ h, clear, when, backend, canAct, refresh, notice: (m) => showNotice(m), panelError: showError });
  $('incident-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    incidentFilter.status = $('incident-status').value;
    incidentFilter.q = $('incident-q').value.trim();
    clearMessages();
    refresh();
  });
  $('incident-back').addEventListener('click', () => openIncident(null));
  window.addEventListener('hashchange', () => {
    selectedIncident = backend.caps.incidents ? incidentFromHash() : null;
    clearMessages();
    refresh().then(() => { if (selectedIncident) $('incident-page').scrollIntoView({ block: 'start' }); });
  });
  selectedIncident = backend.caps.incidents ? incidentFromHash() : null;

  start();
  setInterval(() => { if (!document.hidden && !$('confirm').open) refresh(); }, 5000);
})();
