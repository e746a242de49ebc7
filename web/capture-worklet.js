// Audio capture worklet: collects the microphone's first channel into ~100 ms blocks of
// Float32 samples and posts them to the main thread. When the input is silent or absent
// (muted, unplugged) it still posts zeros, so the audio clock keeps running.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.blockSize = Math.max(128, Math.round(sampleRate / 10));
    this.block = new Float32Array(this.blockSize);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    const channel = input && input.length > 0 ? input[0] : null;
    const frames = channel ? channel.length : 128;
    for (let i = 0; i < frames; i++) {
      this.block[this.filled++] = channel ? channel[i] : 0;
      if (this.filled === this.blockSize) {
        this.port.postMessage(this.block, [this.block.buffer]);
        this.block = new Float32Array(this.blockSize);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor('viva-capture', CaptureProcessor);
