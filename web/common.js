// Helpers shared by the interview room and the review page.

/** An error from the API, with the server's stable `code`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the JSON API; throws ApiError with the server's code and message. */
export async function api(path, { method = 'GET', token, body, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = `The server answered ${response.status}.`;
    try {
      const error = await response.json();
      code = error.code || code;
      message = error.message || message;
    } catch { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  return response;
}

export async function apiJson(path, options) {
  const response = await api(path, options);
  return response.status === 204 ? null : response.json();
}

/** 75300 → "1:15". */
export function formatMs(ms) {
  if (ms == null || !Number.isFinite(ms)) return '–';
  const total = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return `${minutes}:${seconds}`;
}

/** Creates an element: el('p', {className: 'x'}, 'text', child). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'className') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key in node && !key.includes('-')) node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function fillersText(speech) {
  if (!speech) return '–';
  const entries = Object.entries(speech.fillers || {});
  const detail = entries.length ? ` (${entries.map(([w, n]) => `“${w}” ×${n}`).join(', ')})` : '';
  const perMinute = Number.isFinite(speech.fillers_per_minute) ? `, ${speech.fillers_per_minute.toFixed(1)} per minute` : '';
  return `${speech.filler_count}${perMinute}${detail}`;
}

/** The figures of an answer as a description list. */
export function renderFigures(answer) {
  const t = answer.timing || {};
  const s = answer.speech || {};
  const limit = t.time_limit_ms ? ` of ${formatMs(t.time_limit_ms)}` : '';
  const rows = [
    ['Think time', formatMs(t.think_ms)],
    ['Answer time', `${formatMs(t.answer_ms)}${limit}${t.over_limit ? ' — over the time limit' : ''}`],
    ['Speaking', `${formatMs(t.speaking_ms)}, longest pause ${formatMs(t.longest_pause_ms)}`],
    ['Pace', s.wpm != null ? `${Math.round(s.wpm)} words per minute (${s.words} words)` : '–'],
    ['Fillers', fillersText(s)],
  ];
  if (answer.interrupted) rows.push(['Note', 'The answer was interrupted (connection lost) and finalised by the server.']);
  return el('dl', { className: 'figures' }, rows.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));
}

/** Covered/total of a checklist. */
export function coverage(checklist = []) {
  const covered = checklist.filter((item) => item.status === 'covered').length;
  return { covered, total: checklist.length };
}

/**
 * The checklist as a list: covered items with their quoted evidence, missing ones with their
 * hint. Text and icon carry the status, colour only repeats it. With `onEvidence`, evidence
 * quotes are buttons that receive the evidence.
 */
export function renderChecklist(checklist = [], { onEvidence } = {}) {
  if (!checklist.length) return el('p', { className: 'muted' }, 'No checklist for this question.');
  const { covered, total } = coverage(checklist);
  const list = el('ul', { className: 'checklist' });
  for (const item of checklist) {
    const isCovered = item.status === 'covered';
    const li = el('li', { className: isCovered ? 'covered' : 'missing', dataset: { item: item.id } },
      el('span', { className: 'badge', 'aria-hidden': 'true' }, isCovered ? '✓' : '✗'),
      el('strong', { className: 'status' }, isCovered ? 'Covered: ' : 'Missing: '),
      el('span', { className: 'label' }, item.label));
    if (isCovered && item.evidence) {
      const quote = `“${item.evidence.text}” at ${formatMs(item.evidence.start_ms)}`;
      li.append(' — ', onEvidence
        ? el('button', { type: 'button', className: 'link evidence', onclick: () => onEvidence(item.evidence),
            'aria-label': `Play the evidence for ${item.label}: ${item.evidence.text}, at ${formatMs(item.evidence.start_ms)}` }, quote)
        : el('span', { className: 'evidence' }, `“${item.evidence.text}”`), onEvidence ? '' : ` (at ${formatMs(item.evidence.start_ms)})`);
    } else if (!isCovered && item.hint) {
      li.append(el('p', { className: 'hint' }, el('span', { className: 'visually-hidden' }, 'Hint: '), item.hint));
    }
    list.append(li);
  }
  return el('div', {}, el('p', { className: 'coverage' }, `${covered} of ${total} checklist items covered`), list);
}

// Past sessions kept in this browser.
const HISTORY_KEY = 'viva.sessions';

export function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

export function saveToHistory(entry) {
  const list = loadHistory().filter((s) => s.id !== entry.id);
  list.unshift(entry);
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(list.slice(0, 100)));
  } catch { /* storage full or disabled */ }
}

export function updateHistory(id, changes) {
  const list = loadHistory().map((s) => (s.id === id ? { ...s, ...changes } : s));
  try { localStorage.setItem(HISTORY_KEY, JSON.stringify(list)); } catch { /* ignore */ }
}

export function forgetHistory(id) {
  const list = id ? loadHistory().filter((s) => s.id !== id) : [];
  try { localStorage.setItem(HISTORY_KEY, JSON.stringify(list)); } catch { /* ignore */ }
}

export function reviewUrl(id, token) {
  return `/sessions/${encodeURIComponent(id)}#token=${encodeURIComponent(token)}`;
}
