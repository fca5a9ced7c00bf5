/**
 * The HTTP side of spec 11.7 ("Web/Mobile Upload via Web Service"), inside the gateway's page
 * server: `POST /api/upload?device=web_…&question=…` with the photo as the request body
 * (Content-Type image/jpeg, image/png or image/webp) is published as spec 11.9's upload on
 * `naila/uploads/{session_id}/image`; the AI server's answer on
 * `naila/uploads/{session_id}/response` (docs/media.md) is returned as the JSON response.
 *
 * Who may use it: whoever may open the device page (the LAN, or what nginx lets through), with a
 * browser device id (`web_…`). Limits, checked before anything is buffered: the body's declared
 * and actual size (MAX_MEDIA_BYTES), the content type, the question's length, and how many uploads
 * wait at once.
 */
import { Buffer } from "node:buffer";
import { idProblem } from "../shared/ids.ts";
import { MAX_MEDIA_BYTES, MAX_TEXT_CHARS, parseMediaAnswer } from "../shared/messages.ts";
import type { NailaMqtt } from "../shared/mqtt.ts";
import { topicFilter } from "../shared/topics.ts";

/** How long the server gets to answer: detection is ~0.3 s, OCR ~1 s; 30 s covers a busy queue. */
export const UPLOAD_TIMEOUT_MS = 30_000;
/** Uploads waiting for an answer at once; more get 429 instead of piling up memory. */
export const MAX_PENDING_UPLOADS = 4;

const FORMATS: Record<string, "jpeg" | "png" | "webp"> = {
  "image/jpeg": "jpeg",
  "image/png": "png",
  "image/webp": "webp",
};

/** Options of {@link createUploadHandler}. */
export interface UploadHandlerOptions {
  mqtt: NailaMqtt;
  /** Browser device ids must start with this (the page's rule). */
  idPrefix: string;
  timeoutMs?: number;
  maxBytes?: number;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function refuse(status: number, code: string, message: string): Response {
  return json(status, { ok: false, error: { code, message } });
}

/** Reads at most `maxBytes` of the body; undefined when it is longer. */
async function readBounded(request: Request, maxBytes: number): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  return body;
}

/** The `/api/upload` handler. */
export function createUploadHandler(
  options: UploadHandlerOptions,
): (request: Request, url: URL) => Promise<Response> {
  const { mqtt } = options;
  const timeoutMs = options.timeoutMs ?? UPLOAD_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? MAX_MEDIA_BYTES;
  let pending = 0;
  return async (request, url) => {
    if (request.method !== "POST") {
      return refuse(405, "bad_request", `${request.method} is not allowed, expected POST`);
    }
    const device = url.searchParams.get("device");
    const problem = idProblem(device) ??
      (device!.startsWith(options.idPrefix)
        ? undefined
        : `does not start with ${options.idPrefix}`);
    if (problem) return refuse(400, "bad_request", `device ${JSON.stringify(device)} ${problem}`);
    const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const format = FORMATS[type];
    if (format === undefined) {
      return refuse(
        415,
        "unsupported_format",
        `content type ${JSON.stringify(type)} is not one of ${Object.keys(FORMATS).join(", ")}`,
      );
    }
    const question = url.searchParams.get("question") ?? undefined;
    if (question !== undefined && question.length > MAX_TEXT_CHARS) {
      return refuse(
        400,
        "bad_request",
        `question is ${question.length} characters, at most ${MAX_TEXT_CHARS}`,
      );
    }
    const declared = Number(request.headers.get("content-length") ?? "0");
    const tooLarge = `the photo is over ${maxBytes} bytes`;
    if (declared > maxBytes) return refuse(413, "too_large", tooLarge);
    if (pending >= MAX_PENDING_UPLOADS) {
      return refuse(429, "busy", `${MAX_PENDING_UPLOADS} uploads are waiting; try again`);
    }
    pending++;
    try {
      const image = await readBounded(request, maxBytes);
      if (image === undefined) return refuse(413, "too_large", tooLarge);
      if (image.length === 0) return refuse(400, "bad_request", "the request has no photo");
      const session = `upload_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
      const filter = topicFilter("upload_response", { session });
      let stop = () => {};
      const answer = new Promise<Response>((resolve) => {
        const timer = setTimeout(
          () =>
            resolve(refuse(504, "timeout", `the AI server did not answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const unsubscribe = mqtt.onMessage((topic, payload) => {
          if (topic.kind !== "upload_response" || topic.session !== session) return;
          const parsed = parseMediaAnswer(payload);
          if (!parsed.ok) return;
          clearTimeout(timer);
          resolve(json(parsed.value.ok ? 200 : 422, parsed.value));
        });
        stop = () => {
          clearTimeout(timer);
          unsubscribe();
        };
      });
      try {
        await mqtt.subscribe(filter);
        await mqtt.publish({ kind: "upload_image", session }, {
          session_id: session,
          media_type: "image",
          format,
          ...(question ? { context: question } : {}),
          conversation_id: device!,
          data: Buffer.from(image.buffer, image.byteOffset, image.byteLength).toString("base64"),
        });
        return await answer;
      } catch (error) {
        return refuse(
          503,
          "unavailable",
          `upload not sent to the AI server: ${(error as Error).message}`,
        );
      } finally {
        stop();
        await mqtt.unsubscribe(filter).catch(() => {});
      }
    } finally {
      pending--;
    }
  };
}
