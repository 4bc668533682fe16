/**
 * What viewers never receive, decided by what a file is, not only where it is (spec: viewers
 * never see secrets). A file is secret when any of these holds, wherever it lies (read-batch,
 * files/content, inbox and outbox downloads):
 * - its name is a secret-holding convention in any variant: dotenv (`.env`, `.env.local`,
 *   `prod.env`, `.envrc`), the engine's and our config (`opencode.json`, `opencode.jsonc~`,
 *   `openwork.json.bak`, `auth.json`, `mcp-auth.json`), keys and credential stores (`*.pem`,
 *   `*.key`, `id_ed25519`, `.netrc`, `.npmrc`, `.git-credentials`, …);
 * - its bytes look like one: a PEM private key or certificate, an OpenCode config, or a dotenv
 *   line assigning a secret-named variable (`API_KEY=…`). Downloads are sniffed on their first
 *   `viewerSniffBytes`; read-batch and content items (≤ 5 MB) on all of their bytes;
 * - it has more than one hard link: a second name for a protected file (a link named
 *   `notes.txt` to `opencode.jsonc`) cannot be told apart from an innocent one, so viewers get
 *   no file with a link count above one.
 * Viewers may still see such files listed (names and sizes), as the catalog shows them.
 */
import type { BigIntStats } from "node:fs";
import { ApiError } from "../errors.ts";
import type { OpenedFile } from "../fs/anchored.ts";
import { LIMITS } from "../limits.ts";

const SECRET_NAME_RES = [
  /^\.env($|[.~_-])/, /\.env$/, /^\.envrc$/,
  /^opencode\.jsonc?($|[.~_-])/, /^openwork\.json($|[.~_-])/, /^(mcp-)?auth\.json($|[.~_-])/, /^credentials(\.json)?$/,
  /\.(pem|key|p12|pfx|jks|keystore|kdbx|ppk|gpg|asc)$/, /^id_(rsa|dsa|ecdsa|ed25519)/,
  /^\.(netrc|pgpass|npmrc|pypirc|git-credentials|htpasswd)$/,
];

const SECRET_CONTENT_RES = [
  /-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|CERTIFICATE)-----/,
  /"\$schema"\s*:\s*"https?:\/\/opencode\.ai\/config/,
  /^[ \t]*(?:export[ \t]+)?[A-Za-z0-9_.-]*(?:key|token|secret|passw(?:or)?d|pwd|credentials?|auth)[A-Za-z0-9_]*[ \t]*=[ \t]*\S/im,
];

export function secretByName(relPath: string): boolean {
  const base = relPath.slice(relPath.lastIndexOf("/") + 1).toLowerCase();
  return SECRET_NAME_RES.some((re) => re.test(base));
}

export function secretByContent(bytes: Buffer): boolean {
  const text = bytes.toString("latin1");
  return SECRET_CONTENT_RES.some((re) => re.test(text));
}

export function viewerRefused(): ApiError {
  return new ApiError("protected_path", "Viewer tokens cannot read files that hold secrets");
}

/** Before opening: the names (as asked and where it really lands). */
export function checkViewerName(viewer: boolean, ...relPaths: string[]): void {
  if (viewer && relPaths.some(secretByName)) throw viewerRefused();
}

/** After opening: hard links and the bytes (all of them, or the head of a download). */
export function checkViewerBytes(viewer: boolean, stat: BigIntStats, bytes: Buffer): void {
  if (!viewer) return;
  if (stat.nlink > 1n || secretByContent(bytes)) throw viewerRefused();
}

/** A download for a viewer: its name, links and first bytes (closes the file when refused). */
export async function checkViewerDownload(viewer: boolean, file: OpenedFile & { name: string }): Promise<void> {
  if (!viewer) return;
  try {
    checkViewerName(true, file.name);
    const head = Buffer.alloc(Math.min(Number(file.stat.size), LIMITS.viewerSniffBytes));
    const n = head.length === 0 ? 0 : await file.read(head, 0, head.length, 0);
    checkViewerBytes(true, file.stat, head.subarray(0, n));
  } catch (err) {
    await file.close().catch(() => {});
    throw err;
  }
}
