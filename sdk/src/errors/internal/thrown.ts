/**
 * A thrown value as text, for spans and errors: String(value), or its
 * Object.prototype.toString tag where it has no string form (an object
 * without a prototype, a toString that throws). Recording a failure must
 * never throw in place of the failure it records.
 */
export function thrownText(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
