// Win32 calls the tray needs, through bun:ffi (no .NET, no helper exe), loaded only on Windows:
//   user32    window class + hidden window whose procedure is a JSCallback, PeekMessage pump, popup menu
//             (TrackPopupMenu), icons from pixels (CreateIcon), RegisterWindowMessage("TaskbarCreated")
//   shell32   Shell_NotifyIconW (icon, tooltip, balloons), ShellExecuteExW ("runas" for Start Capture,
//             "open" for the dashboard URL and the log folder)
//   kernel32  CreateMutexW (one tray per user), GetModuleHandleW, GetConsoleWindow/ProcessList
//   advapi32  RegGetValueW / RegSetKeyValueW / RegDeleteKeyValueW on HKCU\...\Run (Start with Windows)
// Struct layouts are x64 (the only Windows target); offsets are written out next to each field.
import { dlopen, JSCallback, ptr, type Pointer } from "bun:ffi";

export const WM_NULL = 0x0000;
export const WM_DESTROY = 0x0002;
export const WM_CLOSE = 0x0010;
export const WM_COMMAND = 0x0111;
export const WM_ENTERIDLE = 0x0121;
export const WM_LBUTTONUP = 0x0202;
export const WM_LBUTTONDBLCLK = 0x0203;
export const WM_RBUTTONUP = 0x0205;
export const WM_CONTEXTMENU = 0x007b;
export const WM_APP = 0x8000;
export const NIN_BALLOONUSERCLICK = 0x0405;

const NIM_ADD = 0;
const NIM_MODIFY = 1;
const NIM_DELETE = 2;
const NIF_MESSAGE = 0x1;
const NIF_ICON = 0x2;
const NIF_TIP = 0x4;
const NIF_INFO = 0x10;
const NIF_SHOWTIP = 0x80;
const NIIF_INFO = 0x1;
const NIIF_WARNING = 0x2;
const NIIF_ERROR = 0x3;
const PM_REMOVE = 0x1;
const MF_STRING = 0x0;
const MF_GRAYED = 0x1;
const MF_DISABLED = 0x2;
const MF_CHECKED = 0x8;
const MF_SEPARATOR = 0x800;
const TPM_RIGHTBUTTON = 0x2;
const TPM_RETURNCMD = 0x100;
const MIIM_STATE = 0x1;
const MFS_DEFAULT = 0x1000;
const SEE_MASK_NOCLOSEPROCESS = 0x40;
const SEE_MASK_FLAG_NO_UI = 0x400;
const SW_HIDE = 0;
const SW_SHOWNORMAL = 1;
const ERROR_ALREADY_EXISTS = 183;
const ERROR_CANCELLED = 1223;
const HKEY_CURRENT_USER = 0xffffffff80000001n; // (HKEY)(LONG)0x80000001, sign-extended
const REG_SZ = 1;
const RRF_RT_REG_SZ = 0x2;
const ERROR_FILE_NOT_FOUND = 2;

/** NUL-terminated UTF-16LE, as every W function wants. Keep the buffer referenced while Windows holds it. */
export function wstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf16le");
}

function writeWChars(view: Uint8Array, offset: number, maxChars: number, s: string) {
  const b = Buffer.from(s.slice(0, maxChars - 1), "utf16le");
  view.set(b, offset);
  view[offset + b.length] = 0;
  view[offset + b.length + 1] = 0;
}

type Libs = ReturnType<typeof openLibs>;
let libs: Libs | undefined;

function openLibs() {
  const user32 = dlopen("user32.dll", {
    RegisterClassExW: { args: ["ptr"], returns: "u16" },
    CreateWindowExW: { args: ["u32", "ptr", "ptr", "u32", "i32", "i32", "i32", "i32", "u64", "u64", "u64", "ptr"], returns: "u64" },
    DefWindowProcW: { args: ["u64", "u32", "u64", "i64"], returns: "i64" },
    DestroyWindow: { args: ["u64"], returns: "i32" },
    PeekMessageW: { args: ["ptr", "u64", "u32", "u32", "u32"], returns: "i32" },
    TranslateMessage: { args: ["ptr"], returns: "i32" },
    DispatchMessageW: { args: ["ptr"], returns: "i64" },
    PostMessageW: { args: ["u64", "u32", "u64", "i64"], returns: "i32" },
    RegisterWindowMessageW: { args: ["ptr"], returns: "u32" },
    CreatePopupMenu: { args: [], returns: "u64" },
    AppendMenuW: { args: ["u64", "u32", "u64", "ptr"], returns: "i32" },
    SetMenuItemInfoW: { args: ["u64", "u32", "i32", "ptr"], returns: "i32" },
    GetMenuItemRect: { args: ["u64", "u64", "u32", "ptr"], returns: "i32" },
    TrackPopupMenu: { args: ["u64", "u32", "i32", "i32", "i32", "u64", "ptr"], returns: "i32" },
    DestroyMenu: { args: ["u64"], returns: "i32" },
    SetForegroundWindow: { args: ["u64"], returns: "i32" },
    GetCursorPos: { args: ["ptr"], returns: "i32" },
    CreateIcon: { args: ["u64", "i32", "i32", "u8", "u8", "ptr", "ptr"], returns: "u64" },
    DestroyIcon: { args: ["u64"], returns: "i32" },
    ShowWindow: { args: ["u64", "i32"], returns: "i32" },
  });
  const shell32 = dlopen("shell32.dll", {
    Shell_NotifyIconW: { args: ["u32", "ptr"], returns: "i32" },
    ShellExecuteExW: { args: ["ptr"], returns: "i32" },
  });
  const kernel32 = dlopen("kernel32.dll", {
    CreateMutexW: { args: ["ptr", "i32", "ptr"], returns: "u64" },
    CloseHandle: { args: ["u64"], returns: "i32" },
    GetLastError: { args: [], returns: "u32" },
    GetModuleHandleW: { args: ["ptr"], returns: "u64" },
    GetConsoleWindow: { args: [], returns: "u64" },
    GetConsoleProcessList: { args: ["ptr", "u32"], returns: "u32" },
  });
  const advapi32 = dlopen("advapi32.dll", {
    RegGetValueW: { args: ["u64", "ptr", "ptr", "u32", "ptr", "ptr", "ptr"], returns: "i32" },
    RegSetKeyValueW: { args: ["u64", "ptr", "ptr", "u32", "ptr", "u32"], returns: "i32" },
    RegDeleteKeyValueW: { args: ["u64", "ptr", "ptr"], returns: "i32" },
  });
  return { user32: user32.symbols, shell32: shell32.symbols, kernel32: kernel32.symbols, advapi32: advapi32.symbols };
}

function win32(): Libs {
  if (process.platform !== "win32") throw new Error("the tray needs Windows");
  libs ??= openLibs();
  return libs;
}

/** Holds the named mutex for the life of the process; false when another tray of this user holds it. */
export function acquireSingleInstance(name: string): boolean {
  const { kernel32 } = win32();
  const nameBuf = wstr(name);
  const h = kernel32.CreateMutexW(null, 1, nameBuf);
  const err = kernel32.GetLastError();
  if (h === 0n) throw new Error(`CreateMutexW failed: Win32 error ${err}`);
  if (err === ERROR_ALREADY_EXISTS) {
    kernel32.CloseHandle(h);
    return false;
  }
  return true; // never closed: Windows releases it when the process ends
}

/** Started by a double-click in Explorer: this process is the only one on its console. */
export function ownsConsoleAlone(): boolean {
  const { kernel32 } = win32();
  const list = new Uint32Array(4);
  return kernel32.GetConsoleProcessList(list, list.length) === 1;
}

/** Hides the console window Windows opened for a double-clicked (console-subsystem) oisp.exe. */
export function hideConsoleWindow(): void {
  const { kernel32, user32 } = win32();
  const hwnd = kernel32.GetConsoleWindow();
  if (hwnd !== 0n) user32.ShowWindow(hwnd, SW_HIDE);
}

export interface MenuEntry {
  kind: "item" | "separator" | "label";
  id?: number;
  label?: string;
  enabled?: boolean;
  checked?: boolean;
  default?: boolean;
}

export interface TrayWindowEvents {
  /** The notification icon's callback message: lParam's mouse message (WM_RBUTTONUP, ...). */
  onIcon(mouseMessage: number): void;
  /** Explorer restarted: the icon must be added again. */
  onTaskbarCreated(): void;
  onClose(): void;
}

export interface Icon {
  handle: bigint;
}

/**
 * A hidden top-level window (not message-only: only top-level windows receive the "TaskbarCreated"
 * broadcast, and TrackPopupMenu needs a window that can be made foreground) owning one notification icon.
 */
export class TrayWindow {
  readonly hwnd: bigint;
  private readonly wndProc: JSCallback;
  private readonly msg = new Uint8Array(48); // MSG
  private readonly nid = new Uint8Array(976); // NOTIFYICONDATAW (x64, with guidItem and hBalloonIcon)
  private readonly keep: unknown[] = [];
  private added = false;
  readonly callbackMessage = WM_APP + 1;
  private readonly taskbarCreated: number;

  constructor(className: string, title: string, events: TrayWindowEvents) {
    const { user32, kernel32 } = win32();
    const hInstance = kernel32.GetModuleHandleW(null);
    this.taskbarCreated = user32.RegisterWindowMessageW(wstr("TaskbarCreated"));
    this.wndProc = new JSCallback(
      (hwnd: bigint, message: number, wParam: bigint, lParam: bigint): bigint => {
        try {
          if (message === this.callbackMessage) {
            events.onIcon(Number(BigInt.asUintN(16, lParam)));
            return 0n;
          }
          if (this.taskbarCreated && message === this.taskbarCreated) {
            this.added = false;
            events.onTaskbarCreated();
            return 0n;
          }
          if (message === WM_ENTERIDLE && this.menuShown) {
            const shown = this.menuShown;
            this.menuShown = undefined;
            shown();
            return 0n;
          }
          if (message === WM_CLOSE) {
            events.onClose();
            return 0n;
          }
        } catch (err) {
          // An exception must not unwind through Windows' stack frames.
          process.stderr.write(`oisp tray: window message ${message}: ${(err as Error).message}\n`);
          return 0n;
        }
        return user32.DefWindowProcW(hwnd, message, wParam, lParam) as bigint;
      },
      { args: ["u64", "u32", "u64", "i64"], returns: "i64" },
    );
    const cls = wstr(className);
    const wc = new Uint8Array(80); // WNDCLASSEXW
    const dv = new DataView(wc.buffer);
    dv.setUint32(0, 80, true); // cbSize
    dv.setBigUint64(8, BigInt(this.wndProc.ptr as unknown as number), true); // lpfnWndProc
    dv.setBigUint64(24, hInstance, true); // hInstance
    dv.setBigUint64(64, BigInt(ptr(cls)), true); // lpszClassName
    if (!user32.RegisterClassExW(wc)) throw new Error(`RegisterClassExW failed: Win32 error ${kernel32.GetLastError()}`);
    const name = wstr(title);
    this.keep.push(cls, name, wc);
    this.hwnd = user32.CreateWindowExW(0, cls, name, 0, 0, 0, 0, 0, 0n, 0n, hInstance, null) as bigint;
    if (this.hwnd === 0n) throw new Error(`CreateWindowExW failed: Win32 error ${kernel32.GetLastError()}`);
    const n = new DataView(this.nid.buffer);
    n.setUint32(0, this.nid.length, true); // cbSize
    n.setBigUint64(8, this.hwnd, true); // hWnd
    n.setUint32(16, 1, true); // uID
    n.setUint32(24, this.callbackMessage, true); // uCallbackMessage
  }

  /**
   * Delivers every queued message to the window procedure without blocking: called from a timer, so the
   * JavaScript event loop (status polling, child processes) keeps running between calls.
   */
  pump(): void {
    const { user32 } = win32();
    for (let i = 0; i < 64 && user32.PeekMessageW(this.msg, 0n, 0, 0, PM_REMOVE); i++) {
      user32.TranslateMessage(this.msg);
      user32.DispatchMessageW(this.msg);
    }
  }

  /** Adds or updates the icon and tooltip (NIM_ADD the first time and after Explorer restarts). */
  setIcon(icon: Icon, tip: string): boolean {
    const { shell32 } = win32();
    const n = new DataView(this.nid.buffer);
    n.setUint32(20, NIF_MESSAGE | NIF_ICON | NIF_TIP | NIF_SHOWTIP, true); // uFlags
    n.setBigUint64(32, icon.handle, true); // hIcon
    this.nid.fill(0, 40, 40 + 256);
    writeWChars(this.nid, 40, 128, tip); // szTip
    const ok = shell32.Shell_NotifyIconW(this.added ? NIM_MODIFY : NIM_ADD, this.nid) !== 0;
    if (ok) this.added = true;
    return ok;
  }

  balloon(title: string, text: string, kind: "info" | "warning" | "error"): boolean {
    const { shell32 } = win32();
    if (!this.added) return false;
    const n = new DataView(this.nid.buffer);
    n.setUint32(20, NIF_INFO, true);
    this.nid.fill(0, 304, 304 + 512);
    writeWChars(this.nid, 304, 256, text); // szInfo
    n.setUint32(816, 10_000, true); // uTimeout (ignored since Vista; the system decides)
    this.nid.fill(0, 820, 820 + 128);
    writeWChars(this.nid, 820, 64, title); // szInfoTitle
    n.setUint32(948, kind === "error" ? NIIF_ERROR : kind === "warning" ? NIIF_WARNING : NIIF_INFO, true); // dwInfoFlags
    return shell32.Shell_NotifyIconW(NIM_MODIFY, this.nid) !== 0;
  }

  /**
   * Shows the menu at the cursor and returns the chosen command id (0: dismissed). Runs Windows' modal
   * menu loop, so the event loop waits while the menu is open. `onShown` gets each item's screen rectangle
   * (GetMenuItemRect), which the tray logs at debug level.
   */
  popupMenu(entries: MenuEntry[], onShown?: (rects: Array<{ id?: number; label?: string; x: number; y: number; w: number; h: number }>) => void): number {
    const { user32 } = win32();
    const menu = user32.CreatePopupMenu() as bigint;
    const keep: Buffer[] = [];
    try {
      for (const e of entries) {
        if (e.kind === "separator") {
          user32.AppendMenuW(menu, MF_SEPARATOR, 0n, null);
          continue;
        }
        const text = wstr(e.label ?? "");
        keep.push(text);
        let flags = MF_STRING;
        if (e.kind === "label" || e.enabled === false) flags |= MF_GRAYED | MF_DISABLED;
        if (e.checked) flags |= MF_CHECKED;
        user32.AppendMenuW(menu, flags, BigInt(e.id ?? 0), text);
        if (e.default && e.id) {
          const info = new Uint8Array(80); // MENUITEMINFOW: cbSize, fMask, fType, fState
          const dv = new DataView(info.buffer);
          dv.setUint32(0, 80, true);
          dv.setUint32(4, MIIM_STATE, true);
          dv.setUint32(12, MFS_DEFAULT, true);
          user32.SetMenuItemInfoW(menu, e.id, 0, info);
        }
      }
      const pt = new Int32Array(2);
      user32.GetCursorPos(pt);
      // Without this the menu does not close when the user clicks elsewhere (a documented Win32 quirk).
      user32.SetForegroundWindow(this.hwnd);
      if (onShown) {
        // Rectangles exist only while the menu is shown: taken at the first WM_ENTERIDLE of the modal loop.
        this.menuShown = () => {
          const rects = entries.map((e, i) => {
            const r = new Int32Array(4);
            user32.GetMenuItemRect(this.hwnd, menu, i, r);
            return { id: e.id, label: e.label, x: r[0]!, y: r[1]!, w: r[2]! - r[0]!, h: r[3]! - r[1]! };
          });
          onShown(rects);
        };
      }
      const id = user32.TrackPopupMenu(menu, TPM_RIGHTBUTTON | TPM_RETURNCMD, pt[0]!, pt[1]!, 0, this.hwnd, null);
      this.menuShown = undefined;
      // Also documented: post a benign message so the next click after the menu is not swallowed.
      user32.PostMessageW(this.hwnd, WM_NULL, 0n, 0n);
      return id;
    } finally {
      user32.DestroyMenu(menu);
    }
  }

  /** Set while a menu is being tracked; see popupMenu. */
  menuShown: (() => void) | undefined;

  removeIcon(): void {
    const { shell32 } = win32();
    if (!this.added) return;
    const n = new DataView(this.nid.buffer);
    n.setUint32(20, 0, true);
    shell32.Shell_NotifyIconW(NIM_DELETE, this.nid);
    this.added = false;
  }

  destroy(): void {
    const { user32 } = win32();
    this.removeIcon();
    user32.DestroyWindow(this.hwnd);
    this.wndProc.close();
  }
}

/** An icon from 32-bit BGRA pixels (top-down) and a 1-bpp AND mask. */
export function createIcon(size: number, bgra: Uint8Array, andMask: Uint8Array): Icon {
  const { user32, kernel32 } = win32();
  const h = user32.CreateIcon(kernel32.GetModuleHandleW(null), size, size, 1, 32, andMask, bgra) as bigint;
  if (h === 0n) throw new Error(`CreateIcon failed: Win32 error ${kernel32.GetLastError()}`);
  return { handle: h };
}

export function destroyIcon(icon: Icon): void {
  win32().user32.DestroyIcon(icon.handle);
}

export type ShellResult = { ok: true; process?: bigint } | { ok: false; cancelled: boolean; error: number };

/**
 * ShellExecuteExW: `verb` "runas" asks for elevation (the UAC prompt; ERROR_CANCELLED when declined),
 * "open" opens a URL or a folder/file in its default program. Blocks until Windows has started it.
 */
export function shellExecute(verb: "runas" | "open", file: string, params = "", show: "normal" | "hidden" = "normal"): ShellResult {
  const { shell32, kernel32 } = win32();
  const info = new Uint8Array(112); // SHELLEXECUTEINFOW
  const dv = new DataView(info.buffer);
  const verbBuf = wstr(verb);
  const fileBuf = wstr(file);
  const paramBuf = wstr(params);
  dv.setUint32(0, 112, true); // cbSize
  dv.setUint32(4, SEE_MASK_NOCLOSEPROCESS | SEE_MASK_FLAG_NO_UI, true); // fMask
  dv.setBigUint64(16, BigInt(ptr(verbBuf)), true); // lpVerb
  dv.setBigUint64(24, BigInt(ptr(fileBuf)), true); // lpFile
  if (params) dv.setBigUint64(32, BigInt(ptr(paramBuf)), true); // lpParameters
  dv.setInt32(48, show === "hidden" ? SW_HIDE : SW_SHOWNORMAL, true); // nShow
  if (!shell32.ShellExecuteExW(info)) {
    const error = kernel32.GetLastError();
    return { ok: false, cancelled: error === ERROR_CANCELLED, error };
  }
  const proc = dv.getBigUint64(104, true); // hProcess
  if (proc !== 0n) kernel32.CloseHandle(proc);
  void [verbBuf, fileBuf, paramBuf];
  return { ok: true };
}

const RUN_KEY = "Software\\Microsoft\\Windows\\CurrentVersion\\Run";

/** HKCU\...\Run\<name>, or undefined when absent. */
export function readRunValue(name: string): string | undefined {
  const { advapi32 } = win32();
  const size = new Uint32Array([4096]);
  const buf = new Uint8Array(4096);
  const rc = advapi32.RegGetValueW(HKEY_CURRENT_USER, wstr(RUN_KEY), wstr(name), RRF_RT_REG_SZ, null, buf, size);
  if (rc === ERROR_FILE_NOT_FOUND) return undefined;
  if (rc !== 0) throw new Error(`RegGetValueW failed: Win32 error ${rc}`);
  return Buffer.from(buf.subarray(0, Math.max(0, size[0]! - 2))).toString("utf16le");
}

export function writeRunValue(name: string, command: string | undefined): void {
  const { advapi32 } = win32();
  if (command === undefined) {
    const rc = advapi32.RegDeleteKeyValueW(HKEY_CURRENT_USER, wstr(RUN_KEY), wstr(name));
    if (rc !== 0 && rc !== ERROR_FILE_NOT_FOUND) throw new Error(`RegDeleteKeyValueW failed: Win32 error ${rc}`);
    return;
  }
  const data = wstr(command);
  const rc = advapi32.RegSetKeyValueW(HKEY_CURRENT_USER, wstr(RUN_KEY), wstr(name), REG_SZ, data, data.length);
  if (rc !== 0) throw new Error(`RegSetKeyValueW failed: Win32 error ${rc}`);
}

export type { Pointer };
