// moved to src/api (plugins' sources use it too); kept so existing imports still resolve
export { cronIssues } from '../api/cron.js';
