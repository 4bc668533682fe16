/**
 * A problem that must stop the server before it starts (bad config, corrupt token store).
 * The CLI prints its one-line message on stderr and exits with code 2.
 */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}
