/** Token hashing and constant-time comparison. */
import { createHash, timingSafeEqual } from "node:crypto";

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

/**
 * Compares two secrets in constant time. Both sides are hashed first so that inputs of any
 * length (1 byte, 8 KiB) compare without throwing and without leaking the length.
 */
export function secretEquals(presented: string, expected: string): boolean {
  const a = createHash("sha256").update(presented, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}
