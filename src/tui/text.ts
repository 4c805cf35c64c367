// Fixed-width cells for the terminal view: measure by display width (CJK and emoji take two columns),
// cut with an ellipsis, pad to the column. Control characters from captured names never reach the terminal.

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Captured process or model names could carry escape sequences: show them as plain text. */
export function sanitize(s: string): string {
  return s.replace(CONTROL, "?");
}

export function width(s: string): number {
  return Bun.stringWidth(s);
}

/** Cut to at most `cols` display columns, ending in "…" when cut. */
export function truncate(s: string, cols: number): string {
  if (cols <= 0) return "";
  const clean = sanitize(s);
  if (width(clean) <= cols) return clean;
  let out = "";
  let w = 0;
  for (const ch of clean) {
    const cw = width(ch);
    if (w + cw > cols - 1) break;
    out += ch;
    w += cw;
  }
  return `${out}…`;
}

export function padRight(s: string, cols: number): string {
  const t = truncate(s, cols);
  return t + " ".repeat(Math.max(0, cols - width(t)));
}

export function padLeft(s: string, cols: number): string {
  const t = truncate(s, cols);
  return " ".repeat(Math.max(0, cols - width(t))) + t;
}

export interface Column {
  title: string;
  width: number;
  align?: "left" | "right";
}

/** One table line: cells fitted to their columns, one space between. */
export function row(cells: string[], cols: Column[]): string {
  return cols.map((c, i) => (c.align === "right" ? padLeft : padRight)(cells[i] ?? "", c.width)).join(" ");
}

/**
 * Column widths for a terminal `total` columns wide: fixed columns keep their width, `flex` columns share
 * what is left (at least `min` each).
 */
export function layout(total: number, spec: Array<Column & { flex?: boolean; min?: number; weight?: number }>): Column[] {
  const gaps = spec.length - 1;
  const fixed = spec.filter((c) => !c.flex).reduce((a, c) => a + c.width, 0);
  const flex = spec.filter((c) => c.flex);
  const room = Math.max(0, total - gaps - fixed);
  // Flex columns share the room by weight (default 1); what rounding leaves goes to the first ones.
  const weights = flex.reduce((a, c) => a + (c.weight ?? 1), 0);
  const shares = flex.map((c) => (weights ? Math.floor((room * (c.weight ?? 1)) / weights) : 0));
  let extra = room - shares.reduce((a, b) => a + b, 0);
  let k = 0;
  return spec.map((c) => {
    if (!c.flex) return { title: c.title, width: c.width, align: c.align };
    const w = Math.max(c.min ?? 4, shares[k++]! + (extra > 0 ? 1 : 0));
    if (extra > 0) extra--;
    return { title: c.title, width: w, align: c.align };
  });
}
