/**
 * The one error type of the server. Handlers and domain modules throw ApiError;
 * the server's single catch turns it into `{"code","message","details"?}` JSON.
 * Codes are a closed list so clients (and tests) can rely on them.
 */
export const ERROR_CODES = [
  // generic HTTP
  "not_found",
  "method_not_allowed",
  "invalid_path",
  "invalid_json",
  "invalid_payload",
  "payload_too_large",
  "unsupported_media_type",
  "internal_error",
  "service_unavailable",
  "range_not_satisfiable",
  "rate_limited",
  "misdirected_request",
  // auth
  "unauthorized",
  "forbidden",
  "read_only",
  // approvals
  "write_denied",
  "approval_not_found",
  "too_many_pending_approvals",
  // streams
  "too_many_streams",
  // workspaces
  "workspace_not_found",
  "workspace_unauthorized",
  // tokens
  "invalid_scope",
  "token_not_found",
  // configuration
  "invalid_jsonc",
  "invalid_plugin_spec",
  "plugin_not_found",
  "invalid_skill_name",
  "invalid_skill_content",
  "invalid_description",
  "skill_not_found",
  "invalid_mcp_name",
  "invalid_mcp_config",
  "mcp_not_found",
  "invalid_command_name",
  "invalid_command_template",
  "command_not_found",
  // engine
  "opencode_unconfigured",
  "opencode_reload_failed",
  "opencode_unreachable",
  "opencode_timeout",
  "opencode_request_failed",
  "opencode_router_unconfigured",
  "opencode_router_unreachable",
  "reload_rate_limited",
  // files
  "path_outside_workspace",
  "protected_path",
  "file_too_large",
  "file_required",
  "file_not_found",
  "inbox_disabled",
  "outbox_disabled",
  "invalid_artifact",
  "artifact_not_found",
  "inbox_file_not_found",
  "file_session_not_found",
  "too_many_sessions",
  "conflict",
  "invalid_operation",
  "unsupported_media",
  "not_a_file",
  "not_a_directory",
  "directory_not_empty",
  "insufficient_storage",
  // ui
  "ui_disabled",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Extra response headers (e.g. Allow, WWW-Authenticate). */
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, code: ErrorCode, message: string, details?: unknown, headers?: Record<string, string>) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * Resource exhaustion errors of the OS as API errors (undefined for anything else): they are
 * conditions of the machine, not bugs, so the client gets a retryable 503 / a clear 507, not a 500.
 */
export function resourceError(err: unknown): ApiError | undefined {
  switch ((err as NodeJS.ErrnoException | null | undefined)?.code) {
    case "EMFILE":
    case "ENFILE":
      return new ApiError(503, "service_unavailable", "Server is out of file descriptors; retry", undefined, { "Retry-After": "1" });
    case "ENOSPC":
    case "EDQUOT":
      return new ApiError(507, "insufficient_storage", "Not enough space on the disk");
    default:
      return undefined;
  }
}
