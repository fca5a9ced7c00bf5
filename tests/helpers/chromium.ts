/**
 * Headless Chromium inside a test's network namespace (ENVIRONMENT.md: its only route is the
 * test's link), with fake media devices fed from files: what the browser device-page tests share.
 *
 * @example
 * ```ts
 * const browser = await launchChromiumIn(host, temp, { origin, audio: "q.wav" });
 * ```
 */
import { type Browser, chromium } from "playwright-core";
import type { TestHost } from "./netns.ts";

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Options of {@link launchChromiumIn}. */
export interface ChromiumOptions {
  /** The page's origin over plain HTTP on the test link, treated as secure (a phone uses HTTPS). */
  origin: string;
  /** WAV file the fake microphone plays. */
  audio?: string;
  /** Y4M or MJPEG file the fake camera plays. */
  video?: string;
}

/**
 * Launches Chromium in `host`'s namespace (through a wrapper script written into `temp`) with
 * the media permission granted and fake devices; replies autoplay.
 */
export async function launchChromiumIn(
  host: TestHost,
  temp: string,
  options: ChromiumOptions,
): Promise<Browser> {
  const wrapper = `${temp}/chromium.sh`;
  await Deno.writeTextFile(wrapper, `#!/bin/sh\nexec ${host.exec.join(" ")} ${CHROMIUM} "$@"\n`);
  await Deno.chmod(wrapper, 0o755);
  return await chromium.launch({
    executablePath: wrapper,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      ...(options.audio ? [`--use-file-for-fake-audio-capture=${options.audio}`] : []),
      ...(options.video ? [`--use-file-for-fake-video-capture=${options.video}`] : []),
      "--autoplay-policy=no-user-gesture-required",
      `--unsafely-treat-insecure-origin-as-secure=${options.origin}`,
    ],
  });
}
