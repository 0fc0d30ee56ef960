"""The dashboard's stylesheet and script: plain CSS and a little vanilla JS,
served by the proxy itself (nothing from a CDN, no build step)."""

from __future__ import annotations

CSS = """
:root{--fg:#1d2127;--muted:#6b7280;--line:#e5e7eb;--card:#fff;--bg:#f6f7f9;
--ok:#15803d;--bad:#b91c1c;--warn:#b45309;--accent:#2563eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--fg);
background:var(--bg)}
header.top{display:flex;align-items:center;gap:1em;padding:.7em 1.4em;background:#111827;
color:#f9fafb}
header.top h1{font-size:1.1em;margin:0;font-weight:600}
.live{font-size:.8em;padding:.1em .6em;border-radius:1em;background:#374151}
.live.on{background:var(--ok)}.live.off{background:var(--warn)}
#note{font-size:.85em;color:#d1d5db}
main{padding:1em 1.4em}
h2{font-size:1.15em;margin:.6em 0}h2 small,h3 small{color:var(--muted);font-weight:400;
font-size:.8em}
h4{margin:1.2em 0 .3em;font-size:.95em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(25em,1fr));gap:1em}
article.wt{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:.8em 1em}
article.wt h3{margin:0 0 .3em;font-size:1em;display:flex;gap:.5em;align-items:center}
.where{margin:.2em 0 .5em;word-break:break-all}.where code{color:var(--muted);font-size:.85em}
dl{display:grid;grid-template-columns:6.5em 1fr;gap:.15em .6em;margin:.4em 0}
dt{color:var(--muted)}dd{margin:0}
dd ul{margin:.2em 0;padding-left:1.2em}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f3f4f6;
padding:.05em .3em;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.5em 0;font-size:.92em}
th,td{text-align:left;padding:.25em .4em;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:500}td.num{white-space:nowrap}
table.dbs code{word-break:break-all}
.state,.svc-state{font-size:.8em;padding:.05em .5em;border-radius:1em;background:#e5e7eb}
.s-ready,.s-running,.s-main{background:#dcfce7;color:var(--ok)}
.s-starting,.s-restarting,.s-provisioning{background:#fef3c7;color:var(--warn)}
.s-crashed,.s-missing{background:#fee2e2;color:var(--bad)}
.ok{color:var(--ok)}.bad{color:var(--bad)}.muted,.empty{color:var(--muted)}
.error{color:var(--bad)}
form.act{display:inline}
button{font:inherit;font-size:.85em;padding:.1em .6em;border:1px solid #cbd5e1;
border-radius:4px;background:#fff;cursor:pointer}button:hover{border-color:var(--accent)}
a{color:var(--accent)}
pre.log{background:#0f172a;color:#e2e8f0;padding:.8em;border-radius:6px;min-height:20em;
max-height:75vh;overflow:auto;font:12px/1.4 ui-monospace,Menlo,monospace;white-space:pre-wrap}
pre.log time{color:#64748b}.l-err{color:#fca5a5}.l-supervisor{color:#93c5fd}
footer{padding:1em 1.4em;color:var(--muted);font-size:.85em}
"""

# Updates come by server-sent events: no timer, no polling. Without JavaScript the
# page is the same, only still; forms then post and come back with a redirect.
JS = """
(() => {
  const body = document.body, live = document.getElementById('live');
  const note = document.getElementById('note');
  const token = () => document.querySelector('meta[name=branchyard-token]').content;
  const openKeys = () => new Set([...document.querySelectorAll('details[open]')].map(
    d => (d.closest('[data-worktree]') || {dataset: {}}).dataset.worktree + '|'
      + d.parentElement.className));
  const restore = keys => document.querySelectorAll('details').forEach(d => {
    const key = (d.closest('[data-worktree]') || {dataset: {}}).dataset.worktree + '|'
      + d.parentElement.className;
    if (keys.has(key)) d.open = true;
  });
  if (body.dataset.stream && window.EventSource) {
    const es = new EventSource(body.dataset.stream);
    es.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
    es.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'live off'; };
    es.addEventListener('yard', e => {
      const keys = openKeys(), yard = document.getElementById('yard');
      if (!yard) return;
      yard.outerHTML = e.data;
      restore(keys);
    });
    es.addEventListener('line', e => {
      const pre = document.getElementById('loglines');
      if (!pre) return;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.insertAdjacentHTML('beforeend', e.data);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
  }
  document.addEventListener('submit', async ev => {
    const form = ev.target.closest('form.act');
    if (!form) return;
    ev.preventDefault();
    const data = new URLSearchParams(new FormData(form));
    if (ev.submitter && ev.submitter.name) data.set(ev.submitter.name, ev.submitter.value);
    data.set('token', token());
    note.textContent = data.get('op') + ' ' + data.get('svc') + '…';
    try {
      const r = await fetch(form.action, {method: 'POST', body: data,
        headers: {'Accept': 'application/json'}, credentials: 'same-origin'});
      const reply = await r.json();
      note.textContent = reply.message;
    } catch (err) { note.textContent = String(err); }
  });
})();
"""
