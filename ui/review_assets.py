# ruff: noqa: E501
"""Static text of the review screen: its style sheet, markup and script (ui.review serves them).

Keys: O ok · X scratch · S skip (then 1-4: the reason) · U undo · H highlight · F whole frame / phone ·
Z 1:1 / fit · 0 fit · + - zoom · arrows pan · M mark the defect (drag a box; Shift+drag a stroke) ·
Backspace removes the last mark · N note · B defect book · Esc closes a dialog.
"""

from __future__ import annotations

REVIEW_CSS = """
.rv { display: flex; flex-direction: column; gap: 6px; height: var(--rv-h, calc(100vh - 140px)); min-height: 360px; }
.rv.busy .rv-btn { opacity: .75; }
.rv-top { display: flex; gap: 10px; align-items: stretch; flex: none; }
.rv-stat { background: #f3f5f8; border-radius: 8px; padding: 3px 12px; min-width: 120px; }
.rv-stat span { display: block; font-size: 13px; color: #555; }
.rv-stat b { font-size: 22px; }
.rv-stat i { display: block; font-size: 12px; color: #7a4a00; font-style: normal; }
.rv-item { margin-left: auto; align-self: center; font-size: 15px; color: #333; text-align: right; }
.rv-main { flex: 1; min-height: 0; display: flex; gap: 12px; }
.rv-stage { flex: 1; min-width: 0; overflow: hidden; background: #1b1d21; border-radius: 8px; position: relative;
            cursor: grab; touch-action: none; }
.rv-stage.marking { cursor: crosshair; }
.rv-layer { position: absolute; left: 0; top: 0; transform-origin: 0 0; }
.rv-img { display: block; user-select: none; }
.rv-marks { position: absolute; left: 0; top: 0; pointer-events: none; overflow: visible; }
.rv-marks rect, .rv-marks polyline { fill: none; stroke: #00e5ff; vector-effect: non-scaling-stroke; stroke-width: 2; }
.rv-view { position: absolute; left: 8px; bottom: 8px; background: rgba(0,0,0,.6); color: #fff; font-size: 14px;
           padding: 2px 8px; border-radius: 6px; }
.rv-empty { color: #eee; font-size: 24px; padding: 60px; text-align: center; }
.rv-side { width: 320px; flex: none; display: flex; flex-direction: column; gap: 5px; overflow-y: auto; }
.rv-model { background: #f3f5f8; border-radius: 8px; padding: 6px 10px; font-size: 14px; line-height: 1.35; }
.rv-score b { font-size: 22px; }
.rv-blind { font-size: 22px; font-weight: 700; }
.rv-sub { color: #555; font-size: 13px; margin-top: 2px; }
.rv-legend { font-size: 12.5px; color: #333; margin-top: 4px; }
.rv-legend .sw { display: inline-block; width: 14px; height: 10px; border: 2px solid; margin-right: 4px; vertical-align: middle; }
.rv-problem { color: #a40000; font-weight: 600; margin-top: 4px; }
.rv-btn { display: flex; justify-content: space-between; align-items: center; font-size: 17px; font-weight: 600;
          min-height: 38px; padding: 0 12px; border-radius: 8px; border: 2px solid #c9d1db; background: #fff;
          cursor: pointer; }
.rv-btn:hover:not(:disabled) { background: #f0f4f9; }
.rv-btn:disabled { opacity: .45; cursor: default; }
.rv-btn[hidden] { display: none; }
.rv-btn.on { background: #fff4d6; border-color: #d29b00; }
.rv-ok { border-color: #3c8d3c; background: #eaf6ea; }
.rv-scratch { border-color: #b03a2e; background: #fbecea; }
.rv-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 6px; }
.rv-grid .rv-btn { font-size: 13.5px; min-height: 30px; padding: 0 6px; }
.rv kbd, .rv-help kbd { font-family: system-ui, sans-serif; font-size: 15px; background: #222; color: #fff;
          border-radius: 5px; padding: 1px 8px; }
.rv-grid kbd { font-size: 12px; padding: 0 5px; }
.rv-note { font-size: 14px; padding: 4px 8px; border: 2px solid #c9d1db; border-radius: 8px; width: 100%; box-sizing: border-box; }
.rv-help { font-size: 12px; color: #444; line-height: 1.45; }
.rv-help kbd { font-size: 11px; padding: 0 4px; }
.rv-msg { position: fixed; left: 0; right: 0; bottom: 0; z-index: 1000; min-height: 30px; padding: 5px 18px;
          font-size: 16px; color: #1d5e1d; background: #eef6ee; border-top: 1px solid #c9d1db; }
.rv-msg.bad { color: #a40000; font-weight: 700; background: #fde8e6; }
.rv-dialog { position: absolute; left: 50%; top: 50%; transform: translate(-50%, -50%); z-index: 50; background: #fff;
             border-radius: 10px; padding: 14px 18px; box-shadow: 0 4px 24px rgba(0,0,0,.35); min-width: 320px; }
.rv-dialog h3 { margin: 0 0 8px; font-size: 19px; }
.rv-dialog .rv-btn { margin-top: 6px; width: 100%; font-size: 17px; min-height: 40px; }
.rv-book { position: fixed; left: 24px; right: 24px; top: 16px; bottom: 44px; z-index: 900; background: #fff;
           border-radius: 10px; box-shadow: 0 4px 30px rgba(0,0,0,.4); overflow-y: auto; padding: 12px 20px; }
.rv-book h2 { margin: 0 0 6px; font-size: 22px; }
.rv-book h3 { margin: 10px 0 4px; font-size: 18px; }
.rv-book .cards { display: flex; gap: 12px; flex-wrap: wrap; }
.rv-book figure { margin: 0; width: 170px; font-size: 13px; }
.rv-book figure img { height: 240px; max-width: 170px; object-fit: contain; background: #1b1d21; border-radius: 6px; }
.rv-book .none { color: #777; font-size: 14px; }
.rv-book form { display: flex; gap: 8px; align-items: center; margin: 6px 0; font-size: 14px; flex-wrap: wrap; }
.rv-book input, .rv-book select { font-size: 14px; padding: 4px 6px; }
"""

SKELETON = """
<div class="rv" data-testid="review">
  <div class="rv-top">
    <div class="rv-stat"><span>Queue for you</span><b data-s="queue">-</b><i data-s="skipped"></i></div>
    <div class="rv-stat"><span>My labels today</span><b data-s="today">-</b></div>
    <div class="rv-stat"><span>My rate (last hour)</span><b data-s="hour">-</b></div>
    <div class="rv-item" data-s="item">Loading...</div>
  </div>
  <div class="rv-main">
    <div class="rv-stage" data-s="stage">
      <div class="rv-layer" data-s="layer">
        <img class="rv-img" data-s="img" alt="phone under review" draggable="false" />
        <svg class="rv-marks" data-s="marks" xmlns="http://www.w3.org/2000/svg"></svg>
      </div>
      <div class="rv-view" data-s="view"></div>
      <div class="rv-empty" data-s="empty" hidden></div>
      <div class="rv-dialog" data-s="skipbox" hidden>
        <h3>Why skip this phone?</h3>
        <button class="rv-btn" data-r="unclear_image">Unclear image<kbd>1</kbd></button>
        <button class="rv-btn" data-r="second_opinion">Need a second opinion<kbd>2</kbd></button>
        <button class="rv-btn" data-r="not_a_phone">Not a phone<kbd>3</kbd></button>
        <button class="rv-btn" data-r="other">Other<kbd>4</kbd></button>
        <div class="rv-help">Esc: back to the phone. Skipped phones go to other inspectors first.</div>
      </div>
    </div>
    <div class="rv-side">
      <div class="rv-model" data-s="model"></div>
      <button class="rv-btn rv-ok" data-a="ok">OK<kbd>O</kbd></button>
      <button class="rv-btn rv-scratch" data-a="scratch">Scratch<kbd>X</kbd></button>
      <button class="rv-btn" data-a="skip">Skip...<kbd>S</kbd></button>
      <button class="rv-btn" data-a="undo">Undo last<kbd>U</kbd></button>
      <div class="rv-grid">
        <button class="rv-btn" data-a="overlay" data-s="overlay-btn">Highlight<kbd>H</kbd></button>
        <button class="rv-btn" data-a="frame" data-s="frame-btn">Whole frame<kbd>F</kbd></button>
        <button class="rv-btn" data-a="zoom">1:1 / fit<kbd>Z</kbd></button>
        <button class="rv-btn" data-a="book">Defect book<kbd>B</kbd></button>
        <button class="rv-btn" data-a="mark" data-s="mark-btn">Mark defect<kbd>M</kbd></button>
        <button class="rv-btn" data-a="note">Note<kbd>N</kbd></button>
      </div>
      <input class="rv-note" data-s="note" maxlength="500" placeholder="Note (optional), saved with the label" />
      <div class="rv-help">Arrows pan &middot; wheel, <kbd>+</kbd> <kbd>-</kbd> zoom &middot; <kbd>0</kbd> fit &middot; mark: drag a
        box, Shift+drag a stroke, <kbd>&#9003;</kbd> undoes one</div>
    </div>
  </div>
  <div class="rv-book" data-s="book" data-testid="defect-book" hidden></div>
  <div class="rv-msg" data-s="msg" role="status" aria-live="polite"></div>
</div>
"""

SCRIPT = r"""
const $ = (s) => element.querySelector(`[data-s="${s}"]`);
const img = $('img'), stage = $('stage'), layer = $('layer'), svg = $('marks'), note = $('note');
const REASONS = ['unclear_image', 'second_opinion', 'not_a_phone', 'other'];
const S = { item: null, hl: false, view: 'crop', busy: false, z: 1, tx: 0, ty: 0, fit: 1, mx: null, my: null,
            marks: [], marking: false, skip: false, book: false, h: 0 };
window.__review = S;
const cache = new Map();
function preload(url) {
  if (!url) return Promise.resolve();
  let e = cache.get(url);
  if (!e) {
    const im = new Image(); im.src = url;
    e = { im: im, ready: im.decode().catch(() => null) };
    cache.set(url, e);
    if (cache.size > 40) cache.delete(cache.keys().next().value);
  }
  return e.ready;
}
function esc(t) { const d = document.createElement('div'); d.textContent = t == null ? '' : String(t); return d.innerHTML; }
function msg(text, bad) { const m = $('msg'); m.textContent = text || ''; m.classList.toggle('bad', !!bad); }
function layout() {
  // Fill the window down to the fixed status line; then take back whatever Gradio's own padding below
  // the component pushed past the fold, so the page never scrolls.
  const rv = element.querySelector('.rv');
  const top = element.getBoundingClientRect().top + window.scrollY;
  let h = Math.max(360, window.innerHeight - top - $('msg').offsetHeight - 6);
  if (Math.abs(h - S.h) < 1) return;  // settled (the observer below calls again after each change)
  rv.style.setProperty('--rv-h', h + 'px');
  const extra = document.scrollingElement.scrollHeight - window.innerHeight;
  if (extra > 0) { h = Math.max(360, h - extra); rv.style.setProperty('--rv-h', h + 'px'); }
  S.h = h;
  if (S.item && img.naturalWidth) fitView();
}
function setStats(st) {
  if (!st) return;
  if (st.queue != null) $('queue').textContent = st.queue;
  if (st.today != null) $('today').textContent = st.today;
  if (st.hour != null) $('hour').textContent = st.hour + ' / h';
  S.skipped = st.skipped || 0;
  $('skipped').textContent = S.skipped ? `${S.skipped} you skipped wait for others` : '';
}
function apply() {
  layer.style.transform = `translate(${S.tx}px, ${S.ty}px) scale(${S.z})`;
  const pct = Math.round(S.z * 100);
  $('view').textContent = (S.view === 'crop' ? 'Phone' : 'Whole frame') + ` · ${pct}%` + (Math.abs(S.z - 1) < 0.01 ? ' (1:1)' : '') + (S.marking ? ' · marking' : '');
}
function clamp() {
  const W = stage.clientWidth, H = stage.clientHeight, w = img.naturalWidth * S.z, h = img.naturalHeight * S.z;
  S.tx = w <= W ? (W - w) / 2 : Math.min(0, Math.max(W - w, S.tx));
  S.ty = h <= H ? (H - h) / 2 : Math.min(0, Math.max(H - h, S.ty));
}
function fitView() {
  const nw = img.naturalWidth || 1, nh = img.naturalHeight || 1;
  S.fit = Math.min(stage.clientWidth / nw, stage.clientHeight / nh);
  S.z = S.fit; clamp(); apply();
}
function zoomAt(px, py, z) {
  z = Math.max(Math.min(S.fit, 1), Math.min(8, z));
  const qx = (px - S.tx) / S.z, qy = (py - S.ty) / S.z;
  S.tx = px - qx * z; S.ty = py - qy * z; S.z = z; clamp(); apply();
}
function centre() { return [S.mx == null ? stage.clientWidth / 2 : S.mx, S.my == null ? stage.clientHeight / 2 : S.my]; }
function toggleZoom() { const [px, py] = centre(); if (Math.abs(S.z - S.fit) > 0.01) fitView(); else zoomAt(px, py, 1); }
function pan(dx, dy) { S.tx += dx; S.ty += dy; clamp(); apply(); }
function urlFor(it) {
  if (!it) return '';
  const crop = S.view === 'crop';
  if (S.hl && it.overlay) return crop ? it.overlay : it.frame_overlay;
  return crop ? it.image : it.frame;
}
function drawMarks() {
  svg.setAttribute('width', img.naturalWidth); svg.setAttribute('height', img.naturalHeight);
  svg.innerHTML = S.marks.filter(m => m.view === S.view).map(m => m.kind === 'box'
    ? `<rect x="${Math.min(m.points[0][0], m.points[1][0])}" y="${Math.min(m.points[0][1], m.points[1][1])}" width="${Math.abs(m.points[1][0] - m.points[0][0])}" height="${Math.abs(m.points[1][1] - m.points[0][1])}"/>`
    : `<polyline points="${m.points.map(p => p.join(',')).join(' ')}"/>`).join('');
}
function renderItem() {
  const it = S.item, model = $('model'), ob = $('overlay-btn');
  element.querySelectorAll('.rv-side .rv-btn').forEach(b => b.disabled = !it && !['undo', 'book'].includes(b.dataset.a));
  ob.classList.toggle('on', S.hl); $('frame-btn').classList.toggle('on', S.view === 'frame'); $('mark-btn').classList.toggle('on', S.marking);
  stage.classList.toggle('marking', S.marking);
  if (!it) {
    img.hidden = true; img.removeAttribute('src'); svg.innerHTML = ''; $('view').hidden = true;
    const e = $('empty'); e.hidden = false;
    e.textContent = 'Queue empty: nothing for you to review.' + (S.skipped ? ` ${S.skipped} phone(s) you skipped wait for other inspectors.` : '') + ' New phones appear automatically.';
    $('item').textContent = 'No item'; model.innerHTML = ''; ob.hidden = true; return;
  }
  $('empty').hidden = true; img.hidden = false; $('view').hidden = false;
  $('item').innerHTML = `#${esc(it.id)} &middot; station ${esc(it.station)}<br>received ${esc(it.received)}`;
  if (it.blind) {
    model.innerHTML = '<div class="rv-blind">Blind review</div><div class="rv-sub">Decide from the image alone.</div>';
    ob.hidden = true;
  } else {
    const score = it.score == null ? 'n/a' : it.score.toFixed(3);
    const regs = (it.regions || []).map(r => `<b>${r.n}</b>: ${r.score.toFixed(2)}`).join(' &middot; ') || 'none';
    model.innerHTML = `<div class="rv-score" data-testid="score">Image score <b>${score}</b></div>` +
      `<div class="rv-sub">the calibrated chance this phone is scratched (decides the route)</div>` +
      `<div class="rv-legend" data-testid="legend">Highlight <b>${S.hl ? 'on' : 'off'}</b> (H). ` +
      `<span class="sw" style="border-color:#ffd700"></span>where the model looks (heat &gt; 0.5); ` +
      `<span class="sw" style="border-color:#f0f"></span>numbered region: its region score = peak heat there (local, 0-1: not the phone's chance, can exceed the image score): ${regs} &middot; ${esc(it.model)}</div>`;
    ob.hidden = false;
  }
  if (it.problem) model.innerHTML += `<div class="rv-problem">${esc(it.problem)}</div>`;
  if (it.note) model.innerHTML += `<div class="rv-sub">${esc(it.note)}</div>`;
}
async function showUrl(url, refit) {
  await preload(url);
  const same = img.getAttribute('src') === url;
  if (!same) img.src = url;
  if (!img.complete) await img.decode().catch(() => null);
  layer.style.width = img.naturalWidth + 'px';
  img.dataset.overlay = url.includes('.overlay.') ? '1' : '0';
  if (refit) fitView(); else { clamp(); apply(); }
  drawMarks();
}
async function show(it) {
  const fresh = !S.item || !it || S.item.id !== it.id;
  S.item = it;
  if (fresh) { S.marks = []; S.view = 'crop'; S.hl = !!(it && it.highlight && it.overlay); note.value = ''; S.marking = false; }
  if (!it) { renderItem(); return; }
  await showUrl(urlFor(it), true);
  img.dataset.id = it.id;
  renderItem();
  [it.image, it.overlay, it.frame, it.frame_overlay].forEach(u => { if (u) preload(u); });
}
function showGuess(g, prev) {
  // The likely next phone, from the pre-loaded images, at the key press. Its score and the keys wait
  // for the server's answer (S.busy), which confirms it or shows the item really assigned.
  const url = (S.view === 'crop' && prev && prev.highlight && g.overlay) ? g.overlay : g.image;
  const e = cache.get(url);
  if (!e || !e.im.complete || !e.im.naturalWidth) return false;  // not loaded yet: wait for the answer
  img.src = url; layer.style.width = img.naturalWidth + 'px'; fitView(); svg.innerHTML = '';
  $('item').textContent = `#${g.id} · loading…`; $('model').innerHTML = '';
  return true;
}
async function restore() {
  // Back to the item still on record (S.item never changed), with its marks, note, view and zoom level.
  await showUrl(urlFor(S.item), true); renderItem();
}
async function act(action, extra) {
  if (S.busy) return;
  if ((action === 'ok' || action === 'scratch' || action === 'skip') && !S.item) return;
  S.busy = true; element.classList.add('busy');
  const body = Object.assign({ action: action, id: S.item ? S.item.id : null }, extra || {});
  if (action === 'ok' || action === 'scratch') { body.marks = S.marks; body.note = note.value; }
  const guessed = ['ok', 'scratch', 'skip'].includes(action) && S.upcoming ? showGuess(S.upcoming, S.item) : false;
  try {
    const res = await server.act(body);
    setStats(res.stats);
    S.upcoming = res.upcoming || null;
    (res.prefetch || []).forEach(preload);
    if (res.error) msg(res.error, true); else msg(res.message);
    if (res.item && res.item.keep) { if (guessed) await restore(); return; }  // an error on this item: stay on it
    if (!res.error || res.item || action === 'next') await show(res.item);
    else if (guessed) await restore();
  } catch (e) {
    if (guessed) await restore();
    msg('Could not reach the server: nothing was stored. Press the key again.', true);
  } finally {
    S.busy = false; element.classList.remove('busy');
  }
}
function toggleOverlay() {
  if (!S.item || !S.item.overlay) return;  // blind items have no overlay at all
  S.hl = !S.hl; showUrl(urlFor(S.item), false); renderItem();
}
function toggleFrame() {
  if (!S.item) return;
  S.view = S.view === 'crop' ? 'frame' : 'crop'; showUrl(urlFor(S.item), true); renderItem();
}
function openSkip(on) { S.skip = on && !!S.item; $('skipbox').hidden = !S.skip; }
function chooseSkip(reason) { openSkip(false); act('skip', { reason: reason }); }
async function openBook(on) {
  S.book = on; const box = $('book'); box.hidden = !on;
  if (!on) return;
  const res = await server.book({});
  let h = '<h2>Defect book <small style="font-size:14px;font-weight:400">reference phones per class &middot; Esc or B closes</small></h2>';
  if (res.error) h += `<p class="none">${esc(res.error)}</p>`;
  if (res.engineer) {
    const opts = (res.classes || []).map(c => `<option value="${esc(c.key)}">${esc(c.title)}</option>`).join('');
    h += `<form data-s="book-form">Add item # <input name="item" size="7" value="${S.item ? S.item.id : ''}"> as <select name="klass">${opts}</select>` +
         ` caption <input name="caption" size="40" placeholder="what to look at"> <button class="rv-btn" type="submit">Add to book</button></form>`;
  }
  for (const c of res.classes || []) {
    h += `<h3>${esc(c.title)}</h3><div class="cards">` + (c.entries.length ? c.entries.map(e =>
      `<figure data-testid="book-entry"><img src="${esc(e.thumb)}" alt="${esc(c.title)}" loading="lazy"><figcaption>#${esc(e.item)}: ${esc(e.caption)}</figcaption></figure>`).join('')
      : '<span class="none">no reference yet</span>') + '</div>';
  }
  box.innerHTML = h;
  const form = box.querySelector('form');
  if (form) form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = await server.book_add({ item: form.item.value, class: form.klass.value, caption: form.caption.value });
    if (r.error) msg(r.error, true); else { msg(r.message); openBook(true); }
  });
}
function onKey(e) {
  if (!element.isConnected || element.offsetParent === null) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target, k = (e.key || '').toLowerCase();
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) {
    if (t === note && (k === 'enter' || k === 'escape')) { e.preventDefault(); note.blur(); }
    return;
  }
  if (S.book) { if (k === 'escape' || k === 'b') { e.preventDefault(); openBook(false); } return; }
  if (S.skip) {
    e.preventDefault();
    if (k === 'escape' || k === 's') openSkip(false);
    else if (['1', '2', '3', '4'].includes(k)) chooseSkip(REASONS[Number(k) - 1]);
    return;
  }
  const map = { o: 'ok', x: 'scratch', u: 'undo' };
  const step = e.shiftKey ? 0.5 : 0.15, W = stage.clientWidth, H = stage.clientHeight;
  const keys = {
    h: toggleOverlay, f: toggleFrame, z: toggleZoom, '0': fitView, b: () => openBook(true),
    s: () => openSkip(true), n: () => note.focus(),
    m: () => { S.marking = !S.marking; renderItem(); apply(); },
    escape: () => { S.marking = false; renderItem(); apply(); },
    backspace: () => { S.marks.pop(); drawMarks(); },
    '+': () => zoomAt(...centre(), S.z * 1.25), '=': () => zoomAt(...centre(), S.z * 1.25), '-': () => zoomAt(...centre(), S.z * 0.8),
    arrowleft: () => pan(W * step, 0), arrowright: () => pan(-W * step, 0),
    arrowup: () => pan(0, H * step), arrowdown: () => pan(0, -H * step),
  };
  if (map[k]) { e.preventDefault(); if (!e.repeat) act(map[k]); }
  else if (keys[k]) { e.preventDefault(); keys[k](); }
}
if (window.__reviewKey) document.removeEventListener('keydown', window.__reviewKey);
window.__reviewKey = onKey;
document.addEventListener('keydown', onKey);
element.querySelectorAll('.rv-side .rv-btn').forEach(b => b.addEventListener('click', (e) => {
  e.preventDefault(); b.blur();
  const a = b.dataset.a;
  const local = { overlay: toggleOverlay, frame: toggleFrame, zoom: toggleZoom, book: () => openBook(true),
                  skip: () => openSkip(true), note: () => note.focus(), mark: () => { S.marking = !S.marking; renderItem(); apply(); } };
  if (local[a]) local[a](); else act(a);
}));
element.querySelectorAll('[data-r]').forEach(b => b.addEventListener('click', (e) => { e.preventDefault(); chooseSkip(b.dataset.r); }));
stage.addEventListener('wheel', (e) => {
  if (!S.item) return;
  e.preventDefault();
  const r = stage.getBoundingClientRect();
  zoomAt(e.clientX - r.left, e.clientY - r.top, S.z * (e.deltaY < 0 ? 1.25 : 0.8));
}, { passive: false });
function imagePoint(e) {
  const r = stage.getBoundingClientRect();
  return [Math.round((e.clientX - r.left - S.tx) / S.z), Math.round((e.clientY - r.top - S.ty) / S.z)];
}
let drag = null;
stage.addEventListener('pointerdown', (e) => {
  if (!S.item || S.skip) return;
  stage.setPointerCapture(e.pointerId);
  if (S.marking) {
    const p = imagePoint(e);
    drag = { mark: e.shiftKey ? { kind: 'stroke', points: [p], view: S.view, width: 6 } : { kind: 'box', points: [p, p], view: S.view } };
    S.marks.push(drag.mark);
  } else drag = { x: e.clientX - S.tx, y: e.clientY - S.ty };
});
stage.addEventListener('pointermove', (e) => {
  const r = stage.getBoundingClientRect(); S.mx = e.clientX - r.left; S.my = e.clientY - r.top;
  if (!drag) return;
  if (drag.mark) {
    const p = imagePoint(e);
    if (drag.mark.kind === 'box') drag.mark.points[1] = p; else drag.mark.points.push(p);
    drawMarks();
  } else { S.tx = e.clientX - drag.x; S.ty = e.clientY - drag.y; clamp(); apply(); }
});
stage.addEventListener('pointerup', () => {
  if (drag && drag.mark && drag.mark.kind === 'box') {
    const [a, b] = drag.mark.points;
    if (Math.abs(a[0] - b[0]) < 3 && Math.abs(a[1] - b[1]) < 3) { S.marks.pop(); drawMarks(); }
  }
  drag = null;
});
window.addEventListener('resize', () => { S.h = 0; layout(); if (S.item) fitView(); });
// The top bar and Gradio's wrappers fill in after this script runs: lay out again when they move.
new ResizeObserver(() => layout()).observe(document.body);
layout();
// Poll for work while the queue is empty (new phones arrive from the line).
setInterval(() => { if (!S.item && !S.busy && element.offsetParent !== null) act('next'); }, 5000);
act('next');
"""
