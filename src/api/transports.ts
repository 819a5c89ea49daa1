/**
 * Shared transports the host creates once and hands to adapters through `ctx.transports`.
 * Each getter throws a permanent error naming the missing `connections.*` key when the site has none.
 */
export interface MqttMessageHandler {
  (topic: string, payload: Buffer, retained: boolean): void;
}

export interface MqttTransport {
  publish(topic: string, payload: string | Buffer, opts?: { retain?: boolean; qos?: 0 | 1 | 2 }): Promise<void>;
  /** Subscribes (and re-subscribes after reconnects). Returns an unsubscribe function. */
  subscribe(filter: string, handler: MqttMessageHandler): () => void;
  readonly connected: boolean;
}

/** The OCPP central system: adapters claim charger identities and receive their connections. */
export interface OcppTransport {
  /** Called for every charger connection whose identity the adapter claimed. */
  claim(identity: string, options: { password?: string }, onClient: (client: unknown) => void): () => void;
  readonly port: number;
}

/** One Modbus connection (TCP or an RTU bus), requests queued so they never overlap. */
export interface ModbusTransport {
  readonly id: string;
  readHolding(unit: number, address: number, count: number): Promise<number[]>;
  readInput(unit: number, address: number, count: number): Promise<number[]>;
  writeRegisters(unit: number, address: number, values: number[]): Promise<void>;
}

export interface Transports {
  mqtt(): MqttTransport;
  ocpp(): OcppTransport;
  modbus(connectionId: string): ModbusTransport;
}
