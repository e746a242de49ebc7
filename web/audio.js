// Microphone capture through an AudioWorklet (capture-worklet.js). Blocks of ~100 ms arrive
// as Float32Array; the caller gets them together with the context's sample rate.

export const TARGET_RATE = 16000;

export class MicrophoneError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

function explain(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return new MicrophoneError('refused',
        'Microphone access was refused. Allow the microphone for this site (the icon in the address bar or the site settings), then press Start again.');
    case 'NotFoundError':
    case 'OverconstrainedError':
      return new MicrophoneError('missing', 'No microphone was found. Plug one in or enable it, then press Start again.');
    case 'NotReadableError':
    case 'AbortError':
      return new MicrophoneError('busy', 'The microphone is in use by another program or could not be opened. Close the other program and try again.');
    default:
      return new MicrophoneError('other', `The microphone could not be started (${error && error.message ? error.message : error}).`);
  }
}

export class Capture {
  constructor(onBlock) {
    this.onBlock = onBlock;
    this.stream = null;
    this.context = null;
    this.node = null;
  }

  get sampleRate() {
    return this.context ? this.context.sampleRate : TARGET_RATE;
  }

  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new MicrophoneError('unsupported', 'This browser cannot record audio here. Use a current browser over HTTPS or on localhost.');
    }
    if (typeof AudioWorkletNode === 'undefined') {
      throw new MicrophoneError('unsupported', 'This browser does not support AudioWorklet, which the interview room needs.');
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true }, video: false });
    } catch (error) {
      throw explain(error);
    }
    try {
      await this.#build(TARGET_RATE);
    } catch {
      // Some browsers cannot connect a microphone to a context at another rate: use the
      // device's rate; the server resamples.
      await this.#teardownContext();
      await this.#build(undefined);
    }
  }

  async #build(sampleRate) {
    this.context = sampleRate ? new AudioContext({ sampleRate }) : new AudioContext();
    await this.context.audioWorklet.addModule('/capture-worklet.js');
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, 'viva-capture', {
      numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: 'explicit', channelInterpretation: 'speakers',
    });
    this.node.port.onmessage = (event) => this.onBlock(event.data, this.context.sampleRate);
    const mute = this.context.createGain();
    mute.gain.value = 0;
    source.connect(this.node);
    this.node.connect(mute);
    mute.connect(this.context.destination);
    await this.context.resume();
  }

  async #teardownContext() {
    if (this.node) this.node.port.onmessage = null;
    this.node = null;
    if (this.context) await this.context.close().catch(() => {});
    this.context = null;
  }

  async stop() {
    await this.#teardownContext();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
  }
}

/** Float32 [-1, 1] → 16-bit signed PCM (little-endian on every platform browsers run on). */
export function toPcm16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff);
  }
  return out;
}

/** A 0..1 level for the meter: RMS in dBFS mapped from -60..0 dB. */
export function level(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  const db = 20 * Math.log10(rms + 1e-9);
  return Math.max(0, Math.min(1, (db + 60) / 60));
}
