// What both pages share: elements, the API key (asked for when the API answers 401/403, kept
// in localStorage, never put in a URL), JSON fetches and downloads through fetch.

export const API = '/api/v1';
const KEY_STORE = 'ttpgraph.apiKey';

export const $ = (id) => document.getElementById(id);
export const auth = { key: null, onKey: null };

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'className') node.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role') node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function setState(value) {
  document.body.dataset.state = value;
}

export function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
  if (message) setState('error');
}

export class AuthError extends Error {}

export function headers(accept) {
  const h = { Accept: accept };
  if (auth.key) h['X-API-Key'] = auth.key;
  return h;
}

export async function failure(res, url) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const detail = body && (body.detail || body.title);
  const hints = body && Array.isArray(body.suggestions) && body.suggestions.length
    ? ` (did you mean: ${body.suggestions.slice(0, 5).join(', ')}?)`
    : '';
  const message = detail
    ? `${detail}${hints} (HTTP ${res.status})`
    : `HTTP ${res.status} for ${url}`;
  if (res.status === 401 || res.status === 403) {
    askForKey(message);
    return new AuthError(message);
  }
  const err = new Error(message);
  err.status = res.status;
  return err;
}

export async function getJSON(url) {
  const res = await fetch(url, { headers: headers('application/json') });
  if (!res.ok) throw await failure(res, url);
  return res.json();
}

export function saveBlob(blob, name) {
  const href = URL.createObjectURL(blob);
  const a = el('a', { href, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

// Downloads go through fetch so that the API key travels in a header, never in a URL.
export async function download(url) {
  try {
    const res = await fetch(url, { headers: headers('*/*') });
    if (!res.ok) throw await failure(res, url);
    const disposition = res.headers.get('Content-Disposition') || '';
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || 'download';
    saveBlob(await res.blob(), name);
  } catch (err) {
    showError(`Download failed: ${err.message}`);
  }
}

// An API answer in a new tab: the tab is opened at the click (so no pop-up blocker stops it),
// the answer is fetched with the key and shown there as JSON.
export async function openAnswer(url) {
  const tab = window.open('', '_blank');
  try {
    const res = await fetch(url, { headers: headers('application/json') });
    if (!res.ok) throw await failure(res, url);
    const text = JSON.stringify(await res.json(), null, 2);
    const href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    if (tab) tab.location.href = href;
    else saveBlob(new Blob([text], { type: 'application/json' }), 'answer.json');
  } catch (err) {
    if (tab) tab.close();
    showError(`Could not open ${url}: ${err.message}`);
  }
}

export function askForKey(message) {
  $('auth').hidden = false;
  $('auth-message').textContent = message;
  $('api-key').focus();
}

function useKey(key) {
  auth.key = key.trim() || null;
  try {
    if (auth.key) localStorage.setItem(KEY_STORE, auth.key);
    else localStorage.removeItem(KEY_STORE);
  } catch {
    // storage may be off: the key then lasts as long as the page
  }
  $('auth').hidden = true;
  if (auth.onKey) auth.onKey();
}

// A key can come in the fragment (#key=...: never sent to the server) or from storage.
export function initAuth(onKey) {
  auth.onKey = onKey;
  const fragment = new URLSearchParams(location.hash.slice(1));
  try {
    auth.key = fragment.get('key') || localStorage.getItem(KEY_STORE);
    if (fragment.get('key')) localStorage.setItem(KEY_STORE, fragment.get('key'));
  } catch {
    auth.key = fragment.get('key');
  }
  if (fragment.has('key')) history.replaceState(null, '', location.pathname + location.search);
  $('auth').addEventListener('submit', (e) => {
    e.preventDefault();
    useKey($('api-key').value);
  });
}
