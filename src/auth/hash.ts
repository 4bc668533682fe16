/** Hashing and constant-time comparison of secrets. */
import { createHash, timingSafeEqual } from "node:crypto";

export function sha256(value: Buffer | string): Buffer {
  return createHash("sha256").update(value).digest();
}

export function sha256Hex(value: Buffer | string): string {
  return createHash("sha256").update(value).digest("hex");
}

/**
 * Compares two secrets in constant time, given as sha256 digests: hashing first lets inputs of
 * any length (1 byte, 8 KiB) compare without throwing and without leaking the length.
 */
export function digestEquals(presented: Buffer, expected: Buffer): boolean {
  return timingSafeEqual(presented, expected);
}
