/**
 * The one error type of the server and the registry that fixes each code's HTTP status (as Node's
 * `lib/internal/errors.js` fixes each code's kind): a site says *what* went wrong, never which
 * status to answer, so one code can never come out with two statuses by accident. Domain modules
 * and mechanics throw ApiError; the server's single catch turns it into
 * `{"code","message","details"?}` JSON. Clients and tests match on the code.
 */
const STATUS = {
  // request shape
  invalid_path: 400,
  invalid_json: 400,
  invalid_payload: 400,
  invalid_operation: 400,
  file_required: 400,
  payload_too_large: 413,
  file_too_large: 413,
  unsupported_media: 415,
  not_found: 404,
  method_not_allowed: 405,
  misdirected_request: 421,
  range_not_satisfiable: 416,
  // auth and policy
  unauthorized: 401,
  forbidden: 403,
  read_only: 403,
  path_outside_workspace: 403,
  protected_path: 403,
  write_denied: 403,
  rate_limited: 429,
  too_many_pending_approvals: 429,
  too_many_pending_bytes: 429,
  too_many_streams: 429,
  too_many_sessions: 429,
  reload_rate_limited: 429,
  request_timeout: 408,
  // state
  conflict: 409,
  not_a_file: 409,
  not_a_directory: 409,
  directory_not_empty: 409,
  job_ambiguous: 409,
  // lookups
  approval_not_found: 404,
  workspace_not_found: 404,
  workspace_unauthorized: 403,
  token_not_found: 404,
  file_not_found: 404,
  file_session_not_found: 404,
  inbox_file_not_found: 404,
  artifact_not_found: 404,
  skill_not_found: 404,
  plugin_not_found: 404,
  mcp_not_found: 404,
  command_not_found: 404,
  job_not_found: 404,
  automation_not_found: 404,
  log_not_found: 404,
  hub_skill_not_found: 404,
  inbox_disabled: 404,
  outbox_disabled: 404,
  hub_disabled: 404,
  ui_disabled: 404,
  // validation of domain values
  invalid_scope: 400,
  invalid_artifact: 400,
  invalid_plugin_spec: 400,
  invalid_skill_name: 400,
  invalid_skill_content: 400,
  invalid_description: 422,
  invalid_jsonc: 422,
  invalid_mcp_name: 400,
  invalid_mcp_config: 400,
  invalid_command_name: 400,
  invalid_command_template: 400,
  invalid_hub_repo: 400,
  job_name_required: 400,
  scheduler_unsupported: 400,
  invalid_channel: 400,
  identity_mismatch: 400,
  invalid_identity: 400,
  token_required: 400,
  pairing_code_required: 400,
  invalid_pairing_code: 400,
  peer_required: 400,
  text_required: 400,
  // outside services
  opencode_unconfigured: 400,
  opencode_unreachable: 502,
  opencode_timeout: 504,
  opencode_request_failed: 502,
  opencode_reload_failed: 502,
  opencode_failed: 502,
  opencode_router_unconfigured: 404,
  opencode_router_unreachable: 503,
  opencode_router_request_failed: 502,
  opencode_router_config_read_failed: 500,
  hub_fetch_failed: 502,
  hub_unreachable: 502,
  hub_install_failed: 502,
  hub_skill_too_large: 413,
  runtime_upgrade_unavailable: 501,
  runtime_upgrade_failed: 502,
  runtime_control_unreachable: 502,
  // the machine
  internal_error: 500,
  service_unavailable: 503,
  insufficient_storage: 507,
  catalog_too_large: 507,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof STATUS;

/**
 * The only codes whose status is not fixed, each for a documented reason:
 * - invalid_json: 400 for a request body, 422 for a stored file (openwork.json, the router's
 *   config, automations) — both spelled so by the spec;
 * - runtime_upgrade_failed: the orchestrator's own non-2xx status is passed through.
 */
const VARIABLE: Partial<Record<ErrorCode, (status: number) => boolean>> = {
  invalid_json: (s) => s === 400 || s === 422,
  runtime_upgrade_failed: (s) => s >= 400 && s <= 599,
};

/** Headers every answer with this code carries. */
const CODE_HEADERS: Partial<Record<ErrorCode, Record<string, string>>> = {
  unauthorized: { "WWW-Authenticate": "Bearer" },
};

export interface ApiErrorOptions {
  /** Only for the codes in VARIABLE; anything else is a programming error. */
  status?: number;
  /** Extra response headers (Allow, Retry-After). */
  headers?: Record<string, string>;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, details?: unknown, options: ApiErrorOptions = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.details = details;
    if (options.status !== undefined && options.status !== STATUS[code] && !VARIABLE[code]?.(options.status)) {
      throw new Error(`ApiError ${code} cannot have status ${options.status}`);
    }
    this.status = options.status ?? STATUS[code];
    const fixed = CODE_HEADERS[code];
    this.headers = fixed && options.headers ? { ...fixed, ...options.headers } : (options.headers ?? fixed);
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * The one mapper from fs errno values to API errors. Expected conditions of a path (missing,
 * in the way, not empty, no permission, a symlink where none may be) become their codes; resource
 * exhaustion of the machine becomes a retryable 503 / a clear 507; anything else is returned
 * unchanged (the server answers it as a logged 500). `name` (a client-relative path) may be
 * named in the message; never an absolute host path.
 */
export function fromFsError(err: unknown, name?: string): unknown {
  if (err instanceof ApiError) return err;
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
  const what = name === undefined ? "" : `${name}: `;
  switch (code) {
    case "ENOENT":
      return new ApiError("file_not_found", `${what}File not found`);
    case "EEXIST":
      return new ApiError("conflict", `${what}Target already exists`);
    case "ENOTEMPTY":
      return new ApiError("directory_not_empty", `${what}Directory is not empty`);
    case "ENOTDIR":
      return new ApiError("conflict", `${what}A parent of the path is a file, not a folder`);
    case "EISDIR":
      return new ApiError("not_a_file", `${what}Path is a directory`);
    case "ENOTREG":
      return new ApiError("not_a_file", `${what}Path is not a regular file`);
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new ApiError("forbidden", `${what}Permission denied`);
    case "ELOOP":
      return new ApiError("path_outside_workspace", "Path is outside the workspace");
    case "EXDEV":
    case "EINVAL":
      return new ApiError("invalid_operation", `${what}Operation not possible on this path`);
    case "ENAMETOOLONG":
      return new ApiError("invalid_path", "Path is too long");
    case "EMFILE":
    case "ENFILE":
      return new ApiError("service_unavailable", "Server is out of file descriptors; retry", undefined, { headers: { "Retry-After": "1" } });
    case "ENOSPC":
    case "EDQUOT":
      return new ApiError("insufficient_storage", "Not enough space on the disk");
    default:
      return err;
  }
}

/** fromFsError for places that must answer with an ApiError whatever happened (batch items). */
export function apiErrorOf(err: unknown, name?: string): ApiError {
  const mapped = fromFsError(err, name);
  return mapped instanceof ApiError ? mapped : new ApiError("internal_error", "Unexpected server error");
}

/** True for errors of the machine (no fds, no disk): logged as warnings, not as bugs. */
export function isResourceError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
  return code === "EMFILE" || code === "ENFILE" || code === "ENOSPC" || code === "EDQUOT";
}
