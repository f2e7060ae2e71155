/**
 * Which environment variables `${NAME}` may read, after the request context:
 * `true` any (the default), `false` none, or a list of the names allowed.
 * Use `false` (or a short list) for templates that hold user or tenant text:
 * `${AWS_SECRET_ACCESS_KEY}` written by a user must not expand to your secret.
 */
export type EnvAccess = boolean | readonly string[];

/** Options of expandVariables(). */
export interface ExpandOptions {
  /** Environment variables that may be read; default `true` (all). */
  env?: EnvAccess;
}

/** Options of loadConfig() and parseConfig(). */
export interface ConfigOptions {
  /** Environment variables that may be read when expanding; default `true` (all). */
  env?: EnvAccess;
}
