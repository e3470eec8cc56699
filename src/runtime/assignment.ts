/**
 * Which replicas run an Integration's pipeline: rendezvous (highest-random-weight) hashing of the
 * Integration's key over the live members. Pure: the same key, members and replica count give
 * the same answer on every replica, with no coordination beyond agreeing on the member list.
 *
 * Guarantees:
 * - Every key gets at least one member while any member is alive; `all` gets every member.
 * - Stable: a member joining takes over only keys it now ranks highest for (about 1/n of them),
 *   and a member leaving hands over only the keys it ran — no key moves between two members that
 *   both stayed. Modulo hashing would move nearly every key on every change.
 * - Balanced: each member runs about `keys × replicas / members` keys.
 * Caveats: replicas whose member lists differ (a heartbeat not seen yet) may briefly disagree; a
 * key then runs on one replica too many or too few for a heartbeat period. Both are safe: all
 * replicas of an Integration bind the same durable consumer, so nothing is processed twice, and
 * what nobody pulls waits in the stream.
 */

/** How many replicas run an Integration: a count, or every live member. */
export type PipelineReplicas = number | 'all';

/**
 * 53-bit string hash (cyrb53, public domain): fast, well mixed, no allocation. Written here
 * because rendezvous hashing needs nothing more, and a cryptographic digest per (key, member)
 * pair would cost 9,000 digests per pass with 3,000 Integrations on 3 replicas.
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** How many members run a key: `replicas` capped at the member count, at least 1; `all`: every one. */
export function runnerCount(replicas: PipelineReplicas, memberCount: number): number {
  const members = Math.max(1, Math.floor(memberCount));
  if (replicas === 'all') return members;
  return Math.min(members, Math.max(1, Math.floor(replicas)));
}

/**
 * The members that run `key`, highest weight first. `members` need not be sorted (the answer
 * does not depend on their order); an empty list gives an empty answer.
 */
export function assignReplicas(key: string, members: readonly string[], replicas: PipelineReplicas): string[] {
  if (members.length === 0) return [];
  const want = runnerCount(replicas, members.length);
  if (want >= members.length) return [...members].sort();
  const weighted = members.map((member) => ({ member, weight: hash53(`${member}\n${key}`) }));
  // Equal weights are astronomically rare; the name breaks them so every replica agrees.
  weighted.sort((a, b) => b.weight - a.weight || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
  return weighted.slice(0, want).map((w) => w.member);
}
