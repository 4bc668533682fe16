// Route table: issue 4 — inbox, artifacts, file sessions, batch read/write, ops, files/content.
import type { RouteDef } from "../http/route.ts";

export const routes: RouteDef[] = [];
