/**
 * The engine policy table: what each OpenCode endpoint reached through `/opencode/*` needs.
 * Routes as data, like ours — the proxy looks a request up here and nowhere else, and
 * docs/api.md ("Engine policy") prints the same table.
 *
 * Classes, from the least to the most guarded:
 * - read        any client; a viewer gets secret-bearing reads (`secretRead`) redacted;
 * - chat        collaborator; sessions, messages, prompts, aborts, reverts, questions — the
 *               conversation itself, forwarded at once (the engine asks its own permissions);
 * - audit       collaborator; applied at once and audited (session delete, instance dispose);
 * - config      collaborator with the host's approval (owner/host: audited) — engine config and
 *               credentials: a plugin or MCP server added here runs code on the host;
 * - exec        collaborator with the host's approval showing the exact command (owner/host:
 *               audited) — shell mode and commands that run a shell;
 * - write       collaborator with approval (owner/host: audited) — workspace writes of the engine
 *               (patch apply, git init, worktrees) and every unknown non-GET endpoint;
 * - owner       owner/host only, never approvable line by line: the terminal (pty) and
 *               answers to the agent's permission prompts.
 */
export type EngineClass = "read" | "chat" | "audit" | "config" | "exec" | "write" | "owner";

interface PolicyRow {
  methods: readonly string[];
  /** Matched against the decoded upstream path ("/session/abc/shell"). */
  path: RegExp;
  cls: EngineClass;
  /** The audit/approval action name. */
  action: string;
}

const ANY_WRITE = ["POST", "PUT", "PATCH", "DELETE"] as const;
const ID = "[^/]+";

const ROWS: PolicyRow[] = [
  // The terminal and permission answers: owner/host only.
  { methods: ANY_WRITE, path: /^\/(api\/)?pty(\/|$)/, cls: "owner", action: "engine.pty" },
  { methods: ["POST"], path: new RegExp(`^/permission/${ID}/reply$`), cls: "owner", action: "engine.permission.reply" },
  { methods: ["POST"], path: new RegExp(`^/session/${ID}/permissions/${ID}$`), cls: "owner", action: "engine.permission.reply" },
  { methods: ANY_WRITE, path: new RegExp(`^/api/session/${ID}/permission(/|$)`), cls: "owner", action: "engine.permission.reply" },
  { methods: ["DELETE"], path: new RegExp(`^/api/permission/saved/${ID}$`), cls: "owner", action: "engine.permission.forget" },
  // Code execution.
  { methods: ["POST"], path: new RegExp(`^/session/${ID}/shell$`), cls: "exec", action: "engine.shell" },
  { methods: ["POST"], path: new RegExp(`^/session/${ID}/command$`), cls: "exec", action: "engine.command" },
  { methods: ["POST"], path: /^\/global\/upgrade$/, cls: "exec", action: "engine.upgrade" },
  // Configuration and credentials.
  { methods: ["PATCH"], path: /^\/(global\/)?config$/, cls: "config", action: "engine.config.update" },
  { methods: ["POST"], path: /^\/mcp$/, cls: "config", action: "engine.mcp.add" },
  { methods: ANY_WRITE, path: new RegExp(`^/mcp/${ID}/(connect|disconnect|auth)(/|$)`), cls: "config", action: "engine.mcp.auth" },
  { methods: ["PUT", "DELETE"], path: new RegExp(`^/auth/${ID}$`), cls: "config", action: "engine.auth.set" },
  { methods: ["POST"], path: new RegExp(`^/provider/${ID}/oauth/(authorize|callback)$`), cls: "config", action: "engine.provider.oauth" },
  { methods: ANY_WRITE, path: /^\/api\/(credential|integration)(\/|$)/, cls: "config", action: "engine.credential" },
  { methods: ["POST"], path: /^\/experimental\/console\/switch$/, cls: "config", action: "engine.console.switch" },
  { methods: ["PATCH"], path: new RegExp(`^/project/${ID}$`), cls: "config", action: "engine.project.update" },
  // Audited at once.
  { methods: ["DELETE"], path: new RegExp(`^/session/${ID}$`), cls: "audit", action: "engine.session.delete" },
  { methods: ["POST"], path: /^\/(instance|global)\/dispose$/, cls: "audit", action: "engine.dispose" },
  // The conversation.
  { methods: ["POST"], path: /^\/session$/, cls: "chat", action: "engine.chat" },
  { methods: ["PATCH"], path: new RegExp(`^/session/${ID}$`), cls: "chat", action: "engine.chat" },
  { methods: ANY_WRITE, path: new RegExp(`^/session/${ID}/(message|prompt_async|abort|revert|unrevert|init|summarize|fork|share)(/|$)`), cls: "chat", action: "engine.chat" },
  { methods: ["POST"], path: new RegExp(`^/question/${ID}/(reply|reject)$`), cls: "chat", action: "engine.chat" },
  { methods: ["POST"], path: /^\/api\/session$/, cls: "chat", action: "engine.chat" },
  { methods: ["POST"], path: new RegExp(`^/api/session/${ID}/(prompt|interrupt|wait|compact|model|agent|revert/(stage|commit|clear)|question/${ID}/(reply|reject))$`), cls: "chat", action: "engine.chat" },
  { methods: ["POST"], path: /^\/tui\//, cls: "chat", action: "engine.chat" },
  { methods: ["POST"], path: /^\/log$/, cls: "chat", action: "engine.chat" },
];

/** GET paths whose answers carry engine secrets (provider keys, MCP headers, credentials): redacted for viewers. */
const SECRET_READS = [/^\/(global\/)?config(\/|$)/, /^\/provider(\/|$)/, /^\/mcp(\/|$)/, /^\/auth(\/|$)/, /^\/api\/(credential|integration)(\/|$)/];
/** GET paths that return a file's bytes: viewers get secret-class files refused. */
const FILE_READS = /^\/file\/content$/;

export interface EnginePolicy {
  cls: EngineClass;
  action: string;
  /** A GET whose answer must be redacted for viewers. */
  secretRead?: boolean;
  /** A GET of file content (checked by content class for viewers). */
  fileRead?: boolean;
}

/** The policy of one request. `path` is the decoded upstream path with a leading slash. */
export function enginePolicy(method: string, path: string): EnginePolicy {
  const p = path.replace(/\/+$/, "") || "/";
  if (method === "GET" || method === "HEAD") {
    return { cls: "read", action: "engine.read", secretRead: SECRET_READS.some((re) => re.test(p)), fileRead: FILE_READS.test(p) };
  }
  const row = ROWS.find((r) => r.methods.includes(method) && r.path.test(p));
  // Unknown non-GET endpoints: the strictest class the host can still decide on.
  return row ? { cls: row.cls, action: row.action } : { cls: "write", action: "engine.request" };
}

/** Keys of an engine config patch that make the engine run programs (plugins, MCP servers, formatters, LSPs). */
const CODE_KEYS = new Set(["plugin", "mcp", "formatter", "lsp", "command", "tools", "agent", "mode"]);

/** The risk flags of a gated engine request, from its class and body. */
export function engineRisk(cls: EngineClass, action: string, body: unknown): string[] | undefined {
  if (cls === "exec" || cls === "write") return ["executes-code"];
  if (cls !== "config" || body === null || typeof body !== "object") return undefined;
  const obj = body as Record<string, unknown>;
  if (action === "engine.config.update" && Object.keys(obj).some((k) => CODE_KEYS.has(k))) return ["executes-code"];
  if (action === "engine.mcp.add") {
    const config = obj.config as Record<string, unknown> | undefined;
    if (config?.type !== "remote") return ["executes-code"];
  }
  return undefined;
}

/** What the host reads in the approval: the command line, the MCP server, or the request line. */
export function engineSummary(action: string, method: string, path: string, body: unknown): string {
  const obj = body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
  const str = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v ?? ""));
  if (action === "engine.shell") return `Run a shell command: ${str(obj.command)}`;
  if (action === "engine.command") return `Run the command /${str(obj.command)} ${typeof obj.arguments === "string" ? obj.arguments : ""}`.trimEnd();
  if (action === "engine.mcp.add") {
    const config = (obj.config ?? {}) as Record<string, unknown>;
    const what = Array.isArray(config.command) ? config.command.map(str).join(" ") : str(config.url);
    return `Add the MCP server ${str(obj.name)}: ${what}`;
  }
  if (action === "engine.config.update") return `Change the engine configuration (${Object.keys(obj).join(", ") || "nothing"})`;
  return `${method} ${path}`;
}
