/**
 * The version of the plugin SDK this build of homeflex provides. An external plugin declares the
 * range it was built for (`"engines": { "homeflex": "^0.1.0" }` in its package.json) and the hub
 * refuses one whose range this version does not satisfy. Equal to the package version.
 */
export const SDK_VERSION = '0.1.0';
