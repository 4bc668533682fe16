/**
 * The memory budget of write content waiting in RAM. A large JSON body (write-batch, content,
 * import) stays in memory from its first byte until its write is applied or refused — which in
 * manual approval mode can be minutes. Without a budget, a collaborator keeping 64 batches of
 * 60 MB pending grows the server to gigabytes. Each large body takes its bytes from this budget
 * as they arrive (the declared length first) and gives them back when its response is over;
 * past the budget the request gets 429 too_many_pending_bytes before more is read.
 */
import type { ServerResponse } from "node:http";
import { ApiError } from "../errors.ts";

export class PendingBytes {
  private used = 0;

  constructor(readonly budget: number) {}

  get inUse(): number {
    return this.used;
  }

  /** A reservation that grows with the body (`take`) and is returned by `release` or when `res` closes. */
  reserveFor(res: ServerResponse): PendingReservation {
    let mine = 0;
    let released = false;
    const release = (): void => {
      this.used -= mine;
      mine = 0;
      released = true;
    };
    res.once("close", release);
    const take = (bytes: number): void => {
      if (released || bytes <= mine) return;
      if (this.used - mine + bytes > this.budget) throw tooManyPendingBytes(this.budget);
      this.used += bytes - mine;
      mine = bytes;
    };
    return { take, release };
  }
}

export interface PendingReservation {
  take(bytes: number): void;
  release(): void;
}

export function tooManyPendingBytes(budget: number): ApiError {
  return new ApiError("too_many_pending_bytes", "Too much write content is waiting for approval; try again when pending writes are decided", { budgetBytes: budget }, { headers: { "Retry-After": "5" } });
}
