/** Small DOM helpers for the demo: element building, icons and keyed list updates. */

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined>;

/** `h("li", { class: "msg", "data-seq": 3 }, "text", child)`; false/null attributes and children are skipped. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

export function $<T extends Element>(root: ParentNode, sel: string): T {
  const e = root.querySelector<T>(sel);
  if (!e) throw new Error(`missing ${sel}`);
  return e;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Icons drawn with strokes in `currentColor` (no icon font, no emoji: the page must look the same everywhere). */
const ICONS = {
  check: { box: "0 0 18 12", paths: ["M1.5 6.5l3.2 3.2 6.8-8"] },
  checks: { box: "0 0 18 12", paths: ["M1 6.5l3.2 3.2 6.8-8", "M7.6 8.9l.8.8 6.8-8"] },
  clock: { box: "0 0 16 16", paths: ["M8 1.75a6.25 6.25 0 1 0 0 12.5a6.25 6.25 0 1 0 0-12.5z", "M8 4.5V8l2.4 1.6"] },
  send: { box: "0 0 24 24", paths: ["M4 12l16-8-6 16-2.5-6.5z", "M11.5 13.5L20 4"] },
  back: { box: "0 0 24 24", paths: ["M15 5l-7 7 7 7"] },
  plus: { box: "0 0 24 24", paths: ["M12 5v14", "M5 12h14"] },
  bell: { box: "0 0 24 24", paths: ["M6 16V11a6 6 0 0 1 12 0v5l1.5 2h-15z", "M10 20.5a2 2 0 0 0 4 0"] },
  hand: { box: "0 0 24 24", paths: ["M7 12V6.5a1.5 1.5 0 0 1 3 0V11", "M10 10.5V5a1.5 1.5 0 0 1 3 0v5.5", "M13 10.5V6a1.5 1.5 0 0 1 3 0v6", "M16 10a1.5 1.5 0 0 1 3 0v3.5a7 7 0 0 1-7 7h-.5a6 6 0 0 1-4.6-2.2L4.4 15a1.5 1.5 0 0 1 2.3-1.9L7 13.5"] },
  key: { box: "0 0 24 24", paths: ["M14.5 4a5.5 5.5 0 1 1-4.9 8L4 17.6V20h2.5v-2h2v-2h2l1.4-1.4A5.5 5.5 0 1 1 14.5 4z", "M16.5 7.5h.01"] },
  chat: { box: "0 0 24 24", paths: ["M5 5h14a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-7l-5 4v-4H5a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z"] },
} as const;

export type IconName = keyof typeof ICONS;

export function icon(name: IconName, cls = ""): SVGSVGElement {
  const spec = ICONS[name];
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", spec.box);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon icon-${name}${cls ? ` ${cls}` : ""}`);
  for (const d of spec.paths) {
    const p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", d);
    svg.append(p);
  }
  return svg;
}

/** One wanted child of a keyed list: `sig` changes when it must be rebuilt. */
export interface Keyed {
  key: string;
  sig: string;
  make(): HTMLElement;
}

const caches = new WeakMap<Element, Map<string, { sig: string; el: HTMLElement }>>();

/**
 * Makes `parent`'s children exactly `items`, in order, touching only what
 * changed: unchanged elements stay (scroll anchoring, focus and screen
 * readers are not disturbed by a re-render), changed ones are rebuilt.
 */
export function reconcile(parent: Element, items: readonly Keyed[]): void {
  const cache = caches.get(parent) ?? new Map<string, { sig: string; el: HTMLElement }>();
  const active = document.activeElement;
  let focusedKey: string | null = null;
  if (active && parent.contains(active)) for (const [key, { el }] of cache) if (el.contains(active)) focusedKey = key;
  const next = new Map<string, { sig: string; el: HTMLElement }>();
  let cursor: ChildNode | null = parent.firstChild;
  for (const item of items) {
    const had = cache.get(item.key);
    const entry = had && had.sig === item.sig ? had : { sig: item.sig, el: item.make() };
    next.set(item.key, entry);
    if (had && had.el !== entry.el) {
      if (cursor === had.el) cursor = cursor.nextSibling;
      had.el.remove();
    }
    if (cursor === entry.el) {
      cursor = cursor.nextSibling;
      continue;
    }
    parent.insertBefore(entry.el, cursor);
  }
  while (cursor) {
    const after: ChildNode | null = cursor.nextSibling;
    cursor.remove();
    cursor = after;
  }
  caches.set(parent, next);
  // A rebuilt or moved element loses focus: give it back to the same item.
  if (focusedKey !== null && !parent.contains(document.activeElement)) {
    const el = next.get(focusedKey)?.el;
    const target = el?.matches("button, a, input, [tabindex]") ? el : el?.querySelector<HTMLElement>("button, a, input, [tabindex]");
    target?.focus({ preventScroll: true });
  }
}
