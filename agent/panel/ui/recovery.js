// tda control panel: recovering from an incident. The restore dialog lists each snapshot
// target's recovery points before and during the incident (its first event is the line
// between them), preselects the newest point before it, and asks for an explicit confirmation
// of what a point from during the incident may hold. The recovery section shows the last
// restore: the snapshot, the new database's connection details, RPO and RTO, the next steps.
// Like app.js, it builds the DOM from text and attributes only.
'use strict';

window.tdaRecovery = (function () {
  let ui = null; // helpers from app.js: h, clear, when, act, backend, canAct, panelError
  const $ = (id) => document.getElementById(id);
  const cache = new Map(); // incident fingerprint -> {at, rec} for the current refresh

  function init(helpers) { ui = helpers; }

  function secs(v) {
    if (v === undefined || v === null) return '-';
    if (v < 60) return v.toFixed(3).replace(/\.?0+$/, '') + ' s';
    if (v < 3600) return Math.floor(v / 60) + ' min ' + Math.round(v % 60) + ' s';
    return (v / 3600).toFixed(1).replace(/\.0$/, '') + ' h';
  }

  function iso(t) { return t ? new Date(t).toISOString().replace('.000Z', 'Z') : '-'; }

  // recovery reads an incident's recovery points, at most every 30 s once its anomaly
  // snapshot shows (listing a target costs provider calls), every refresh until then.
  async function recovery(fp) {
    const c = cache.get(fp);
    if (c && Date.now() - c.at < ((c.rec.evidence || []).length ? 30000 : 4000)) return c.rec;
    const rec = await ui.backend.recovery(fp);
    cache.set(fp, { at: Date.now(), rec });
    if (cache.size > 50) cache.delete(cache.keys().next().value);
    return rec;
  }

  function pointLabel(p) {
    return p.point_in_time ? 'point in time ' + iso(p.time) : p.snapshot;
  }

  // decorateAlert adds to an incident's card the anomaly snapshot taken for it and the button
  // that opens the restore dialog.
  function decorateAlert(card, a) {
    if (!ui || !ui.backend.caps.recovery || !a || !a.fingerprint) return;
    const slot = ui.h('div', { class: 'recovery-slot' });
    card.append(slot);
    recovery(a.fingerprint).then((rec) => {
      const evidence = [];
      for (const t of rec.targets || []) {
        for (const p of t.points || []) {
          if (p.evidence) evidence.push(ui.h('p', { class: 'facts evidence', 'data-snapshot': p.snapshot },
            'Evidence: anomaly snapshot ' + p.snapshot + ' of ' + t.target + ', ' + p.relation + ' (' + p.status + ').'));
        }
      }
      const actions = [];
      if (ui.canAct() && (rec.targets || []).length && a.status !== 'closed') {
        actions.push(ui.h('div', { class: 'actions' }, ui.h('button', {
          type: 'button', class: 'danger incident-restore', onclick: () => open(a.fingerprint),
        }, 'Restore from before the incident…')));
      }
      ui.clear(slot, evidence, actions);
    }).catch((e) => {
      ui.clear(slot, ui.h('p', { class: 'facts' }, 'Recovery points unavailable: ' + e.message));
    });
  }

  function suggestName(t) {
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', 't');
    return t.kind === 'postgres' ? t.target + '_restored_' + stamp : t.target + '-restored-' + stamp;
  }

  // explain turns a refusal into what to do with the panel's own controls.
  function explain(e) {
    if (e.kind === 'forbidden' && /blocked/.test(e.message)) {
      return 'The system is blocked by an incident nobody acknowledged: press Acknowledge on its card, ' +
        'or declare an override in the Override section, then restore. (' + e.message + ')';
    }
    if (e.kind === 'unavailable') return e.message + ' The restore runs in the agent: it must be running.';
    return e.message;
  }

  // open shows the restore dialog for an incident, optionally on one target.
  async function open(fp, targetName) {
    const dlg = $('restore-dialog');
    if (dlg.open) return;
    const err = $('restore-error');
    err.textContent = '';
    let rec;
    try {
      cache.delete(fp);
      rec = await recovery(fp);
    } catch (e) {
      ui.panelError('Could not read the recovery points: ' + e.message);
      return;
    }
    const targets = (rec.targets || []).filter((t) => !targetName || t.name === targetName);
    if (!targets.length) { ui.panelError('No snapshot target to restore.'); return; }
    const inc = rec.incident;
    $('restore-title').textContent = 'Recover from incident ' + (inc.id ? inc.id + ': ' : '') + inc.rule + (inc.key ? ' (key ' + inc.key + ')' : '');
    $('restore-text').textContent = 'First event ' + iso(inc.first_event) + '. Points before it hold the data as it was; ' +
      'points taken during the incident may hold changes it made. The protected database is left untouched: ' +
      'the restore creates a new one.';
    const targetSel = $('restore-target');
    ui.clear(targetSel, targets.map((t) => ui.h('option', { value: t.name }, t.target + ' (' + t.kind + ', ' + t.name + ')')));
    $('restore-target-label').hidden = targets.length < 2;
    let target = targets[0];
    let chosen = null;
    const during = $('restore-during');
    const duringOK = $('restore-during-ok');
    const typed = $('restore-type');
    const reason = $('restore-reason');
    const name = $('restore-name');
    const ok = $('restore-ok');

    const check = () => {
      const needsOK = chosen && chosen.phase !== 'before';
      during.hidden = !needsOK;
      ok.disabled = !chosen || typed.value !== target.target || !reason.value.trim() || !name.value.trim() ||
        (needsOK && !duringOK.checked);
    };
    const choose = (p) => {
      chosen = p;
      duringOK.checked = false;
      if (p && p.phase !== 'before') {
        $('restore-during-text').textContent = pointLabel(p) + ' was ' + p.warning + '.';
      }
      check();
    };
    const renderTarget = () => {
      name.value = suggestName(target);
      $('restore-type-prompt').textContent = 'Type ' + target.target + ' to confirm';
      typed.value = '';
      const rows = [];
      let line = false;
      const lineRow = () => ui.h('tr', { class: 'first-event-line' }, ui.h('td', { colspan: 4 },
        'First event of the incident: ' + iso(inc.first_event) + ' — above: during the incident, below: before it'));
      for (const p of target.points || []) {
        if (p.phase === 'before' && !line) { rows.push(lineRow()); line = true; }
        const id = 'restore-point-' + rows.length;
        const radio = ui.h('input', { type: 'radio', name: 'restore-point', id, value: pointLabel(p),
          disabled: !(p.point_in_time || p.status === 'available'), checked: !!p.default });
        radio.addEventListener('change', () => choose(p));
        const badges = [ui.h('span', { class: 'badge phase-' + p.phase }, p.phase)];
        if (p.default) badges.push(ui.h('span', { class: 'badge default' }, 'default: newest before the incident'));
        if (p.evidence) badges.push(ui.h('span', { class: 'badge evidence' }, 'anomaly snapshot of this incident'));
        rows.push(ui.h('tr', { class: 'restore-point phase-' + p.phase, 'data-snapshot': p.snapshot || '', 'data-default': p.default ? 'true' : 'false' },
          ui.h('td', {}, radio),
          ui.h('td', {}, ui.h('label', { for: id }, pointLabel(p)), ' ', badges),
          ui.h('td', {}, iso(p.time)),
          ui.h('td', {}, p.relation + (p.status && p.status !== 'available' ? ' (' + p.status + ')' : ''))));
      }
      if (!line) rows.push(lineRow());
      ui.clear($('restore-points'), ui.h('table', {}, ui.h('tbody', {}, rows)));
      $('restore-note').textContent = target.default ? '' : (target.note || 'No point before the incident.');
      choose(target.default || null);
    };
    targetSel.onchange = () => { target = targets.find((t) => t.name === targetSel.value) || targets[0]; renderTarget(); };
    typed.oninput = check; reason.oninput = check; name.oninput = check; duringOK.onchange = check;
    reason.value = '';
    renderTarget();
    $('restore-cancel').onclick = () => dlg.close();
    $('restore-form').onsubmit = async (ev) => {
      ev.preventDefault();
      check();
      if (ok.disabled) return;
      const body = { target: target.name, new_name: name.value.trim(), confirm: typed.value, reason: reason.value.trim(),
        incident: inc.fingerprint, confirm_during: chosen.phase !== 'before' };
      if (chosen.point_in_time) body.to_time = chosen.time; else body.snapshot = chosen.snapshot;
      ok.disabled = true;
      try {
        const r = await ui.backend.restore(body);
        dlg.close();
        ui.notice('Restore ' + r.id + ' started into ' + r.new_name + ' from ' + pointLabel(chosen) + ' (' + chosen.relation + ').');
        await ui.refresh();
      } catch (e) {
        err.textContent = explain(e);
        check();
      }
    };
    dlg.showModal();
    reason.focus();
  }

  // active are the incidents not closed yet, as last read: a restore started from the
  // Snapshots section while one is active starts from before it.
  let active = [];

  // openIncident returns the incident a restore should start from: the newest active HIGH
  // incident, else the newest active one; alerts (the firing ones) are the fallback.
  function openIncident(alerts) {
    const pick = (list) => {
      const high = list.filter((a) => a.severity === 'HIGH');
      return (high[0] || list[0] || {}).fingerprint || null;
    };
    return pick(active) || pick((alerts || []).filter((a) => (a.status ? a.status !== 'closed' : a.state !== 'resolved')));
  }

  // repairURL opens the repair page on what a restore created and the incident it was for.
  function repairURL(r) {
    const q = new URLSearchParams({ restore: r.new_name });
    if (r.incident_fingerprint) q.set('incident', r.incident_fingerprint);
    return 'repair.html?' + q.toString();
  }

  // render shows the newest restore: its snapshot, connection, RPO, RTO and next steps.
  async function render() {
    const sec = $('recovery');
    if (!ui || !ui.backend.caps.recovery) { sec.hidden = true; return; }
    let list;
    try {
      [list, active] = await Promise.all([ui.backend.restores(), ui.backend.activeIncidents().catch(() => [])]);
      active = (active || []).filter((i) => i.status !== 'closed').slice(0, 5);
    } catch (e) {
      sec.hidden = false;
      ui.clear($('recovery-result'), ui.h('p', { class: 'error' }, 'Restores unavailable: ' + e.message));
      return;
    }
    sec.hidden = false;
    const r = (list || [])[0];
    if (!r) { ui.clear($('recovery-result'), ui.h('p', { class: 'empty' }, 'No restore yet.')); return; }
    const rows = [
      ['Status', r.status + (r.status === 'running' ? ' (started ' + ui.when(r.started) + ')' : '')],
      ['Restored', (r.snapshot ? 'snapshot ' + r.snapshot : 'point in time ' + iso(r.to_time)) + (r.relation ? ' — ' + r.relation : '')],
      ['Into', r.new_name + ' (from ' + r.source + ', target ' + r.target + ')'],
    ];
    if (r.connection) {
      const c = r.connection;
      rows.push(['Connect', [c.host ? 'host ' + c.host : null, c.port ? 'port ' + c.port : null,
        c.cluster ? 'cluster ' + c.cluster : null, c.database ? 'database ' + c.database : null, c.user ? 'user ' + c.user : null].filter(Boolean).join(', ') +
        ' (credentials: ' + (c.kind === 'aurora' ? "the source cluster's" : 'those of the snapshot block') + ')']);
    }
    if (r.status === 'succeeded') {
      rows.push(['Recovery point', iso(r.recovery_point)]);
      rows.push(['RPO', secs(r.rpo_seconds) + ' (what the new database does not hold)']);
      rows.push(['RTO', secs(r.rto_seconds) + ' (until it accepted connections)']);
    }
    if (r.error) rows.push(['Error', r.error]);
    rows.push(['By', r.by + ': ' + r.reason]);
    ui.clear($('recovery-result'),
      ui.h('table', { class: 'restore-result', 'data-status': r.status, 'data-id': r.id },
        ui.h('tbody', {}, rows.map(([k, v]) => ui.h('tr', {}, ui.h('th', {}, k), ui.h('td', {}, v))))),
      (r.next_steps || []).length ? ui.h('div', { class: 'next-steps' }, ui.h('h3', {}, 'Next steps'),
        ui.h('ol', {}, ui.h('li', {}, r.next_steps[0]), ui.h('li', {}, 'Then put back the rows the incident damaged in ' + r.source +
          ' from ' + r.new_name + ': ', ui.h('a', { class: 'button repair-link', href: repairURL(r) }, 'Plan the repair…'),
          ' (nothing is written until you confirm there), or switch the application over to ' + r.new_name +
          ' if the whole database must go back. Then close the incident with a note.'))) : null);
  }

  return { init, decorateAlert, open, openIncident, render };
})();
