/** A gated write route for testing the approval gate in isolation: writes `gated.txt` in the workspace. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ApiError } from "../../src/errors.ts";
import type { RouteDef } from "../../src/http/route.ts";
import { plan } from "../../src/types.ts";

export const GATED_FILE = "gated.txt";

export const gatedRoute: RouteDef = {
  method: "POST",
  path: "/test/workspace/:id/gated",
  auth: "client",
  scope: "collaborator",
  gate: "approval",
  workspace: true,
  handler: async (rc) => {
    const body = await rc.readJson();
    if (typeof body.text !== "string") throw new ApiError("invalid_payload", "text is required");
    const ws = rc.workspace!;
    const file = join(ws.path, GATED_FILE);
    const text = body.text;
    return plan({
      workspaceId: ws.id,
      action: "test.write",
      summary: `Write ${GATED_FILE}`,
      paths: [file],
      change: { file: GATED_FILE, text },
      risk: [],
      apply: async () => {
        await writeFile(file, text);
        return { body: { ok: true, text } };
      },
    });
  },
};
