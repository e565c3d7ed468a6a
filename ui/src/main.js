// The actor-overlap page: one network from GET /api/v1/overlap, drawn with Cytoscape.js.
// Click a group: its profile (GET /api/v1/groups/{id}/profile) and the techniques it shares
// with each neighbour (from the network's edges). Everything is served by the ttpgraph API.
import cytoscape from 'cytoscape';
import {
  $,
  API,
  AuthError,
  download,
  el,
  getJSON,
  initAuth,
  setState,
  showError,
} from './common.js';

const RANGES = {
  jaccard: { min: 0.1, max: 0.8, step: 0.01, value: 0.2, digits: 2 },
  shared: { min: 5, max: 80, step: 1, value: 20, digits: 0 },
};
const MAX_COMPARED = 50; // the compare endpoints take at most 50 actors

const state = {
  metric: 'jaccard',
  threshold: RANGES.jaccard.value,
  software: false,
  network: null,
  selected: null,
  focus: [], // several actors asked for in the URL (?actor=A&actor=B): their neighbourhoods
  seq: 0,
  profiles: new Map(),
};

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
  if (state.focus.length > 1) for (const a of state.focus) p.append('actor', a);
  else if (state.selected) p.set('actor', state.selected);
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
    // ?actor= may be a name or an alias (APT28, Fancy Bear): resolved like the search box.
    if (state.focus.length > 1) focusMany(state.focus);
    else if (state.selected && !state.network.nodes.some((n) => n.group_id === state.selected)) {
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

// Several actors (a matrix of several actors links here): their closed neighbourhoods stay
// lit, the rest fades; the first one's panel opens.
function focusMany(names) {
  const ids = names.map((n) => (findGroup(n) || { group_id: n }).group_id);
  const nodes = cy.collection(ids.map((id) => cy.getElementById(id)).filter((n) => n.nonempty()));
  document.body.dataset.focus = nodes.map((n) => n.id()).join(',');
  if (nodes.empty()) return;
  cy.elements().removeClass('faded near');
  const hood = nodes.closedNeighborhood();
  cy.elements().difference(hood).addClass('faded');
  nodes.connectedEdges().addClass('near');
  nodes.select();
  cy.fit(hood, 30);
  select(nodes[0].id(), { center: false, keepFocus: true });
}

async function select(gid, { center = true, keepFocus = false } = {}) {
  if (!keepFocus) state.focus = [];
  state.selected = gid;
  syncUrl();
  const node = keepFocus ? cy.getElementById(gid) : highlight(gid);
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
  $('matrix-link').href = `matrix?actor=${encodeURIComponent(gid)}`;
  const heat = $('matrix-neighbours-link');
  heat.hidden = compared.length < 2;
  heat.href = `matrix?${layer}`;
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
  initAuth(() => {
    state.profiles.clear();
    loadNetwork();
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
  // ?actor=G0016 selects a group; several (from the matrix page) frame their neighbourhoods.
  state.focus = q.getAll('actor').filter(Boolean);
  state.selected = state.focus[0] || null;

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
