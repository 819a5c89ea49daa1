/**
 * The rules Home Assistant's MQTT integration applies to a discovery config of the components
 * homeflex publishes (sensor, binary_sensor, switch), written from home-assistant.io/integrations/
 * mqtt, sensor.mqtt, binary_sensor.mqtt, switch.mqtt and the sensor device-class / state-class /
 * unit tables (developers.home-assistant.io/docs/core/entity/sensor). Returns what is wrong.
 */

const COMMON = ['name', 'unique_id', 'object_id', 'default_entity_id', 'device', 'availability', 'availability_topic', 'availability_mode', 'availability_template', 'payload_available', 'payload_not_available', 'entity_category', 'icon', 'qos', 'json_attributes_topic', 'json_attributes_template', 'enabled_by_default', 'encoding', 'origin', 'platform', 'entity_picture'];
const KEYS: Record<string, string[]> = {
  sensor: [...COMMON, 'state_topic', 'value_template', 'device_class', 'state_class', 'unit_of_measurement', 'suggested_display_precision', 'expire_after', 'force_update', 'last_reset_value_template', 'options'],
  binary_sensor: [...COMMON, 'state_topic', 'value_template', 'device_class', 'payload_on', 'payload_off', 'expire_after', 'force_update', 'off_delay'],
  switch: [...COMMON, 'state_topic', 'command_topic', 'value_template', 'command_template', 'device_class', 'payload_on', 'payload_off', 'state_on', 'state_off', 'optimistic', 'retain'],
};
const REQUIRED: Record<string, string[]> = { sensor: ['state_topic'], binary_sensor: ['state_topic'], switch: ['command_topic'] };

/** Units HA accepts per sensor device class (the ones homeflex uses, and a few neighbours). */
const UNITS: Record<string, string[] | 'currency' | 'none'> = {
  power: ['mW', 'W', 'kW', 'MW', 'GW', 'TW', 'BTU/h'],
  energy: ['J', 'kJ', 'MJ', 'GJ', 'mWh', 'Wh', 'kWh', 'MWh', 'GWh', 'TWh', 'cal', 'kcal', 'Mcal', 'Gcal'],
  temperature: ['°C', '°F', 'K'],
  monetary: 'currency',
  timestamp: 'none',
  battery: ['%'],
};
const STATE_CLASSES: Record<string, string[] | undefined> = {
  power: ['measurement'],
  energy: ['total', 'total_increasing'],
  temperature: ['measurement'],
  monetary: ['total'],
  timestamp: [],
  battery: ['measurement'],
};
const BINARY_CLASSES = ['connectivity', 'problem', 'running', 'power', 'plug', 'heat', 'cold'];
const SWITCH_CLASSES = ['outlet', 'switch'];
const ISO_4217 = /^[A-Z]{3}$/;

export function checkDiscovery(topic: string, payload: string, prefix = 'homeassistant'): string[] {
  const problems: string[] = [];
  const m = new RegExp(`^${prefix}/(sensor|binary_sensor|switch)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$`).exec(topic);
  if (!m) return [`${topic}: not <prefix>/<component>/<node_id>/<object_id>/config with ids of [a-zA-Z0-9_-]`];
  const component = m[1];
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(payload);
  } catch {
    return [`${topic}: payload is not JSON`];
  }
  const p = (s: string) => problems.push(`${topic}: ${s}`);
  for (const k of Object.keys(c)) if (!KEYS[component].includes(k)) p(`unknown key "${k}" for ${component}`);
  for (const k of REQUIRED[component]) if (typeof c[k] !== 'string' || !c[k]) p(`"${k}" is required`);
  for (const [k, v] of Object.entries(c)) if (k.endsWith('_topic') && typeof v === 'string' && /[+#]/.test(v)) p(`${k} "${v}" contains a wildcard`);
  if (typeof c.unique_id !== 'string') p('unique_id is needed for a device and for editing in the UI');
  const dev = c.device as { identifiers?: unknown[]; name?: string } | undefined;
  if (dev && (!Array.isArray(dev.identifiers) || !dev.identifiers.length) ) p('device.identifiers must be a non-empty list');
  if (c.availability !== undefined) {
    if (!Array.isArray(c.availability) || c.availability.some((a) => typeof (a as { topic?: unknown }).topic !== 'string')) p('availability must be a list of {topic}');
    if (c.availability_topic !== undefined) p('availability and availability_topic are exclusive');
  }
  if (c.availability_mode !== undefined && !['all', 'any', 'latest'].includes(String(c.availability_mode))) p('availability_mode must be all, any or latest');
  if (c.entity_category !== undefined && !['config', 'diagnostic'].includes(String(c.entity_category))) p('entity_category must be config or diagnostic');
  const dc = c.device_class as string | undefined;
  if (component === 'sensor') {
    const sc = c.state_class as string | undefined;
    const unit = c.unit_of_measurement as string | undefined;
    if (sc !== undefined && !['measurement', 'total', 'total_increasing'].includes(sc)) p(`state_class "${sc}" is not valid`);
    if (dc !== undefined) {
      const units = UNITS[dc];
      if (!units) p(`device_class "${dc}" is not checked here`);
      else if (units === 'currency' ? !unit || !ISO_4217.test(unit) : units === 'none' ? unit !== undefined : !unit || !units.includes(unit)) p(`unit "${unit}" is not valid for device_class ${dc}`);
      const scs = STATE_CLASSES[dc];
      if (sc !== undefined && scs && !scs.includes(sc)) p(`state_class ${sc} is not valid for device_class ${dc}`);
    }
    if (c.last_reset_value_template !== undefined && sc !== 'total') p('last_reset_value_template needs state_class total');
  }
  if (component === 'binary_sensor' && dc !== undefined && !BINARY_CLASSES.includes(dc)) p(`binary_sensor device_class "${dc}" is not valid`);
  if (component === 'switch' && dc !== undefined && !SWITCH_CLASSES.includes(dc)) p(`switch device_class "${dc}" is not valid`);
  return problems;
}
