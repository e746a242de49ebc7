// The interview room: set up a session, stream the microphone, show the live transcript and
// the feedback after each answer, survive dropped connections.
import {
  api, apiJson, ApiError, el, formatMs, renderChecklist, renderFigures, coverage, fillersText,
  loadHistory, saveToHistory, updateHistory, forgetHistory, reviewUrl,
} from './common.js';
import { Capture, MicrophoneError, toPcm16, level } from './audio.js';

const $ = (id) => document.getElementById(id);

const MAX_FRAME_SAMPLES = 16000; // 1 s of 16-bit audio per frame when resending (well under 1 MiB)
const MAX_RECONNECTS = 8;

const state = {
  guides: [],
  guide: null, // the chosen guide's details
  session: null, // {id, token, questions, guideTitle}
  capture: null,
  rate: 16000,
  ws: null,
  phase: 'idle', // idle | connecting | asking | waiting | answered | complete
  index: -1,
  askedAtMs: 0,
  kept: [], // Int16Array chunks of the current answer since the question was asked
  keptSamples: 0,
  firstSpeechMs: null,
  pending: null, // command sent and not yet acknowledged: end_answer | next | skip | finish
  resuming: false, // reconnected; waiting for question + stored before sending live audio
  awaitStored: false,
  answers: new Map(),
  reconnects: 0,
  reconnectTimer: null,
  lastError: null,
  stopping: false,
};

// ---------------------------------------------------------------- messages

function showAlert(message, { kind = 'error' } = {}) {
  const box = $('alert');
  box.replaceChildren(el('strong', {}, kind === 'error' ? 'Problem: ' : 'Note: '), message);
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearAlert() {
  $('alert').hidden = true;
  $('alert').replaceChildren();
}

function setStatus(text) {
  $('status').textContent = text;
}

// ---------------------------------------------------------------- setup form

async function loadGuides() {
  const select = $('guide');
  try {
    state.guides = await apiJson('/v1/guides');
    select.replaceChildren(...state.guides.map((g) => el('option', { value: g.id }, `${g.title} (${g.question_count} questions)`)));
    if (!state.guides.length) select.replaceChildren(el('option', { value: '' }, 'No guides on this server'));
    await loadGuide(select.value);
  } catch (error) {
    select.replaceChildren(el('option', { value: '' }, 'Guides unavailable'));
    showAlert(`Could not load the interview guides: ${error.message}`);
  }
}

async function loadGuide(id) {
  state.guide = null;
  $('question-list').replaceChildren();
  $('competency-list').replaceChildren();
  if (!id) return;
  const guide = await apiJson(`/v1/guides/${encodeURIComponent(id)}`);
  state.guide = guide;
  const competencyLabel = new Map(guide.competencies.map((c) => [c.id, c.label]));
  $('count').max = String(guide.questions.length);
  $('question-list').replaceChildren(...guide.questions.map((q, i) => {
    const inputId = `pick-${i}`;
    return el('div', { className: 'choice' },
      el('input', { type: 'checkbox', id: inputId, name: 'question_ids', value: q.id }),
      el('label', { htmlFor: inputId }, q.text,
        el('span', { className: 'muted small' }, ` — ${q.competencies.map((c) => competencyLabel.get(c) || c).join(', ')}`)));
  }));
  $('competency-list').replaceChildren(...guide.competencies.map((c, i) => {
    const inputId = `competency-${i}`;
    return el('div', { className: 'choice' },
      el('input', { type: 'checkbox', id: inputId, name: 'competencies', value: c.id }),
      el('label', { htmlFor: inputId }, c.label, c.description ? el('span', { className: 'muted small' }, ` — ${c.description}`) : null));
  }));
  updatePickedCount();
}

function updatePickedCount() {
  $('picked-count').textContent = String(document.querySelectorAll('#question-list input:checked').length);
}

function syncMode() {
  const custom = $('mode-custom').checked;
  $('guide-options').hidden = custom;
  $('custom-options').hidden = !custom;
}

/** The POST /v1/sessions body from the form, or throws a message for the user. */
function sessionRequest() {
  const guide = $('guide').value;
  if ($('mode-custom').checked) {
    const lines = $('custom-questions').value.split('\n').map((l) => l.trim()).filter(Boolean);
    if (!lines.length) throw new Error('Type at least one question, one per line.');
    const competencies = [...document.querySelectorAll('#competency-list input:checked')].map((i) => i.value);
    const seconds = Number($('time-limit').value);
    if (!Number.isFinite(seconds) || seconds < 5) throw new Error('The time limit must be at least 5 seconds.');
    return {
      body: { questions: lines.map((text) => ({ text, competencies, time_limit_ms: Math.round(seconds * 1000) })) },
      guideTitle: 'Own questions',
    };
  }
  if (!guide) throw new Error('Choose a guide.');
  const title = state.guides.find((g) => g.id === guide)?.title || guide;
  const picked = [...document.querySelectorAll('#question-list input:checked')].map((i) => i.value);
  if (picked.length) return { body: { guide, question_ids: picked }, guideTitle: title };
  const count = Number($('count').value);
  if (!Number.isInteger(count) || count < 1) throw new Error('The number of questions must be a whole number of at least 1.');
  return { body: { guide, count }, guideTitle: title };
}

async function onStart(event) {
  event.preventDefault();
  clearAlert();
  let request;
  try {
    request = sessionRequest();
  } catch (error) {
    showAlert(error.message);
    return;
  }
  const button = $('start');
  button.disabled = true;
  button.textContent = 'Starting…';
  try {
    // The microphone first: a refusal must not leave an empty session behind.
    state.capture = new Capture(onAudioBlock);
    await state.capture.start();
    state.rate = state.capture.sampleRate;
    const created = await apiJson('/v1/sessions', { method: 'POST', body: request.body });
    state.session = { id: created.id, token: created.token, questions: created.questions, guideTitle: request.guideTitle };
    saveToHistory({ id: created.id, token: created.token, date: new Date().toISOString(), guide: request.guideTitle, questions: created.questions.length });
    renderHistory();
    enterRoom();
    connect();
  } catch (error) {
    if (state.capture) await state.capture.stop();
    state.capture = null;
    if (error instanceof MicrophoneError) showAlert(error.message);
    else if (error instanceof ApiError) showAlert(`The session could not be created: ${error.message}`);
    else showAlert(`Could not start: ${error.message}`);
  } finally {
    button.disabled = false;
    button.textContent = 'Start interview';
  }
}

function enterRoom() {
  $('setup').hidden = true;
  $('summary').hidden = true;
  $('room').hidden = false;
  $('question-total').textContent = String(state.session.questions.length);
  Object.assign(state, {
    phase: 'connecting', index: -1, kept: [], keptSamples: 0, firstSpeechMs: null, pending: null,
    resuming: false, awaitStored: false, answers: new Map(), reconnects: 0, lastError: null, stopping: false,
  });
  $('question-text').textContent = 'Connecting…';
  setStatus('Connecting to the interviewer…');
  updateControls();
}

// ---------------------------------------------------------------- audio

function onAudioBlock(samples, rate) {
  const value = level(samples);
  $('level').value = value;
  if (state.phase !== 'asking') return;
  const pcm = toPcm16(samples);
  state.kept.push(pcm);
  state.keptSamples += pcm.length;
  if (!state.resuming && state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(pcm.buffer);
  updateTimers();
}

function answerClockMs() {
  return Math.floor((state.keptSamples * 1000) / state.rate);
}

function updateTimers() {
  const elapsed = answerClockMs();
  const think = state.firstSpeechMs ?? elapsed;
  $('think-timer').textContent = formatMs(think);
  $('think-state').textContent = state.firstSpeechMs == null ? 'thinking' : 'done — you started speaking';
  $('answer-timer').textContent = formatMs(elapsed);
  const limit = currentQuestion()?.time_limit_ms;
  if (limit) {
    $('answer-progress').max = limit;
    $('answer-progress').value = Math.min(limit, elapsed);
    $('answer-limit').textContent = `of ${formatMs(limit)}`;
  } else {
    $('answer-limit').textContent = 'no time limit';
  }
}

// ---------------------------------------------------------------- connection

function streamUrl() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/v1/sessions/${encodeURIComponent(state.session.id)}/stream?token=${encodeURIComponent(state.session.token)}`;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  const ws = new WebSocket(streamUrl());
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  state.lastError = null;
  // After a drop the server repeats the current question and says how much it stored.
  state.resuming = state.index >= 0;
  ws.addEventListener('open', () => {
    ws.send(JSON.stringify({ type: 'start', audio: { encoding: 'pcm_s16le', sample_rate: state.rate, channels: 1 } }));
    setStatus(state.resuming ? 'Reconnected — catching up…' : 'Connected.');
  });
  ws.addEventListener('message', (event) => {
    if (ws !== state.ws || typeof event.data !== 'string') return;
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    onServerMessage(message);
  });
  ws.addEventListener('close', (event) => onClose(ws, event));
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(message));
    return true;
  }
  return false;
}

function onClose(ws, event) {
  if (ws !== state.ws) return;
  state.ws = null;
  if (state.phase === 'complete' || state.stopping) return;
  const code = state.lastError?.code;
  if (code === 'session_complete') {
    complete();
    return;
  }
  if (event.code === 1013 || code === 'busy') {
    scheduleReconnect('The server is busy right now (too many interviews at once).');
    return;
  }
  if (code === 'unauthorized' || code === 'not_found' || code === 'forbidden') {
    showAlert(`The server refused this session: ${state.lastError.message}`);
    setStatus('Disconnected.');
    updateControls();
    return;
  }
  if (code === 'stream_in_use') {
    scheduleReconnect('This session is streaming in another tab or the old connection is still closing.');
    return;
  }
  scheduleReconnect(state.lastError ? `Connection closed: ${state.lastError.message}` : 'The connection to the server dropped.');
}

function scheduleReconnect(reason) {
  if (state.reconnects >= MAX_RECONNECTS) {
    state.reconnectTimer = null;
    showAlert(el('span', {}, `${reason} Reconnecting failed ${MAX_RECONNECTS} times. Your answer so far is kept in this page. `,
      el('button', { type: 'button', onclick: () => { state.reconnects = 0; clearAlert(); connect(); } }, 'Try again')));
    setStatus('Disconnected.');
    updateControls();
    return;
  }
  const delay = Math.min(15000, 500 * 2 ** state.reconnects) + Math.floor(Math.random() * 250);
  state.reconnects += 1;
  const busy = reason.startsWith('The server is busy');
  showAlert(`${reason} Reconnecting in ${Math.ceil(delay / 1000)} s (attempt ${state.reconnects} of ${MAX_RECONNECTS})… ${
    state.phase === 'asking' ? 'Keep talking: your answer is kept and will be resent.' : ''}`, { kind: busy ? 'error' : 'note' });
  setStatus('Reconnecting…');
  updateControls();
  state.reconnectTimer = setTimeout(() => { state.reconnectTimer = null; connect(); }, delay);
}

function currentQuestion() {
  return state.session?.questions[state.index];
}

function onServerMessage(m) {
  switch (m.type) {
    case 'question': return onQuestion(m);
    case 'stored': return onStored(m);
    case 'partial': return onPartial(m);
    case 'segment': return onSegment(m);
    case 'time_warning':
      if (m.index === state.index) $('warning').textContent = `${Math.round(m.remaining_ms / 1000)} seconds left for this answer.`;
      return undefined;
    case 'answer': return onAnswer(m);
    case 'complete': return complete();
    case 'error': return onError(m);
    default: return undefined; // unknown messages are ignored by contract
  }
}

function onQuestion(m) {
  if (state.resuming && m.index === state.index) {
    // The same question again after a reconnect: wait for `stored` to know what to resend.
    state.askedAtMs = m.asked_at_ms;
    state.awaitStored = true;
    return;
  }
  state.resuming = false;
  state.awaitStored = false;
  state.reconnects = 0;
  clearAlert();
  state.index = m.index;
  state.askedAtMs = m.asked_at_ms;
  if (m.question) state.session.questions[m.index] = { ...state.session.questions[m.index], ...m.question };
  state.kept = [];
  state.keptSamples = 0;
  state.firstSpeechMs = null;
  state.pending = null;
  state.phase = 'asking';
  const q = currentQuestion();
  $('question-number').textContent = String(m.index + 1);
  $('question-text').textContent = q.text;
  $('question-meta').textContent = q.time_limit_ms ? `Time limit ${formatMs(q.time_limit_ms)}.` : '';
  $('transcript-final').replaceChildren();
  $('transcript-partial').hidden = true;
  $('transcript-empty').hidden = false;
  $('feedback').hidden = true;
  $('warning').textContent = '';
  setStatus(`Question ${m.index + 1} asked. Take a moment, then answer out loud.`);
  updateTimers();
  updateControls();
  $('question-title').focus();
}

async function onStored(m) {
  if (!state.awaitStored || m.index !== state.index) {
    if (m.index === state.index && state.phase === 'asking') $('status').dataset.stored = String(m.audio_ms);
    return;
  }
  state.awaitStored = false;
  const pending = state.pending;
  let answered = state.answers.has(m.index);
  if (!answered && (pending === 'end_answer' || pending === 'next' || pending === 'finish')) {
    // The server may have finalised the answer just before the drop.
    answered = await fetchAnswer(m.index);
  }
  if (!answered && (state.phase === 'asking' || pending === 'end_answer' || pending === 'next' || pending === 'finish')) {
    resendFrom(m.audio_ms);
  }
  state.resuming = false;
  state.reconnects = 0;
  clearAlert();
  if (pending) {
    if (pending === 'end_answer' && answered) state.pending = null;
    else send({ type: pending });
  }
  setStatus('Reconnected. Nothing was lost.');
  updateControls();
}

async function fetchAnswer(index) {
  try {
    const review = await apiJson(`/v1/sessions/${encodeURIComponent(state.session.id)}`, { token: state.session.token });
    const answer = review.answers.find((a) => a.index === index);
    if (!answer) return false;
    onAnswer({ ...answer, type: 'answer' });
    return true;
  } catch {
    return false;
  }
}

/** Sends the kept audio of the current answer from `audioMs` on (after a reconnect). */
function resendFrom(audioMs) {
  let skip = Math.min(state.keptSamples, Math.round((audioMs * state.rate) / 1000));
  let frame = [];
  let frameSamples = 0;
  const flush = () => {
    if (!frameSamples) return;
    const out = new Int16Array(frameSamples);
    let offset = 0;
    for (const part of frame) { out.set(part, offset); offset += part.length; }
    state.ws.send(out.buffer);
    frame = [];
    frameSamples = 0;
  };
  for (const chunk of state.kept) {
    let part = chunk;
    if (skip >= part.length) { skip -= part.length; continue; }
    if (skip > 0) { part = part.subarray(skip); skip = 0; }
    while (part.length) {
      const take = Math.min(part.length, MAX_FRAME_SAMPLES - frameSamples);
      frame.push(part.subarray(0, take));
      frameSamples += take;
      part = part.subarray(take);
      if (frameSamples === MAX_FRAME_SAMPLES) flush();
    }
  }
  flush();
}

function noteFirstSpeech(startMs) {
  if (state.firstSpeechMs == null && Number.isFinite(startMs)) {
    state.firstSpeechMs = startMs;
    updateTimers();
  }
}

function onPartial(m) {
  if (m.index !== state.index) return;
  noteFirstSpeech(m.start_ms);
  $('partial-text').textContent = m.text;
  $('transcript-partial').hidden = !m.text;
  $('transcript-empty').hidden = true;
}

function onSegment(m) {
  if (m.index !== state.index) return;
  noteFirstSpeech(m.start_ms);
  $('transcript-final').append(el('li', { className: 'segment' },
    el('span', { className: 'time' }, `${formatMs(m.start_ms)} `), el('span', { className: 'text' }, m.text)));
  $('transcript-partial').hidden = true;
  $('partial-text').textContent = '';
  $('transcript-empty').hidden = true;
}

function onAnswer(m) {
  state.answers.set(m.index, m);
  if (m.index !== state.index) return;
  if (state.pending === 'end_answer') state.pending = null;
  if (!state.pending) state.phase = 'answered';
  $('transcript-partial').hidden = true;
  // The final transcript replaces the live one (segments may have been resent after a drop).
  if (m.segments) {
    $('transcript-final').replaceChildren(...m.segments.map((s) => el('li', { className: 'segment' },
      el('span', { className: 'time' }, `${formatMs(s.start_ms)} `), el('span', { className: 'text' }, s.text))));
    $('transcript-empty').hidden = m.segments.length > 0;
  }
  $('feedback-body').replaceChildren(renderFigures(m), el('h4', {}, 'Checklist'), renderChecklist(m.checklist));
  $('feedback').hidden = false;
  const { covered, total } = coverage(m.checklist);
  setStatus(`Answer ${m.index + 1} scored: ${covered} of ${total} checklist items covered.`);
  updateControls();
  if (state.phase === 'answered') $('feedback-title').focus();
}

function onError(m) {
  state.lastError = m;
  if (m.code === 'busy') {
    showAlert('The server is busy right now (too many interviews at once). viva will retry shortly.');
  } else if (m.code === 'session_complete') {
    // Reconnecting to a finished session: it is done.
  } else if (m.code === 'stream_in_use') {
    showAlert('This session is already streaming elsewhere (another tab?). Retrying…', { kind: 'note' });
  } else if (m.fatal) {
    showAlert(`The server closed the interview stream: ${m.message}`);
  } else {
    showAlert(`The server reported a problem: ${m.message}`);
    if (state.pending && m.code === 'no_question') state.pending = null;
  }
}

// ---------------------------------------------------------------- controls

function command(type) {
  state.pending = type;
  state.phase = 'waiting';
  send({ type }); // if the connection is down, it is sent again after the reconnect
  const labels = { end_answer: 'Scoring your answer…', next: 'Moving on…', skip: 'Skipping…', finish: 'Ending the interview…' };
  setStatus(labels[type]);
  updateControls();
}

function updateControls() {
  const connected = !!state.ws && state.ws.readyState === WebSocket.OPEN && !state.resuming;
  const { phase } = state;
  const last = state.session && state.index === state.session.questions.length - 1;
  $('finish-answer').disabled = !(connected && phase === 'asking');
  $('skip').disabled = !(connected && phase === 'asking');
  $('next').disabled = !(connected && (phase === 'asking' || phase === 'answered'));
  $('next').textContent = last ? 'Finish — no more questions' : 'Next question';
  $('end').disabled = phase === 'complete' || phase === 'idle';
  $('read-aloud').disabled = !currentQuestion() || !('speechSynthesis' in window);
}

function readAloud() {
  const q = currentQuestion();
  if (!q || !('speechSynthesis' in window)) return;
  speechSynthesis.cancel();
  const utterance = new SpeechSynthesisUtterance(q.text);
  utterance.lang = 'en-US';
  speechSynthesis.speak(utterance);
}

async function complete() {
  if (state.phase === 'complete') return;
  state.phase = 'complete';
  state.stopping = true;
  clearTimeout(state.reconnectTimer);
  if (state.ws) state.ws.close(1000, 'complete');
  state.ws = null;
  if (state.capture) await state.capture.stop();
  state.capture = null;
  if ('speechSynthesis' in window) speechSynthesis.cancel();
  clearAlert();
  updateControls();
  await renderSummary();
}

async function renderSummary() {
  const { id, token, questions } = state.session;
  let answers = [...state.answers.values()];
  try {
    const review = await apiJson(`/v1/sessions/${encodeURIComponent(id)}`, { token });
    answers = review.answers;
  } catch { /* use what arrived on the stream */ }
  const byIndex = new Map(answers.map((a) => [a.index, a]));
  const rows = questions.map((q, i) => {
    const a = byIndex.get(i);
    if (!a) return el('tr', {}, el('th', { scope: 'row' }, `${i + 1}. ${q.text}`), el('td', { colSpan: 4 }, 'Not answered'));
    const { covered, total } = coverage(a.checklist);
    return el('tr', {},
      el('th', { scope: 'row' }, `${i + 1}. ${q.text}`),
      el('td', {}, total ? `${covered} / ${total}` : '–'),
      el('td', {}, a.speech ? `${Math.round(a.speech.wpm)} wpm` : '–'),
      el('td', {}, a.speech ? String(a.speech.filler_count) : '–'),
      el('td', {}, formatMs(a.timing?.answer_ms)));
  });
  const spoken = answers.filter((a) => a.speech && a.speech.words > 0);
  const avgWpm = spoken.length ? Math.round(spoken.reduce((s, a) => s + a.speech.wpm, 0) / spoken.length) : null;
  const fillers = answers.reduce((s, a) => s + (a.speech?.filler_count || 0), 0);
  const totals = answers.reduce((acc, a) => { const c = coverage(a.checklist); return { covered: acc.covered + c.covered, total: acc.total + c.total }; }, { covered: 0, total: 0 });
  $('summary-body').replaceChildren(
    el('p', {}, `You answered ${answers.length} of ${questions.length} questions.`),
    el('table', { className: 'summary-table' },
      el('caption', {}, 'Per question'),
      el('thead', {}, el('tr', {}, ['Question', 'Checklist covered', 'Pace', 'Fillers', 'Answer time'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    el('dl', { className: 'figures' },
      el('div', {}, el('dt', {}, 'Checklist overall'), el('dd', {}, `${totals.covered} of ${totals.total} items covered`)),
      el('div', {}, el('dt', {}, 'Average pace'), el('dd', {}, avgWpm == null ? '–' : `${avgWpm} words per minute`)),
      el('div', {}, el('dt', {}, 'Fillers'), el('dd', {}, `${fillers} in total`))));
  $('review-link').href = reviewUrl(id, token);
  updateHistory(id, { complete: true, answered: answers.length });
  renderHistory();
  $('room').hidden = true;
  $('summary').hidden = false;
  $('summary-title').focus();
}

// ---------------------------------------------------------------- history

function renderHistory() {
  const list = loadHistory();
  $('history-empty').hidden = list.length > 0;
  $('history-list').replaceChildren(...list.map((s) => {
    const date = new Date(s.date);
    const when = Number.isNaN(date.getTime()) ? s.date : date.toLocaleString();
    return el('li', {},
      el('a', { href: reviewUrl(s.id, s.token) }, `${s.guide || 'Interview'} — ${when}`),
      el('span', { className: 'muted small' }, ` (${s.questions ?? '?'} questions${s.complete ? ', finished' : ''}) `),
      el('button', { type: 'button', className: 'link', 'aria-label': `Forget the session of ${when}`,
        onclick: () => { forgetHistory(s.id); renderHistory(); } }, 'Forget'));
  }));
}

// ---------------------------------------------------------------- wiring

function init() {
  $('setup-form').addEventListener('submit', onStart);
  $('mode-guide').addEventListener('change', syncMode);
  $('mode-custom').addEventListener('change', syncMode);
  $('guide').addEventListener('change', (e) => loadGuide(e.target.value).catch((err) => showAlert(`Could not load the guide: ${err.message}`)));
  $('question-list').addEventListener('change', updatePickedCount);
  $('finish-answer').addEventListener('click', () => command('end_answer'));
  $('skip').addEventListener('click', () => command('skip'));
  $('next').addEventListener('click', () => command('next'));
  $('end').addEventListener('click', () => {
    // Without a connection and no reconnect planned, end here; else the command is
    // (re)sent once the stream is back.
    if (!state.ws && !state.reconnectTimer) complete();
    else command('finish');
  });
  $('read-aloud').addEventListener('click', readAloud);
  $('again').addEventListener('click', () => {
    $('summary').hidden = true;
    $('setup').hidden = false;
    state.phase = 'idle';
    $('setup-title').focus();
  });
  window.addEventListener('beforeunload', (event) => {
    if (state.phase !== 'idle' && state.phase !== 'complete') event.preventDefault();
  });
  syncMode();
  renderHistory();
  loadGuides();
}

init();
