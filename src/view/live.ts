// The in-process event feed both views redraw from (the sensor's LiveOutput): the dashboard's SSE hub
// (web/live.ts) and the terminal view (tui/index.ts) subscribe to it.

export interface LiveSource {
  subscribe(fn: (events: unknown[]) => void): () => void;
}
