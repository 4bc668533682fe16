/**
 * The import rules of src/ (ARCHITECTURE.md, README "Architecture"), checked from the sources:
 * - mechanics (fs/, formats/) and the domain (workspace/, files/, auth/, approvals, audit,
 *   workspaces, engine) never import http/ or routes/;
 * - http/ never imports the domain or routes/;
 * - a route file imports no other route file but routes/shared.ts (routes/index.ts is the one list);
 * - path containment is judged only in fs/paths.ts (no `startsWith("..")` elsewhere);
 * - limits live in limits.ts (no top-level MAX_/…_MS/…_BYTES number constants elsewhere).
 * Run: `npm run lint:layers` (exit 1 with one line per violation).
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

type Layer = "mechanics" | "domain" | "http" | "routes" | "neutral";

function layerOf(rel: string): Layer {
  const top = rel.split("/")[0]!;
  if (top === "fs" || top === "formats") return "mechanics";
  if (top === "http") return "http";
  if (top === "routes") return "routes";
  if (["workspace", "files", "auth", "hub", "scheduler", "router-admin", "runtime", "agentlab"].includes(top)) return "domain";
  if (["approvals.ts", "audit.ts", "workspaces.ts", "engine.ts", "runtime.ts"].includes(top)) return "domain";
  return "neutral"; // errors, limits, types, event-log, context, config, server, cli, log …
}

const IMPORT_RE = /^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm;
const LIMIT_NAME_RE = /^(?:export )?const ([A-Z0-9_]*(?:MAX|MIN|LIMIT|TTL)[A-Z0-9_]*|[A-Z0-9_]+_(?:MS|BYTES|CHUNK|SECONDS)) = [0-9]/m;

async function sources(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p, base)));
    else if (e.name.endsWith(".ts")) out.push(path.relative(base, p).split(path.sep).join("/"));
  }
  return out;
}

/** Violations of the rules in the tree at `srcDir`, one human line each (empty when clean). */
export async function checkLayers(srcDir: string): Promise<string[]> {
  const problems: string[] = [];
  for (const rel of await sources(srcDir)) {
    const text = await readFile(path.join(srcDir, rel), "utf8");
    const from = layerOf(rel);
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1]!;
      if (!spec.startsWith(".")) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec));
      const to = layerOf(target);
      const bad =
        ((from === "mechanics" || from === "domain") && (to === "http" || to === "routes")) ||
        (from === "mechanics" && to === "domain") ||
        (from === "http" && (to === "domain" || to === "routes")) ||
        (from === "routes" && to === "routes" && rel !== "routes/index.ts" && target !== "routes/shared.ts");
      if (bad) problems.push(`${rel}: imports ${target} (${from} must not import ${to})`);
    }
    if (rel !== "fs/paths.ts" && /startsWith\(\s*["']\.\.["']/.test(text)) problems.push(`${rel}: containment check outside fs/paths.ts (startsWith(".."))`);
    const limit = rel === "limits.ts" ? null : LIMIT_NAME_RE.exec(text);
    if (limit) problems.push(`${rel}: limit ${limit[1]} belongs in limits.ts`);
  }
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = fileURLToPath(new URL("../../src/", import.meta.url));
  const problems = await checkLayers(src);
  for (const p of problems) console.error(p);
  console.log(problems.length === 0 ? "layers: ok" : `layers: ${problems.length} violation(s)`);
  process.exit(problems.length === 0 ? 0 : 1);
}
