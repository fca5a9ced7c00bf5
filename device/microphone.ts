/**
 * The software device's microphone (device/peer.ts): speech queued by `speak()` goes out as Opus
 * RTP on its own drift-free 20 ms clock. Between utterances it sends encoded silence or idle
 * room noise (`idle: "silence"`, like an open mic) or nothing (`idle: "none"`, like DTX).
 *
 * Test conditions of issue 9: `echo` mixes the reply the speaker played back into the mic (a
 * speaker without echo cancellation), {@link Microphone.holdPackets} stalls the packets and then
 * delivers them all at once (a Wi-Fi stall, nothing lost), `loss` drops a fraction of them.
 *
 * @example
 * ```ts
 * const mic = new Microphone({ send: (packet) => transceiver.sender.sendRtp(packet) });
 * mic.start(); // once the audio transceiver is there
 * const spoken = await mic.speak(samples, 22050);
 * mic.stop();
 * mic.close();
 * ```
 */
import type { RtpPacket } from "werift";
import { resample } from "../shared/audio.ts";
import {
  FrameClock,
  MAX_CAPTURE_CATCH_UP_FRAMES,
  OPUS_FRAME_SAMPLES,
  OPUS_RATE,
  OpusEncoder,
  OpusRtpSender,
} from "../shared/media/mod.ts";
import { SpeakerEcho, type SpeakerEchoOptions } from "./speaker_echo.ts";

/** Distinct idle-noise packets cycled by the mic (half a second). */
const NOISE_PACKETS = 25;

/** Options of {@link Microphone}. */
export interface MicrophoneOptions {
  /** What the mic sends between utterances: encoded silence (default) or nothing. */
  idle?: "silence" | "none";
  /**
   * RMS of white noise the idle mic picks up (a room is never digitally silent); 0 = digital
   * silence. A few noise packets are encoded once and cycled, so many peers stay cheap.
   */
  idleNoise?: number;
  /** Drop this fraction of outgoing packets (0..1), for loss tests and the benchmark. */
  loss?: number;
  /**
   * A speaker without echo cancellation: the reply {@link Microphone.heard} is mixed back into
   * the mic `gainDb` (≤ 0) quieter and `delayMs` late. The mic then always sends (speech, echo
   * or idle noise) while echo is pending.
   */
  echo?: SpeakerEchoOptions;
  /** Hands one RTP packet to the socket (werift's sender). */
  send(packet: RtpPacket): void;
}

/** Result of {@link Microphone.speak}. */
export interface Spoken {
  /** performance.now() when the first / last speech packet was handed to the socket. */
  firstPacketAt: number;
  lastPacketAt: number;
  /** Date.now() of the last speech packet (for comparison with gateway timestamps). */
  lastPacketWallMs: number;
  frames: number;
}

interface Utterance {
  samples: Float32Array;
  offset: number;
  frames: number;
  firstPacketAt?: number;
  resolve: (spoken: Spoken) => void;
}

/** See the module doc. */
export class Microphone {
  /** Packets sent (speech and silence) and dropped by the `loss` option. */
  packetsSent = 0;
  packetsDropped = 0;
  /** Fraction of outgoing packets dropped (0..1); starts as `options.loss`, may be changed. */
  loss: number;
  #o: MicrophoneOptions;
  /** Mic frames out: Opus, RTP, then the `loss` option drops some before the socket. */
  #rtp = new OpusRtpSender((packet) => {
    if (this.loss > 0 && Math.random() < this.loss) {
      this.packetsDropped++;
      return;
    }
    if (performance.now() < this.#holdUntil) {
      this.#held.push(packet);
      return;
    }
    this.#releaseHeld();
    this.#sendPacket(packet);
  });
  #frame = new Float32Array(OPUS_FRAME_SAMPLES);
  #idlePackets: Uint8Array[];
  #idleIndex = 0;
  #queue: Utterance[] = [];
  /** The 20 ms clock, from start to stop (paused while idle with `idle: "none"`). */
  #clock = new FrameClock({
    frame: () => this.#micFrame(),
    // A sound card keeps capturing while the process waits: the backlog goes out in a burst and
    // the stream stays on real time (a re-anchored clock would fall behind for good).
    maxCatchUpFrames: MAX_CAPTURE_CATCH_UP_FRAMES,
    // DTX-like: nothing to send until the next speak().
    keepRunning: () =>
      this.#queue.length > 0 || (this.#o.idle ?? "silence") !== "none" || !!this.#echo?.due,
  });
  #talking = false;
  /** The speaker's echo into the mic (option `echo`). */
  #echo: SpeakerEcho | undefined;
  /** Packets held by {@link holdPackets} until `#holdUntil` (performance.now()). */
  #held: RtpPacket[] = [];
  #holdUntil = 0;
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set by {@link start}: there is a transceiver to send on. */
  #open = false;
  #closed = false;

  /** Throws a RangeError for an invalid `echo` (speaker_echo.ts). */
  constructor(options: MicrophoneOptions) {
    this.#o = options;
    this.loss = options.loss ?? 0;
    if (options.echo) this.#echo = new SpeakerEcho(options.echo);
    const noise = options.idleNoise ?? 0;
    // Uniform noise of amplitude a has RMS a/√3.
    const amplitude = noise * Math.sqrt(3);
    const encoder = new OpusEncoder();
    this.#idlePackets = Array.from(
      { length: noise > 0 ? NOISE_PACKETS : 1 },
      () =>
        encoder.encode(
          new Float32Array(OPUS_FRAME_SAMPLES).map(() => (Math.random() * 2 - 1) * amplitude),
        ),
    );
    encoder.close();
  }

  /** There is a transceiver to send on: the clock runs from now until {@link stop}. */
  start(): void {
    this.#open = true;
    this.#startClock();
  }

  /** A new connection: its first packet starts a talkspurt (marker bit). */
  newTalkspurt(): void {
    this.#talking = false;
  }

  /**
   * Speaks `samples` at `rate` through the mic clock; resolves after its last packet was sent.
   * Utterances queue behind each other.
   */
  speak(samples: Float32Array, rate: number): Promise<Spoken> {
    const at48k = rate === OPUS_RATE ? samples : resample(samples, rate, OPUS_RATE);
    return new Promise((resolve) => {
      this.#queue.push({ samples: at48k, offset: 0, frames: 0, resolve });
      this.#startClock();
    });
  }

  /** Reply audio (48 kHz) the speaker played at `at` (performance.now()): echo for `echo`. */
  heard(samples: Float32Array, at: number): void {
    if (!this.#echo) return;
    this.#echo.heard(samples, at);
    this.#startClock();
  }

  /**
   * A Wi-Fi stall: the packets of the next `ms` are held, then all sent at once, in order
   * (nothing lost). Resolves when they have been sent.
   */
  holdPackets(ms: number): Promise<void> {
    this.#holdUntil = performance.now() + ms;
    return new Promise((resolve) => {
      this.#holdTimer = setTimeout(() => {
        this.#holdTimer = undefined;
        this.#holdUntil = 0;
        this.#releaseHeld();
        resolve();
      }, ms);
    });
  }

  /** Stops the clock, drops held packets, resolves queued utterances as they are. */
  stop(): void {
    this.#closed = true;
    this.#clock.stop();
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
    this.#held.length = 0;
    for (const u of this.#queue) {
      u.resolve({ firstPacketAt: 0, lastPacketAt: 0, lastPacketWallMs: 0, frames: u.frames });
    }
    this.#queue.length = 0;
  }

  /** Frees the encoder (after {@link stop}). */
  close(): void {
    this.#rtp.close();
  }

  #releaseHeld(): void {
    for (const packet of this.#held.splice(0)) this.#sendPacket(packet);
  }

  #sendPacket(packet: RtpPacket): void {
    this.packetsSent++;
    this.#o.send(packet);
  }

  #startClock(): void {
    if (this.#closed || !this.#open) return;
    this.#clock.start();
  }

  /** One 20 ms mic frame: speech, idle noise or nothing; returns whether a packet was made. */
  #micFrame(): boolean {
    if (!this.#open) return false;
    const utterance = this.#queue[0];
    const idle = this.#o.idle ?? "silence";
    const echoDue = this.#echo?.due ?? false;
    if (!utterance && idle !== "silence" && !echoDue) return false;
    const first = !this.#talking;
    this.#talking = true;
    if (utterance) {
      const n = Math.min(OPUS_FRAME_SAMPLES, utterance.samples.length - utterance.offset);
      this.#frame.set(utterance.samples.subarray(utterance.offset, utterance.offset + n));
      this.#frame.fill(0, n);
      utterance.offset += n;
      utterance.frames++;
      this.#echo?.mix(this.#frame, true, performance.now());
      this.#rtp.sendFrame(this.#frame, first);
    } else if (echoDue && this.#echo!.mix(this.#frame, false, performance.now())) {
      this.#rtp.sendFrame(this.#frame, first);
    } else {
      this.#rtp.sendPayload(this.#idlePackets[this.#idleIndex++ % this.#idlePackets.length], first);
    }
    if (utterance) {
      const at = performance.now();
      utterance.firstPacketAt ??= at;
      if (utterance.offset >= utterance.samples.length) {
        this.#queue.shift();
        if ((this.#o.idle ?? "silence") === "none") this.#talking = false;
        utterance.resolve({
          firstPacketAt: utterance.firstPacketAt,
          lastPacketAt: at,
          lastPacketWallMs: Date.now(),
          frames: utterance.frames,
        });
      }
    }
    return true;
  }
}
