// moved to src/api (plugins' tariff sources use it too); kept so existing imports still resolve
export { applySurcharge, surchargeSchema, type Surcharge } from '../api/surcharge.js';
