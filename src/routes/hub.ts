// Route table: the skills hub — its catalog, and installing one of its skills into a workspace.
import { json, type RouteDef } from "../http/route.ts";
import { hubRepo, planHubInstall, requireHub } from "../workspace/hub.ts";
import { checkSkillName } from "../workspace/skills.ts";

export const routes: RouteDef[] = [
  {
    method: "GET",
    path: "/hub/skills",
    auth: "client",
    handler: async (rc) => {
      requireHub(rc.server.config);
      const q = rc.query;
      return json(await rc.server.hub.list(hubRepo(rc.server.config, { owner: q.get("owner"), repo: q.get("repo"), ref: q.get("ref") })));
    },
  },
  {
    method: "POST",
    path: "/workspace/:id/skills/hub/:name",
    auth: "client",
    scope: "collaborator",
    gate: "approval",
    workspace: true,
    // The name is checked before the body is read ("before anything else").
    handler: async (rc) => planHubInstall(rc.server.config, rc.workspace!, checkSkillName(rc.params.name), await rc.readJson(), rc.signal),
  },
];
