// A Worker that says it started and then waits to be terminated (thread-priority.test.ts).
export {}; // a module: its `self` is its own
declare const self: Worker;
self.onmessage = () => {};
self.postMessage("up");
