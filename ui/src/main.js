// The actor-overlap page: one network from GET /api/v1/overlap, drawn with Cytoscape.js.
// Click a group: its profile (GET /api/v1/groups/{id}/profile) and the techniques it shares
// with each neighbour (from the network's edges). Everything is served by the ttpgraph API.
import cytoscape from 'cytoscape';

const API = '/api/v1';
const RANGES = {
  jaccard: { min: 0.1, max: 0.8, step: 0.01, value: 0.2, digits: 2 },
  shared: { min: 5, max: 80, step: 1, value: 20, digits: 0 },
};
const MAX_COMPARED = 50; // the compare endpoints take at most 50 actors

const $ = (id) => document.getElementById(id);
const state = {
  metric: 'jaccard',
  threshold: RANGES.jaccard.value,
  software: false,
  network: null,
  selected: null,
  seq: 0,
  profiles: new Map(),
  key: null, // API key (X-API-Key), when the API asks for one
};
const KEY_STORE = 'ttpgraph.apiKey';

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'className') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function setState(value) {
  document.body.dataset.state = value;
}

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
  if (message) setState('error');
}

class AuthError extends Error {}

function headers(accept) {
  const h = { Accept: accept };
  if (state.key) h['X-API-Key'] = state.key;
  return h;
}

async function failure(res, url) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const detail = body && (body.detail || body.title);
  const message = detail ? `${detail} (HTTP ${res.status})` : `HTTP ${res.status} for ${url}`;
  if (res.status === 401 || res.status === 403) {
    askForKey(message);
    return new AuthError(message);
  }
  return new Error(message);
}

async function getJSON(url) {
  const res = await fetch(url, { headers: headers('application/json') });
  if (!res.ok) throw await failure(res, url);
  return res.json();
}

// Downloads go through fetch so that the API key travels in a header, never in a URL.
async function download(url) {
  try {
    const res = await fetch(url, { headers: headers('*/*') });
    if (!res.ok) throw await failure(res, url);
    const disposition = res.headers.get('Content-Disposition') || '';
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || 'download';
    const href = URL.createObjectURL(await res.blob());
    const a = el('a', { href, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 10000);
  } catch (err) {
    showError(`Download failed: ${err.message}`);
  }
}

function askForKey(message) {
  $('auth').hidden = false;
  $('auth-message').textContent = message;
  $('api-key').focus();
}

function useKey(key) {
  state.key = key.trim() || null;
  try {
    if (state.key) localStorage.setItem(KEY_STORE, state.key);
    else localStorage.removeItem(KEY_STORE);
  } catch {
    // storage may be off: the key then lasts as long as the page
  }
  $('auth').hidden = true;
  state.profiles.clear();
  loadNetwork();
}

// ------------------------------------------------------------------ the network

const cy = cytoscape({
  container: $('network'),
  minZoom: 0.05,
  maxZoom: 5,
  style: [
    {
      selector: 'node',
      style: {
        'background-color': 'data(color)',
        width: 'data(size)',
        height: 'data(size)',
        label: 'data(label)',
        'font-size': 9,
        'text-valign': 'bottom',
        'text-margin-y': 2,
        'min-zoomed-font-size': 7,
        'border-width': 1,
        'border-color': '#333',
      },
    },
    {
      selector: 'edge',
      style: {
        width: 'data(width)',
        'line-color': '#8c959f',
        opacity: 0.45,
        'curve-style': 'haystack',
      },
    },
    { selector: 'node:selected', style: { 'border-width': 4, 'border-color': '#000' } },
    { selector: '.faded', style: { opacity: 0.12 } },
    { selector: 'edge.near', style: { 'line-color': '#0b62c4', opacity: 0.9 } },
  ],
});
window.ttpgraph = { cy, state };

function params() {
  const p = new URLSearchParams({ metric: state.metric, threshold: String(state.threshold) });
  if (state.software) p.set('include_software', 'true');
  return p;
}

function syncUrl() {
  const p = params();
  if (state.selected) p.set('actor', state.selected);
  history.replaceState(null, '', `?${p}`);
}

async function loadNetwork() {
  const seq = ++state.seq;
  setState('loading');
  showError('');
  let net;
  try {
    net = await getJSON(`${API}/overlap?${params()}`);
  } catch (err) {
    if (seq === state.seq && !(err instanceof AuthError)) {
      showError(`Could not load the network: ${err.message}`);
    }
    if (err instanceof AuthError) setState('auth');
    return;
  }
  if (seq !== state.seq) return; // a newer request is on its way
  state.network = net;
  render(net);
}

function render(net) {
  const top = Math.max(1e-9, ...net.edges.map((e) => e.weight));
  const elements = [
    ...net.nodes.map((n) => ({
      group: 'nodes',
      data: {
        id: n.group_id,
        label: n.name,
        color: n.color,
        size: 12 + 3 * Math.sqrt(n.technique_count),
        techniques: n.technique_count,
        community: n.community,
      },
    })),
    ...net.edges.map((e) => ({
      group: 'edges',
      data: {
        id: `${e.source}-${e.target}`,
        source: e.source,
        target: e.target,
        weight: e.weight,
        width: 0.6 + 5 * (e.weight / top),
      },
    })),
  ];
  cy.elements().remove();
  cy.add(elements);
  $('node-count').textContent = net.node_count;
  $('edge-count').textContent = net.edge_count;
  $('community-count').textContent = net.communities.length;
  const names = $('group-names');
  names.replaceChildren(
    ...[...net.nodes]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((n) => el('option', { value: `${n.name} (${n.group_id})` })),
  );
  for (const a of document.querySelectorAll('#downloads a')) {
    a.href = `${API}/overlap/export/${a.dataset.fmt}?${params()}`;
  }
  const layout = cy.layout({
    name: 'cose',
    animate: false,
    randomize: true,
    fit: true,
    padding: 24,
    nodeRepulsion: () => 9000,
    idealEdgeLength: () => 60,
    numIter: 1200,
  });
  layout.one('layoutstop', () => {
    document.body.dataset.threshold = String(net.threshold);
    document.body.dataset.metric = net.metric;
    document.body.dataset.nodes = String(net.node_count);
    setState('ready');
    // ?actor= may be a name or an alias (APT28, Fancy Bear): resolve it like the search box.
    if (state.selected && !state.network.nodes.some((n) => n.group_id === state.selected)) {
      search(state.selected);
    } else if (state.selected) select(state.selected, { center: false });
  });
  layout.run();
}

// ------------------------------------------------------------------ one actor

async function profileOf(gid) {
  if (!state.profiles.has(gid)) {
    state.profiles.set(gid, getJSON(`${API}/groups/${encodeURIComponent(gid)}/profile`));
  }
  try {
    return await state.profiles.get(gid);
  } catch (err) {
    state.profiles.delete(gid);
    throw err;
  }
}

function neighboursOf(gid) {
  const names = new Map(state.network.nodes.map((n) => [n.group_id, n.name]));
  return state.network.edges
    .filter((e) => e.source === gid || e.target === gid)
    .map((e) => {
      const other = e.source === gid ? e.target : e.source;
      return { group_id: other, name: names.get(other) || other, ...e };
    })
    .sort((a, b) => b.weight - a.weight || a.group_id.localeCompare(b.group_id));
}

function highlight(gid) {
  cy.elements().removeClass('faded near');
  cy.$(':selected').unselect();
  const node = cy.getElementById(gid);
  if (node.empty()) return node;
  node.select();
  const hood = node.closedNeighborhood();
  cy.elements().difference(hood).addClass('faded');
  node.connectedEdges().addClass('near');
  return node;
}

async function select(gid, { center = true } = {}) {
  state.selected = gid;
  syncUrl();
  const node = highlight(gid);
  if (center && node.nonempty()) cy.animate({ center: { eles: node }, duration: 250 });
  const panel = $('profile');
  panel.hidden = false;
  panel.dataset.group = gid;
  panel.dataset.state = 'loading';
  $('hint').hidden = true;
  const neighbours = neighboursOf(gid);
  const nodeInfo = state.network.nodes.find((n) => n.group_id === gid);
  $('profile-name').textContent = nodeInfo ? nodeInfo.name : gid;
  $('profile-id').textContent = gid;
  renderNeighbours(gid, neighbours, new Map());
  const compared = [gid, ...neighbours.slice(0, MAX_COMPARED - 1).map((n) => n.group_id)];
  const layer = new URLSearchParams(compared.map((g) => ['actor', g]));
  if (state.software) layer.set('include_software', 'true');
  const link = $('layer-link');
  link.href = `${API}/layers/compare?${layer}`;
  link.title = compared.length > 1
    ? `Navigator layer comparing ${compared.join(', ')}`
    : 'No neighbour at this threshold: the layer holds this group alone';
  let profile;
  try {
    profile = await profileOf(gid);
  } catch (err) {
    if (state.selected === gid) showError(`Could not load the profile of ${gid}: ${err.message}`);
    return;
  }
  if (state.selected !== gid) return;
  $('profile-name').textContent = profile.name;
  $('profile-aliases').textContent = profile.aliases.length
    ? `Also known as ${profile.aliases.filter((a) => a !== profile.name).join(', ')}`
    : '';
  const here = nodeInfo ? `${nodeInfo.technique_count} techniques counted here; ` : '';
  $('profile-stats').textContent =
    `${here}profile: ${profile.technique_count} techniques (direct, campaigns, software), ` +
    `${profile.software.length} software, ${profile.campaigns.length} campaigns`;
  const url = $('profile-url');
  url.href = profile.url || `https://attack.mitre.org/groups/${gid}/`;
  const names = new Map(
    profile.techniques.map((t) => [
      t.technique_id,
      t.parent_name ? `${t.parent_name}: ${t.name}` : t.name,
    ]),
  );
  renderNeighbours(gid, neighbours, names);
  panel.dataset.state = 'ready';
}

function renderNeighbours(gid, neighbours, names) {
  $('neighbour-count').textContent = neighbours.length;
  $('no-neighbours').hidden = neighbours.length > 0;
  const metric = state.network.metric;
  $('neighbours').replaceChildren(
    ...neighbours.map((n, i) => {
      const value = metric === 'jaccard' ? `Jaccard ${n.jaccard.toFixed(2)}` : '';
      const head = el(
        'summary',
        { className: 'neighbour-head' },
        `${n.name} `,
        el('small', {}, `${n.group_id} · ${value ? `${value} · ` : ''}${n.shared} shared`),
      );
      const list = el(
        'ul',
        { className: 'shared' },
        ...n.shared_techniques.map((t) =>
          el(
            'li',
            { className: 'shared-technique', 'data-technique': t },
            el('code', {}, t),
            names.has(t) ? ` ${names.get(t)}` : '',
          ),
        ),
      );
      const details = el('details', { open: neighbours.length <= 5 || i < 3 }, head, list);
      const item = el('li', { className: 'neighbour', 'data-group': n.group_id }, details);
      item.addEventListener('mouseenter', () => cy.getElementById(n.group_id).addClass('near'));
      item.addEventListener('mouseleave', () => cy.getElementById(n.group_id).removeClass('near'));
      return item;
    }),
  );
}

// ------------------------------------------------------------------ controls

function findGroup(text) {
  const wanted = text.trim().toLowerCase();
  if (!wanted || !state.network) return null;
  const byChoice = wanted.match(/\((g\d{4})\)$/);
  const nodes = state.network.nodes;
  const exact = nodes.find(
    (n) => n.group_id.toLowerCase() === (byChoice ? byChoice[1] : wanted) ||
      n.name.toLowerCase() === wanted,
  );
  return exact || nodes.find((n) => n.name.toLowerCase().includes(wanted)) || null;
}

async function search(text) {
  if (!text.trim()) return;
  const hit = findGroup(text);
  if (hit) {
    select(hit.group_id);
    return;
  }
  // Not in the network at this threshold (or an alias): ask the API who it is.
  try {
    const resolved = await getJSON(`${API}/groups/${encodeURIComponent(text.trim())}`);
    select(resolved.attack_id);
  } catch (err) {
    showError(err.message);
  }
}

function setMetric(metric, threshold) {
  const r = RANGES[metric];
  state.metric = metric;
  const slider = $('threshold');
  slider.min = r.min;
  slider.max = r.max;
  slider.step = r.step;
  const value = threshold ?? r.value;
  slider.value = value;
  state.threshold = Number(slider.value);
  $('threshold-value').textContent = state.threshold.toFixed(r.digits);
}

let timer = null;
function onThreshold() {
  state.threshold = Number($('threshold').value);
  $('threshold-value').textContent = state.threshold.toFixed(RANGES[state.metric].digits);
  clearTimeout(timer);
  timer = setTimeout(() => {
    syncUrl();
    loadNetwork();
  }, 300);
}

function init() {
  // A key can come in the fragment (#key=...: never sent to the server) or from storage.
  const fragment = new URLSearchParams(location.hash.slice(1));
  try {
    state.key = fragment.get('key') || localStorage.getItem(KEY_STORE);
    if (fragment.get('key')) localStorage.setItem(KEY_STORE, fragment.get('key'));
  } catch {
    state.key = fragment.get('key');
  }
  if (fragment.has('key')) history.replaceState(null, '', location.pathname + location.search);
  $('auth').addEventListener('submit', (e) => {
    e.preventDefault();
    useKey($('api-key').value);
  });
  for (const a of document.querySelectorAll('#downloads a, #layer-link')) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      if (a.href) download(a.href);
    });
  }
  const q = new URLSearchParams(location.search);
  const metric = q.get('metric') === 'shared' ? 'shared' : 'jaccard';
  const t = q.has('threshold') ? Number(q.get('threshold')) : null;
  $('metric').value = metric;
  setMetric(metric, Number.isFinite(t) ? t : null);
  state.software = q.get('include_software') === 'true';
  $('software').checked = state.software;
  state.selected = q.get('actor');

  $('threshold').addEventListener('input', onThreshold);
  $('metric').addEventListener('change', (e) => {
    setMetric(e.target.value, null);
    syncUrl();
    loadNetwork();
  });
  $('software').addEventListener('change', (e) => {
    state.software = e.target.checked;
    syncUrl();
    loadNetwork();
  });
  // A datalist choice ("APT29 (G0016)") selects at once; typed text on Enter.
  $('search').addEventListener('input', (e) => {
    if (/\(G\d{4}\)$/.test(e.target.value)) search(e.target.value);
  });
  $('search').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') search(e.target.value);
  });
  cy.on('tap', 'node', (e) => select(e.target.id(), { center: false }));
  cy.on('tap', (e) => {
    if (e.target === cy) cy.elements().removeClass('faded near');
  });
  loadNetwork();
}

init();
