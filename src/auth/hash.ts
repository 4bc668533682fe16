/** Hashing and constant-time comparison of secrets. */
import * as crypto from "node:crypto";
import { createHash, timingSafeEqual } from "node:crypto";

/** Node ≥ 20.12's one-shot `crypto.hash` (no Hash object per call: every request hashes its token). */
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer | string, encoding: string) => Buffer | string }).hash;

export function sha256(value: Buffer | string): Buffer {
  return oneShot ? (oneShot("sha256", value, "buffer") as Buffer) : createHash("sha256").update(value).digest();
}

export function sha256Hex(value: Buffer | string): string {
  return oneShot ? (oneShot("sha256", value, "hex") as string) : createHash("sha256").update(value).digest("hex");
}

/**
 * Compares two secrets in constant time, given as sha256 digests: hashing first lets inputs of
 * any length (1 byte, 8 KiB) compare without throwing and without leaking the length.
 */
export function digestEquals(presented: Buffer, expected: Buffer): boolean {
  return timingSafeEqual(presented, expected);
}
