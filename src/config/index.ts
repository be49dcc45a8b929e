export { configSchema, defaultLevel, levelRange, COMPRESSION_ALGORITHMS, type CompressionAlgorithm, type Config } from './schema.js';
export { parseHostPort, type HostPort } from './addr.js';
export { INACTIVE_KEYS, inactiveKeysSet } from './inactive.js';
export { loadConfig, ConfigError, type CliOverrides, type LoadedConfig } from './load.js';
export { parseCli, CliError, HELP_TEXT, type CliCommand } from './cli.js';
