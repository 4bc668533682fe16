/** Every limit and timeout of the server, named, in one place. */
export const LIMITS = {
  /** General JSON request bodies. */
  jsonBodyBytes: 1024 * 1024,
  /** JSON bodies of write-batch and import. */
  largeJsonBodyBytes: 64 * 1024 * 1024,
  /** All large bodies in RAM at once — arriving, or waiting for approval unless staged on disk (past it: 429 too_many_pending_bytes). */
  pendingBodyBytes: 96 * 1024 * 1024,
  /** Write content strings at least this long are parsed as views of the body, not copies. */
  liftedStringMinBytes: 64 * 1024,
  /** Write content larger than this waits for approval in a staged file in the data dir, not in RAM. */
  stageAboveBytes: 256 * 1024,
  /** All staged write content on disk at once (past it: 429 too_many_pending_bytes). */
  stagedBytesBudget: 4 * 1024 * 1024 * 1024,
  /** Maximum nesting of client JSON. */
  jsonMaxDepth: 64,
  /** Nesting accepted in JSON read from files and other services (stored config, run stores, answers of the engine, router and orchestrator). */
  storedJsonMaxDepth: 256,
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
  /** read-batch fast path: files up to this size, and this much per batch, are read with synchronous calls (bounded event-loop time). */
  readBatchSyncFileBytes: 256 * 1024,
  readBatchSyncBytes: 4 * 1024 * 1024,
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
  /** Places (of the total) only the host and owner tokens may take: they can always watch approvals. */
  sseReservedForOwners: 32,
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
  /** Request bodies: at least this many bytes per idle window until the body has arrived, and non-upload bodies whole within the deadline (else 408). */
  bodyIdleMs: 10_000,
  bodyMinProgressBytes: 1024,
  bodyDeadlineMs: 60_000,
  /** Long-poll `wait` cap in seconds. */
  longPollMaxSeconds: 30,
  /** Event ring buffers. */
  reloadEventBuffer: 500,
  catalogEventBuffer: 10_000,
  /**
   * Entries (files and folders) one workspace's catalog index may hold: at most this, and at most
   * catalogHeapShare of the heap at catalogEntryBytes each (~550 B measured: 300,000 files took
   * 165 MB). A bigger workspace (a home folder, many node_modules) gets 507 catalog_too_large
   * instead of a server that runs out of memory.
   */
  catalogMaxEntries: 1_000_000,
  catalogHeapShare: 0.25,
  catalogEntryBytes: 600,
  /**
   * Folders the catalog watches with inotify, all workspaces together, the rest polled: a quarter
   * of the user's inotify budget (fs.inotify.max_user_watches — 8,192 on older kernels, shared with
   * every editor and tool of that user), at most catalogWatchMaxDirs; 8,192 where it cannot be read.
   */
  catalogWatchShare: 0.25,
  catalogWatchMaxDirs: 65_536,
  catalogWatchFallbackDirs: 8_192,
  /** After an index hit its cap, how long the workspace's catalog answers 507 without walking again. */
  catalogTooLargeRetryMs: 60_000,
  /** Reload events are debounced per (workspace, reason). */
  reloadDebounceMs: 750,
  engineReloadMinIntervalMs: 2_000,
  /** Audit list. */
  auditDefaultLimit: 50,
  auditMaxLimit: 200,
  /** Tokens. */
  tokenLabelMaxChars: 200,
  clientIdMaxChars: 128,
  /** Engine writes through the gate: how long the engine may take (a shell command runs to its end), and the answer relayed. */
  engineGatedTimeoutMs: 10 * 60_000,
  engineRelayMaxBytes: 16 * 1024 * 1024,
  /** Upstream (OpenCode) proxy: time to wait for response headers. */
  proxyHeadersTimeoutMs: 30_000,
  /** Failed authentications per client address per minute before it gets 429. */
  authFailuresPerMinute: 120,
  /** Files read as configuration (SKILL.md, command files): larger ones are skipped. */
  configFileMaxBytes: 1024 * 1024,
  /**
   * Largest text file the server reads whole to parse (OpenCode config, job files, its own
   * server.json and tokens.json): far above any real one, far below what would strain the heap.
   */
  textFileMaxBytes: 16 * 1024 * 1024,
  /** How long a path the server itself wrote is ignored by the config watcher (its own echo). */
  selfWriteEchoMs: 2_000,
  /** Folders watched per config-watcher root before the rest is polled (and the cache is bypassed). */
  configWatchMaxDirs: 4_000,
  /** Deepest path watched below a config folder (skills have resources in sub-folders). */
  configWatchMaxDepth: 9,
  /**
   * Raw watch events one folder may deliver between two coalescing flushes. Past it the folder is
   * polled instead: a local process renaming in a tight loop produces events as fast as libuv
   * reads them, and its inotify read loop then never yields — the whole server stops answering.
   */
  watchStormEvents: 10_000,
  /**
   * The same for a flood spread over many folders, each below watchStormEvents: past this many raw
   * events between two flushes, every folder that delivered one in that window is polled. The
   * kernel queues at most 16,384 events per inotify instance (max_queued_events), so a burst that
   * piled up while the loop was busy stays below it; a sustained flood does not.
   */
  watchStormTotalEvents: 20_000,
  /** How long a folder dropped for an event storm is polled before it is watched again. */
  watchStormCooldownMs: 30_000,
  /** Startup clean-up of stale temp files: folders scanned per workspace, and how deep. */
  cleanupMaxDirs: 20_000,
  cleanupMaxDepth: 24,
  /** Bytes of a download sniffed for secrets before a viewer receives it. */
  viewerSniffBytes: 1024 * 1024,
  /** Inbox/outbox listings: items and depth. */
  listingMaxItems: 10_000,
  listingMaxDepth: 32,
  /** Symlinks followed while resolving one client path (like the kernel's ELOOP limit). */
  maxLinkDepth: 40,
  /** Nesting of JSONC and YAML documents read from disk. */
  jsoncMaxDepth: 256,
  yamlMaxDepth: 64,
  /** Audit tail reader: first and largest backwards read. */
  auditTailFirstChunk: 16 * 1024,
  auditTailMaxChunk: 1024 * 1024,
  /** Audit intents carry the change up to this size (else its sha256); startup looks this far back for intents left open by a crash. */
  auditChangeMaxChars: 16 * 1024,
  auditRecoverEntries: 2_000,
  /** Minted token lifetime cap: ten years (a longer TTL is almost certainly a unit mistake). */
  tokenMaxTtlSeconds: 10 * 365 * 24 * 3600,
  /** Client addresses the auth limiter remembers before it forgets finished windows. */
  authLimiterMaxAddresses: 10_000,
  /** Sockets per upstream of the proxies' keep-alive agents. */
  proxyMaxSockets: 512,
  /** How often token expiry is noticed (its streams, sessions and pending writes end). */
  tokenSweepMs: 1_000,
  /**
   * Log lines waiting for one write: written at this size, or after logFlushMs. Measured side by
   * side with wrk (same run, /health, log to a file): 8 KiB cost 22–28% of the throughput
   * (52–56k against 68–75k req/s), 16, 32 and 64 KiB were alike; p99 did not differ reliably.
   */
  logBufferBytes: 64 * 1024,
  logFlushMs: 50,
  /** The OpenCode Router's local API: its default port, and how long writes, list reads and sends may take. */
  routerDefaultPort: 3005,
  routerWriteTimeoutMs: 3_000,
  routerReadTimeoutMs: 2_000,
  routerSendTimeoutMs: 5_000,
  /** The skills hub: per request, for a whole listing (under the app's own 10 s), listing cache, parallel fetches, install size. */
  hubRequestTimeoutMs: 10_000,
  hubListingTimeoutMs: 9_000,
  hubCacheMs: 5 * 60_000,
  hubConcurrency: 6,
  hubMaxFiles: 256,
  hubMaxTotalBytes: 20_000_000,
  /** A hub API answer (the skills listing, a repository tree: GitHub's own stay below ~10 MB). */
  hubMaxApiBytes: 32 * 1024 * 1024,
  /** Each service-manager command of a scheduler delete (systemctl, launchctl). */
  schedulerCommandTimeoutMs: 10_000,
  /** The orchestrator's control endpoint: versions, upgrade. */
  controlReadTimeoutMs: 5_000,
  controlWriteTimeoutMs: 10_000,
  /** Distinct attribute keys whose secret/URL verdict the logger remembers. */
  logKeyCacheMax: 512,
  /** Graceful shutdown must finish within this. */
  shutdownGraceMs: 5_000,
} as const;
