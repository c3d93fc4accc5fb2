// LIFO cleanup stack: each acquired resource pushes its release; run() unwinds in reverse order and
// keeps going past failures, reporting them together.
export class Cleanup {
  private steps: Array<{ name: string; fn: () => unknown }> = [];

  push(name: string, fn: () => unknown): void {
    this.steps.push({ name, fn });
  }

  async run(): Promise<void> {
    const errors: Error[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.fn();
      } catch (err) {
        errors.push(new Error(`cleanup ${step.name}: ${(err as Error).message}`, { cause: err }));
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
  }
}
