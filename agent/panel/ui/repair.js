// The repair page: makes a plan through POST api/repairs/plan, shows it, and applies it
// through POST api/repairs/apply once the operator typed the live database's name. Values are
// set as text, never as HTML.
(function () {
  'use strict';
  let csrf = '';
  let session = null;
  const $ = (id) => document.getElementById(id);

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
    if (!res.ok) {
      const err = new Error((data && data.error) || ('HTTP ' + res.status));
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  function shown(v) {
    if (!v) return '-';
    if (v.null) return 'NULL';
    return v.text.length > 64 ? v.text.slice(0, 63) + '…' : v.text;
  }

  function request() {
    const list = (s) => s.split(',').map((x) => x.trim()).filter((x) => x);
    // The log's lines themselves: the agent reads no file for the page.
    const lines = $('events').value.split('\n').filter((x) => x.trim());
    return {
      target: $('target').value.trim(), restore: $('restore').value.trim(), incident: $('incident').value.trim(),
      events: lines.length ? lines : undefined, actor: $('actor').value.trim(), table: $('table').value.trim(),
      keys: list($('keys').value),
    };
  }

  function showPlan(out) {
    const plan = out.plan;
    $('summary').textContent = out.summary + ' Live database: ' + out.live + '.';
    $('live-name').textContent = out.live;
    const body = $('items');
    body.textContent = '';
    for (const it of plan.items || []) {
      if (it.decision === 'same') continue;
      const changes = it.decision === 'missing' ? [{ column: '(' + (it.changes || []).length + ' columns)' }] : (it.changes || [{}]);
      changes.forEach((c, i) => {
        const tr = document.createElement('tr');
        tr.className = 'decision-' + it.decision;
        tr.append(cell(it.decision), cell(it.table), cell(it.key), cell(c.column || '-'),
          cell(it.decision === 'missing' ? 're-inserted' : shown(c.restored)),
          cell(it.decision === 'missing' ? '-' : shown(c.live)), cell(i === 0 ? it.reason : ''));
        body.append(tr);
      });
    }
    $('plan').hidden = false;
    $('apply-form').hidden = (plan.counts.repair || 0) + (plan.counts.missing || 0) === 0;
  }

  async function start() {
    try {
      session = await call('GET', 'api/session');
      csrf = session.csrf || '';
    } catch (e) {
      $('signed-out').hidden = false;
      return;
    }
    $('who').textContent = session.name + ' (' + session.role + ')';
    $('by-label').hidden = !session.shared;
    $('repair').hidden = false;
    // A restore's result links here with what it restored and the incident it was for.
    const q = new URLSearchParams(location.search);
    for (const f of ['restore', 'incident']) if (q.get(f) && !$(f).value) $(f).value = q.get(f);
    $('plan-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('plan-error').textContent = '';
      $('result').textContent = '';
      $('plan').hidden = true;
      try {
        showPlan(await call('POST', 'api/repairs/plan', request()));
      } catch (e) {
        $('plan-error').textContent = e.message;
      }
    });
    $('apply-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('apply-error').textContent = '';
      const body = request();
      body.confirm = $('confirm').value.trim();
      body.reason = $('reason').value.trim();
      if (session.shared) body.by = $('by').value.trim();
      try {
        const out = await call('POST', 'api/repairs/apply', body);
        const r = out.result || {};
        $('result').textContent = 'Repaired ' + (r.repaired || 0) + ' rows and re-inserted ' + (r.inserted || 0) +
          ' after the pre-repair snapshot ' + out.pre_repair_snapshot + '; ' + (r.verified || 0) +
          ' verified' + ((r.mismatches || []).length ? ', ' + r.mismatches.length + ' do not hold the restored values' : '') + '.';
        $('apply-form').hidden = true;
      } catch (e) {
        $('apply-error').textContent = e.message;
      }
    });
  }
  start();
}());
