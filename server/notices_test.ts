import assert from "node:assert/strict";
import { NOTICE_TEXT, Notices } from "./notices.ts";
import type { TextToSpeech } from "./tts/types.ts";
import { EspeakTts } from "./tts/espeak.ts";

Deno.test("notices are synthesized once per kind and rate, at the rate asked for", async () => {
  const said: string[] = [];
  const espeak = new EspeakTts();
  const tts: TextToSpeech = {
    name: "recording espeak",
    synthesize: (text, options) => {
      said.push(`${text}@${options.rate}`);
      return espeak.synthesize(text, options);
    },
  } as TextToSpeech;
  const notices = new Notices(() => Promise.resolve(tts));
  const first = await notices.speech("busy", 16000);
  const again = await notices.speech("busy", 16000);
  const wide = await notices.speech("busy", 48000);
  assert.equal(first, again, "cached");
  assert.deepEqual(said, [`${NOTICE_TEXT.busy}@16000`, `${NOTICE_TEXT.busy}@48000`]);
  // About the same duration at both rates: 3 times the samples at 48 kHz.
  const ratio = wide.length / first.length;
  assert.ok(ratio > 2.5 && ratio < 3.5, `ratio ${ratio}`);
  await notices.close();
});

Deno.test("a failing TTS gives an empty notice, never an error", async () => {
  const notices = new Notices(() => Promise.reject(new Error("no espeak-ng")));
  assert.deepEqual(await notices.speech("wait", 16000), new Uint8Array(0));
  await notices.close();
});
