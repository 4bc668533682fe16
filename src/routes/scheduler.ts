// Route table: a workspace's scheduled jobs (the opencode-scheduler plugin's job files and units).
import { json, type RouteDef } from "../http/route.ts";
import { listJobs, planJobDelete } from "../workspace/scheduler.ts";
import { READ, WRITE } from "./shared.ts";

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspace/:id/scheduler/jobs", ...READ, handler: async (rc) => json({ items: (await listJobs(rc.server.config, rc.workspace!)).map((j) => j.job) }) },
  { method: "DELETE", path: "/workspace/:id/scheduler/jobs/:name", ...WRITE, handler: async (rc) => planJobDelete(rc.server.config, rc.workspace!, rc.params.name ?? "") },
];
