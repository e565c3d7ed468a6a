// The ATT&CK matrix page: the loaded release's matrix (GET /api/v1/matrix) coloured with one
// answer, asked in the URL so that a view can be linked and bookmarked:
//   ?actor=APT29                         an actor's profile, coloured by how we know (layer)
//   ?actor=APT29&actor=FIN7:2            k-of-N heat over several actors, weights as NAME:N
//   ?inventory=NAME[&actor=...]          what an inventory covers / the actors' gaps in it
//   ?layer=NAME[&actor=...]              the same for a layer imported as an inventory
//   ?telemetry=Process Creation          what a data component or log source sees
//   &platform=Windows  &domain=ics-attack  &include_software=true  &technique=T1059.001
// Every answer is drawn from the Navigator layer the API builds for the same question
// (/api/v1/layers/...), so the download is the picture; the gap view also reads the gap
// analysis (/api/v1/gaps) for what is covered. Click a cell: its evidence in the side panel.
import {
  $,
  API,
  AuthError,
  download,
  el,
  getJSON,
  initAuth,
  openAnswer,
  saveBlob,
  setState,
  showError,
} from './common.js';
import { matrixSvg, svgToPng } from './matrix-export.js';
import { showEvidence } from './matrix-panel.js';

const COVERED = '#8ec843'; // the coverage layer's gradient top: covered
const PARTIAL = '#9ecae1'; // the coverage layer's colour for partial coverage

const state = {
  q: null, // the question, read from the URL
  skeleton: null,
  answer: null,
  selected: null, // { id, tactic }
  seq: 0,
  cells: [],
  groups: [],
  timings: {},
};
window.ttpgraphMatrix = { state };

// ------------------------------------------------------------------ the question (URL)

function parseActor(text) {
  const m = text.match(/^(.*?)\s*[:=]\s*(\d+(?:\.\d+)?)$/);
  return m && m[1].trim() ? { name: m[1].trim(), weight: Number(m[2]) } : { name: text, weight: null };
}

function readQuestion(search) {
  const p = new URLSearchParams(search);
  const list = (k) =>
    p.getAll(k).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  let domain = (p.get('domain') || 'enterprise-attack').trim().toLowerCase();
  if (!domain.endsWith('-attack')) domain += '-attack';
  return {
    domain,
    platforms: list('platform'),
    actors: list('actor').map(parseActor),
    inventory: (p.get('inventory') || '').trim(),
    layer: (p.get('layer') || '').trim(),
    telemetry: list('telemetry'),
    level: (p.get('level') || '').trim(),
    software: p.get('include_software') === 'true',
    technique: (p.get('technique') || '').trim().toUpperCase(),
    find: p.get('q') || '',
    expand: p.get('expand') === 'all',
  };
}

function actorText(a) {
  return a.weight === null ? a.name : `${a.name}:${a.weight}`;
}

function questionParams(q) {
  const p = new URLSearchParams();
  for (const a of q.actors) p.append('actor', actorText(a));
  if (q.inventory) p.set('inventory', q.inventory);
  if (q.layer) p.set('layer', q.layer);
  for (const t of q.telemetry) p.append('telemetry', t);
  if (q.level) p.set('level', q.level);
  if (q.software) p.set('include_software', 'true');
  for (const pl of q.platforms) p.append('platform', pl);
  if (q.domain !== 'enterprise-attack') p.set('domain', q.domain);
  if (q.expand) p.set('expand', 'all');
  if (q.find) p.set('q', q.find);
  if (q.technique) p.set('technique', q.technique);
  return p;
}

function syncUrl({ push = false } = {}) {
  const p = questionParams(state.q).toString();
  const url = `${location.pathname}${p ? `?${p}` : ''}`;
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

// What to ask the API for the question: the layer route (and the gap analysis for gaps).
function plan(q) {
  const common = (p) => {
    p.set('domain', q.domain);
    return p;
  };
  const plats = (p) => {
    for (const pl of q.platforms) p.append('platform', pl);
    return p;
  };
  const names = q.actors.map((a) => a.name);
  const inline = q.actors.map((a) => (a.weight === null ? a.name : `${a.name}=${a.weight}`));
  const inventory = q.layer || q.inventory;
  if (q.inventory && q.layer) throw new Error('give ?inventory= or ?layer=, not both');
  if (q.telemetry.length) {
    if (inventory) throw new Error('telemetry: name the sources, without an inventory');
    const p = new URLSearchParams();
    for (const s of q.telemetry) p.append('source', s);
    for (const a of names) p.append('actors', a);
    if (q.software) p.set('include_software', 'true');
    return {
      kind: 'telemetry',
      layer: (level) => `${API}/layers/telemetry?${plats(common(new URLSearchParams([...p, ['level', level]])))}`,
    };
  }
  if (inventory) {
    if (!names.length) {
      const p = plats(common(new URLSearchParams({ inventory })));
      return { kind: 'coverage', layer: () => `${API}/layers/coverage?${p}` };
    }
    const g = new URLSearchParams();
    for (const a of inline) g.append('actor', a);
    g.set('inventory', inventory);
    if (q.software) g.set('include_software', 'true');
    plats(common(g));
    const l = new URLSearchParams();
    for (const a of inline) l.append('actors', a);
    l.set('inventory', inventory);
    if (q.software) l.set('include_software', 'true');
    plats(common(l));
    return { kind: 'gaps', json: `${API}/gaps?${g}`, layer: () => `${API}/layers/gaps?${l}` };
  }
  if (names.length === 1) {
    const p = plats(common(new URLSearchParams()));
    return {
      kind: 'profile',
      layer: () => `${API}/layers/profile/${encodeURIComponent(names[0])}?${p}`,
    };
  }
  if (names.length > 1) {
    const p = new URLSearchParams();
    for (const a of names) p.append('actor', a);
    for (const a of q.actors) if (a.weight !== null) p.append('weight', `${a.name}=${a.weight}`);
    if (q.software) p.set('include_software', 'true');
    common(p);
    return { kind: 'compare', layer: () => `${API}/layers/compare?${p}` };
  }
  return { kind: 'matrix' };
}

// ------------------------------------------------------------------ colours

function hexRgb(hex) {
  let h = String(hex).replace('#', '');
  if (h.length === 3) h = [...h].map((c) => c + c).join('');
  const n = parseInt(h.slice(0, 6), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function rgbHex(rgb) {
  return `#${rgb.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;
}

// As the Navigator: colours evenly spread from minValue to maxValue, mixed in RGB.
function gradientColor(gradient, score) {
  const colors = (gradient && gradient.colors) || ['#ff6666', '#ffe766', '#8ec843'];
  const lo = gradient ? Number(gradient.minValue) : 0;
  const hi = gradient ? Number(gradient.maxValue) : 100;
  if (colors.length === 1) return colors[0];
  const t = hi > lo ? Math.min(1, Math.max(0, (score - lo) / (hi - lo))) : 1;
  const pos = t * (colors.length - 1);
  const i = Math.min(colors.length - 2, Math.floor(pos));
  const a = hexRgb(colors[i]);
  const b = hexRgb(colors[i + 1]);
  const f = pos - i;
  return rgbHex(a.map((v, k) => v + (b[k] - v) * f));
}

function inkFor(hex) {
  const [r, g, b] = hexRgb(hex);
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#1f2328' : '#ffffff';
}

// ------------------------------------------------------------------ the answer

function layerLookup(layer) {
  const byKey = new Map();
  for (const e of layer.techniques || []) {
    if (!e || e.enabled === false || !e.techniqueID) continue;
    byKey.set(`${e.techniqueID}|${e.tactic || ''}`, e);
  }
  return (id, tactic) => byKey.get(`${id}|${tactic}`) || byKey.get(`${id}|`) || null;
}

function entryLook(entry, gradient) {
  if (!entry) return null;
  const scored = typeof entry.score === 'number';
  if (!entry.color && !scored) return null; // a parent written only to show its sub-techniques
  const color = entry.color || gradientColor(gradient, entry.score);
  return { color, score: scored ? entry.score : null, entry };
}

function groupIds(text) {
  return [...new Set([...String(text).matchAll(/\((G\d{4})\)/g)].map((m) => m[1]))];
}

const TITLES = {
  profile: (layer) => layer.name,
  compare: (layer) => `${layer.name} — how many of the actors use each technique`,
  coverage: (layer) => layer.name,
  gaps: (layer) => layer.name,
  telemetry: (layer) => layer.name,
};

async function fetchAnswer(q, planned) {
  if (planned.kind === 'matrix') return null;
  let layerUrl;
  let layer;
  let json = null;
  if (planned.kind === 'telemetry') {
    // Data components first; a name no data component has is tried as a log source.
    // (Log source names have a colon, WinEventLog:Security; data component names have none.)
    const guess = q.telemetry.some((t) => t.includes(':'))
      ? ['log_source', 'data_component']
      : ['data_component', 'log_source'];
    const levels = q.level ? [q.level] : guess;
    for (const [i, level] of levels.entries()) {
      layerUrl = planned.layer(level);
      try {
        layer = await getJSON(layerUrl);
        break;
      } catch (err) {
        if (err.status !== 404 || i === levels.length - 1) throw err;
      }
    }
  } else {
    layerUrl = planned.layer();
    [layer, json] = await Promise.all([
      getJSON(layerUrl),
      planned.json ? getJSON(planned.json) : Promise.resolve(null),
    ]);
  }
  const find = layerLookup(layer);
  const gaps = json ? new Map(json.techniques.map((t) => [t.technique_id, t])) : null;
  const look = (id, tactic) => {
    if (gaps) {
      const t = gaps.get(id);
      if (!t) return null;
      if (t.covered) return { color: COVERED, status: 'covered', gap: t };
      if (t.partial) return { color: PARTIAL, status: 'partial', gap: t };
      const hit = entryLook(find(id, tactic), layer.gradient);
      const color = hit ? hit.color : gradientColor(layer.gradient, Math.round(t.priority));
      return { color, status: 'gap', score: hit ? hit.score : null, gap: t, entry: hit && hit.entry };
    }
    const hit = entryLook(find(id, tactic), layer.gradient);
    if (!hit) return null;
    let status = 'marked';
    if (planned.kind === 'telemetry') status = hit.score > 0 ? 'seen' : 'unseen';
    if (planned.kind === 'coverage') status = hit.score > 0 ? 'covered' : 'partial';
    return { ...hit, status };
  };
  const actors = json ? json.actors.map((a) => a.group_id) : groupIds(JSON.stringify(layer.metadata || []));
  const actorNames = new Map(json ? json.actors.map((a) => [a.group_id, a.name]) : []);
  return {
    kind: planned.kind,
    layer,
    layerUrl,
    jsonUrl: planned.json || null,
    json,
    look,
    find,
    actors,
    actorNames,
    title: TITLES[planned.kind](layer),
  };
}

// ------------------------------------------------------------------ drawing the matrix

function esc(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function onPlatform(platforms) {
  if (!platforms.length) return () => true;
  const want = new Set(platforms.map((p) => p.toLowerCase()));
  return (t) => t.platforms.some((p) => want.has(p.toLowerCase()));
}

function cellHtml(t, tactic, cls) {
  return (
    `<div class="tech${cls}" data-id="${esc(t.technique_id)}" data-tactic="${esc(tactic)}"` +
    ` tabindex="0"><span class="tid">${esc(t.technique_id)}</span>` +
    ` <span class="tn">${esc(t.name)}</span></div>`
  );
}

function drawSkeleton() {
  const skel = state.skeleton;
  const on = onPlatform(state.q.platforms);
  const parts = [];
  let shown = 0;
  for (const ta of skel.tactics) {
    const body = [];
    let nt = 0;
    let ns = 0;
    for (const t of ta.techniques) {
      const subs = t.subtechniques.filter(on);
      const self = on(t);
      if (!self && !subs.length) continue;
      nt += self ? 1 : 0;
      ns += subs.length;
      const toggle = subs.length
        ? `<button class="tog" type="button" aria-expanded="false" title="${subs.length}` +
          ` sub-techniques">${subs.length}</button>`
        : '';
      body.push(
        `<div class="group${subs.length ? ' has-subs' : ''}">${toggle}` +
          cellHtml(t, ta.shortname, self ? '' : ' off') +
          (subs.length
            ? `<div class="subs">${subs.map((s) => cellHtml(s, ta.shortname, ' sub')).join('')}</div>`
            : '') +
          '</div>',
      );
    }
    shown += nt + ns;
    parts.push(
      `<section class="tactic" data-tactic="${esc(ta.shortname)}" data-tactic-id="${esc(ta.tactic_id)}">` +
        `<h2><a href="${esc(ta.url || '')}" target="_blank" rel="noopener">${esc(ta.name)}</a>` +
        `<small class="counts" data-techniques="${nt}" data-subtechniques="${ns}">${nt} techniques` +
        `${ns ? ` · ${ns} sub` : ''}</small><small class="marked-count"></small></h2>` +
        `<div class="cells">${body.join('')}</div></section>`,
    );
  }
  const box = $('matrix');
  box.innerHTML = parts.join('');
  box.dataset.domain = skel.domain;
  state.cells = [...box.querySelectorAll('.tech')];
  state.groups = [...box.querySelectorAll('.group.has-subs')];
  document.body.dataset.tactics = String(skel.tactics.length);
  document.body.dataset.cells = String(shown);
  if (state.q.expand) setExpanded(true);
}

function setExpanded(open) {
  for (const g of state.groups) g.classList.toggle('open', open);
  for (const b of $('matrix').querySelectorAll('.tog')) b.setAttribute('aria-expanded', String(open));
  $('expand').setAttribute('aria-pressed', String(open));
  $('expand').textContent = open ? 'Collapse sub-techniques' : 'Expand sub-techniques';
}

function applyAnswer() {
  const a = state.answer;
  const markedIds = new Set();
  const perTactic = new Map();
  let markedCells = 0;
  for (const cell of state.cells) {
    const look = a && !cell.classList.contains('off') ? a.look(cell.dataset.id, cell.dataset.tactic) : null;
    if (look) {
      cell.style.background = look.color;
      cell.style.color = inkFor(look.color);
      cell.classList.add('marked');
      cell.dataset.status = look.status;
      if (look.score !== null && look.score !== undefined) cell.dataset.score = String(look.score);
      const comment = look.entry && look.entry.comment;
      cell.title = comment ? comment.split('\n')[0].slice(0, 200) : look.status;
      markedIds.add(cell.dataset.id);
      markedCells += 1;
      perTactic.set(cell.dataset.tactic, (perTactic.get(cell.dataset.tactic) || 0) + 1);
    } else if (cell.classList.contains('marked')) {
      cell.style.background = '';
      cell.style.color = '';
      cell.classList.remove('marked');
      delete cell.dataset.status;
      delete cell.dataset.score;
      cell.removeAttribute('title');
    }
  }
  for (const g of state.groups) {
    const sub = g.querySelector('.sub.marked');
    g.classList.toggle('sub-marked', Boolean(sub));
    if (sub && a) {
      g.classList.add('open'); // as the layer's showSubtechniques: marked sub-techniques show
      g.querySelector('.tog').setAttribute('aria-expanded', 'true');
    }
  }
  for (const sec of $('matrix').querySelectorAll('.tactic')) {
    const n = perTactic.get(sec.dataset.tactic) || 0;
    sec.querySelector('.marked-count').textContent = a ? `${n} marked` : '';
    sec.dataset.marked = String(n);
  }
  document.body.dataset.marked = String(markedIds.size);
  document.body.dataset.markedCells = String(markedCells);
  document.body.dataset.view = a ? a.kind : 'matrix';
  return markedIds;
}

// ------------------------------------------------------------------ summary and legend

function answerIds(a) {
  if (a.json) return new Set(a.json.techniques.map((t) => t.technique_id));
  const ids = new Set();
  for (const e of a.layer.techniques || []) {
    if (e.enabled !== false && (typeof e.score === 'number' || e.color)) ids.add(e.techniqueID);
  }
  return ids;
}

function describe(markedIds) {
  const q = state.q;
  const skel = state.skeleton;
  const a = state.answer;
  const where = `${skel.matrix} ${skel.attack_version || ''}`.trim();
  const plat = q.platforms.length ? ` on ${q.platforms.join(', ')}` : '';
  const base = `${where}${plat}: ${document.body.dataset.cells} techniques and sub-techniques in ` +
    `${skel.tactics.length} tactics.`;
  if (!a) return base;
  const answered = answerIds(a);
  const outside = [...answered].filter((id) => !markedIds.has(id)).length;
  let what = `${a.title}: ${markedIds.size} techniques marked`;
  if (a.kind === 'gaps') {
    const count = (s) => state.cells.filter((c) => c.dataset.status === s)
      .reduce((acc, c) => acc.add(c.dataset.id), new Set()).size;
    what += ` — ${count('covered')} covered, ${count('partial')} partial, ${count('gap')} gaps`;
  }
  if (a.kind === 'telemetry') {
    const seen = new Set(state.cells.filter((c) => c.dataset.status === 'seen').map((c) => c.dataset.id));
    what += ` (${seen.size} seen)`;
  }
  if (outside) what += `; ${outside} of the answer's not drawn (other platform or domain)`;
  return `${what}. ${base}`;
}

function legendItem(color, label, cls = '') {
  return el('span', { className: `item ${cls}`.trim() }, el('i', { style: `background:${color}` }), label);
}

function drawLegend() {
  const a = state.answer;
  const box = $('legend');
  const items = [];
  if (a) {
    if (a.kind === 'gaps') {
      items.push(legendItem(COVERED, 'covered'), legendItem(PARTIAL, 'partially covered'));
    }
    for (const it of a.layer.legendItems || []) {
      if (a.kind === 'gaps' && it.color === PARTIAL) continue;
      items.push(legendItem(it.color, it.label));
    }
    const graded = (a.layer.techniques || []).some((e) => typeof e.score === 'number' && !e.color);
    if (graded || a.kind === 'gaps') {
      const g = a.layer.gradient;
      const caption = {
        compare: 'actors using it (summed weight)',
        gaps: 'gap priority',
        coverage: 'rules',
        telemetry: 'chosen sources that see it',
        profile: 'score',
      }[a.kind];
      items.push(
        el(
          'span',
          { className: 'item gradient' },
          `${caption}: ${g.minValue}`,
          el('i', { className: 'bar', style: `background:linear-gradient(to right, ${g.colors.join(', ')})` }),
          String(g.maxValue),
        ),
      );
    }
  }
  items.push(
    el('span', { className: 'item' }, el('i', { className: 'swatch-sub' }), 'has marked sub-techniques'),
  );
  if (state.q.platforms.length) {
    items.push(el('span', { className: 'item' }, el('i', { className: 'swatch-off' }), 'not on the platform (its sub-techniques are)'));
  }
  box.replaceChildren(...items);
}

// ------------------------------------------------------------------ loading a question

async function load({ push = false } = {}) {
  const seq = ++state.seq;
  const q = state.q;
  syncUrl({ push });
  fillForm(q);
  setState('loading');
  showError('');
  performance.clearMarks();
  performance.clearMeasures();
  performance.mark('matrix:request');
  let planned;
  try {
    planned = plan(q);
  } catch (err) {
    planned = { kind: 'matrix' };
    showError(err.message);
  }
  const skeletonUrl = `${API}/matrix?domain=${encodeURIComponent(q.domain)}`;
  const skeleton = state.skeleton && state.skeleton.domain === q.domain
    ? Promise.resolve(state.skeleton)
    : getJSON(skeletonUrl);
  const answer = fetchAnswer(q, planned);
  let skel;
  let ans = null;
  let problem = null;
  try {
    skel = await skeleton;
  } catch (err) {
    if (seq === state.seq && !(err instanceof AuthError)) showError(`Could not load the matrix: ${err.message}`);
    setState(err instanceof AuthError ? 'auth' : 'error');
    answer.catch(() => null);
    return;
  }
  try {
    ans = await answer;
  } catch (err) {
    problem = err;
  }
  if (seq !== state.seq) return;
  performance.mark('matrix:data');
  const newSkeleton = state.skeleton !== skel || state.drawnPlatforms !== q.platforms.join('\n');
  state.skeleton = skel;
  state.answer = ans;
  if (newSkeleton || $('matrix').childElementCount === 0) {
    drawSkeleton();
    state.drawnPlatforms = q.platforms.join('\n');
    fillPlatforms(skel);
  } else {
    setExpanded(q.expand);
  }
  const marked = applyAnswer();
  drawLegend();
  $('summary').textContent = describe(marked);
  updateLinks();
  if (q.find) search(q.find, { scroll: false });
  performance.mark('matrix:dom');
  if (problem) {
    if (problem instanceof AuthError) {
      setState('auth');
      return;
    }
    showError(`Could not answer: ${problem.message}`);
  }
  // Drawn when the browser has painted it: two animation frames after the DOM work.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      if (seq !== state.seq) return;
      performance.mark('matrix:drawn');
      const m = performance.measure('matrix:draw', 'matrix:data', 'matrix:drawn');
      const total = performance.measure('matrix:total', 'matrix:request', 'matrix:drawn');
      const dom = performance.measure('matrix:script', 'matrix:data', 'matrix:dom');
      state.timings = { draw: m.duration, script: dom.duration, total: total.duration };
      document.body.dataset.drawMs = m.duration.toFixed(1);
      if (q.technique) select(q.technique, null, { scroll: true });
      if (!problem) setState('ready');
      else document.body.dataset.state = 'error';
    }),
  );
}

// ------------------------------------------------------------------ controls

function fillPlatforms(skel) {
  const sel = $('platform');
  const chosen = state.q.platforms[0] || '';
  sel.replaceChildren(
    el('option', { value: '' }, 'all'),
    ...skel.platforms.map((p) => el('option', { value: p }, p)),
  );
  sel.value = skel.platforms.includes(chosen) ? chosen : '';
  sel.closest('label').hidden = skel.platforms.length < 2;
}

async function fillInventories() {
  try {
    const list = await getJSON(`${API}/inventories`);
    const sel = $('inventory');
    const chosen = state.q.layer || state.q.inventory;
    sel.replaceChildren(
      el('option', { value: '' }, 'none'),
      ...list.map((i) =>
        el('option', { value: i.name, 'data-format': i.format, title: `${i.techniques_covered} techniques covered` }, `${i.name} (${i.format})`),
      ),
    );
    sel.value = chosen;
  } catch {
    // listed only when the key allows it; the URL still works
  }
}

function fillForm(q) {
  $('domain').value = q.domain;
  $('actors').value = q.actors.map(actorText).join(', ');
  $('software').checked = q.software;
  $('telemetry').value = q.telemetry.join(', ');
  const inv = q.layer || q.inventory;
  const sel = $('inventory');
  if (inv && ![...sel.options].some((o) => o.value === inv)) sel.append(el('option', { value: inv }, inv));
  sel.value = inv;
  $('search').value = q.find;
}

function formQuestion() {
  const split = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const sel = $('inventory');
  const opt = sel.selectedOptions[0];
  const asLayer = opt && opt.dataset.format === 'layer';
  const domain = $('domain').value;
  return {
    ...state.q,
    domain,
    platforms: $('platform').value && domain === state.q.domain ? [$('platform').value] : [],
    actors: split($('actors').value).map(parseActor),
    software: $('software').checked,
    inventory: sel.value && !asLayer ? sel.value : '',
    layer: sel.value && asLayer ? sel.value : '',
    telemetry: split($('telemetry').value),
    level: '',
    technique: '',
  };
}

function updateLinks() {
  const a = state.answer;
  for (const id of ['dl-layer']) $(id).classList.toggle('disabled', !a);
  $('dl-layer').title = a ? `the Navigator layer (4.5) of this view: ${a.layerUrl}` : 'ask a question first';
  const net = $('network-link');
  const ids = a ? a.actors : [];
  net.hidden = ids.length === 0;
  net.href = `./?${new URLSearchParams(ids.map((g) => ['actor', g]))}`;
  net.textContent = ids.length > 1 ? 'Their actor network' : 'Actor network';
}

// ------------------------------------------------------------------ search

function search(text, { scroll = true } = {}) {
  const box = $('matrix');
  const wanted = text.trim().toLowerCase();
  for (const c of box.querySelectorAll('.hit')) c.classList.remove('hit');
  box.classList.toggle('searching', Boolean(wanted));
  if (!wanted) {
    $('search-count').textContent = '';
    return [];
  }
  const hits = state.cells.filter((c) => {
    const id = c.dataset.id.toLowerCase();
    return id === wanted || id.startsWith(`${wanted}.`) ||
      (wanted.length > 2 && c.querySelector('.tn').textContent.toLowerCase().includes(wanted));
  });
  for (const c of hits) {
    c.classList.add('hit');
    const group = c.closest('.group');
    if (c.classList.contains('sub') && group) group.classList.add('open');
  }
  const distinct = new Set(hits.map((c) => c.dataset.id)).size;
  $('search-count').textContent = `${distinct} found`;
  if (scroll && hits.length) hits[0].scrollIntoView({ block: 'center', inline: 'center' });
  return hits;
}

// ------------------------------------------------------------------ the evidence panel

function select(id, tactic, { scroll = false } = {}) {
  const cells = state.cells.filter((c) => c.dataset.id === id);
  for (const c of $('matrix').querySelectorAll('.tech.selected')) c.classList.remove('selected');
  for (const c of cells) {
    c.classList.add('selected');
    const group = c.closest('.group');
    if (c.classList.contains('sub') && group) group.classList.add('open');
  }
  const cell = cells.find((c) => c.dataset.tactic === tactic) || cells[0];
  if (scroll && cell) cell.scrollIntoView({ block: 'center', inline: 'center' });
  state.selected = { id, tactic: cell ? cell.dataset.tactic : tactic };
  state.q.technique = id;
  syncUrl();
  showEvidence({
    id,
    tactic: state.selected.tactic,
    answer: state.answer,
    look: cell && state.answer ? state.answer.look(id, cell.dataset.tactic) : null,
    question: state.q,
    onSelect: (other) => select(other, null, { scroll: true }),
  });
}

function closePanel() {
  $('panel').hidden = true;
  for (const c of $('matrix').querySelectorAll('.tech.selected')) c.classList.remove('selected');
  state.selected = null;
  state.q.technique = '';
  syncUrl();
}

// ------------------------------------------------------------------ downloads

function viewName() {
  const a = state.answer;
  const stem = a ? a.layer.name : `${state.skeleton.matrix} ${state.skeleton.attack_version || ''}`;
  return stem.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').toLowerCase() || 'matrix';
}

function currentSvg() {
  return matrixSvg({
    title: state.answer ? state.answer.title : state.skeleton.matrix,
    subtitle: $('summary').textContent,
    legend: [...$('legend').querySelectorAll('.item')],
    tactics: [...$('matrix').querySelectorAll('.tactic')],
  });
}

function init() {
  initAuth(() => {
    fillInventories();
    load();
  });
  $('question').addEventListener('submit', (e) => {
    e.preventDefault();
    state.q = formQuestion();
    load({ push: true });
  });
  $('domain').addEventListener('change', () => {
    state.q = formQuestion();
    load({ push: true });
  });
  $('platform').addEventListener('change', () => {
    state.q = formQuestion();
    load({ push: true });
  });
  $('expand').addEventListener('click', () => {
    state.q.expand = $('expand').getAttribute('aria-pressed') !== 'true';
    setExpanded(state.q.expand);
    syncUrl();
  });
  let timer = null;
  $('search').addEventListener('input', (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.q.find = e.target.value;
      search(e.target.value);
      syncUrl();
    }, 150);
  });
  $('search').addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const hits = search(e.target.value, { scroll: false });
    if (hits.length === 1 || new Set(hits.map((c) => c.dataset.id)).size === 1) {
      select(hits[0].dataset.id, hits[0].dataset.tactic, { scroll: true });
    } else if (hits.length) {
      hits[0].scrollIntoView({ block: 'center', inline: 'center' });
    }
  });
  const box = $('matrix');
  box.addEventListener('click', (e) => {
    const tog = e.target.closest('.tog');
    if (tog) {
      const group = tog.closest('.group');
      const open = !group.classList.contains('open');
      group.classList.toggle('open', open);
      tog.setAttribute('aria-expanded', String(open));
      return;
    }
    if (e.target.closest('h2 a')) return;
    const cell = e.target.closest('.tech');
    if (cell) select(cell.dataset.id, cell.dataset.tactic);
  });
  box.addEventListener('keydown', (e) => {
    const cell = e.target.closest('.tech');
    if (cell && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      select(cell.dataset.id, cell.dataset.tactic);
    }
  });
  $('panel-close').addEventListener('click', closePanel);
  $('dl-layer').addEventListener('click', (e) => {
    e.preventDefault();
    if (state.answer) download(state.answer.layerUrl);
  });
  $('dl-svg').addEventListener('click', (e) => {
    e.preventDefault();
    if (!state.skeleton) return;
    saveBlob(new Blob([currentSvg()], { type: 'image/svg+xml' }), `${viewName()}.svg`);
  });
  $('dl-png').addEventListener('click', async (e) => {
    e.preventDefault();
    if (!state.skeleton) return;
    try {
      saveBlob(await svgToPng(currentSvg(), 2), `${viewName()}.png`);
    } catch (err) {
      showError(`PNG failed: ${err.message}`);
    }
  });
  window.addEventListener('popstate', () => {
    state.q = readQuestion(location.search);
    load();
  });
  window.ttpgraphMatrix.openAnswer = openAnswer;
  state.q = readQuestion(location.search);
  fillInventories();
  load();
}

init();
