/**
 * Media code that the gateway and the device both use (neither process is imported here):
 *
 * - `frame_filler.ts`: cuts samples arriving in pieces of any size into fixed-size frames.
 */
export * from "./frame_filler.ts";
