/**
 * Which gateway serves which device when several gateways share one broker (issue 14,
 * docs/scaling.md "More than one gateway"). Pure bookkeeping, no MQTT: gateway_membership.ts
 * feeds it the other gateways' presences.
 *
 * - **Members**: the live gateways, each with the devices it claims (the devices whose session
 *   it holds or is about to offer). A member not heard of for {@link LEASE_MS} is dropped, so a
 *   gateway that vanished without its last will (a broker restart) frees its devices anyway.
 * - **Owner of a device**: among the live gateways that claim it, the rendezvous-hash winner (a
 *   device stays with its gateway while that one is healthy; two claims after a race resolve to
 *   one); if none claims it, the rendezvous-hash winner over all live gateways, so a device whose
 *   gateway died goes to one survivor that every survivor agrees on, and the devices of a dead
 *   gateway spread evenly over the rest.
 *
 * Rendezvous (highest random weight) hashing: Thaler & Ravishankar, "Using name-based mappings
 * to increase hit rates" (1998); the weight is FNV-1a of `gateway \n device`.
 *
 * @example
 * ```ts
 * const assignment = new DeviceAssignment("g1", (device) => sessions.has(device));
 * assignment.memberUp("g2", ["kitchen"]);
 * assignment.owns("kitchen"); // false: g2 holds it
 * ```
 */

/** A member's presence counts this long after it was last heard (ms): three heartbeats. */
export const LEASE_MS = 30_000;

/** FNV-1a 32-bit offset basis and prime (the published constants of the hash). */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Rendezvous weight of `gateway` for `device`: FNV-1a over both, a 32-bit unsigned int. */
export function rendezvousWeight(gateway: string, device: string): number {
  let hash = FNV_OFFSET;
  const text = `${gateway}\n${device}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, FNV_PRIME);
  }
  // A final avalanche (murmur3's fmix32), so ids differing in one letter spread well.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The gateway of `gateways` with the highest weight for `device` (ties: the smaller id). */
export function rendezvousWinner(gateways: Iterable<string>, device: string): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const gateway of gateways) {
    const weight = rendezvousWeight(gateway, device);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && gateway < best)) {
      best = gateway;
      bestWeight = weight;
    }
  }
  return best;
}

interface Member {
  devices: Set<string>;
  /** performance.now() when last heard. */
  heardAt: number;
}

/** See the module doc. */
export class DeviceAssignment {
  /** This gateway's id. */
  readonly self: string;
  #serving: (device: string) => boolean;
  #members = new Map<string, Member>();
  #leaseMs: number;

  /** `serving(device)`: whether this gateway claims `device` now (holds or offers a session). */
  constructor(self: string, serving: (device: string) => boolean, leaseMs = LEASE_MS) {
    this.self = self;
    this.#serving = serving;
    this.#leaseMs = leaseMs;
  }

  /** The other live gateways' ids. */
  get peers(): string[] {
    return [...this.#members.keys()];
  }

  /** Gateway `gateway` is online claiming `devices` (replaces what it claimed before). */
  memberUp(gateway: string, devices: readonly string[], now = performance.now()): void {
    if (gateway === this.self) return;
    this.#members.set(gateway, { devices: new Set(devices), heardAt: now });
  }

  /** Gateway `gateway` went offline; returns whether it was a member. */
  memberDown(gateway: string): boolean {
    return this.#members.delete(gateway);
  }

  /** Drops members not heard of for the lease; returns their ids. */
  expire(now = performance.now()): string[] {
    const gone: string[] = [];
    for (const [gateway, member] of this.#members) {
      if (now - member.heardAt > this.#leaseMs) gone.push(gateway);
    }
    for (const gateway of gone) this.#members.delete(gateway);
    return gone;
  }

  /** The gateway that should serve `device`; see the module doc. */
  owner(device: string): string {
    const claimants = [...this.#members]
      .filter(([, member]) => member.devices.has(device))
      .map(([gateway]) => gateway);
    if (this.#serving(device)) claimants.push(this.self);
    if (claimants.length > 0) return rendezvousWinner(claimants, device)!;
    return rendezvousWinner([this.self, ...this.#members.keys()], device)!;
  }

  /** Whether this gateway should serve `device`. */
  owns(device: string): boolean {
    return this.owner(device) === this.self;
  }
}
