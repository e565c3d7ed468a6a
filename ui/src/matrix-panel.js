// The evidence behind one cell (GET /api/v1/techniques/{id}/evidence), with what the current
// view says about it (the layer entry, or the gap analysis's technique): procedures and
// citations per actor, rules, detection strategies -> analytics -> log sources, mitigations,
// the groups and software that use it. Each part links to ATT&CK and to the API answer.
import { $, API, el, getJSON, openAnswer } from './common.js';

const cache = new Map();
let current = 0;

function evidenceUrl(id) {
  return `${API}/techniques/${encodeURIComponent(id)}/evidence`;
}

async function evidenceOf(id) {
  if (!cache.has(id)) cache.set(id, getJSON(evidenceUrl(id)));
  try {
    return await cache.get(id);
  } catch (err) {
    cache.delete(id);
    throw err;
  }
}

function ext(href, text) {
  return href ? el('a', { href, target: '_blank', rel: 'noopener', className: 'ext' }, text) : text;
}

function apiLink(url, text) {
  const a = el('a', { href: url, className: 'api' }, text);
  a.addEventListener('click', (e) => {
    e.preventDefault();
    openAnswer(url);
  });
  return a;
}

// ATT&CK prose: "(Citation: X)" markers dropped, Markdown links as links, paragraphs kept.
function prose(text, { paragraphs = 99 } = {}) {
  const out = [];
  const clean = String(text || '').replace(/\(Citation:[^)]*\)/g, '').trim();
  for (const para of clean.split(/\n\s*\n/).slice(0, paragraphs)) {
    const p = el('p');
    let last = 0;
    for (const m of para.matchAll(/\[([^\]]+)\]\((https?:[^)\s]+)\)|<code>(.*?)<\/code>/g)) {
      p.append(para.slice(last, m.index));
      p.append(m[3] !== undefined ? el('code', {}, m[3]) : ext(m[2], m[1]));
      last = m.index + m[0].length;
    }
    p.append(para.slice(last));
    out.push(p);
  }
  return out;
}

function citations(item) {
  if (!item.citations || !item.citations.length) return null;
  return el(
    'ol',
    { className: 'citations' },
    item.citations.map((name, i) => el('li', {}, ext(item.citation_urls[i], name))),
  );
}

function section(title, count, open, ...body) {
  return el(
    'details',
    { className: 'part', open, 'data-part': title.toLowerCase().split(' ')[0] },
    el('summary', {}, title, count === null ? '' : el('span', { className: 'n' }, ` (${count})`)),
    ...body,
  );
}

// ------------------------------------------------------------------ what the view says

// With a comment, the metadata mostly repeats it: only what it does not say is listed.
const UNTOLD = new Set(['how', 'priority (exact)', 'step']);

function metaList(entry) {
  const rows = (entry.metadata || []).filter(
    (m) => m.name && m.value !== undefined && (!entry.comment || UNTOLD.has(m.name)),
  );
  if (!rows.length) return null;
  return el(
    'dl',
    { className: 'meta' },
    rows.flatMap((m) => [el('dt', {}, m.name), el('dd', {}, String(m.value))]),
  );
}

function ruleList(title, rules) {
  if (!rules || !rules.length) return null;
  return el(
    'details',
    { className: 'rules', open: rules.length <= 8 },
    el('summary', {}, `${title} (${rules.length})`),
    el('ul', {}, rules.slice(0, 200).map((r) => el('li', {}, r))),
    rules.length > 200 ? el('p', {}, `… and ${rules.length - 200} more`) : null,
  );
}

function inThisView(answer, look, id) {
  if (!answer) return null;
  const body = [];
  const url = answer.layerUrl;
  if (!look) {
    body.push(el('p', { className: 'muted' }, 'Not part of this answer.'));
  } else if (look.gap) {
    const g = look.gap;
    const status = g.covered ? 'covered' : g.partial ? 'partially covered' : 'not covered: a gap';
    body.push(
      el('p', { className: `status ${look.status}` }, `${status} · priority ${g.priority.toFixed(1)}`),
      el('ul', { className: 'reasons' }, g.reasons.map((r) => el('li', {}, r))),
      ruleList('Rules that cover it', g.rules),
      ruleList('Rules that cover it partially (on its parent or sub-techniques)', g.partial_rules),
    );
    const kinds = Object.entries(g.kinds || {});
    if (kinds.length) {
      const name = (g) => (answer.actorNames.has(g) ? `${answer.actorNames.get(g)} (${g})` : g);
      body.push(el('p', {}, 'How the actors use it: ', kinds.map(([g, k]) => `${name(g)} ${k.join(', ')}`).join('; ')));
    }
  } else if (look.entry) {
    const e = look.entry;
    if (e.comment) {
      body.push(el('div', { className: 'comment' }, e.comment.split('\n').map((line) => el('p', {}, line))));
    }
    body.push(metaList(e));
    const links = (e.links || []).filter((l) => l.url && !l.url.includes(`/techniques/${id.replace('.', '/')}`));
    if (links.length) {
      body.push(
        el(
          'details',
          { className: 'sources' },
          el('summary', {}, `Links and cited reports (${links.length})`),
          el('ul', { className: 'links' }, links.map((l) => el('li', {}, ext(l.url, l.label)))),
        ),
      );
    }
  }
  const apis = [apiLink(url, 'API: this view as a layer')];
  if (answer.jsonUrl) apis.push(' · ', apiLink(answer.jsonUrl, 'API: the gap analysis'));
  return section(`In this view: ${answer.title}`, null, true, ...body, el('p', { className: 'apis' }, apis));
}

// ------------------------------------------------------------------ what ATT&CK says

function groupItem(u, actors) {
  const via = u.kind === 'campaign' ? [' via ', ext(u.via_url, `${u.via_name} (${u.via_id})`)] : [' directly'];
  const mine = actors.has(u.group_id);
  return el(
    'li',
    { className: mine ? 'mine' : '', 'data-group': u.group_id },
    el(
      'details',
      { open: mine },
      el('summary', {}, el('b', {}, u.name), ` ${u.group_id}`, ...via),
      prose(u.procedure),
      citations(u),
      el(
        'p',
        { className: 'links' },
        ext(u.url, 'ATT&CK'),
        ' · ',
        el('a', { href: `matrix?actor=${encodeURIComponent(u.group_id)}` }, 'its matrix'),
        ' · ',
        apiLink(`${API}/groups/${u.group_id}/profile`, 'API: profile'),
      ),
    ),
  );
}

function groupsPart(ev, actors) {
  const ordered = [...ev.groups].sort(
    (a, b) => (actors.has(b.group_id) ? 1 : 0) - (actors.has(a.group_id) ? 1 : 0),
  );
  const distinct = new Set(ev.groups.map((g) => g.group_id)).size;
  return section(
    'Groups that use it',
    distinct,
    actors.size > 0 || distinct <= 8,
    ordered.length
      ? el('ul', { className: 'uses' }, ordered.map((u) => groupItem(u, actors)))
      : el('p', { className: 'muted' }, 'No group is known to use it.'),
  );
}

function softwarePart(ev) {
  if (!ev.software.length) return null;
  return section(
    'Software that uses it',
    ev.software.length,
    false,
    el(
      'ul',
      { className: 'uses' },
      ev.software.map((s) =>
        el(
          'li',
          { 'data-software': s.software_id },
          el(
            'details',
            {},
            el('summary', {}, el('b', {}, s.name), ` ${s.software_id} · ${s.type}`),
            prose(s.procedure),
            citations(s),
            el('p', { className: 'links' }, ext(s.url, 'ATT&CK')),
          ),
        ),
      ),
    ),
  );
}

function detectionPart(ev) {
  const strategies = ev.detection_strategies;
  const analytics = strategies.reduce((n, s) => n + s.analytics.length, 0);
  const body = strategies.map((s) =>
    el(
      'div',
      { className: 'strategy', 'data-strategy': s.strategy_id },
      el('h4', {}, ext(s.url, `${s.strategy_id} ${s.name}`)),
      s.analytics.map((a) =>
        el(
          'div',
          { className: 'analytic' },
          el('p', {}, ext(a.url, a.analytic_id), a.platforms.length ? ` · ${a.platforms.join(', ')}` : ''),
          a.log_sources.length
            ? el(
                'table',
                {},
                el('tr', {}, el('th', {}, 'log source'), el('th', {}, 'channel'), el('th', {}, 'data component')),
                a.log_sources.map((l) =>
                  el('tr', {}, el('td', {}, l.name), el('td', {}, l.channel || ''), el('td', {}, `${l.data_component || ''} ${l.data_component_id || ''}`)),
                ),
              )
            : null,
        ),
      ),
    ),
  );
  if (ev.data_components.length) {
    body.push(
      el('h4', {}, 'Data components that detect it (ATT&CK v17)'),
      el('ul', {}, ev.data_components.map((d) => el('li', {}, ext(d.url, `${d.data_component_id} ${d.name}`)))),
    );
  }
  if (!body.length) body.push(el('p', { className: 'muted' }, 'ATT&CK names no detection for it.'));
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const count = strategies.length
    ? `${plural(strategies.length, 'strategy', 'strategies')}, ${plural(analytics, 'analytic', 'analytics')}`
    : ev.data_components.length;
  return el(
    'details',
    { className: 'part', open: true, 'data-part': 'detection' },
    el('summary', {}, 'Detection', el('span', { className: 'n' }, ` (${count})`)),
    ...body,
  );
}

function mitigationsPart(ev) {
  return section(
    'Mitigations',
    ev.mitigations.length,
    true,
    ev.mitigations.length
      ? el(
          'ul',
          { className: 'mitigations' },
          ev.mitigations.map((m) =>
            el('li', { 'data-mitigation': m.mitigation_id }, el('b', {}, ext(m.url, `${m.mitigation_id} ${m.name}`)), prose(m.how, { paragraphs: 2 })),
          ),
        )
      : el('p', { className: 'muted' }, 'None listed by ATT&CK.'),
  );
}

function related(ev, onSelect) {
  const items = [];
  if (ev.parent_id) items.push({ technique_id: ev.parent_id, name: ev.parent_name, what: 'parent' });
  for (const s of ev.subtechniques) items.push({ ...s, what: 'sub-technique' });
  if (!items.length) return null;
  return el(
    'p',
    { className: 'related' },
    items.flatMap((t, i) => {
      const a = el('a', { href: `#${t.technique_id}` }, `${t.technique_id} ${t.name}`);
      a.addEventListener('click', (e) => {
        e.preventDefault();
        onSelect(t.technique_id);
      });
      return [i ? ' · ' : `${t.what === 'parent' ? 'Parent' : 'Sub-techniques'}: `, a];
    }),
  );
}

export async function showEvidence({ id, answer, look, question, onSelect }) {
  const seq = ++current;
  const panel = $('panel');
  const box = $('evidence');
  panel.hidden = false;
  panel.dataset.technique = id;
  panel.dataset.state = 'loading';
  box.replaceChildren(
    ...[el('h2', {}, id), inThisView(answer, look, id), el('p', { className: 'muted' }, 'Loading the evidence…')].filter(Boolean),
  );
  let ev;
  try {
    ev = await evidenceOf(id);
  } catch (err) {
    if (seq !== current) return;
    box.append(el('p', { className: 'error' }, `Could not load the evidence: ${err.message}`));
    panel.dataset.state = 'error';
    return;
  }
  if (seq !== current) return;
  const actors = new Set(answer ? answer.actors : []);
  const title = ev.parent_name ? `${ev.parent_name}: ${ev.name}` : ev.name;
  const parts = [
    el('h2', {}, el('span', { className: 'tid' }, ev.technique_id), ` ${title}`),
    el(
      'p',
      { className: 'facts' },
      ev.tactics.map((t) => t.name).join(', '),
      ev.platforms.length ? ` · ${ev.platforms.join(', ')}` : '',
    ),
    el(
      'p',
      { className: 'links' },
      ext(ev.url, 'ATT&CK page'),
      ' · ',
      apiLink(evidenceUrl(ev.technique_id), 'API: evidence'),
      question.inventory || question.layer
        ? [' · ', apiLink(`${API}/inventories/${encodeURIComponent(question.layer || question.inventory)}/rules?technique=${ev.technique_id}`, 'API: rules')]
        : null,
    ),
    related(ev, onSelect),
    inThisView(answer, look, ev.technique_id),
    groupsPart(ev, actors),
    detectionPart(ev),
    mitigationsPart(ev),
    softwarePart(ev),
    section('Description', null, false, prose(ev.description)),
  ];
  box.replaceChildren(...parts.filter(Boolean));
  panel.dataset.state = 'ready';
}
