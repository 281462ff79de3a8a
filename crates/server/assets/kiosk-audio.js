// Stonepot kiosk audio: the microphone (getUserMedia into an AudioWorklet that produces
// the server's 16 kHz PCM16 20 ms frames) and the player for the reply audio coming down
// the socket. No DOM and no socket here: kiosk-voice.js wires these to both.
(() => {
  "use strict";

  /** How far ahead of the audio clock reply audio is scheduled: enough to ride out a
   *  late frame or a busy main thread, small enough that the guest hears the reply
   *  promptly. The server sends at most 200 ms ahead of real time. */
  const LEAD_S = 0.08;

  /** Microphone capture. `onFrame(ArrayBuffer)` gets each 640-byte frame. */
  class Mic {
    constructor(ctx, workletUrl, onFrame) {
      this.ctx = ctx;
      this.workletUrl = workletUrl;
      this.onFrame = onFrame;
      this.stream = null;
      this.source = null;
      this.node = null;
    }

    /** Asks for the microphone (the browser prompts the first time) and starts the
     *  worklet. Echo cancellation keeps the agent's own voice from the speakers out of
     *  what the server hears, so it does not interrupt itself. */
    async start() {
      await this.ctx.audioWorklet.addModule(this.workletUrl);
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
      this.source = this.ctx.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.ctx, "stonepot-downsampler", {
        numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: "explicit",
      });
      this.node.port.onmessage = (e) => this.onFrame(e.data);
      this.source.connect(this.node);
    }

    /** Releases the microphone (the browser's recording indicator goes off). */
    stop() {
      if (this.source) this.source.disconnect();
      if (this.node) { this.node.port.onmessage = null; this.node.disconnect(); }
      if (this.stream) for (const t of this.stream.getTracks()) t.stop();
      this.stream = this.source = this.node = null;
    }
  }

  /** The reply player: a jitter buffer of AudioBufferSourceNodes scheduled back to back
   *  on the AudioContext's clock. Knows how much of the current reply the guest has
   *  actually heard, which the server uses to cut its history after an interruption. */
  class Player {
    constructor(ctx) {
      this.ctx = ctx;
      this.rate = 16000;
      this.queue = []; // {src, start, end, ms} not yet fully played, in order
      this.next = 0; // context time where the next frame starts
      this.doneMs = 0; // ms of this reply fully played
      this.scheduledMs = 0;
    }

    /** `audio_start`: a new reply begins at `rate` Hz. */
    begin(rate) {
      this.stop();
      this.rate = rate || 16000;
      this.doneMs = 0;
      this.scheduledMs = 0;
    }

    /** The clock position the guest hears now (the output device lags the clock). */
    heardAt() {
      const lag = this.ctx.outputLatency || this.ctx.baseLatency || 0;
      return Math.max(0, this.ctx.currentTime - lag);
    }

    /** One binary frame of PCM16 little-endian mono. */
    push(bytes) {
      const view = new DataView(bytes);
      const n = Math.floor(bytes.byteLength / 2);
      if (n === 0) return;
      const buf = this.ctx.createBuffer(1, n, this.rate);
      const ch = buf.getChannelData(0);
      for (let i = 0; i < n; i++) ch[i] = view.getInt16(i * 2, true) / 32768;
      const src = this.ctx.createBufferSource();
      src.buffer = buf;
      src.connect(this.ctx.destination);
      // Back to back while the buffer holds audio; after a gap (the first frame, a pause
      // between sentences, a stalled page) start a lead ahead of now rather than in the
      // past, which would clip the frame.
      const now = this.ctx.currentTime;
      const start = this.next > now ? this.next : now + LEAD_S;
      src.start(start);
      const ms = (n * 1000) / this.rate;
      this.next = start + n / this.rate;
      this.queue.push({ src, start, end: this.next, ms });
      this.scheduledMs += ms;
    }

    /** Milliseconds of the current reply heard so far. */
    playedMs() {
      const now = this.heardAt();
      while (this.queue.length && this.queue[0].end <= now) this.doneMs += this.queue.shift().ms;
      const head = this.queue[0];
      const partial = head && now > head.start ? (now - head.start) * 1000 : 0;
      return Math.round(this.doneMs + Math.min(partial, head ? head.ms : 0));
    }

    /** Whether audio is still queued or playing. */
    busy() {
      return this.queue.length > 0 && this.queue[this.queue.length - 1].end > this.heardAt();
    }

    /** Stops at once and drops everything queued (barge-in); returns ms heard. */
    stop() {
      const played = this.playedMs();
      for (const q of this.queue) {
        try { q.src.stop(); } catch (_) { /* not started yet */ }
        q.src.disconnect();
      }
      this.queue = [];
      this.next = 0;
      this.doneMs = played; // what was heard stays counted, cut frame included
      return played;
    }
  }

  window.StonepotAudio = { Mic, Player };
})();
