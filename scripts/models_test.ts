import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { freePort } from "../tests/helpers/ports.ts";
import {
  downloadFile,
  DownloadNotFound,
  DownloadUnavailable,
  ensureVad,
  main,
  type Manifest,
  parseManifest,
  sha256File,
} from "./models.ts";

const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const REAL_MANIFEST_PATH = `${REPO_ROOT}/models/manifest.json`;
const REAL_MANIFEST = parseManifest(
  await Deno.readTextFile(REAL_MANIFEST_PATH),
  REAL_MANIFEST_PATH,
);

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A loopback file server with Range support that records the requests it saw. */
function serveFiles(files: Record<string, Uint8Array<ArrayBuffer>>) {
  const requests: Array<{ path: string; range: string | null }> = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    const range = req.headers.get("range");
    requests.push({ path, range });
    const body = files[path];
    if (body === undefined) return new Response("not found", { status: 404 });
    const match = range?.match(/^bytes=(\d+)-$/);
    if (match) {
      const start = Number(match[1]);
      if (start >= body.length) return new Response(null, { status: 416 });
      return new Response(body.slice(start), {
        status: 206,
        headers: { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` },
      });
    }
    return new Response(body);
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, close: () => server.shutdown() };
}

function bytes(n: number, seed = 7): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length: n }, (_, i) => (i * seed + 3) % 251);
}

Deno.test("ensureVad", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "naila-models-vad-" });
  try {
    const entry = REAL_MANIFEST.vad.silero_vad_v5;
    const options = { root: REPO_ROOT, modelsDir: dir };
    await t.step("manifest hash matches the npm package's bytes", async () => {
      assert.equal(await sha256File(`${REPO_ROOT}/${entry.source}`), entry.sha256);
    });
    await t.step("copies, then skips when present with the right hash", async () => {
      assert.equal(await ensureVad(entry, options), "copied");
      assert.equal(await sha256File(`${dir}/${entry.target}`), entry.sha256);
      assert.equal(await ensureVad(entry, options), "present");
    });
    await t.step("replaces a corrupt copy", async () => {
      await Deno.writeTextFile(`${dir}/${entry.target}`, "corrupt");
      assert.equal(await ensureVad(entry, options), "copied");
      assert.equal(await sha256File(`${dir}/${entry.target}`), entry.sha256);
    });
    await t.step("refuses a source with the wrong hash", async () => {
      await assert.rejects(
        ensureVad({ ...entry, sha256: "0".repeat(64) }, { root: REPO_ROOT, modelsDir: `${dir}/x` }),
        /has sha256 2623a295.*manifest expects 0000/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadFile", async (t) => {
  const body = bytes(200_000);
  const server = serveFiles({ "/f.bin": body });
  const dir = await Deno.makeTempDir({ prefix: "naila-models-dl-" });
  try {
    await t.step("downloads, reports progress and checks the hash", async () => {
      const progress: number[] = [];
      const hash = await downloadFile(`${server.url}/f.bin`, `${dir}/a.bin`, {
        sha256: sha256(body),
        onProgress: (done, total) => {
          progress.push(done);
          assert.equal(total, body.length);
        },
      });
      assert.equal(hash, sha256(body));
      assert.deepEqual(await Deno.readFile(`${dir}/a.bin`), body);
      assert.equal(progress.at(-1), body.length);
      await assert.rejects(Deno.stat(`${dir}/a.bin.part`), Deno.errors.NotFound);
    });

    await t.step("resumes a .part file with an HTTP Range request", async () => {
      await Deno.writeFile(`${dir}/b.bin.part`, body.slice(0, 123_456));
      server.requests.length = 0;
      await downloadFile(`${server.url}/f.bin`, `${dir}/b.bin`, { sha256: sha256(body) });
      assert.deepEqual(server.requests, [{ path: "/f.bin", range: "bytes=123456-" }]);
      assert.deepEqual(await Deno.readFile(`${dir}/b.bin`), body);
    });

    await t.step("a complete .part (416) is verified and kept", async () => {
      await Deno.writeFile(`${dir}/c.bin.part`, body);
      await downloadFile(`${server.url}/f.bin`, `${dir}/c.bin`, { sha256: sha256(body) });
      assert.deepEqual(await Deno.readFile(`${dir}/c.bin`), body);
    });

    await t.step("a hash mismatch removes the .part and names both hashes", async () => {
      await assert.rejects(
        downloadFile(`${server.url}/f.bin`, `${dir}/d.bin`, { sha256: "f".repeat(64) }),
        new RegExp(`has sha256 ${sha256(body)}, manifest expects f{64}`),
      );
      await assert.rejects(Deno.stat(`${dir}/d.bin.part`), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(`${dir}/d.bin`), Deno.errors.NotFound);
    });

    await t.step("HTTP errors and refused connections are DownloadUnavailable", async () => {
      await assert.rejects(
        downloadFile(`${server.url}/missing`, `${dir}/e.bin`),
        (err: Error) =>
          err instanceof DownloadNotFound && err instanceof DownloadUnavailable &&
          /HTTP 404/.test(err.message),
      );
      const port = await freePort();
      await assert.rejects(
        downloadFile(`http://127.0.0.1:${port}/x`, `${dir}/e.bin`),
        DownloadUnavailable,
      );
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "naila-models-main-" });
  const files: Record<string, Uint8Array<ArrayBuffer>> = {
    "/org/whisper-test/resolve/main/onnx/encoder_model.onnx": bytes(50_000, 11),
    "/org/whisper-test/resolve/main/config.json": new TextEncoder().encode('{"a":1}'),
    "/org/voices/resolve/v1/en/en_US/x/medium/en_US-x-medium.onnx": bytes(20_000, 13),
    "/org/voices/resolve/v1/en/en_US/x/medium/en_US-x-medium.onnx.json": new TextEncoder()
      .encode('{"audio":{"sample_rate":22050}}'),
  };
  const server = serveFiles(files);
  const vad = REAL_MANIFEST.vad.silero_vad_v5;
  const manifest: Manifest = {
    vad: { silero_vad_v5: { ...vad, source: "src/silero_vad_v5.onnx" } },
    whisper: {
      "test.en": {
        repo: "org/whisper-test",
        revision: "main",
        dir: "whisper-test.en",
        files: { "onnx/encoder_model.onnx": null, "config.json": null },
      },
    },
    piper: {
      "en_US-x-medium": {
        repo: "org/voices",
        revision: "v1",
        dir: "piper",
        flat: true,
        files: {
          "en/en_US/x/medium/en_US-x-medium.onnx": null,
          "en/en_US/x/medium/en_US-x-medium.onnx.json": null,
        },
      },
    },
  };
  await Deno.mkdir(`${root}/models`);
  await Deno.mkdir(`${root}/src`);
  await Deno.copyFile(`${REPO_ROOT}/${vad.source}`, `${root}/src/silero_vad_v5.onnx`);
  await Deno.writeTextFile(`${root}/models/manifest.json`, JSON.stringify(manifest));
  const lines: string[] = [];
  const run = (args: string[], baseUrl = server.url) =>
    main(args, { root, baseUrl, log: (l) => lines.push(l) });
  try {
    await t.step("--no-whisper copies only the VAD", async () => {
      assert.equal(await run(["--no-whisper"]), 0);
      assert.equal(await sha256File(`${root}/models/silero_vad_v5.onnx`), vad.sha256);
      assert.equal(server.requests.length, 0);
    });

    await t.step("offline: one line, exit 0, gives up at the first file", async () => {
      lines.length = 0;
      const offline = `http://127.0.0.1:${await freePort()}`;
      const code = await run(["--whisper", "test.en"], offline);
      assert.equal(code, 0);
      assert.equal(lines.filter((l) => /Whisper/.test(l)).length, 1);
      assert.match(
        lines.at(-1)!,
        /^models: Whisper test\.en could not be downloaded \(.*\); continuing without it$/,
      );
      // It stopped at the first file on a refused connection, without waiting out a timeout or
      // trying the other files.
      assert.ok(
        lines.at(-1)!.includes(`${offline}/org/whisper-test/resolve/main/onnx/encoder_model.onnx`),
      );
      assert.ok(!lines.at(-1)!.includes("config.json"));
      assert.ok(!/no response within/.test(lines.at(-1)!), lines.at(-1)!);
    });

    await t.step("downloads Whisper files and records their hashes", async () => {
      lines.length = 0;
      assert.equal(await run(["--whisper=test.en", "--record-hashes", "--quiet"]), 0);
      const dir = `${root}/models/whisper-test.en`;
      assert.deepEqual(
        await Deno.readFile(`${dir}/onnx/encoder_model.onnx`),
        files["/org/whisper-test/resolve/main/onnx/encoder_model.onnx"],
      );
      const saved = JSON.parse(await Deno.readTextFile(`${root}/models/manifest.json`)) as Manifest;
      assert.deepEqual(saved.whisper["test.en"].files, {
        "onnx/encoder_model.onnx": sha256(
          files["/org/whisper-test/resolve/main/onnx/encoder_model.onnx"],
        ),
        "config.json": sha256(files["/org/whisper-test/resolve/main/config.json"]),
      });
    });

    await t.step("a second run downloads nothing", async () => {
      const before = server.requests.length;
      assert.equal(await run(["--whisper", "test.en"]), 0);
      assert.equal(server.requests.length, before);
    });

    await t.step(
      "--voice puts a Piper voice's two files side by side in models/piper/",
      async () => {
        lines.length = 0;
        assert.equal(await run(["--no-whisper", "--voice", "en_US-x-medium", "--quiet"]), 0);
        assert.deepEqual(
          (await Array.fromAsync(Deno.readDir(`${root}/models/piper`))).map((e) => e.name).sort(),
          ["en_US-x-medium.onnx", "en_US-x-medium.onnx.json"],
        );
        assert.deepEqual(
          await Deno.readFile(`${root}/models/piper/en_US-x-medium.onnx`),
          files["/org/voices/resolve/v1/en/en_US/x/medium/en_US-x-medium.onnx"],
        );
        const before = server.requests.length;
        assert.equal(await run(["--no-whisper", "--voice=en_US-x-medium"]), 0);
        assert.equal(server.requests.length, before, "a present voice is not downloaded again");
      },
    );

    await t.step("an unknown voice exits 1 before downloading anything", async () => {
      lines.length = 0;
      const before = server.requests.length;
      assert.equal(await run(["--no-whisper", "--voice", "de_DE-y-low"]), 1);
      assert.match(lines.at(-1)!, /Piper voice "de_DE-y-low" is unknown, expected en_US-x-medium/);
      assert.equal(server.requests.length, before);
    });

    await t.step("bad flags exit 1 naming what is allowed", async () => {
      lines.length = 0;
      assert.equal(await run(["--fast"]), 1);
      assert.match(lines[0], /'--fast'.*; expected --whisper tiny\.en\|base\.en/);
      lines.length = 0;
      assert.equal(await run(["--whisper"]), 1);
      assert.match(lines[0], /--whisper.*; expected --whisper tiny\.en\|base\.en/);
      lines.length = 0;
      assert.equal(await run(["tiny.en"]), 1);
      assert.match(lines[0], /'tiny\.en'.*; expected --whisper/);
      assert.equal(await run(["--whisper", "large"]), 1);
      assert.match(lines.at(-1)!, /Whisper "large" is unknown, expected test\.en/);
    });
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("main: optional files a repository lacks are skipped with a note; a missing required file exits 1", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "naila-models-optional-" });
  const repo = "/org/whisper-lean/resolve/main";
  const encoderBytes = bytes(30_000, 17);
  const config = new TextEncoder().encode('{"d_model":384}');
  // The server lacks added_tokens.json and special_tokens_map.json, which the manifest lists
  // (optional) BEFORE config.json, as the real manifest used to.
  const server = serveFiles({
    [`${repo}/onnx/encoder_model.onnx`]: encoderBytes,
    [`${repo}/config.json`]: config,
  });
  const vad = REAL_MANIFEST.vad.silero_vad_v5;
  const entry = {
    repo: "org/whisper-lean",
    revision: "main",
    dir: "whisper-lean.en",
    files: {
      "onnx/encoder_model.onnx": null,
      "added_tokens.json": null,
      "special_tokens_map.json": null,
      "config.json": null,
    },
    optional: ["added_tokens.json", "special_tokens_map.json"],
  };
  const manifest: Manifest = {
    vad: { silero_vad_v5: { ...vad, source: "src/silero_vad_v5.onnx" } },
    whisper: {
      "lean.en": entry,
      "strict.en": { ...entry, dir: "whisper-strict.en", optional: ["special_tokens_map.json"] },
    },
  };
  await Deno.mkdir(`${root}/models`);
  await Deno.mkdir(`${root}/src`);
  await Deno.copyFile(`${REPO_ROOT}/${vad.source}`, `${root}/src/silero_vad_v5.onnx`);
  await Deno.writeTextFile(`${root}/models/manifest.json`, JSON.stringify(manifest));
  const lines: string[] = [];
  const run = (args: string[]) =>
    main(args, { root, baseUrl: server.url, log: (l) => lines.push(l) });
  try {
    await t.step("the download completes without the optional files", async () => {
      assert.equal(await run(["--whisper", "lean.en", "--record-hashes", "--quiet"]), 0);
      const dir = `${root}/models/whisper-lean.en`;
      assert.deepEqual(await Deno.readFile(`${dir}/config.json`), config);
      assert.deepEqual(await Deno.readFile(`${dir}/onnx/encoder_model.onnx`), encoderBytes);
      await assert.rejects(Deno.stat(`${dir}/added_tokens.json`), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(`${dir}/added_tokens.json.part`), Deno.errors.NotFound);
      const notes = lines.filter((l) => /optional/.test(l));
      assert.deepEqual(notes, [
        "models: whisper-lean.en: optional added_tokens.json is not in org/whisper-lean; skipped",
        "models: whisper-lean.en: optional special_tokens_map.json is not in org/whisper-lean; skipped",
      ]);
      // Only the files that arrived get a hash; the skipped ones stay null (not dropped).
      const saved = parseManifest(
        await Deno.readTextFile(`${root}/models/manifest.json`),
        "saved manifest",
      );
      assert.deepEqual(saved.whisper["lean.en"].files, {
        "onnx/encoder_model.onnx": sha256(encoderBytes),
        "added_tokens.json": null,
        "special_tokens_map.json": null,
        "config.json": sha256(config),
      });
    });

    await t.step("a required file the server lacks stops with exit 1, naming it", async () => {
      lines.length = 0;
      assert.equal(await run(["--whisper", "strict.en", "--quiet"]), 1);
      assert.match(
        lines.at(-1)!,
        /^models: org\/whisper-lean lacks the required file added_tokens\.json \(.*HTTP 404/,
      );
    });
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("parseManifest: checks the manifest's shape and names each wrong field", async (t) => {
  const valid: Manifest = JSON.parse(await Deno.readTextFile(REAL_MANIFEST_PATH));
  const broken = (change: (m: Manifest) => void) => {
    const copy = structuredClone(valid);
    change(copy);
    return JSON.stringify(copy);
  };
  await t.step("the real manifest passes", () => {
    assert.equal(
      parseManifest(JSON.stringify(valid), "m.json").whisper["tiny.en"].dir,
      "whisper-tiny.en",
    );
  });
  const cases: Array<[string, string, RegExp]> = [
    ["not JSON", "{", /m\.json is not valid JSON/],
    [
      "no vad section",
      JSON.stringify({ whisper: valid.whisper }),
      /m\.json is not a valid manifest: vad: /,
    ],
    [
      "a bad hash",
      broken((m) => (m.whisper["tiny.en"].files["config.json"] = "abc")),
      /whisper\.tiny\.en\.files\.config\.json: expected 64 lowercase hex digits/,
    ],
    [
      "a path leaving models/",
      broken((m) => (m.whisper["tiny.en"].dir = "../etc")),
      /whisper\.tiny\.en\.dir: expected a relative path without \.\. segments/,
    ],
    [
      "an optional file not in files",
      broken((m) => m.whisper["tiny.en"].optional?.push("extra.json")),
      /whisper\.tiny\.en\.optional: every optional file must also be listed in files/,
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => assert.throws(() => parseManifest(text, "m.json"), message));
  }
});

Deno.test("main: an invalid manifest exits 1 before fetching anything", async () => {
  const root = await Deno.makeTempDir({ prefix: "naila-models-bad-manifest-" });
  try {
    await Deno.mkdir(`${root}/models`);
    await Deno.writeTextFile(`${root}/models/manifest.json`, JSON.stringify({ vad: {} }));
    const lines: string[] = [];
    assert.equal(await main(["--no-whisper"], { root, log: (l) => lines.push(l) }), 1);
    assert.match(lines[0], /manifest\.json is not a valid manifest: whisper: /);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the real manifest's Piper voices each have a model and its config, stored flat", () => {
  const voices = Object.entries(REAL_MANIFEST.piper ?? {});
  assert.ok(voices.length > 0);
  for (const [name, entry] of voices) {
    assert.equal(entry.dir, "piper");
    assert.equal(entry.flat, true);
    assert.deepEqual(
      Object.keys(entry.files).map((path) => path.slice(path.lastIndexOf("/") + 1)).sort(),
      [`${name}.onnx`, `${name}.onnx.json`],
    );
  }
});

Deno.test("the real manifest lists both Whisper sizes with the spec's files", () => {
  for (const size of ["tiny.en", "base.en"]) {
    const entry = REAL_MANIFEST.whisper[size];
    assert.equal(entry.repo, `onnx-community/whisper-${size}`);
    assert.equal(entry.dir, `whisper-${size}`);
    assert.ok("onnx/encoder_model.onnx" in entry.files);
    assert.ok("onnx/decoder_model_merged.onnx" in entry.files);
    assert.equal(Object.keys(entry.files).length, 10);
    // What loadWhisper needs is required; the rest may be missing from a repository.
    const required = Object.keys(entry.files).filter((path) => !entry.optional?.includes(path));
    assert.deepEqual(required, [
      "onnx/encoder_model.onnx",
      "onnx/decoder_model_merged.onnx",
      "tokenizer.json",
      "config.json",
    ]);
    assert.ok(entry.optional?.includes("added_tokens.json"));
    assert.ok(entry.optional?.includes("special_tokens_map.json"));
  }
});
