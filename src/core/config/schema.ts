import type { BillConfig } from '../../tariff/bill-config.js';
import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * The hub's own configuration schema. The TypeScript types below are derived from it, so the
 * schema is the one source of truth. Adapter, plugin and tariff-source schemas are composed into
 * it by `composeSchema` (compose.ts).
 */

const Id = (description: string) => Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', minLength: 1, maxLength: 64, description });
const Watts = (description: string) => Type.Number({ minimum: 0, description });
const StrictObject = <T extends Record<string, TSchema>>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: false, description });

export const CircuitSchema = StrictObject(
  {
    id: Id('Circuit id, referenced by devices[].circuit and PUT /limits/{circuit_id}'),
    name: Type.Optional(Type.String()),
    parent: Type.Optional(Id('The circuit this one hangs from; default the grid connection')),
    max_import_w: Type.Optional(Watts('Limit on the net power flowing into this circuit (W)')),
    max_export_w: Type.Optional(Watts('Limit on the net power flowing out of this circuit (W)')),
    fallback_import_w: Type.Optional(Watts('Safe import limit (W) whenever no external import limit from PUT /limits/{circuit_id} is in force (none set, or past its valid_until)')),
    fallback_export_w: Type.Optional(Watts('Safe export limit (W) whenever no external export limit from PUT /limits/{circuit_id} is in force (none set, or past its valid_until)')),
  },
  'A node of the energy tree: its limits apply to the net flow of everything below it',
);

export const SiteSchema = StrictObject({
  id: Id('Location id used in the HTTP API (location_id)'),
  name: Type.String({ default: 'Home' }),
  timezone: Type.String({ default: 'Europe/Berlin', description: 'IANA time zone, e.g. Europe/Berlin' }),
  currency: Type.String({ pattern: '^[A-Z]{3}$', default: 'EUR', description: 'ISO 4217 code' }),
  grid: Type.Optional(
    StrictObject({
      max_import_w: Type.Optional(Watts('Grid connection import limit (W)')),
      max_export_w: Type.Optional(Watts('Grid connection export limit (W)')),
      fallback_import_w: Type.Optional(Watts('Safe import limit (W) whenever no external import limit is in force: before a parent hub (PUT /limits/{location_id}) has set one, and after its valid_until; default: max_import_w alone')),
      fallback_export_w: Type.Optional(Watts('Safe export limit (W) whenever no external export limit is in force (none set, or past its valid_until); default: max_export_w alone')),
    }),
  ),
  circuits: Type.Optional(Type.Array(CircuitSchema, { default: [] })),
  grid_meter: Type.Optional(
    Id('The device that meters the grid connection (a P1 meter, a Shelly 3EM at the supply, an inverter\'s meter); default: the first device with a grid channel. Other devices\' grid channels are booked as their own sub-meters'),
  ),
  latitude: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
  longitude: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
});

export const HttpSchema = StrictObject({
  host: Type.String({ default: '127.0.0.1', description: 'Listen address; a non-loopback host needs a token' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: '0 picks a free port' }),
  token: Type.Optional(Type.String({ minLength: 16, description: 'Bearer token for writes (and for reads from anywhere but this machine)' })),
  body_limit_bytes: Type.Integer({ minimum: 1024, default: 8 * 1024 * 1024 }),
  json_max_depth: Type.Integer({ minimum: 2, maximum: 1024, default: 64, description: 'A JSON body nested deeper than this is refused (400) before it is parsed' }),
  allowed_hosts: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?$' }), {
      description: 'Names the hub is reached by, besides IP addresses and localhost (default: this machine\'s hostname and <hostname>.local); a request with another Host header is answered 421 (DNS rebinding)',
    }),
  ),
  trusted_proxies: Type.Optional(
    Type.Array(Type.String({ minLength: 2, description: 'An IP address or CIDR block, e.g. 127.0.0.1 or 10.0.0.0/8' }), {
      default: [],
      description: 'Addresses of reverse proxies in front of the hub: what they forward is never treated as coming from this machine, so it needs the token',
    }),
  ),
  headers_timeout_ms: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000, description: 'A client must send its request headers within this time, or the connection is closed' }),
  request_timeout_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 10_000, description: 'A client must send its whole request (headers and body) within this time (raise it for large bodies over slow links)' }),
  keep_alive_timeout_ms: Type.Integer({ minimum: 100, maximum: 600_000, default: 5_000, description: 'An idle kept-alive connection is closed after this time' }),
  max_connections: Type.Integer({ minimum: 8, maximum: 100_000, default: 256, description: 'Connections open at once; further ones are closed as they are accepted' }),
  max_connections_per_client: Type.Integer({ minimum: 1, maximum: 100_000, default: 32, description: 'Connections open at once from one LAN address (this machine and trusted_proxies excepted), so one client cannot take them all' }),
  tls: Type.Optional(
    StrictObject(
      {
        cert: Type.String({ minLength: 1, description: 'PEM certificate chain file (relative to this file); reloaded when it changes' }),
        key: Type.String({ minLength: 1, description: 'PEM private key file (relative to this file); reloaded when it changes' }),
      },
      'Serve HTTPS instead of HTTP with this certificate and key',
    ),
  ),
});

/** What `http` is when the file leaves keys (or the whole section) out: the schema's defaults. */
export const HTTP_DEFAULTS = Object.fromEntries(
  Object.entries(HttpSchema.properties).flatMap(([key, prop]) => ('default' in prop ? [[key, prop.default as unknown]] : [])),
) as Pick<Static<typeof HttpSchema>, 'host' | 'port' | 'body_limit_bytes' | 'json_max_depth' | 'headers_timeout_ms' | 'request_timeout_ms' | 'keep_alive_timeout_ms' | 'max_connections' | 'max_connections_per_client'>;

export const StorageSchema = StrictObject({
  dir: Type.String({ default: './data', description: 'Where the hub keeps its state and meter records' }),
  max_api_meters: Type.Optional(
    Type.Integer({ minimum: 0, default: 200, description: 'Most meters the HTTP API may add that no device in this file names (each is a directory of meter records); past it such records are refused with 422 too_many_meters' }),
  ),
  minute_records_days: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 36500, description: 'Meter records finer than 15 minutes are kept this many days after their month ended, then rolled up to 15-minute records (energy and costs unchanged); unset: kept as recorded' }),
  ),
  meters: Type.Optional(
    StrictObject(
      {
        postgres: StrictObject(
          {
            url: Type.String({ minLength: 1, pattern: '^postgres(ql)?://', description: 'postgresql://user:password@host:5432/database (write ${VAR} to take the password from the environment); a unix socket directory as ?host=/run/postgresql' }),
            write_wait_s: Type.Number({ minimum: 0, maximum: 600, default: 10, description: 'How long a meter write waits for an unreachable server before it is refused with store_unavailable' }),
          },
          'Meter records in a PostgreSQL database (several hubs may share one, each under its site id); see docs/postgres.md',
        ),
      },
      'Where meter records are kept: unset = files under storage.dir/metering',
    ),
  ),
  backup: Type.Optional(
    StrictObject(
      {
        dir: Type.String({ minLength: 1, description: 'Folder the nightly backups go to (relative to this file); best on another disk' }),
        keep: Type.Integer({ minimum: 1, maximum: 3650, default: 7, description: 'Nightly backups kept; older ones in the folder are deleted' }),
        at: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', default: '03:30', description: 'Local time (site.timezone) the nightly backup is made, HH:MM' }),
      },
      'A backup of the state and meter records every night, e.g. backup: { dir: /mnt/usb/homeflex }',
    ),
  ),
});

export const LogSchema = StrictObject({
  level: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  format: Type.Union([Type.Literal('auto'), Type.Literal('pretty'), Type.Literal('json'), Type.Literal('journal')], {
    default: 'auto',
    description: 'auto = pretty on a terminal, journal under systemd (JOURNAL_STREAM), JSON otherwise',
  }),
});

const TopicFilters = (description: string) => Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: [], description }));

export const MqttUserSchema = StrictObject(
  {
    username: Type.String({ minLength: 1 }),
    password: Type.String({ minLength: 1, description: 'Use ${VAR}' }),
    devices: Type.Optional(
      Type.Array(Id('A device id'), { default: [], description: 'The devices this client is: it may publish their state and receive their commands, but never send commands' }),
    ),
    publish: TopicFilters('Further topic filters this login may publish to (never another device’s commands)'),
    subscribe: TopicFilters('Further topic filters this login may subscribe to'),
  },
  'A login of the embedded broker for one MQTT client',
);

export const MqttConnectionSchema = StrictObject({
  url: Type.Optional(Type.String({ description: 'mqtt://host:1883 or mqtts://…' })),
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  ca: Type.Optional(Type.String({ description: 'CA certificate file for TLS' })),
  telemetry: Type.Optional(
    Type.Boolean({ default: false, description: 'Publish every device state and meter reading, retained, under homeflex/<site>/telemetry/… (docs/telemetry.md)' }),
  ),
  embedded: Type.Optional(
    StrictObject(
      {
        host: Type.String({ default: '127.0.0.1', description: 'Listen address; off loopback every client needs a login' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
        max_packet_bytes: Type.Integer({
          minimum: 1024,
          maximum: 268_435_455,
          default: 1024 * 1024,
          description: 'Largest MQTT packet a logged-in client may send; bigger ones close its connection. Before its login is accepted a client may send 64 KiB in all',
        }),
        users: Type.Optional(Type.Array(MqttUserSchema, { default: [], description: 'One login per MQTT client (a Zigbee2MQTT bridge is one client for all its devices), each limited to its own topics' })),
      },
      'The in-process MQTT broker (aedes). connections.mqtt.username/password is the hub’s own login, allowed everything',
    ),
  ),
});

export const OcppConnectionSchema = StrictObject({
  host: Type.String({ default: '0.0.0.0' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 9000 }),
  path: Type.String({ default: '/ocpp', description: 'Chargers dial ws://hub:port/<path>/<identity>' }),
  allow_unknown: Type.Boolean({ default: false }),
  tls: Type.Optional(
    StrictObject({
      cert: Type.String({ description: 'Server certificate (PEM)' }),
      key: Type.String({ description: 'Its private key (PEM)' }),
      ca: Type.Optional(Type.String({ description: 'CA certificate (PEM) that signs chargers’ client certificates (security profile 3; subject CN = identity): a charger with one needs no password' })),
    }),
  ),
  max_frame_bytes: Type.Integer({
    minimum: 1024,
    maximum: 100 * 1024 * 1024,
    default: 256 * 1024,
    description: 'Largest WebSocket message a charger may send; a bigger one closes its connection (1009)',
  }),
});

export const ModbusConnectionSchema = StrictObject({
  id: Id('Connection id, referenced by devices[].connection'),
  tcp: Type.Optional(StrictObject({ host: Type.String(), port: Type.Integer({ minimum: 1, maximum: 65535, default: 502 }) })),
  rtu: Type.Optional(
    StrictObject({
      path: Type.String({ description: 'Serial device, e.g. /dev/ttyUSB0' }),
      baud: Type.Integer({ default: 9600 }),
      parity: Type.Union([Type.Literal('none'), Type.Literal('even'), Type.Literal('odd')], { default: 'none' }),
    }),
  ),
  timeout_ms: Type.Integer({ minimum: 50, default: 2000 }),
  discover: Type.Optional(
    StrictObject(
      {
        units: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 255 }), { maxItems: 32, uniqueItems: true, description: 'Unit ids to look at (default 1, 2, 126, 200, 240); [] turns discovery off' })),
        every_h: Type.Number({ minimum: 1, maximum: 8760, default: 24, description: 'Hours between looks' }),
        first_look_s: Type.Number({ minimum: 0, maximum: 3600, default: 10, description: 'Seconds after start before the first look (the configured devices poll first)' }),
        timeout_ms: Type.Integer({ minimum: 50, maximum: 60_000, default: 500, description: "How long a look waits for an answer at each unit (an absent unit holds the connection this long); at most the connection's timeout_ms" }),
      },
      'Discovery: look for SunSpec devices at unit ids no device of the site file uses, and list them as found (GET /discovered). Without this key: on for TCP connections (the default units, once a day), off for RTU buses.',
    ),
  ),
});

export const ConnectionsSchema = StrictObject({
  mqtt: Type.Optional(MqttConnectionSchema),
  ocpp: Type.Optional(OcppConnectionSchema),
  modbus: Type.Optional(Type.Array(ModbusConnectionSchema, { default: [] })),
});

/** Common keys of every devices[] entry. The adapter named by `adapter` adds its own keys. */
export const DeviceBaseProperties = {
  id: Id('Device id, used in the HTTP API (device_id)'),
  adapter: Type.String({ description: 'Which adapter drives this device' }),
  name: Type.Optional(Type.String({ description: 'Display name' })),
  circuit: Type.Optional(Id('The circuit this device hangs from')),
};

export const PlannerSchema = StrictObject({
  horizon_hours: Type.Number({ minimum: 1, maximum: 168, default: 48 }),
  replan_minutes: Type.Number({ minimum: 1, maximum: 1440, default: 15 }),
  slot_minutes: Type.Union([Type.Literal(15), Type.Literal(30), Type.Literal(60)], { default: 15 }),
  time_limit_s: Type.Optional(
    Type.Number({
      minimum: 1,
      maximum: 3600,
      default: 60,
      description: 'A plan not made within this time (s) is given up: the previous plan, shifted to now, stays in force until the next re-plan',
    }),
  ),
});

export const SurplusSchema = StrictObject(
  {
    interval_s: Type.Number({ minimum: 1, maximum: 60, default: 5, description: 'How often the surplus followers (chargers in charge_mode minpv or pv) follow the measured surplus (s)' }),
    source: Type.Unsafe<'auto' | 'grid' | 'pv_minus_load'>({
      type: 'string',
      enum: ['auto', 'grid', 'pv_minus_load'],
      default: 'auto',
      description: 'Where the surplus is measured: grid = the export of a device with a grid meter channel (the best); pv_minus_load = measured PV less the measured house load; auto = grid when a grid meter reports, else pv_minus_load',
    }),
    enable_delay_s: Type.Number({ minimum: 0, maximum: 3600, default: 60, description: 'Surplus must be enough to start (or to add phases) for this long first (s)' }),
    disable_delay_s: Type.Number({ minimum: 0, maximum: 3600, default: 180, description: 'Surplus must be too low to go on (or for the phases in use) for this long before stopping (or dropping phases) (s)' }),
    phase_switch_delay_s: Type.Number({ minimum: 0, maximum: 86400, default: 300, description: 'At least this long between two phase switches of one charger (s), so a cloud does not toggle its contactor all day' }),
    phase_hysteresis_w: Type.Number({ minimum: 0, maximum: 5000, default: 200, description: 'Three phases are kept until the surplus is this far below their minimum power (W)' }),
    stop_hysteresis_w: Type.Number({ minimum: 0, maximum: 5000, default: 300, description: 'pv mode: grid import tolerated at the minimum current before the disable delay starts (W)' }),
    reserve_w: Type.Number({ minimum: 0, maximum: 50000, default: 0, description: 'Export left to the grid (or the battery) before the followers take the rest (W)' }),
  },
  'The real-time dispatcher that shares measured PV surplus among chargers in charge_mode minpv or pv',
);

export const SURPLUS_DEFAULTS: Static<typeof SurplusSchema> = {
  interval_s: 5,
  source: 'auto',
  enable_delay_s: 60,
  disable_delay_s: 180,
  phase_switch_delay_s: 300,
  phase_hysteresis_w: 200,
  stop_hysteresis_w: 300,
  reserve_w: 0,
};

export const PvArraySchema = StrictObject(
  {
    id: Id('Array id, as the forecasts and GET /forecasts name it'),
    kwp: Type.Number({ exclusiveMinimum: 0, maximum: 1000, description: 'Peak DC power of the modules (kWp)' }),
    tilt: Type.Number({ minimum: 0, maximum: 90, default: 30, description: 'Degrees from horizontal: 0 flat, 90 vertical' }),
    azimuth: Type.Number({ minimum: 0, maximum: 360, default: 180, description: 'Degrees clockwise from north: 90 east, 180 south, 270 west' }),
    latitude: Type.Optional(Type.Number({ minimum: -90, maximum: 90, description: 'Default: site.latitude' })),
    longitude: Type.Optional(Type.Number({ minimum: -180, maximum: 180, description: 'Default: site.longitude' })),
    inverter_kw: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'AC rating of the inverter: the forecast is clipped there' })),
    temp_coeff_pct_per_k: Type.Number({ minimum: -1, maximum: 0, default: -0.4, description: 'Power temperature coefficient of the modules (%/K)' }),
    noct_c: Type.Number({ minimum: 30, maximum: 70, default: 45, description: 'Nominal operating cell temperature (°C)' }),
    losses_pct: Type.Number({ minimum: 0, maximum: 50, default: 10, description: 'DC losses before the inverter: wiring, soiling, mismatch (%)' }),
    device: Type.Optional(Id('The pv device that measures this array; its production calibrates the forecast and the array’s forecast replaces the device’s clear-sky one')),
  },
  'One PV array (a roof plane)',
);

export const LoadForecastSchema = StrictObject(
  {
    model: Type.Unsafe<'learned' | 'same_weekday'>({ type: 'string', enum: ['learned', 'same_weekday'], default: 'learned', description: 'learned: recent days weighted by age and day type (and outdoor temperature where it explains the load); same_weekday: the mean of the same weekday over the last 4 weeks' }),
    days: Type.Integer({ minimum: 7, maximum: 35, default: 28, description: 'Days of meter history to learn from' }),
    half_life_days: Type.Number({ minimum: 1, maximum: 60, default: 5, description: 'A past day weighs half as much every this many days' }),
    temperature: Type.Boolean({ default: true, description: 'Use the weather source’s temperature forecast where it explains the daily load (R² ≥ 0.3)' }),
    holidays: Type.Array(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), { default: [], description: 'Public holidays (YYYY-MM-DD), treated as Sundays' }),
  },
  'How the base load of the house is forecast',
);

export const CalibrationSchema = StrictObject(
  {
    enabled: Type.Boolean({ default: true, description: 'Scale the PV forecast by how far it was off at this site (by hour of day and season)' }),
    min_factor: Type.Number({ minimum: 0.1, maximum: 1, default: 0.5 }),
    max_factor: Type.Number({ minimum: 1, maximum: 3, default: 1.5 }),
    season_days: Type.Integer({ minimum: 7, maximum: 183, default: 45, description: 'Measurements within this many days of the date (any year) make its season' }),
  },
  'Learning the PV forecast’s error from the measured production',
);

export const PvUncertaintySchema = StrictObject(
  {
    pv: Type.Unsafe<'robust' | 'point'>({ type: 'string', enum: ['robust', 'point'], default: 'robust', description: 'robust: plan with the PV forecast × the robust_quantile of the last 28 days’ measured ÷ forecast daily PV (at least 1, once 3 days are known), so grid charging is bought only for what a sunnier day would leave short; point: plan with the forecast as it is' }),
    robust_quantile: Type.Number({ minimum: 0, maximum: 1, default: 0.9, description: 'Which quantile of the recent daily ratios scales the PV forecast (robust)' }),
  },
  'How the planner treats the PV forecast’s error',
);

/** The hub schema with placeholders for devices, tariffs and plugins, which compose.ts fills. */
export const HubSchemaBase = StrictObject({
  $schema: Type.Optional(Type.String()),
  site: SiteSchema,
  http: Type.Optional(HttpSchema),
  storage: Type.Optional(StorageSchema),
  log: Type.Optional(LogSchema),
  planner: Type.Optional(PlannerSchema),
  surplus: Type.Optional(SurplusSchema),
  tariffs: Type.Optional(Type.Object({}, { additionalProperties: true })),
  forecasts: Type.Optional(Type.Object({}, { additionalProperties: true })),
  connections: Type.Optional(ConnectionsSchema),
  devices: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { default: [] })),
  plugins: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { default: [] })),
});

export type CircuitConfig = Static<typeof CircuitSchema>;
export type SiteConfig = Static<typeof SiteSchema>;
export type HttpConfig = Static<typeof HttpSchema>;
export type ConnectionsConfig = Static<typeof ConnectionsSchema>;
export type ModbusConnectionConfig = Static<typeof ModbusConnectionSchema>;
export type PlannerConfig = Static<typeof PlannerSchema>;
export type PvArrayConfig = Static<typeof PvArraySchema>;
export type SurplusConfig = Static<typeof SurplusSchema>;
export type LoadForecastConfig = Static<typeof LoadForecastSchema>;
export type CalibrationConfig = Static<typeof CalibrationSchema>;
export type PvUncertaintyConfig = Static<typeof PvUncertaintySchema>;

/** `forecasts`: the site's PV arrays, where their forecast comes from, and how the load is forecast. */
export interface ForecastsConfig {
  pv: PvArrayConfig[];
  source?: { type: string; [key: string]: unknown };
  calibration?: CalibrationConfig;
  load?: LoadForecastConfig;
  uncertainty?: PvUncertaintyConfig;
}

export interface TariffConfig {
  type: string;
  [key: string]: unknown;
}

export interface DeviceConfig {
  id: string;
  adapter: string;
  name?: string;
  circuit?: string;
  [key: string]: unknown;
}

/** A `plugins[]` entry: a built-in plugin by `id`, or one from outside the build by `package` or `path`. */
export interface PluginConfig {
  id?: string;
  package?: string;
  path?: string;
  enabled?: boolean;
  [key: string]: unknown;
}

/** The configuration after validation and defaults: every section present. */
export interface HubConfig {
  site: Required<Pick<SiteConfig, 'id' | 'name' | 'timezone' | 'currency'>> & SiteConfig & { circuits: CircuitConfig[] };
  http: HttpConfig;
  storage: Static<typeof StorageSchema>;
  log: Static<typeof LogSchema>;
  planner: PlannerConfig;
  surplus: SurplusConfig;
  tariffs: { import?: TariffConfig; export?: TariffConfig } & BillConfig;
  forecasts: ForecastsConfig;
  connections: ConnectionsConfig & { modbus: ModbusConnectionConfig[] };
  devices: DeviceConfig[];
  plugins: PluginConfig[];
  /** Where the configuration was read from (for messages). */
  source: string;
}
