// The Worker of priority-smoke.ts: lowers its own thread as the sensor Worker does, and reports.
import { currentThreadPriority } from "../../ffi/win32.ts";
import { lowerOwnThreadPriority } from "../../src/util/thread-priority.ts";

declare const self: Worker;
const before = currentThreadPriority();
const after = lowerOwnThreadPriority(10);
self.postMessage({ before, after, read: currentThreadPriority() });
