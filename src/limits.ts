/** Every limit and timeout of the server, named, in one place. */
export const LIMITS = {
  /** General JSON request bodies. */
  jsonBodyBytes: 1024 * 1024,
  /** JSON bodies of write-batch and import. */
  largeJsonBodyBytes: 64 * 1024 * 1024,
  /** Maximum nesting of client JSON. */
  jsonMaxDepth: 64,
  /** Inbox uploads: default and hard cap (OPENWORK_INBOX_MAX_BYTES is clamped to the cap). */
  inboxDefaultMaxBytes: 50_000_000,
  inboxCapMaxBytes: 250_000_000,
  /** Multipart parsing. */
  multipartHeaderBytes: 16 * 1024,
  multipartMaxParts: 16,
  multipartFieldBytes: 64 * 1024,
  /** File sessions. */
  sessionFileBytes: 5_000_000,
  batchItems: 64,
  sessionsPerToken: 32,
  sessionsTotal: 1024,
  sessionTtlDefaultMs: 900_000,
  sessionTtlMinMs: 30_000,
  sessionTtlMaxMs: 24 * 3600_000,
  /** Approvals. */
  pendingApprovalsPerWorkspace: 64,
  approvalTimeoutDefaultMs: 30_000,
  /** Server-Sent Events. */
  sseStreamsTotal: 256,
  /** Per client token (the host's streams count only towards the total). */
  sseStreamsPerToken: 64,
  sseHeartbeatMs: 15_000,
  /** Bytes queued on a slow SSE client before it is disconnected (it can resume with Last-Event-ID). */
  sseMaxBufferedBytes: 4 * 1024 * 1024,
  /** Bytes queued on an SSE socket before a log follower waits for it to drain (events stay in the shared ring meanwhile). */
  sseHighWaterBytes: 64 * 1024,
  /** Events read from a ring per step of an SSE stream. */
  sseStepEvents: 500,
  /** How often an open catalog stream re-checks that its session is still alive (expiry; ends are pushed). */
  sessionRecheckMs: 5_000,
  /** Catalog snapshot page size. */
  snapshotDefaultLimit: 2000,
  snapshotMaxLimit: 10_000,
  /** Paths. */
  pathMaxBytes: 4096,
  pathSegmentMaxBytes: 255,
  /** HTTP server timeouts: slow headers are cut, held approvals and idle SSE streams are not. */
  headersTimeoutMs: 20_000,
  /** Whole-request timeout is off (0): uploads and held approvals may legitimately take long. */
  requestTimeoutMs: 0,
  keepAliveTimeoutMs: 5_000,
  /** Long-poll `wait` cap in seconds. */
  longPollMaxSeconds: 30,
  /** Event ring buffers. */
  reloadEventBuffer: 500,
  catalogEventBuffer: 10_000,
  /** Reload events are debounced per (workspace, reason). */
  reloadDebounceMs: 750,
  engineReloadMinIntervalMs: 2_000,
  /** Audit list. */
  auditDefaultLimit: 50,
  auditMaxLimit: 200,
  /** Tokens. */
  tokenLabelMaxChars: 200,
  clientIdMaxChars: 128,
  /** Upstream (OpenCode) proxy: time to wait for response headers. */
  proxyHeadersTimeoutMs: 30_000,
  /** Failed authentications per client address per minute before it gets 429. */
  authFailuresPerMinute: 120,
  /** Graceful shutdown must finish within this. */
  shutdownGraceMs: 5_000,
} as const;
