# ruff: noqa: E501
"""Static text of the web UI: style sheet, review-screen markup and script, login page.

Kept apart from the Python so that the long CSS/JS lines do not clutter the handlers.
"""

from __future__ import annotations

CSS = """
.gradio-container { max-width: 100% !important; font-size: 17px; }
footer { display: none !important; }
.topbar { display: flex; align-items: center; gap: 24px; font-size: 18px; padding: 6px 4px; }
.topbar .brand { font-weight: 700; font-size: 20px; margin-right: auto; }
.topbar a { font-weight: 600; padding: 10px 16px; border-radius: 8px; background: #eef2f7; color: #123;
            text-decoration: none; }
.topbar a:hover { background: #dde5ef; }
/* review screen */
.rv { display: flex; flex-direction: column; gap: 10px; }
.rv.busy .rv-btn { opacity: .75; }
.rv-top { display: flex; gap: 14px; align-items: stretch; }
.rv-stat { background: #f3f5f8; border-radius: 10px; padding: 8px 18px; min-width: 150px; }
.rv-stat span { display: block; font-size: 14px; color: #555; }
.rv-stat b { font-size: 28px; }
.rv-item { margin-left: auto; align-self: center; font-size: 17px; color: #333; }
.rv-main { display: flex; gap: 16px; }
.rv-stage { flex: 1; height: calc(100vh - 230px); min-height: 420px; overflow: hidden; background: #1b1d21;
            border-radius: 10px; position: relative; cursor: zoom-in; touch-action: none; }
.rv-img { width: 100%; height: 100%; object-fit: contain; transform-origin: 0 0; user-select: none; }
.rv-empty { color: #eee; font-size: 26px; padding: 60px; text-align: center; }
.rv-side { width: 300px; display: flex; flex-direction: column; gap: 12px; }
.rv-model { background: #f3f5f8; border-radius: 10px; padding: 12px 14px; min-height: 96px; font-size: 17px; }
.rv-score b { font-size: 30px; }
.rv-blind { font-size: 24px; font-weight: 700; }
.rv-sub { color: #555; font-size: 15px; margin-top: 4px; }
.rv-problem { color: #a40000; font-weight: 600; margin-top: 6px; }
.rv-btn { display: flex; justify-content: space-between; align-items: center; font-size: 22px; font-weight: 600;
          min-height: 64px; padding: 0 18px; border-radius: 10px; border: 2px solid #c9d1db; background: #fff;
          cursor: pointer; }
.rv-btn:hover:not(:disabled) { background: #f0f4f9; }
.rv-btn:disabled { opacity: .45; cursor: default; }
.rv-btn[hidden] { display: none; }
.rv-ok { border-color: #3c8d3c; background: #eaf6ea; }
.rv-scratch { border-color: #b03a2e; background: #fbecea; }
.rv kbd, .rv-help kbd { font-family: system-ui, sans-serif; font-size: 18px; background: #222; color: #fff;
          border-radius: 6px; padding: 2px 10px; }
.rv-help { font-size: 15px; color: #444; line-height: 1.9; }
.rv-help kbd { font-size: 14px; padding: 1px 6px; }
.rv-msg { font-size: 17px; min-height: 26px; color: #1d5e1d; }
.rv-msg.bad { color: #a40000; font-weight: 700; }
/* engineer screens */
.eng-cards { display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }
.eng-card { background: #f3f5f8; border-radius: 10px; padding: 12px 16px; }
.eng-card span { display: block; font-size: 15px; color: #555; }
.eng-card b { font-size: 24px; }
.eng-card.warn { background: #fdf1e7; }
.eng-card.bad { background: #fbecea; grid-column: 1 / -1; }
.eng-note { font-size: 15px; color: #444; }
button.lg { min-height: 52px; font-size: 18px; }
.tab-container button, button[role="tab"] { font-size: 19px !important; padding: 10px 22px !important; }
"""


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in · scratch inspection</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f3f5f8; margin: 0; }}
 form {{ max-width: 420px; margin: 12vh auto; background: #fff; padding: 36px; border-radius: 14px;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); display: flex; flex-direction: column; gap: 14px; }}
 h1 {{ margin: 0 0 8px; font-size: 26px; }}
 label {{ font-size: 17px; font-weight: 600; }}
 input {{ font-size: 20px; padding: 12px; border: 2px solid #c9d1db; border-radius: 8px; }}
 button {{ font-size: 20px; font-weight: 700; padding: 14px; border: 0; border-radius: 8px;
          background: #1f5fa8; color: #fff; cursor: pointer; }}
 .err {{ color: #a40000; font-weight: 600; font-size: 17px; }}
</style></head>
<body><form method="post" action="/login">
<h1>Scratch inspection</h1>
{error}
<label for="name">User name</label><input id="name" name="name" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit" id="login">Log in</button>
</form></body></html>"""


SKELETON = """
<div class="rv" data-testid="review">
  <div class="rv-top">
    <div class="rv-stat"><span>Queue</span><b data-s="queue">-</b></div>
    <div class="rv-stat"><span>My labels today</span><b data-s="today">-</b></div>
    <div class="rv-stat"><span>My rate (last hour)</span><b data-s="hour">-</b></div>
    <div class="rv-item" data-s="item">Loading...</div>
  </div>
  <div class="rv-main">
    <div class="rv-stage" data-s="stage">
      <img class="rv-img" data-s="img" alt="phone under review" draggable="false" />
      <div class="rv-empty" data-s="empty" hidden>Queue empty: nothing to review. New items appear
        automatically.</div>
    </div>
    <div class="rv-side">
      <div class="rv-model" data-s="model"></div>
      <button class="rv-btn rv-ok" data-a="ok">OK<kbd>O</kbd></button>
      <button class="rv-btn rv-scratch" data-a="scratch">Scratch<kbd>X</kbd></button>
      <button class="rv-btn" data-a="skip">Skip<kbd>S</kbd></button>
      <button class="rv-btn" data-a="undo">Undo last<kbd>U</kbd></button>
      <button class="rv-btn" data-a="overlay" data-s="overlay-btn">Highlight on/off<kbd>H</kbd></button>
      <div class="rv-help">Zoom: mouse wheel, or <kbd>Z</kbd> to zoom in / out; drag to move.
        Labels advance to the next phone.</div>
      <div class="rv-msg" data-s="msg" role="status" aria-live="polite"></div>
    </div>
  </div>
</div>
"""

SCRIPT = r"""
const $ = (s) => element.querySelector(`[data-s="${s}"]`);
const img = $('img'), stage = $('stage');
const S = { item: null, showOverlay: true, busy: false, z: 1, tx: 0, ty: 0, mx: null, my: null };
window.__review = S;

function esc(t) { const d = document.createElement('div'); d.textContent = t == null ? '' : String(t); return d.innerHTML; }
function msg(text, bad) { const m = $('msg'); m.textContent = text || ''; m.classList.toggle('bad', !!bad); }
function setStats(st) {
  if (!st) return;
  if (st.queue != null) $('queue').textContent = st.queue;
  if (st.today != null) $('today').textContent = st.today;
  if (st.hour != null) $('hour').textContent = st.hour + ' / h';
}
function applyZoom() { img.style.transform = `translate(${S.tx}px, ${S.ty}px) scale(${S.z})`; }
function resetZoom() { S.z = 1; S.tx = 0; S.ty = 0; applyZoom(); }
function zoomAt(px, py, z) {
  z = Math.max(1, Math.min(8, z));
  const qx = (px - S.tx) / S.z, qy = (py - S.ty) / S.z;
  S.tx = px - qx * z; S.ty = py - qy * z; S.z = z;
  if (z === 1) { S.tx = 0; S.ty = 0; }
  applyZoom();
}
function currentUrl() {
  const it = S.item;
  if (!it) return '';
  return (it.overlay && S.showOverlay) ? it.overlay : it.image;
}
function renderItem() {
  const it = S.item;
  const model = $('model'), ob = $('overlay-btn');
  element.querySelectorAll('.rv-btn').forEach(b => b.disabled = !it && b.dataset.a !== 'undo');
  if (!it) {
    img.hidden = true; img.removeAttribute('src'); $('empty').hidden = false;
    $('item').textContent = 'No item'; model.innerHTML = ''; ob.hidden = true; return;
  }
  $('empty').hidden = true; img.hidden = false;
  $('item').innerHTML = `#${esc(it.id)} &middot; station ${esc(it.station)} &middot; received ${esc(it.received)}`;
  if (it.blind) {
    model.innerHTML = '<div class="rv-blind">Blind review</div><div class="rv-sub">Decide from the image alone.</div>';
    ob.hidden = true;
  } else {
    const score = it.score == null ? 'n/a' : it.score.toFixed(3);
    model.innerHTML = `<div class="rv-score" data-testid="score">Model score <b>${score}</b></div>` +
      `<div class="rv-sub">${esc(it.regions)} highlighted region(s) &middot; ${esc(it.model)}</div>` +
      `<div class="rv-sub">Highlight: <b>${S.showOverlay ? 'on' : 'off'}</b></div>`;
    ob.hidden = false;
  }
  if (it.problem) model.innerHTML += `<div class="rv-problem">${esc(it.problem)}</div>`;
}
async function show(it) {
  S.item = it;
  if (!it) { renderItem(); return; }
  const url = currentUrl();
  const pre = new Image(); pre.src = url;
  try { await pre.decode(); } catch (e) { /* undecodable image: the <img> shows what it can */ }
  resetZoom();
  img.src = url; img.dataset.id = it.id; img.dataset.overlay = (url === it.overlay) ? '1' : '0';
  renderItem();
  if (it.overlay) { const o = new Image(); o.src = (url === it.overlay) ? it.image : it.overlay; }
}
async function act(action) {
  if (S.busy) return;
  if ((action === 'ok' || action === 'scratch' || action === 'skip') && !S.item) return;
  S.busy = true; element.classList.add('busy');
  try {
    const res = await server.act({ action: action, id: S.item ? S.item.id : null });
    setStats(res.stats);
    (res.prefetch || []).forEach(u => { const i = new Image(); i.src = u; });
    if (res.error) msg(res.error, true); else msg(res.message);
    if (res.item && res.item.keep) return;  // an error on this item: stay on it
    if (!res.error || res.item || action === 'next') await show(res.item);
  } catch (e) {
    msg('Could not reach the server: nothing was stored. Press the key again.', true);
  } finally {
    S.busy = false; element.classList.remove('busy');
  }
}
function toggleOverlay() {
  const it = S.item;
  if (!it || !it.overlay) return;  // blind items have no overlay at all
  S.showOverlay = !S.showOverlay;
  const url = currentUrl();
  img.src = url; img.dataset.overlay = (url === it.overlay) ? '1' : '0';
  renderItem();
}
function toggleZoom() {
  const r = stage.getBoundingClientRect();
  const px = S.mx == null ? r.width / 2 : S.mx, py = S.my == null ? r.height / 2 : S.my;
  if (S.z > 1) resetZoom(); else zoomAt(px, py, 2.5);
}
function onKey(e) {
  if (!element.isConnected || element.offsetParent === null) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) return;
  const k = (e.key || '').toLowerCase();
  const map = { o: 'ok', x: 'scratch', s: 'skip', u: 'undo' };
  if (map[k]) { e.preventDefault(); if (!e.repeat) act(map[k]); }
  else if (k === 'h') { e.preventDefault(); toggleOverlay(); }
  else if (k === 'z') { e.preventDefault(); toggleZoom(); }
}
if (window.__reviewKey) document.removeEventListener('keydown', window.__reviewKey);
window.__reviewKey = onKey;
document.addEventListener('keydown', onKey);
element.querySelectorAll('.rv-btn').forEach(b => b.addEventListener('click', (e) => {
  e.preventDefault(); b.blur();
  if (b.dataset.a === 'overlay') toggleOverlay(); else act(b.dataset.a);
}));
stage.addEventListener('wheel', (e) => {
  if (!S.item) return;
  e.preventDefault();
  const r = stage.getBoundingClientRect();
  zoomAt(e.clientX - r.left, e.clientY - r.top, S.z * (e.deltaY < 0 ? 1.25 : 0.8));
}, { passive: false });
let drag = null;
stage.addEventListener('pointerdown', (e) => { if (S.z > 1) { drag = { x: e.clientX - S.tx, y: e.clientY - S.ty }; stage.setPointerCapture(e.pointerId); } });
stage.addEventListener('pointermove', (e) => {
  const r = stage.getBoundingClientRect(); S.mx = e.clientX - r.left; S.my = e.clientY - r.top;
  if (drag) { S.tx = e.clientX - drag.x; S.ty = e.clientY - drag.y; applyZoom(); }
});
stage.addEventListener('pointerup', () => { drag = null; });
// Poll for work while the queue is empty (new phones arrive from the line).
setInterval(() => { if (!S.item && !S.busy && element.offsetParent !== null) act('next'); }, 5000);
act('next');
"""
