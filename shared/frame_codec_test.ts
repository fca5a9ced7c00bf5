import { gatewayProof, serverProof } from "./audio_auth.ts";
import assert from "node:assert/strict";
import {
  type Decoded,
  DEFAULT_FRAME_LIMITS,
  encodeV1,
  encodeV2,
  FrameDecoder,
  FrameError,
  maxPcmBytes,
  type V1Frame,
  type V2Message,
} from "./frame_codec.ts";

/** Bytes written as a JS string whose char codes are the byte values (`\x..` escapes). */
function bytes(latin1: string): Uint8Array {
  return Uint8Array.from(latin1, (ch) => ch.charCodeAt(0));
}

/** The escaped form docs/protocol.md shows: printable ASCII as is, `\n`, `\xNN` otherwise. */
function escaped(data: Uint8Array): string {
  let out = "";
  for (const byte of data) {
    if (byte === 0x0a) out += "\\n";
    else if (byte === 0x5c) out += "\\\\";
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

const PCM_4 = bytes("\x01\x00\xff\x7f"); // samples 1 and 32767

interface Vector {
  name: string;
  wire: Uint8Array;
  decoded: Decoded;
}

/** The golden vectors; docs/protocol.md shows each `wire` verbatim (checked below). */
const V1_VECTORS: Vector[] = [
  {
    name: "v1 request of two samples",
    wire: bytes("living_room|4|16000|req_abc123\n\x01\x00\xff\x7f"),
    decoded: {
      version: 1,
      frame: { device: "living_room", rate: 16000, request: "req_abc123", pcm: PCM_4 },
    },
  },
  {
    name: "v1 empty response (nothing to say)",
    wire: bytes("living_room|0|48000|req_abc123\n"),
    decoded: {
      version: 1,
      frame: { device: "living_room", rate: 48000, request: "req_abc123", pcm: new Uint8Array(0) },
    },
  },
];

const V2_VECTORS: Vector[] = [
  {
    name: "v2 hello from the gateway",
    wire: bytes(
      '{"type":"hello","version":2,"role":"gateway","capabilities":["stream","cancel","text","ping","stages","speculate"],"ts":1700000000000}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "hello",
        version: 2,
        role: "gateway",
        capabilities: ["stream", "cancel", "text", "ping", "stages", "speculate"],
        ts: 1700000000000,
      },
    },
  },
  {
    name: "v2 start of a turn",
    wire: bytes(
      '{"type":"start","turn":"t1","device":"kitchen","rate":16000,"ts":1700000000010}\n',
    ),
    decoded: {
      version: 2,
      message: { type: "start", turn: "t1", device: "kitchen", rate: 16000, ts: 1700000000010 },
    },
  },
  {
    name: "v2 audio chunk",
    wire: bytes(
      '{"type":"audio","turn":"t1","seq":0,"rate":16000,"ts":1700000000030,"length":4}\n\x01\x00\xff\x7f',
    ),
    decoded: {
      version: 2,
      message: { type: "audio", turn: "t1", seq: 0, rate: 16000, ts: 1700000000030, pcm: PCM_4 },
    },
  },
  {
    name: "v2 pause (the user went quiet; end may follow)",
    wire: bytes('{"type":"pause","turn":"t1","ts":1700000001110}\n'),
    decoded: { version: 2, message: { type: "pause", turn: "t1", ts: 1700000001110 } },
  },
  {
    name: "v2 end of utterance",
    wire: bytes('{"type":"end","turn":"t1","ts":1700000001300}\n'),
    decoded: { version: 2, message: { type: "end", turn: "t1", ts: 1700000001300 } },
  },
  {
    name: "v2 state: the turn waits for inference",
    wire: bytes(
      '{"type":"state","turn":"t1","state":"queued","position":2,"wait_ms":1800,"ts":1700000001310}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "state",
        turn: "t1",
        state: "queued",
        position: 2,
        wait_ms: 1800,
        ts: 1700000001310,
      },
    },
  },
  {
    name: "v2 state: inference started",
    wire: bytes('{"type":"state","turn":"t1","state":"running","ts":1700000003100}\n'),
    decoded: {
      version: 2,
      message: { type: "state", turn: "t1", state: "running", ts: 1700000003100 },
    },
  },
  {
    name: "v2 eot: the request so far is unfinished, wait longer",
    wire: bytes(
      '{"type":"eot","turn":"t1","completion":"incomplete","silence_ms":1200,"ts":1700000001250}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "eot",
        turn: "t1",
        completion: "incomplete",
        silence_ms: 1200,
        ts: 1700000001250,
      },
    },
  },
  {
    name: "v2 start continuing an ended turn",
    wire: bytes(
      '{"type":"start","turn":"t2","device":"kitchen","rate":16000,"continues":"t1","ts":1700000001700}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "start",
        turn: "t2",
        device: "kitchen",
        rate: 16000,
        continues: "t1",
        ts: 1700000001700,
      },
    },
  },
  {
    name: "v2 commit: the turn is final",
    wire: bytes('{"type":"commit","turn":"t2","ts":1700000003100}\n'),
    decoded: { version: 2, message: { type: "commit", turn: "t2", ts: 1700000003100 } },
  },
  {
    name: "v2 transcript text",
    wire: bytes(
      '{"type":"text","turn":"t1","kind":"transcript","ts":1700000001420,"length":12}\nwhat time is',
    ),
    decoded: {
      version: 2,
      message: {
        type: "text",
        turn: "t1",
        kind: "transcript",
        ts: 1700000001420,
        text: "what time is",
      },
    },
  },
  {
    name: "v2 end of reply with stage timings",
    wire: bytes(
      '{"type":"end","turn":"t1","ts":1700000002000,"stages":{"stt_ms":120,"tts_first_ms":15}}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "end",
        turn: "t1",
        ts: 1700000002000,
        stages: { stt_ms: 120, tts_first_ms: 15 },
      },
    },
  },
  {
    name: "v2 cancel (barge-in)",
    wire: bytes('{"type":"cancel","turn":"t1","ts":1700000001900,"played_ms":420}\n'),
    decoded: {
      version: 2,
      message: { type: "cancel", turn: "t1", ts: 1700000001900, played_ms: 420 },
    },
  },
  {
    name: "v2 error for a turn",
    wire: bytes(
      '{"type":"error","turn":"t2","code":"busy","message":"inference queue is full (4 turns)","ts":1700000003000}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "error",
        turn: "t2",
        code: "busy",
        message: "inference queue is full (4 turns)",
        ts: 1700000003000,
      },
    },
  },
  {
    name: "v2 ping",
    wire: bytes('{"type":"ping","id":7,"ts":1700000004000}\n'),
    decoded: { version: 2, message: { type: "ping", id: 7, ts: 1700000004000 } },
  },
  {
    name: "v2 pong",
    wire: bytes('{"type":"pong","id":7,"ts":1700000004001}\n'),
    decoded: { version: 2, message: { type: "pong", id: 7, ts: 1700000004001 } },
  },
  // Authentication (docs/protocol.md): secret "000102…1e1f" (64 characters, its ASCII bytes
  // are the HMAC key), gateway nonce a…a, server nonce b…b; proofs checked against openssl below.
  {
    name: "v2 hello from an authenticating gateway (its nonce)",
    wire: bytes(
      '{"type":"hello","version":2,"role":"gateway","capabilities":["stream","cancel","text","ping","stages","speculate"],"ts":1700000000000,"nonce":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "hello",
        version: 2,
        role: "gateway",
        capabilities: ["stream", "cancel", "text", "ping", "stages", "speculate"],
        ts: 1700000000000,
        nonce: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      },
    },
  },
  {
    name: "v2 hello from the server (its nonce and its proof)",
    wire: bytes(
      '{"type":"hello","version":2,"role":"server","capabilities":["stream","cancel","text","ping","stages"],"ts":1700000000002,"nonce":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","proof":"946c14ccb0bc212fcae7850ea07539df33129190f69a4d879ab347191ac9536e"}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "hello",
        version: 2,
        role: "server",
        capabilities: ["stream", "cancel", "text", "ping", "stages"],
        ts: 1700000000002,
        nonce: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        proof: "946c14ccb0bc212fcae7850ea07539df33129190f69a4d879ab347191ac9536e",
      },
    },
  },
  {
    name: "v2 auth (the gateway's proof)",
    wire: bytes(
      '{"type":"auth","proof":"cfee47000b882d0a939d00916922fb69fd1e090620020223a675e357fc479a91","ts":1700000000004}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "auth",
        proof: "cfee47000b882d0a939d00916922fb69fd1e090620020223a675e357fc479a91",
        ts: 1700000000004,
      },
    },
  },
];

function v1Stream(): Uint8Array {
  return concat(V1_VECTORS.map((v) => v.wire));
}
function v2Stream(): Uint8Array {
  return concat(V2_VECTORS.map((v) => v.wire));
}
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function decodeAll(data: Uint8Array, cuts: number[] = []): Decoded[] {
  const decoder = new FrameDecoder();
  const out: Decoded[] = [];
  let start = 0;
  for (const cut of [...cuts, data.length]) {
    out.push(...decoder.push(data.subarray(start, cut)));
    start = cut;
  }
  assert.equal(decoder.bufferedBytes, 0);
  return out;
}

function expectFrameError(run: () => unknown, code: string, fieldName: string): FrameError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof FrameError, `expected FrameError, got ${error}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.field, fieldName, error.message);
    return error;
  }
  assert.fail(`expected FrameError ${code} on ${fieldName}`);
}

Deno.test("golden vectors encode to their exact bytes and decode back", async (t) => {
  for (const vector of [...V1_VECTORS, ...V2_VECTORS]) {
    await t.step(vector.name, () => {
      const encoded = vector.decoded.version === 1
        ? encodeV1(vector.decoded.frame)
        : encodeV2(vector.decoded.message);
      assert.deepEqual(encoded, vector.wire);
    });
  }
  await t.step("a v1 stream decodes to its frames", () => {
    assert.deepEqual(decodeAll(v1Stream()), V1_VECTORS.map((v) => v.decoded));
  });
  await t.step("a v2 stream decodes to its messages", () => {
    assert.deepEqual(decodeAll(v2Stream()), V2_VECTORS.map((v) => v.decoded));
  });
});

Deno.test("docs/protocol.md shows every golden vector verbatim", async () => {
  const docs = await Deno.readTextFile(new URL("../docs/protocol.md", import.meta.url));
  for (const vector of [...V1_VECTORS, ...V2_VECTORS]) {
    assert.ok(
      docs.includes(escaped(vector.wire)),
      `docs/protocol.md lacks ${vector.name}: ${escaped(vector.wire)}`,
    );
  }
});

Deno.test("every split of the streams at every byte boundary decodes the same", async (t) => {
  for (
    const [name, stream, expected] of [
      ["v1", v1Stream(), V1_VECTORS],
      ["v2", v2Stream(), V2_VECTORS],
    ] as const
  ) {
    await t.step(`${name}: one cut anywhere`, () => {
      for (let cut = 0; cut <= stream.length; cut++) {
        assert.deepEqual(decodeAll(stream, [cut]), expected.map((v) => v.decoded), `cut at ${cut}`);
      }
    });
    await t.step(`${name}: one byte at a time`, () => {
      const cuts = Array.from({ length: stream.length }, (_, i) => i);
      assert.deepEqual(decodeAll(stream, cuts), expected.map((v) => v.decoded));
    });
  }
});

Deno.test("v1 headers are checked field by field", async (t) => {
  const cases: [string, string, string, string][] = [
    ["three fields", "kitchen|4|16000\n", "header_fields", "header"],
    ["five fields", "kitchen|4|16000|r|x\n", "header_fields", "header"],
    ["empty device", "|4|16000|r\n", "bad_id", "device"],
    ["device with a slash", "kit/chen|4|16000|r\n", "bad_id", "device"],
    ["device with a wildcard", "kit+chen|4|16000|r\n", "bad_id", "device"],
    ["device with NUL", "kit\0chen|4|16000|r\n", "bad_id", "device"],
    ["negative length", "kitchen|-4|16000|r\n", "bad_number", "audio_length"],
    ["length with junk", "kitchen|4abc|16000|r\n", "bad_number", "audio_length"],
    ["odd length", "kitchen|3|16000|r\n", "odd_pcm_length", "audio_length"],
    ["31 s at 16 kHz", `kitchen|${31 * 16000 * 2}|16000|r\n`, "payload_too_large", "audio_length"],
    ["absurd length", "kitchen|9999999999|16000|r\n", "payload_too_large", "audio_length"],
    ["rate 44100", "kitchen|4|44100|r\n", "bad_sample_rate", "sample_rate"],
    ["rate text", "kitchen|4|fast|r\n", "bad_number", "sample_rate"],
    ["empty request", "kitchen|4|16000|\n", "bad_id", "request_id"],
    ["long request", `kitchen|4|16000|${"r".repeat(65)}\n`, "bad_id", "request_id"],
  ];
  for (const [name, header, code, fieldName] of cases) {
    await t.step(name, () => {
      const error = expectFrameError(() => new FrameDecoder().push(bytes(header)), code, fieldName);
      assert.ok(
        error.message.includes(fieldName) || error.message.includes("fields"),
        error.message,
      );
    });
  }
  await t.step("30 s at 48 kHz is the largest frame accepted", () => {
    const max = maxPcmBytes(48000);
    assert.equal(max, 2_880_000);
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(bytes(`kitchen|${max}|48000|r\n`)), []);
    assert.equal(decoder.bufferedBytes, 0);
    const frames = decoder.push(new Uint8Array(max));
    assert.equal(frames.length, 1);
    assert.equal(frames[0].version === 1 && frames[0].frame.pcm.length, max);
  });
  await t.step("a header without a newline is refused past the limit", () => {
    const decoder = new FrameDecoder();
    decoder.push(new Uint8Array(1000).fill(0x61));
    expectFrameError(
      () => decoder.push(new Uint8Array(100).fill(0x61)),
      "header_too_long",
      "header",
    );
  });
  await t.step("after an error every push fails", () => {
    const decoder = new FrameDecoder();
    expectFrameError(() => decoder.push(bytes("a|b\n")), "header_fields", "header");
    expectFrameError(() => decoder.push(V1_VECTORS[0].wire), "decoder_failed", "stream");
  });
  await t.step("encodeV1 refuses what the decoder refuses", () => {
    const frame: V1Frame = { device: "a/b", rate: 16000, request: "r", pcm: PCM_4 };
    expectFrameError(() => encodeV1(frame), "bad_id", "device");
    expectFrameError(
      () => encodeV1({ ...frame, device: "a", pcm: new Uint8Array(3) }),
      "odd_pcm_length",
      "audio_length",
    );
  });
});

Deno.test("v2 messages are checked field by field", async (t) => {
  const hello = V2_VECTORS[0].wire;
  const cases: [string, string, string, string][] = [
    ["not JSON", "{nope\n", "bad_json", "header"],
    ["JSON array", "[1]\n", "bad_json", "header"],
    ["unknown type", '{"type":"dance","ts":1}\n', "bad_type", "type"],
    [
      "audio without rate",
      '{"type":"audio","turn":"t","seq":0,"ts":1,"length":2}\n',
      "bad_sample_rate",
      "rate",
    ],
    [
      "audio odd length",
      '{"type":"audio","turn":"t","seq":0,"rate":16000,"ts":1,"length":3}\n',
      "odd_pcm_length",
      "length",
    ],
    [
      "audio too long",
      '{"type":"audio","turn":"t","seq":0,"rate":8000,"ts":1,"length":480002}\n',
      "payload_too_large",
      "length",
    ],
    [
      "audio bad turn",
      '{"type":"audio","turn":"a#","seq":0,"rate":16000,"ts":1,"length":2}\n',
      "bad_id",
      "turn",
    ],
    [
      "audio negative seq",
      '{"type":"audio","turn":"t","seq":-1,"rate":16000,"ts":1,"length":2}\n',
      "bad_field",
      "seq",
    ],
    [
      "text too long",
      '{"type":"text","turn":"t","kind":"reply","ts":1,"length":99999}\n',
      "payload_too_large",
      "length",
    ],
    [
      "text bad kind",
      '{"type":"text","turn":"t","kind":"poem","ts":1,"length":0}\n',
      "bad_field",
      "kind",
    ],
    ["length on a ping", '{"type":"ping","id":1,"ts":1,"length":5}\n', "bad_field", "length"],
    ["missing ts", '{"type":"end","turn":"t"}\n', "bad_field", "ts"],
    ["pause without turn", '{"type":"pause","ts":1}\n', "bad_id", "turn"],
    ["length on a pause", '{"type":"pause","turn":"t","ts":1,"length":2}\n', "bad_field", "length"],
    ["cancel without played_ms", '{"type":"cancel","turn":"t","ts":1}\n', "bad_field", "played_ms"],
    [
      "stages not numbers",
      '{"type":"end","turn":"t","ts":1,"stages":{"stt_ms":"slow"}}\n',
      "bad_field",
      "stages",
    ],
    ["error without code", '{"type":"error","message":"x","ts":1}\n', "bad_field", "code"],
    [
      "eot of another completion",
      '{"type":"eot","turn":"t","completion":"maybe","silence_ms":300,"ts":1}\n',
      "bad_field",
      "completion",
    ],
    [
      "eot silence below one frame",
      '{"type":"eot","turn":"t","completion":"complete","silence_ms":10,"ts":1}\n',
      "bad_field",
      "silence_ms",
    ],
    [
      "eot silence past 5 s",
      '{"type":"eot","turn":"t","completion":"incomplete","silence_ms":5001,"ts":1}\n',
      "bad_field",
      "silence_ms",
    ],
    [
      "eot fractional silence",
      '{"type":"eot","turn":"t","completion":"unknown","silence_ms":300.5,"ts":1}\n',
      "bad_field",
      "silence_ms",
    ],
    [
      "start continuing itself",
      '{"type":"start","turn":"t2","device":"k","rate":16000,"continues":"t2","ts":1}\n',
      "bad_field",
      "continues",
    ],
    [
      "start continuing a bad id",
      '{"type":"start","turn":"t2","device":"k","rate":16000,"continues":"a#","ts":1}\n',
      "bad_id",
      "continues",
    ],
    [
      "length on a commit",
      '{"type":"commit","turn":"t","ts":1,"length":0}\n',
      "bad_field",
      "length",
    ],
    ["commit without turn", '{"type":"commit","ts":1}\n', "bad_id", "turn"],
  ];
  for (const [name, line, code, fieldName] of cases) {
    await t.step(name, () => {
      const decoder = new FrameDecoder();
      decoder.push(hello);
      expectFrameError(() => decoder.push(bytes(line)), code, fieldName);
    });
  }
  await t.step("the first message must be a hello", () => {
    expectFrameError(() => new FrameDecoder().push(V2_VECTORS[3].wire), "not_hello", "type");
  });
  await t.step("hello of another version is refused", () => {
    const line = '{"type":"hello","version":3,"role":"gateway","capabilities":[],"ts":1}\n';
    expectFrameError(() => new FrameDecoder().push(bytes(line)), "bad_version", "version");
  });
  await t.step("text payloads must be UTF-8", () => {
    const decoder = new FrameDecoder();
    decoder.push(hello);
    const line = bytes('{"type":"text","turn":"t","kind":"reply","ts":1,"length":2}\n\xc3\x28');
    expectFrameError(() => decoder.push(line), "bad_utf8", "text");
  });
  await t.step("a client decoder that expects v2 refuses a v1 frame", () => {
    expectFrameError(
      () => new FrameDecoder({ version: 2 }).push(V1_VECTORS[0].wire),
      "bad_json",
      "header",
    );
  });
  await t.step("unicode reply text round-trips", () => {
    const message: V2Message = {
      type: "text",
      turn: "t",
      kind: "reply",
      ts: 5,
      text: "Il est 7 h — d'accord ✓",
    };
    const [, decoded] = new FrameDecoder().push(concat([hello, encodeV2(message)]));
    assert.deepEqual(decoded, { version: 2, message });
  });
});

/** Small deterministic PRNG (mulberry32) so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(source: Uint8Array, random: () => number): Uint8Array {
  const data = Array.from(source);
  const edits = 1 + Math.floor(random() * 4);
  const interesting = [
    0x0a,
    0x7c,
    0x7b,
    0x7d,
    0x22,
    0x2f,
    0x2b,
    0x23,
    0x00,
    0x30,
    0x39,
    0x2d,
    0xff,
    0xc3,
  ];
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (data.length + 1));
    const pick = random();
    const byte = random() < 0.5
      ? interesting[Math.floor(random() * interesting.length)]
      : Math.floor(random() * 256);
    if (pick < 0.35) data[at] = byte;
    else if (pick < 0.6) data.splice(at, 0, byte);
    else if (pick < 0.8) data.splice(at, 1);
    else if (pick < 0.9) data.splice(at, 0, ..."9999999".split("").map((c) => c.charCodeAt(0)));
    else data.length = at;
  }
  return Uint8Array.from(data);
}

Deno.test("10,000 garbage and mutated inputs give only typed errors and bounded memory", () => {
  const random = prng(0x5eed);
  const seeds = [
    v1Stream(),
    v2Stream(),
    ...V1_VECTORS.map((v) => v.wire),
    ...V2_VECTORS.map((v) => v.wire),
  ];
  const limit = DEFAULT_FRAME_LIMITS.maxHeaderBytes + maxPcmBytes(48000);
  const heapBefore = Deno.memoryUsage().heapUsed;
  let errors = 0;
  let frames = 0;
  for (let i = 0; i < 10_000; i++) {
    const input = i % 5 === 0
      ? Uint8Array.from({ length: Math.floor(random() * 2048) }, () => Math.floor(random() * 256))
      : mutate(seeds[Math.floor(random() * seeds.length)], random);
    const decoder = new FrameDecoder();
    let at = 0;
    try {
      while (at < input.length) {
        const step = 1 + Math.floor(random() * 64);
        frames += decoder.push(input.subarray(at, at + step)).length;
        at += step;
        assert.ok(decoder.bufferedBytes <= limit, `buffered ${decoder.bufferedBytes} > ${limit}`);
      }
    } catch (error) {
      if (!(error instanceof FrameError)) {
        throw new Error(`input #${i} raised ${error}`, { cause: error });
      }
      assert.ok(error.message.length > 0);
      errors++;
    }
  }
  const heapGrowth = Deno.memoryUsage().heapUsed - heapBefore;
  assert.ok(errors > 5_000, `only ${errors} inputs were refused`);
  assert.ok(frames > 1_000, `only ${frames} frames survived mutation`);
  assert.ok(heapGrowth < 64 * 1024 * 1024, `heap grew by ${heapGrowth} bytes`);
});

Deno.test("the authentication vectors' proofs are HMAC-SHA256 as docs/protocol.md says", () => {
  const secret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  const ng = "a".repeat(64);
  const ns = "b".repeat(64);
  const [, server, auth] = V2_VECTORS.slice(-3).map((v) => v.decoded);
  assert.ok(server.version === 2 && server.message.type === "hello");
  assert.ok(auth.version === 2 && auth.message.type === "auth");
  assert.equal(server.message.proof, serverProof(secret, ng, ns));
  assert.equal(auth.message.proof, gatewayProof(secret, ns, ng));
  // Reflection fails: the server's proof is not the gateway's.
  assert.notEqual(server.message.proof, auth.message.proof);
});

Deno.test("nonce and proof must be 64 lowercase hex digits", () => {
  const decoder = new FrameDecoder();
  const line =
    '{"type":"hello","version":2,"role":"gateway","capabilities":[],"ts":1,"nonce":"XYZ"}\n';
  expectFrameError(() => decoder.push(bytes(line)), "bad_field", "nonce");
  const withHello = new FrameDecoder();
  withHello.push(V2_VECTORS[0].wire);
  expectFrameError(
    () => withHello.push(bytes('{"type":"auth","proof":"00","ts":1}\n')),
    "bad_field",
    "proof",
  );
});

// ---------------------------------------------------------------------------------------------
// Camera frames (issue 13, docs/video.md): `image`, `frame_request`, and `error` with `request`.

const JPEG_4 = bytes("\xff\xd8\xff\xd9"); // SOI, EOI: the codec does not look inside the JPEG

const IMAGE_VECTORS: Vector[] = [
  {
    name: "v2 image (motion)",
    wire: bytes(
      '{"type":"image","device":"hallway","reason":"motion","capture_ts":1700000005000,"width":640,"height":480,"box":[400,220,200,200],"changed":0.118,"format":"jpeg","ts":1700000005012,"length":4}\n\xff\xd8\xff\xd9',
    ),
    decoded: {
      version: 2,
      message: {
        type: "image",
        device: "hallway",
        reason: "motion",
        capture_ts: 1700000005000,
        width: 640,
        height: 480,
        box: [400, 220, 200, 200],
        changed: 0.118,
        format: "jpeg",
        ts: 1700000005012,
        jpeg: JPEG_4,
      },
    },
  },
  {
    name: "v2 frame_request",
    wire: bytes(
      '{"type":"frame_request","request":"g1","device":"hallway","max_age_ms":1000,"ts":1700000006000}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "frame_request",
        request: "g1",
        device: "hallway",
        max_age_ms: 1000,
        ts: 1700000006000,
      },
    },
  },
  {
    name: "v2 image (grab answering g1)",
    wire: bytes(
      '{"type":"image","device":"hallway","reason":"grab","request":"g1","capture_ts":1700000005900,"width":640,"height":480,"format":"jpeg","ts":1700000006010,"length":4}\n\xff\xd8\xff\xd9',
    ),
    decoded: {
      version: 2,
      message: {
        type: "image",
        device: "hallway",
        reason: "grab",
        request: "g1",
        capture_ts: 1700000005900,
        width: 640,
        height: 480,
        format: "jpeg",
        ts: 1700000006010,
        jpeg: JPEG_4,
      },
    },
  },
  {
    name: "v2 error answering frame request g1",
    wire: bytes(
      '{"type":"error","request":"g1","code":"no_video","message":"device hallway has no video track","ts":1700000006001}\n',
    ),
    decoded: {
      version: 2,
      message: {
        type: "error",
        request: "g1",
        code: "no_video",
        message: "device hallway has no video track",
        ts: 1700000006001,
      },
    },
  },
];

Deno.test("camera frame vectors encode exactly, decode back at any split, and are documented", async (t) => {
  const hello = V2_VECTORS[0];
  assert.equal(hello.decoded.version === 2 && hello.decoded.message.type, "hello");
  const stream = concat([hello.wire, ...IMAGE_VECTORS.map((v) => v.wire)]);
  const expected = [hello.decoded, ...IMAGE_VECTORS.map((v) => v.decoded)];
  const docs = await Deno.readTextFile(new URL("../docs/protocol.md", import.meta.url));
  for (const vector of IMAGE_VECTORS) {
    await t.step(vector.name, () => {
      assert.equal(vector.decoded.version, 2);
      if (vector.decoded.version !== 2) return;
      assert.deepEqual(encodeV2(vector.decoded.message), vector.wire);
      assert.ok(docs.includes(escaped(vector.wire)), `docs/protocol.md lacks ${vector.name}`);
    });
  }
  await t.step("every cut", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(decodeAll(stream, [cut]), expected);
    }
  });
});

Deno.test("image headers are checked before the JPEG is read", async (t) => {
  const head = (fields: Record<string, unknown>) =>
    new TextEncoder().encode(
      JSON.stringify({
        type: "image",
        device: "hallway",
        reason: "motion",
        capture_ts: 1,
        width: 640,
        height: 480,
        format: "jpeg",
        ts: 1,
        length: 4,
        ...fields,
      }) + "\n",
    );
  const cases: [string, Record<string, unknown>, string, string][] = [
    ["a payload over 512 KiB", { length: 512 * 1024 + 1 }, "payload_too_large", "length"],
    ["an empty payload", { length: 0 }, "payload_too_large", "length"],
    ["a 5000-pixel-wide frame", { width: 5000 }, "bad_field", "width"],
    ["a box outside the frame", { box: [600, 0, 100, 100] }, "bad_field", "box"],
    ["a box of three numbers", { box: [1, 2, 3] }, "bad_field", "box"],
    ["changed above 1", { changed: 1.5 }, "bad_field", "changed"],
    ["a png", { format: "png" }, "bad_field", "format"],
    ["an unknown reason", { reason: "fun" }, "bad_field", "reason"],
    ["a device id with a slash", { device: "a/b" }, "bad_id", "device"],
  ];
  const afterHello = () => {
    const decoder = new FrameDecoder();
    decoder.push(V2_VECTORS[0].wire);
    return decoder;
  };
  for (const [name, fields, code, fieldName] of cases) {
    await t.step(name, () => {
      expectFrameError(() => afterHello().push(head(fields)), code, fieldName);
    });
  }
  await t.step("a frame_request without a device", () => {
    const line = '{"type":"frame_request","request":"g1","max_age_ms":1,"ts":1}\n';
    expectFrameError(
      () => afterHello().push(new TextEncoder().encode(line)),
      "bad_id",
      "device",
    );
  });
});
