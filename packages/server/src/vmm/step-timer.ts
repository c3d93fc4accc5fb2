// Milliseconds per step of a multi-step operation (a suspend), for logs and benchmarks.
export class StepTimer {
  readonly ms: Record<string, number> = {};
  private readonly started = performance.now();
  private last = this.started;

  /** Since the timer was made: the whole operation so far. */
  elapsedMs(): number {
    return performance.now() - this.started;
  }

  /** The step `name` ended now: it took the time since the previous step ended. */
  done(name: string): void {
    const now = performance.now();
    this.ms[name] = Math.round((now - this.last) * 10) / 10;
    this.last = now;
  }
}
