import type { EventBus, HubEventName, HubEvents, Logger } from '../api/index.js';

/** Synchronous in-process event bus. A handler that throws is logged; the others still run. */
export class HubBus implements EventBus {
  private handlers = new Map<HubEventName, Set<(p: never) => void>>();
  constructor(private readonly log?: Logger) {}
  emit<K extends HubEventName>(topic: K, payload: HubEvents[K]) {
    for (const h of this.handlers.get(topic) ?? []) {
      try {
        (h as (p: HubEvents[K]) => void)(payload);
      } catch (err) {
        this.log?.error({ err, topic }, 'event handler failed');
      }
    }
  }
  on<K extends HubEventName>(topic: K, handler: (payload: HubEvents[K]) => void) {
    let set = this.handlers.get(topic);
    if (!set) this.handlers.set(topic, (set = new Set()));
    set.add(handler as (p: never) => void);
    return () => {
      set.delete(handler as (p: never) => void);
    };
  }
}
