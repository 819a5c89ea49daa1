/**
 * Log lines about what strangers send (unknown identities, refused logins, oversize packets) at a
 * bounded rate: once per key per `perKeyMs`, and at most `maxPerWindow` lines in any `windowMs`
 * overall; what was held back is counted and said in the next line that is let through.
 */
export class RateLimitedLog {
  private readonly lastByKey = new Map<string, number>();
  private windowStart = -Infinity;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly options: { perKeyMs: number; windowMs: number; maxPerWindow: number; maxKeys?: number },
    private readonly now: () => number = Date.now,
  ) {}

  /** Calls `emit` (with how many lines were held back since the last one) unless the key or the window is spent. */
  log(key: string, emit: (suppressed: number) => void): boolean {
    const t = this.now();
    const last = this.lastByKey.get(key);
    if (last !== undefined && t - last < this.options.perKeyMs) return false;
    if (t - this.windowStart >= this.options.windowMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.options.maxPerWindow) {
      this.suppressed++;
      return false;
    }
    this.inWindow++;
    // the key table stays bounded: forget the oldest (Map keeps insertion order)
    this.lastByKey.delete(key);
    this.lastByKey.set(key, t);
    if (this.lastByKey.size > (this.options.maxKeys ?? 10_000)) this.lastByKey.delete(this.lastByKey.keys().next().value!);
    const held = this.suppressed;
    this.suppressed = 0;
    emit(held);
    return true;
  }

  /** Lets the key speak again at once (e.g. after a charger logged in properly). */
  forget(key: string) {
    this.lastByKey.delete(key);
  }
}
