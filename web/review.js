// The review page: /sessions/{id}#token=… — audio, transcript in sync with playback,
// checklist with evidence to seek to, reviewer notes, Markdown export.
import { api, apiJson, el, formatMs, renderChecklist, renderFigures, loadHistory } from './common.js';

const $ = (id) => document.getElementById(id);
const sessionId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
const token = new URLSearchParams(location.hash.slice(1)).get('token')
  || loadHistory().find((s) => s.id === sessionId)?.token || '';
const base = `/v1/sessions/${encodeURIComponent(sessionId)}`;
const objectUrls = [];

function showAlert(message) {
  $('alert').replaceChildren(el('strong', {}, 'Problem: '), message);
  $('alert').hidden = false;
}

async function load() {
  if (!token) {
    $('meta').textContent = '';
    showAlert('This link has no access token. Open the review from the link shown at the end of the interview or from “Past sessions”.');
    return;
  }
  let review;
  try {
    review = await apiJson(base, { token });
  } catch (error) {
    $('meta').textContent = '';
    showAlert(error.status === 401 || error.status === 404
      ? 'This session does not exist or the link’s token is wrong.'
      : `Could not load the session: ${error.message}`);
    return;
  }
  const created = new Date(review.created_at);
  $('meta').textContent = `Session ${review.id}, ${Number.isNaN(created.getTime()) ? review.created_at : created.toLocaleString()}: `
    + `${review.answers.length} of ${review.questions.length} questions answered.`;
  const answers = new Map(review.answers.map((a) => [a.index, a]));
  const notes = review.notes || [];
  $('questions').replaceChildren(...review.questions.map((q) => renderQuestion(q, answers.get(q.index), notes.filter((n) => n.index === q.index))));
  $('export').disabled = false;
}

function renderQuestion(question, answer, notes) {
  const i = question.index;
  const section = el('section', { className: 'review-question', id: `q${i}`, 'aria-labelledby': `q${i}-title` },
    el('h2', { id: `q${i}-title` }, `Question ${i + 1}: `, el('span', { className: 'question-text' }, question.text)));
  let audio = null;
  if (!answer) {
    section.append(el('p', { className: 'muted' }, 'Not answered.'));
  } else {
    audio = el('audio', { controls: true, preload: 'auto', id: `audio-${i}`, 'aria-label': `Recording of the answer to question ${i + 1}` });
    const audioStatus = el('p', { className: 'muted small', role: 'status' }, 'Loading the recording…');
    section.append(el('div', { className: 'player' }, audio, audioStatus));
    loadAudio(i, audio, audioStatus);

    const seek = (ms) => {
      audio.currentTime = ms / 1000;
      audio.play().catch(() => {});
    };
    const segments = answer.segments || [];
    const list = el('ol', { className: 'segments review-segments' }, segments.map((s, n) => el('li', {},
      el('button', { type: 'button', className: 'segment-button', dataset: { start: s.start_ms, end: s.end_ms, n },
        'aria-label': `Play from ${formatMs(s.start_ms)}: ${s.text}`, onclick: () => seek(s.start_ms) },
      el('span', { className: 'time' }, `${formatMs(s.start_ms)}–${formatMs(s.end_ms)} `), el('span', { className: 'text' }, s.text)))));
    section.append(el('h3', {}, 'Transcript'),
      segments.length ? list : el('p', { className: 'muted' }, answer.transcript || 'No speech was recognised.'),
      el('p', { className: 'help' }, 'Select a line to play from there. The line being played is underlined and marked “now playing”.'));
    syncHighlight(audio, list);

    section.append(el('h3', {}, 'Figures'), renderFigures(answer));
    section.append(el('h3', {}, 'Checklist'), renderChecklist(answer.checklist, { onEvidence: (ev) => seek(ev.start_ms) }));
  }
  section.append(renderNotes(i, notes, audio));
  return section;
}

async function loadAudio(index, audio, status) {
  try {
    const response = await api(`${base}/answers/${index}/audio`, { token, accept: 'audio/wav' });
    const url = URL.createObjectURL(await response.blob());
    objectUrls.push(url);
    audio.src = url;
    status.textContent = '';
  } catch (error) {
    status.textContent = `The recording could not be loaded: ${error.message}`;
  }
}

/** Marks the segment being played: aria-current, a “now playing” label, underline and background. */
function syncHighlight(audio, list) {
  let current = null;
  const update = () => {
    const ms = audio.currentTime * 1000;
    let found = null;
    for (const button of list.querySelectorAll('.segment-button')) {
      const start = Number(button.dataset.start);
      const end = Number(button.dataset.end);
      if (ms >= start && ms < end + 250) { found = button; break; }
    }
    if (found === current) return;
    if (current) {
      current.removeAttribute('aria-current');
      current.querySelector('.now')?.remove();
    }
    current = found;
    if (current) {
      current.setAttribute('aria-current', 'true');
      current.prepend(el('span', { className: 'now' }, '▶ now playing: '));
    }
  };
  for (const event of ['timeupdate', 'seeked', 'play', 'ended']) audio.addEventListener(event, update);
  let frame = 0;
  const tick = () => { update(); if (!audio.paused) frame = requestAnimationFrame(tick); };
  audio.addEventListener('play', () => { cancelAnimationFrame(frame); frame = requestAnimationFrame(tick); });
}

function renderNotes(index, notes, audio) {
  const list = el('ul', { className: 'notes' });
  const seek = (ms) => { if (audio) { audio.currentTime = ms / 1000; audio.play().catch(() => {}); } };
  const addNote = (note) => list.append(el('li', {},
    audio ? el('button', { type: 'button', className: 'link', onclick: () => seek(note.at_ms), 'aria-label': `Play from ${formatMs(note.at_ms)}` }, formatMs(note.at_ms))
      : el('span', { className: 'time' }, formatMs(note.at_ms)),
    ' — ', el('span', { className: 'note-text' }, note.text)));
  notes.sort((a, b) => a.at_ms - b.at_ms).forEach(addNote);
  const empty = el('p', { className: 'muted' }, 'No notes yet.');
  empty.hidden = notes.length > 0;

  const textId = `note-text-${index}`;
  const at = el('output', { id: `note-at-${index}` }, '0:00');
  const text = el('textarea', { id: textId, name: 'text', rows: 2, required: true, maxLength: 4000 });
  const status = el('p', { className: 'small', role: 'status', 'aria-live': 'polite' });
  const form = el('form', { className: 'note-form' },
    el('label', { htmlFor: textId }, 'Note at ', at, audio ? ' (the current playback time)' : ''),
    text,
    el('button', { type: 'submit' }, 'Add note'), status);
  if (audio) {
    const show = () => { at.textContent = formatMs(audio.currentTime * 1000); };
    audio.addEventListener('timeupdate', show);
    audio.addEventListener('seeked', show);
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = text.value.trim();
    if (!value) { status.textContent = 'Write a note first.'; text.focus(); return; }
    const atMs = audio ? Math.round(audio.currentTime * 1000) : 0;
    form.querySelector('button').disabled = true;
    try {
      const note = await apiJson(`${base}/notes`, { method: 'POST', token, body: { index, at_ms: atMs, text: value } });
      addNote(note);
      empty.hidden = true;
      text.value = '';
      status.textContent = `Note added at ${formatMs(note.at_ms)}.`;
    } catch (error) {
      status.textContent = `The note was not saved: ${error.message}`;
    } finally {
      form.querySelector('button').disabled = false;
    }
  });
  return el('div', { className: 'notes-block' }, el('h3', {}, 'Reviewer notes'), list, empty, form);
}

async function exportMarkdown() {
  const button = $('export');
  button.disabled = true;
  try {
    const response = await api(`${base}/export.md`, { token, accept: 'text/markdown' });
    const url = URL.createObjectURL(await response.blob());
    const link = el('a', { href: url, download: `viva-${sessionId}.md` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    showAlert(`The export failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

$('export').addEventListener('click', exportMarkdown);
window.addEventListener('hashchange', () => location.reload());
window.addEventListener('pagehide', () => objectUrls.forEach((u) => URL.revokeObjectURL(u)));
load();
