/** The items the inventory knows and the agent recognises in messages. */
export const ITEMS = ['lamp', 'chair', 'desk', 'sofa', 'shelf', 'rug', 'mirror', 'table'] as const;

/** One catalogue item. */
export type Item = (typeof ITEMS)[number];

/** Whether `value` names a catalogue item. */
export function isItem(value: unknown): value is Item {
  return typeof value === 'string' && (ITEMS as readonly string[]).includes(value);
}
